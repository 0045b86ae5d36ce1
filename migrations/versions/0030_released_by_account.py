"""Mailboxes an account left archived on its backend when it removed their domain

Removing a domain forgot the mailboxes deleted on it; on a backend that archives what it deletes
(Mail-in-a-Box), creating the address again restores the mail. The next account to prove the
domain got that mail back. Such mailboxes are now remembered in ``released_mailboxes`` too, with
the account that left them (``account_id``, kept while it exists), which may take them back; a
deleted account's rows have none.

Revision ID: 0030_released_by_account
Revises: 0029_released_mailboxes
Create Date: 2026-12-05 22:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0030_released_by_account'
down_revision = '0029_released_mailboxes'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('released_mailboxes') as batch:
        batch.add_column(sa.Column('account_id', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('released_mailboxes') as batch:
        batch.drop_column('account_id')
