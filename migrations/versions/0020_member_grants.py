"""A member's grants read by (membership_id, mailbox_id), in place of membership_id alone

Revision ID: 0020_member_grants
Revises: 0019_people_search
Create Date: 2026-12-04 16:40:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0020_member_grants'
down_revision = '0019_people_search'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('grants') as batch_op:
        batch_op.create_index('ix_grants_membership_mailbox', ['membership_id', 'mailbox_id'], unique=False)
        batch_op.drop_index('ix_grants_membership_id')


def downgrade():
    with op.batch_alter_table('grants') as batch_op:
        batch_op.create_index('ix_grants_membership_id', ['membership_id'], unique=False)
        batch_op.drop_index('ix_grants_membership_mailbox')
