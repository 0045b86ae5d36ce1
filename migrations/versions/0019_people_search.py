"""People searched in one case-folded column (users.search_text) instead of two through lower()

Revision ID: 0019_people_search
Revises: 0018_role_holders
Create Date: 2026-12-04 12:40:00.000000

The column holds each person's address and name, case-folded by Python (so "Élodie" is found
by "élodie" on SQLite too, whose lower() folds only ASCII). On PostgreSQL its trigram index
replaces the two of migration 0017 when pg_trgm is there.
"""
import logging

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0019_people_search'
down_revision = '0018_role_holders'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
BATCH = 2000


def _search_text(email, name):
    # The same as portal.auth.models.search_text, written here so the migration stays as it is.
    return f"{email or ''}\n{name or ''}".casefold()


def _trigrams_installed(bind) -> bool:
    return bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).first() is not None


def upgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('search_text', sa.Text(), server_default='', nullable=False))
    bind = op.get_bind()
    users = sa.table('users', sa.column('id', sa.Integer), sa.column('email', sa.String),
                     sa.column('name', sa.String), sa.column('search_text', sa.String))
    last = 0
    while True:
        rows = bind.execute(sa.select(users.c.id, users.c.email, users.c.name).where(users.c.id > last)
                            .order_by(users.c.id).limit(BATCH)).all()
        if not rows:
            break
        bind.execute(users.update().where(users.c.id == sa.bindparam('row_id'))
                     .values(search_text=sa.bindparam('text')),
                     [{'row_id': row.id, 'text': _search_text(row.email, row.name)} for row in rows])
        last = rows[-1].id
    if bind.dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_users_name_trgm')
        op.execute('DROP INDEX IF EXISTS ix_users_email_trgm')
        if _trigrams_installed(bind):
            op.create_index('ix_users_search_trgm', 'users', ['search_text'], postgresql_using='gin',
                            postgresql_ops={'search_text': 'gin_trgm_ops'})
        else:
            log.warning("pg_trgm is not installed: people are searched without a trigram index")


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_users_search_trgm')
        if _trigrams_installed(bind):
            op.create_index('ix_users_email_trgm', 'users', ['email'], postgresql_using='gin',
                            postgresql_ops={'email': 'gin_trgm_ops'})
            op.create_index('ix_users_name_trgm', 'users', ['name'], postgresql_using='gin',
                            postgresql_ops={'name': 'gin_trgm_ops'})
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('search_text')
