"""Bulk runs count the rows already as asked apart from those changed

A bulk "take away the role" on someone who did not hold it, or "enable" on a mailbox already
enabled, changed nothing but was counted as succeeded. Runs now count those rows as unchanged;
earlier runs count none.

Revision ID: 0034_bulk_run_unchanged
Revises: 0033_bulk_run_key
Create Date: 2026-12-06 11:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0034_bulk_run_unchanged'
down_revision = '0033_bulk_run_key'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('bulk_runs', sa.Column('unchanged', sa.Integer(), nullable=False, server_default='0'))


def downgrade():
    with op.batch_alter_table('bulk_runs') as batch:
        batch.drop_column('unchanged')
