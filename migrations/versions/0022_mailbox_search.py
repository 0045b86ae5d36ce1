"""Mailboxes searched in one case-folded column (mailboxes.search_text) instead of two through lower()

Revision ID: 0022_mailbox_search
Revises: 0021_audit_family
Create Date: 2026-12-04 16:50:00.000000

The column holds each mailbox's address and display name, case-folded by Python (so "Élodie" is
found by "élodie" on SQLite too, whose lower() folds only ASCII); on PostgreSQL it gets a trigram
index when pg_trgm is there (migration 0017 installs it where the role may).
"""
import logging

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0022_mailbox_search'
down_revision = '0021_audit_family'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
BATCH = 2000


def _search_text(address, display_name):
    # The same as portal.mailboxes.models.mailbox_search_text, written here so the migration stays as it is.
    return f"{address or ''}\n{display_name or ''}".casefold()


def upgrade():
    with op.batch_alter_table('mailboxes') as batch_op:
        batch_op.add_column(sa.Column('search_text', sa.Text(), server_default='', nullable=False))
    bind = op.get_bind()
    mailboxes = sa.table('mailboxes', sa.column('id', sa.Integer), sa.column('address', sa.String),
                         sa.column('display_name', sa.String), sa.column('search_text', sa.String))
    last = 0
    while True:
        rows = bind.execute(sa.select(mailboxes.c.id, mailboxes.c.address, mailboxes.c.display_name)
                            .where(mailboxes.c.id > last).order_by(mailboxes.c.id).limit(BATCH)).all()
        if not rows:
            break
        bind.execute(mailboxes.update().where(mailboxes.c.id == sa.bindparam('row_id'))
                     .values(search_text=sa.bindparam('text')),
                     [{'row_id': row.id, 'text': _search_text(row.address, row.display_name)} for row in rows])
        last = rows[-1].id
    if bind.dialect.name == 'postgresql':
        if bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).first() is not None:
            op.create_index('ix_mailboxes_search_trgm', 'mailboxes', ['search_text'], postgresql_using='gin',
                            postgresql_ops={'search_text': 'gin_trgm_ops'})
        else:
            log.warning("pg_trgm is not installed: mailboxes are searched without a trigram index")


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_mailboxes_search_trgm')
    with op.batch_alter_table('mailboxes') as batch_op:
        batch_op.drop_column('search_text')
