"""An account with something of everything, and tokens on it and on another account."""

from __future__ import annotations

import pytest

from portal.domains.models import ENABLED
from portal.domains.services import add_domain
from portal.extensions import db
from portal.invitations.services import start as start_invitation
from portal.mailboxes.services import create_mailbox
from portal.roles.services import create_role
from portal.tokens import services as tokens

WRITE_SCOPES = tuple(scope for scope in tokens.SCOPES if scope != "scim:read")
READ_SCOPES = tuple(scope for scope in tokens.SCOPES if scope.endswith(":read"))


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
def world(owner, account, make, run_jobs):
    domain = add_domain(owner, account, "example.org", "local")
    domain.status, domain.verified_at = ENABLED, domain.created_at
    mailbox = create_mailbox(owner, account, domain, "team")
    membership = make.member(account, make.user("member@example.org"))
    role = create_role(owner, account, name="Custom", scope="account", description="", permissions={"audit.view"})
    invitation = start_invitation(owner, account, "guest@elsewhere.example")
    db.session.commit()
    run_jobs()
    from portal.roles.models import Grant

    grant = db.session.execute(db.select(Grant).where(Grant.membership_id == membership.id)).scalars().first()
    ids = {"account_id": account.id, "domain_id": domain.id, "mailbox_id": mailbox.id, "membership_id": membership.id,
           "role_id": role.id, "invitation_id": invitation.id, "grant_id": getattr(grant, "id", 1)}
    return {"owner": owner, "account": account, "domain": domain, "mailbox": mailbox, "ids": ids}


@pytest.fixture
def token(world):
    """A token with every scope of the account's owner."""
    _, raw = tokens.create(world["owner"], world["account"], name="automation", scopes=set(WRITE_SCOPES),
                           expires_at=None)
    db.session.commit()
    return raw


@pytest.fixture
def other_token(make):
    other_owner = make.user("other-owner@example.org")
    other = make.account(other_owner, "Other")
    _, raw = tokens.create(other_owner, other, name="theirs", scopes=set(WRITE_SCOPES), expires_at=None)
    db.session.commit()
    return raw
