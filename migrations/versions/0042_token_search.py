"""API tokens searched by their name and prefix case-folded (api_tokens.search_text)

The tokens page searched lower(name): SQLite's lower() folds ASCII capitals only, so a token
named "Équipe" was not found by "équipe".

Revision ID: 0042_token_search
Revises: 0041_users_corporate_index
Create Date: 2026-12-07 21:30:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0042_token_search'
down_revision = '0041_users_corporate_index'
branch_labels = None
depends_on = None

BATCH = 2000


def upgrade():
    with op.batch_alter_table('api_tokens') as batch_op:
        batch_op.add_column(sa.Column('search_text', sa.Text(), server_default='', nullable=False))
    bind = op.get_bind()
    tokens = sa.table('api_tokens', sa.column('id', sa.Integer), sa.column('name', sa.String),
                      sa.column('prefix', sa.String), sa.column('search_text', sa.String))
    last = 0
    while True:
        rows = bind.execute(sa.select(tokens.c.id, tokens.c.name, tokens.c.prefix).where(tokens.c.id > last)
                            .order_by(tokens.c.id).limit(BATCH)).all()
        if not rows:
            break
        # As portal.search.folded(name, prefix), written here so the migration stays as it is.
        bind.execute(tokens.update().where(tokens.c.id == sa.bindparam('row_id'))
                     .values(search_text=sa.bindparam('text')),
                     [{'row_id': row.id, 'text': f"{row.name or ''}\n{row.prefix or ''}".casefold()} for row in rows])
        last = rows[-1].id


def downgrade():
    with op.batch_alter_table('api_tokens') as batch_op:
        batch_op.drop_column('search_text')
