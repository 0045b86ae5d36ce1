"""Role holders counted from one index: grants by (role_id, membership_id), in place of role_id alone

Revision ID: 0018_role_holders
Revises: 0017_page_speed
Create Date: 2026-12-04 09:30:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0018_role_holders'
down_revision = '0017_page_speed'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('grants') as batch_op:
        batch_op.create_index('ix_grants_role_membership', ['role_id', 'membership_id'], unique=False)
        batch_op.drop_index('ix_grants_role_id')


def downgrade():
    with op.batch_alter_table('grants') as batch_op:
        batch_op.create_index('ix_grants_role_id', ['role_id'], unique=False)
        batch_op.drop_index('ix_grants_role_membership')
