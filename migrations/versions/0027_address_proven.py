"""Profiles record when their address was proven by mail

A profile may sign in once its address is confirmed (``email_verified_at``), or once a
corporate user set a first password through an onboarding link. That link may have been shown
to the administrator who created them, or mailed to a recovery address: it proves nothing about
who reads the login address. ``address_proven_at`` is set only when a link mailed to the
address itself was opened (confirmation, password reset, an invitation) or a sign-on provider
vouched for it. Answering an invitation from the profile's page needs it.

Profiles confirmed before this revision count as proven from their confirmation, except those
the audit log shows onboarded through a link and never since proven by a mailed link (a
confirmation, a reset, an invitation answered) or single sign-on.

Revision ID: 0027_address_proven
Revises: 0026_membership_email
Create Date: 2026-12-05 18:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0027_address_proven'
down_revision = '0026_membership_email'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('users', sa.Column('address_proven_at', sa.DateTime(), nullable=True))
    op.execute(sa.text(
        "UPDATE users SET address_proven_at = email_verified_at WHERE email_verified_at IS NOT NULL AND NOT ("
        " EXISTS (SELECT 1 FROM audit_events WHERE audit_events.action = 'user.onboarded'"
        "  AND audit_events.target_type = 'user' AND audit_events.target_id = CAST(users.id AS VARCHAR(64)))"
        " AND NOT EXISTS (SELECT 1 FROM audit_events WHERE audit_events.actor_id = users.id AND audit_events.action"
        "  IN ('user.verify_email', 'user.reset_password', 'invitation.accept', 'user.link_sso')))"))


def downgrade():
    op.drop_column('users', 'address_proven_at')
