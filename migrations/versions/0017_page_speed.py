"""Page speed: the mailbox list's filters and sort in one index; trigram indexes for searching
people on PostgreSQL

Revision ID: 0017_page_speed
Revises: 0016_languages
Create Date: 2026-12-04 08:40:00.000000

"""
import logging

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017_page_speed'
down_revision = '0016_languages'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def _trigrams_available(bind) -> bool:
    """Install pg_trgm if it is not there; False when this role may not (the search then scans)."""
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as error:
        log.warning("pg_trgm could not be installed (%s): people are searched without trigram indexes",
                    error.orig)
        return False
    return True


def upgrade():
    with op.batch_alter_table('mailboxes') as batch_op:
        batch_op.drop_index('ix_mailboxes_account_status')
        batch_op.create_index('ix_mailboxes_account_status_kind_created',
                              ['account_id', 'status', 'kind', 'created_at'], unique=False)
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql' and _trigrams_available(bind):
        op.create_index('ix_users_email_trgm', 'users', ['email'], postgresql_using='gin',
                        postgresql_ops={'email': 'gin_trgm_ops'})
        op.create_index('ix_users_name_trgm', 'users', ['name'], postgresql_using='gin',
                        postgresql_ops={'name': 'gin_trgm_ops'})


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_users_name_trgm')
        op.execute('DROP INDEX IF EXISTS ix_users_email_trgm')
    with op.batch_alter_table('mailboxes') as batch_op:
        batch_op.drop_index('ix_mailboxes_account_status_kind_created')
        batch_op.create_index('ix_mailboxes_account_status', ['account_id', 'status'], unique=False)
