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

# A grant made before another the same, found through the (membership, mailbox) index: one short
# look-up per grant. (``id NOT IN (SELECT min(id) ... GROUP BY ...)`` made PostgreSQL test every
# grant against the whole list of first grants: hours at a few hundred thousand grants.)
EARLIER_COPY = ("SELECT 1 FROM grants AS earlier WHERE earlier.membership_id = grants.membership_id "
                "AND coalesce(earlier.mailbox_id, 0) = coalesce(grants.mailbox_id, 0) "
                "AND coalesce(earlier.role_id, 0) = coalesce(grants.role_id, 0) "
                "AND coalesce(earlier.permission, '') = coalesce(grants.permission, '') "
                "AND earlier.id < grants.id")


def upgrade():
    op.execute(f"DELETE FROM grants WHERE EXISTS ({EARLIER_COPY})")
    op.create_index('uq_grants_once', 'grants',
                    ['membership_id', sa.text('coalesce(role_id, 0)'), sa.text("coalesce(permission, '')"),
                     sa.text('coalesce(mailbox_id, 0)')], unique=True)


def downgrade():
    op.drop_index('uq_grants_once', table_name='grants')
