"""tenant safety: server-side sessions, owned mail names, device-bound log-in limits

Revision ID: 0011_tenant_safety
Revises: 0010_backend_discovery
Create Date: 2026-12-04 08:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_tenant_safety'
down_revision = '0010_backend_discovery'
branch_labels = None
depends_on = None

PROVEN = sa.text("verified_at IS NOT NULL")


def upgrade():
    op.create_table('user_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=300), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('end_reason', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_sessions_token_hash'))
    )
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_user_sessions_user_ended', ['user_id', 'ended_at'], unique=False)

    # Sessions now live in user_sessions; every cookie signed before this release stops working.
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_nonce')

    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device', sa.String(length=64), nullable=False, server_default=''))
        batch_op.create_index('ix_login_failures_device_at', ['device', 'at'], unique=False)

    # An address is unique within one account's copy of a domain.
    with op.batch_alter_table('mailboxes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_lost', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.drop_constraint('uq_mailboxes_address', type_='unique')
        batch_op.create_unique_constraint('uq_mailboxes_domain_address', ['domain_id', 'address'])

    # At most one proven copy of a domain name: should two exist, the first proven keeps it.
    op.execute(sa.text(
        "UPDATE domains SET verified_at = NULL, status = 'taken' WHERE verified_at IS NOT NULL AND EXISTS ("
        "SELECT 1 FROM domains AS earlier WHERE earlier.name = domains.name AND earlier.verified_at IS NOT NULL "
        "AND (earlier.verified_at < domains.verified_at "
        "OR (earlier.verified_at = domains.verified_at AND earlier.id < domains.id)))"))
    with op.batch_alter_table('domains', schema=None) as batch_op:
        batch_op.create_index('uq_domains_proven_name', ['name'], unique=True,
                              sqlite_where=PROVEN, postgresql_where=PROVEN)

    # Members join by invitation only: the permission to add people directly is gone.
    op.execute(sa.text("DELETE FROM role_permissions WHERE permission = 'members.add'"))
    op.execute(sa.text("DELETE FROM grants WHERE permission = 'members.add'"))
    op.execute(sa.text("DELETE FROM invitation_grants WHERE permission = 'members.add'"))


def downgrade():
    with op.batch_alter_table('domains', schema=None) as batch_op:
        batch_op.drop_index('uq_domains_proven_name', sqlite_where=PROVEN, postgresql_where=PROVEN)
    with op.batch_alter_table('mailboxes', schema=None) as batch_op:
        batch_op.drop_constraint('uq_mailboxes_domain_address', type_='unique')
        batch_op.create_unique_constraint('uq_mailboxes_address', ['address'])
        batch_op.drop_column('password_lost')
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_login_failures_device_at')
        batch_op.drop_column('device')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_nonce', sa.String(length=32), nullable=False, server_default=''))
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_user_sessions_user_ended')
    op.drop_table('user_sessions')
