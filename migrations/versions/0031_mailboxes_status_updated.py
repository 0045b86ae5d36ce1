"""An index for the Overview's failed mailboxes, most recently changed first

The Overview lists an account's five most recently changed failed mailboxes; without an index
ending in ``updated_at`` the database sorted every failed mailbox of the account to find them.

Revision ID: 0031_mailboxes_status_updated
Revises: 0030_released_by_account
Create Date: 2026-12-06 01:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0031_mailboxes_status_updated'
down_revision = '0030_released_by_account'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_mailboxes_account_status_updated', 'mailboxes', ['account_id', 'status', 'updated_at'])


def downgrade():
    op.drop_index('ix_mailboxes_account_status_updated', table_name='mailboxes')
