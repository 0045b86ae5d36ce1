"""Memberships carry their member's address, for the Users list's default order

The Users list is sorted by address. With the address only on users, a page of it was a sort of
every member of the account (SQLite: 3 ms at 10,000 members, whichever page). A copy on the
membership (an address never changes once a person exists) beside the account in one unique
index makes a page 50 entries of that index.

On SQLite the column is added with an empty default, which stays: making it NOT NULL otherwise
rebuilds memberships, and dropping the old table would delete every grant (ON DELETE CASCADE).
The portal always writes the address.

Revision ID: 0026_membership_email
Revises: 0025_grant_account
Create Date: 2026-12-05 07:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0026_membership_email'
down_revision = '0025_grant_account'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('memberships', sa.Column('email', sa.String(length=254), nullable=False, server_default=''))
    op.execute(sa.text("UPDATE memberships SET email = "
                       "(SELECT users.email FROM users WHERE users.id = memberships.user_id)"))
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('memberships', 'email', existing_type=sa.String(length=254), server_default=None)
    op.create_index('uq_memberships_account_email', 'memberships', ['account_id', 'email'], unique=True)


def downgrade():
    op.drop_index('uq_memberships_account_email', table_name='memberships')
    op.drop_column('memberships', 'email')
