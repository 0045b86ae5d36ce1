"""How many people an import made who need a link from an administrator

An import that created people without a recovery address or a personal mailbox said so only in
its result workbook: its page showed "14 created" and the admin learnt later that some of them
could not sign in (a walkthrough). The run now counts them (``import_runs.need_link``) and its
page says so, with the way to give them a link. Runs finished before count none.

Revision ID: 0039_import_need_link
Revises: 0038_audit_search
Create Date: 2026-12-07 04:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0039_import_need_link'
down_revision = '0038_audit_search'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('import_runs', sa.Column('need_link', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    op.drop_column('import_runs', 'need_link')
