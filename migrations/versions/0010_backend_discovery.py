"""what the worker discovered about each backend connection, and what a drift comparison set apart

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
    op.create_table('drift_set_apart',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=254), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['drift_reports.id'], name=op.f('fk_drift_set_apart_report_id_drift_reports'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drift_set_apart'))
    )
    with op.batch_alter_table('drift_set_apart', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drift_set_apart_report_id'), ['report_id'], unique=False)


def downgrade():
    with op.batch_alter_table('drift_set_apart', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drift_set_apart_report_id'))

    op.drop_table('drift_set_apart')
    op.drop_table('backend_states')
