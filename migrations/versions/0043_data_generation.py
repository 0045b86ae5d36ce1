"""The data generation: one number every writing transaction raises as it commits

Rendered pages are kept for a few seconds under the number read when they were rendered
(portal.web.pagecache); a write anywhere makes every kept page stale. SQLite raises the row of
data_generation in the transaction that wrote; PostgreSQL advances the sequence
data_generation_seq just after the commit (a row would have writers wait for each other's commit).

Revision ID: 0043_data_generation
Revises: 0042_token_search
Create Date: 2026-12-07 23:40:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0043_data_generation'
down_revision = '0042_token_search'
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table(
        'data_generation',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('n', sa.BigInteger(), server_default='0', nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_data_generation')),
    )
    op.bulk_insert(table, [{'id': 1, 'n': 0}])
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE SEQUENCE data_generation_seq')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP SEQUENCE data_generation_seq')
    op.drop_table('data_generation')
