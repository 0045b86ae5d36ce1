"""what the worker discovered about each backend connection

Revision ID: 0010_backend_discovery
Revises: 0009_backend_admin
Create Date: 2026-11-22 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010_backend_discovery'
down_revision = '0009_backend_admin'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('backend_states',
    sa.Column('connection', sa.String(length=64), nullable=False),
    sa.Column('capabilities', sa.JSON(), nullable=False),
    sa.Column('notes', sa.JSON(), nullable=False),
    sa.Column('checked_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('connection', name=op.f('pk_backend_states'))
    )


def downgrade():
    op.drop_table('backend_states')
