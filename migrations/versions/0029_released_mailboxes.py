"""Mailboxes a deleted account left on its backend, with their mail

Deleting an account disables (or keeps, or archives) its mailboxes on their backends; the rows
went with the account, so the next account to prove the domain could adopt them from a
comparison, or create the address and be linked to the mailbox already there, and read the mail
of the people of the account that was deleted. ``released_mailboxes`` remembers them, by
connection and address, until the operator releases one.

Revision ID: 0029_released_mailboxes
Revises: 0028_mailbox_password_given_to
Create Date: 2026-12-05 19:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0029_released_mailboxes'
down_revision = '0028_mailbox_password_given_to'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'released_mailboxes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('connection', sa.String(length=64), nullable=False),
        sa.Column('address', sa.String(length=254), nullable=False),
        sa.Column('account_name', sa.String(length=200), nullable=False),
        sa.Column('released_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('connection', 'address', name='uq_released_mailboxes_connection_address'),
    )


def downgrade():
    op.drop_table('released_mailboxes')
