"""built for 10,000: suspended corporate users, bulk runs, list indexes, domains watched after a check

Revision ID: 0012_lists_bulk
Revises: 0011_tenant_safety
Create Date: 2026-12-04 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_lists_bulk'
down_revision = '0011_tenant_safety'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suspended_at', sa.DateTime(), nullable=True))

    op.create_table('bulk_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('target', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('selection', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('succeeded', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('problems', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_bulk_runs_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_bulk_runs_created_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bulk_runs'))
    )
    with op.batch_alter_table('bulk_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bulk_runs_account_id'), ['account_id'], unique=False)

    with op.batch_alter_table('mailboxes', schema=None) as batch_op:
        batch_op.create_index('ix_mailboxes_account_address', ['account_id', 'address'], unique=False)

    with op.batch_alter_table('domains', schema=None) as batch_op:
        batch_op.add_column(sa.Column('watch_until', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('domains', schema=None) as batch_op:
        batch_op.drop_column('watch_until')
    with op.batch_alter_table('mailboxes', schema=None) as batch_op:
        batch_op.drop_index('ix_mailboxes_account_address')
    with op.batch_alter_table('bulk_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bulk_runs_account_id'))
    op.drop_table('bulk_runs')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('suspended_at')
