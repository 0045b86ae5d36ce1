"""SCIM provisioning: what identity providers keep about people and groups; the account's choice
of what happens to the mailboxes of someone its identity provider removes

Revision ID: 0015_scim
Revises: 0014_two_factor
Create Date: 2026-12-04 16:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015_scim'
down_revision = '0014_two_factor'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('scim_profiles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=True),
    sa.Column('given_name', sa.String(length=100), nullable=True),
    sa.Column('family_name', sa.String(length=100), nullable=True),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('employee_number', sa.String(length=100), nullable=True),
    sa.Column('department', sa.String(length=200), nullable=True),
    sa.Column('manager_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_scim_profiles_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['manager_id'], ['users.id'], name=op.f('fk_scim_profiles_manager_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_scim_profiles_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scim_profiles')),
    sa.UniqueConstraint('account_id', 'user_id', name='uq_scim_profiles_account_user')
    )
    with op.batch_alter_table('scim_profiles', schema=None) as batch_op:
        batch_op.create_index('ix_scim_profiles_account_external_id', ['account_id', 'external_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_scim_profiles_user_id'), ['user_id'], unique=False)

    op.create_table('scim_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('role_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_scim_groups_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], name=op.f('fk_scim_groups_role_id_roles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scim_groups')),
    sa.UniqueConstraint('account_id', 'role_id', name='uq_scim_groups_account_role')
    )
    with op.batch_alter_table('scim_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scim_groups_role_id'), ['role_id'], unique=False)

    # Someone the identity provider removes loses access to their mail, which is kept: the safe default.
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deprovisioned_mailboxes', sa.String(length=8), nullable=False,
                                      server_default='disable'))


def downgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('deprovisioned_mailboxes')
    with op.batch_alter_table('scim_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scim_groups_role_id'))
    op.drop_table('scim_groups')
    with op.batch_alter_table('scim_profiles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scim_profiles_user_id'))
        batch_op.drop_index('ix_scim_profiles_account_external_id')
    op.drop_table('scim_profiles')
