"""Languages: the one each person chose, and the one an account writes in to people without a
profile (invitations)

Revision ID: 0016_languages
Revises: 0015_scim
Create Date: 2026-12-04 08:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016_languages'
down_revision = '0015_scim'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('locale', sa.String(length=8), nullable=True))
    with op.batch_alter_table('accounts') as batch:
        batch.add_column(sa.Column('default_locale', sa.String(length=8), nullable=True))


def downgrade():
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('default_locale')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('locale')
