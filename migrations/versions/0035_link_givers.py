"""Who an onboarding link was given to, and who chose a recovery address

An onboarding link shown to whoever created the person, or mailed to the recovery address they
chose, kept working after the person was given more rights than its holder has (a review: someone
who may only create users became Administrator that way). Links now record who they were given
to (``user_tokens.given_by_id``) and people who set the recovery address
(``users.recovery_set_by_id``, ``recovery_set_at``); neither is a foreign key, so a giver's
profile deleted since counts as one without the rights, and a profile made after the link was
given (SQLite may give a freed id again) is not its giver. The same for whoever a mailbox's
password was given to (``mailboxes.password_given_at``). Earlier links and addresses record
nobody. Recovery addresses kept with a Unicode domain are written with its ASCII form.

Revision ID: 0035_link_givers
Revises: 0034_bulk_run_unchanged
Create Date: 2026-12-06 20:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0035_link_givers'
down_revision = '0034_bulk_run_unchanged'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('user_tokens', sa.Column('given_by_id', sa.Integer(), nullable=True))
    op.add_column('users', sa.Column('recovery_set_by_id', sa.Integer(), nullable=True))
    op.add_column('users', sa.Column('recovery_set_at', sa.DateTime(), nullable=True))
    op.add_column('mailboxes', sa.Column('password_given_at', sa.DateTime(), nullable=True))
    # Recovery addresses the settings kept with a Unicode domain are kept as at creation (ASCII),
    # so that the mailboxes receiving them are found.
    bind = op.get_bind()
    users = sa.table('users', sa.column('id', sa.Integer), sa.column('recovery_email', sa.String))
    for row_id, address in bind.execute(sa.select(users.c.id, users.c.recovery_email)
                                        .where(users.c.recovery_email.is_not(None))).all():
        local, _at, domain = address.rpartition('@')
        if domain.isascii():
            continue
        try:
            ascii_domain = domain.encode('idna').decode('ascii')
        except UnicodeError:
            continue
        bind.execute(users.update().where(users.c.id == row_id)
                     .values(recovery_email=f"{local}@{ascii_domain}".lower()))


def downgrade():
    op.drop_column('mailboxes', 'password_given_at')
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later): a batch would copy users and drop
    # the original, and SQLite's DROP TABLE deletes every membership and grant through their cascades.
    op.drop_column('users', 'recovery_set_at')
    op.drop_column('users', 'recovery_set_by_id')
    op.drop_column('user_tokens', 'given_by_id')
