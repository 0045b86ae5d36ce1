"""Audit entries carry their action's family, indexed with the account and the time; a person's
security events are found by target

Revision ID: 0021_audit_family
Revises: 0020_member_grants
Create Date: 2026-12-04 16:35:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0021_audit_family'
down_revision = '0020_member_grants'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('audit_events') as batch_op:
        batch_op.add_column(sa.Column('family', sa.String(length=32), nullable=True))
    # What comes before the first dot of the action (the whole action when it has none).
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("UPDATE audit_events SET family = left(split_part(action, '.', 1), 32)")
    else:
        op.execute("UPDATE audit_events SET family = substr(CASE WHEN instr(action, '.') > 0 "
                   "THEN substr(action, 1, instr(action, '.') - 1) ELSE action END, 1, 32)")
    with op.batch_alter_table('audit_events') as batch_op:
        batch_op.alter_column('family', existing_type=sa.String(length=32), nullable=False)
        batch_op.create_index('ix_audit_events_account_family_at', ['account_id', 'family', 'at'], unique=False)
        batch_op.create_index('ix_audit_events_target_at', ['target_type', 'target_id', 'at'], unique=False)


def downgrade():
    with op.batch_alter_table('audit_events') as batch_op:
        batch_op.drop_index('ix_audit_events_target_at')
        batch_op.drop_index('ix_audit_events_account_family_at')
        batch_op.drop_column('family')
