"""Mailboxes record who was last given their generated password

The password of a mailbox at someone's login address opens their profile too: a password reset
link for them arrives there. It is revealed only to someone who holds every right its holder
holds, but the holder may be given more rights later. ``password_given_to_id`` names who was last
given it (not the holder); a reset link for the holder is not mailed there while that person does
not hold every right the holder holds.

Filled from the audit log: the last reveal of each mailbox's password.

Revision ID: 0028_mailbox_password_given_to
Revises: 0027_address_proven
Create Date: 2026-12-05 18:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0028_mailbox_password_given_to'
down_revision = '0027_address_proven'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('mailboxes', sa.Column('password_given_to_id', sa.Integer(), nullable=True))
    op.execute(sa.text(
        "UPDATE mailboxes SET password_given_to_id = ("
        " SELECT audit_events.actor_id FROM audit_events"
        " WHERE audit_events.action = 'mailbox.reveal_password' AND audit_events.target_type = 'mailbox'"
        " AND audit_events.target_id = CAST(mailboxes.id AS VARCHAR(64))"
        " ORDER BY audit_events.at DESC, audit_events.id DESC LIMIT 1)"
        " WHERE EXISTS (SELECT 1 FROM audit_events WHERE audit_events.action = 'mailbox.reveal_password'"
        " AND audit_events.target_type = 'mailbox' AND audit_events.target_id = CAST(mailboxes.id AS VARCHAR(64)))"))
    # The holder revealing their own mailbox's password gave it to nobody else.
    op.execute(sa.text(
        "UPDATE mailboxes SET password_given_to_id = NULL WHERE password_given_to_id IN"
        " (SELECT users.id FROM users WHERE users.email = mailboxes.address)"))


def downgrade():
    op.drop_column('mailboxes', 'password_given_to_id')
