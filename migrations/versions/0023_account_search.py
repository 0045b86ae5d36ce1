"""Accounts searched by their name case-folded (accounts.search_text), in any language's capitals

Revision ID: 0023_account_search
Revises: 0022_mailbox_search
Create Date: 2026-12-04 17:30:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0023_account_search'
down_revision = '0022_mailbox_search'
branch_labels = None
depends_on = None

BATCH = 2000


def upgrade():
    with op.batch_alter_table('accounts') as batch_op:
        batch_op.add_column(sa.Column('search_text', sa.Text(), server_default='', nullable=False))
    bind = op.get_bind()
    accounts = sa.table('accounts', sa.column('id', sa.Integer), sa.column('name', sa.String),
                        sa.column('search_text', sa.String))
    last = 0
    while True:
        rows = bind.execute(sa.select(accounts.c.id, accounts.c.name).where(accounts.c.id > last)
                            .order_by(accounts.c.id).limit(BATCH)).all()
        if not rows:
            break
        # As portal.search.folded(name), written here so the migration stays as it is.
        bind.execute(accounts.update().where(accounts.c.id == sa.bindparam('row_id'))
                     .values(search_text=sa.bindparam('text')),
                     [{'row_id': row.id, 'text': (row.name or '').casefold()} for row in rows])
        last = rows[-1].id


def downgrade():
    with op.batch_alter_table('accounts') as batch_op:
        batch_op.drop_column('search_text')
