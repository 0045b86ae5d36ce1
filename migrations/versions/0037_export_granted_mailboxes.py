"""The mailboxes an export's asker saw through grants

A Mailboxes export written for someone who sees only the mailboxes granted to them stayed
downloadable for its whole day after one of those grants was taken away (a review). The ids of
the mailboxes their grants showed them when it was written are kept (``export_runs.granted_mailboxes``)
and the file downloads only while they still see each. Exports written before record none and
download as before, for the rest of their day.

Revision ID: 0037_export_granted_mailboxes
Revises: 0036_export_runs
Create Date: 2026-12-07 03:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0037_export_granted_mailboxes'
down_revision = '0036_export_runs'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('export_runs', sa.Column('granted_mailboxes', sa.JSON(), nullable=True))


def downgrade():
    op.drop_column('export_runs', 'granted_mailboxes')
