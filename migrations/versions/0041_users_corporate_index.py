"""Corporate users counted from an index

The Overview counted an account's corporate users, and those who need a link from an
administrator, by reading every member's row (SQLite, 10,000 members: 5.1 ms a view, growing
with the account). An index of (corporate_account_id, is_corporate) counts them from the index
alone; a partial one holds only those without a password or a recovery address, among whom those
who need a link are found. The first replaces the index of corporate_account_id, which
its leading column serves.

Revision ID: 0041_users_corporate_index
Revises: 0040_audit_search_sqlite
Create Date: 2026-12-07 16:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0041_users_corporate_index'
down_revision = '0040_audit_search_sqlite'
branch_labels = None
depends_on = None

UNLINKED = "password_hash IS NULL AND recovery_email IS NULL"


def upgrade():
    op.create_index('ix_users_corporate', 'users', ['corporate_account_id', 'is_corporate'])
    op.create_index('ix_users_corporate_unlinked', 'users', ['corporate_account_id', 'is_corporate'],
                    sqlite_where=sa.text(UNLINKED), postgresql_where=sa.text(UNLINKED))
    op.drop_index('ix_users_corporate_account_id', table_name='users')


def downgrade():
    op.create_index('ix_users_corporate_account_id', 'users', ['corporate_account_id'])
    op.drop_index('ix_users_corporate_unlinked', table_name='users')
    op.drop_index('ix_users_corporate', table_name='users')
