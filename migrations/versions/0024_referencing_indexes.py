"""Index the columns that refer to users, mailboxes and roles without one

Deleting a row makes the database look for the rows that refer to it (to set them to NULL): without
an index on the referring column that is a scan of its whole table per deleted row. Deleting an
account's 10,000 mailboxes scanned users and invitation grants 10,000 times each.

Revision ID: 0024_referencing_indexes
Revises: 0023_account_search
Create Date: 2026-12-04 19:50:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0024_referencing_indexes'
down_revision = '0023_account_search'
branch_labels = None
depends_on = None

INDEXES = [
    ("users", "default_mailbox_id"),
    ("accounts", "personal_mailbox_role_id"),
    ("grants", "granted_by_id"),
    ("invitations", "invited_by_id"),
    ("invitations", "user_id"),
    ("invitation_grants", "role_id"),
    ("invitation_grants", "mailbox_id"),
    ("scim_profiles", "manager_id"),
]


def upgrade():
    for table, column in INDEXES:
        op.create_index(f"ix_{table}_{column}", table, [column], unique=False)


def downgrade():
    for table, column in reversed(INDEXES):
        op.drop_index(f"ix_{table}_{column}", table_name=table)
