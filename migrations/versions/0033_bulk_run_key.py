"""Bulk runs keep the key of the confirmation that started them, once per person

The same confirmation posted twice at the same moment could start two runs: each request looked
for a run with its key (kept in the run's parameters) and found none. The key now has a column,
unique per person; earlier runs keep theirs in their parameters and none here.

Revision ID: 0033_bulk_run_key
Revises: 0032_grants_once
Create Date: 2026-12-06 04:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0033_bulk_run_key'
down_revision = '0032_grants_once'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('bulk_runs', sa.Column('run_key', sa.String(length=32), nullable=True))
    op.create_index('uq_bulk_runs_creator_key', 'bulk_runs', ['created_by_id', 'run_key'], unique=True)


def downgrade():
    op.drop_index('uq_bulk_runs_creator_key', table_name='bulk_runs')
    with op.batch_alter_table('bulk_runs') as batch:
        batch.drop_column('run_key')
