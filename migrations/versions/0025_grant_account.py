"""Grants carry their account, kept equal to their membership's by a foreign key

The Roles page counts each role's holders in the account. System roles are shared by every
account, so the count joined every grant of those roles to its membership to find its account
(2.7 ms of the page at 14,000 grants on SQLite); with the account on the grant it reads one index.
A foreign key on (membership, account) to the memberships' (id, account) keeps the two equal; it
replaces the foreign key on the membership alone.

Revision ID: 0025_grant_account
Revises: 0024_referencing_indexes
Create Date: 2026-12-04 22:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0025_grant_account'
down_revision = '0024_referencing_indexes'
branch_labels = None
depends_on = None


def upgrade():
    # A unique index, not a constraint: on SQLite a constraint would rebuild memberships, and dropping
    # the old table would delete every grant (ON DELETE CASCADE). Both databases accept the index as
    # the target of a foreign key.
    op.create_index('uq_memberships_id_account', 'memberships', ['id', 'account_id'], unique=True)
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_id', sa.Integer(), nullable=True))
    op.execute(sa.text("UPDATE grants SET account_id = "
                       "(SELECT memberships.account_id FROM memberships WHERE memberships.id = grants.membership_id)"))
    # On SQLite this rebuilds grants (nothing refers to grants, so nothing cascades). The foreign
    # key on (membership, account) replaces the one on the membership alone.
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.alter_column('account_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint('fk_grants_membership_id_memberships', type_='foreignkey')
        batch_op.create_foreign_key('fk_grants_membership_account', 'memberships', ['membership_id', 'account_id'],
                                    ['id', 'account_id'], ondelete='CASCADE')
        batch_op.create_index('ix_grants_account_role_membership', ['account_id', 'role_id', 'membership_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_index('ix_grants_account_role_membership')
        batch_op.drop_constraint('fk_grants_membership_account', type_='foreignkey')
        batch_op.create_foreign_key('fk_grants_membership_id_memberships', 'memberships', ['membership_id'], ['id'],
                                    ondelete='CASCADE')
        batch_op.drop_column('account_id')
    op.drop_index('uq_memberships_id_account', table_name='memberships')
