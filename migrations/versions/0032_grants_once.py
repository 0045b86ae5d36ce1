"""A member holds each role or single permission once, over the account or a mailbox

Two requests granting the same at once could each find no such grant and both insert one. The
copies are removed (the oldest of each is kept) and a unique index over the membership, the role,
the permission and the mailbox (empty columns compared as equal) refuses another.

Revision ID: 0032_grants_once
Revises: 0031_mailboxes_status_updated
Create Date: 2026-12-06 04:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0032_grants_once'
down_revision = '0031_mailboxes_status_updated'
branch_labels = None
depends_on = None

SAME = "membership_id, coalesce(role_id, 0), coalesce(permission, ''), coalesce(mailbox_id, 0)"


def upgrade():
    op.execute(f"DELETE FROM grants WHERE id NOT IN (SELECT min(id) FROM grants GROUP BY {SAME})")
    op.create_index('uq_grants_once', 'grants',
                    ['membership_id', sa.text('coalesce(role_id, 0)'), sa.text("coalesce(permission, '')"),
                     sa.text('coalesce(mailbox_id, 0)')], unique=True)


def downgrade():
    op.drop_index('uq_grants_once', table_name='grants')
