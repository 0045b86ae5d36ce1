"""A domain handed over: the profiles another account made or held there leave every other account,
with the rights they held (a review: the former holder made its user an Administrator, gave the
name up, and the new holder's person at that address, resetting the password through the new
holder's mail, signed in as the former holder's Administrator; a right granted there after the
handover also stopped the new holder giving its own person a way in)."""

from __future__ import annotations

from portal.audit.models import AuditEvent
from portal.domains import services as domains
from portal.domains.models import ENABLED
from portal.extensions import db
from portal.roles.services import account_permissions, grant_role, membership_of, system_role
from portal.users import services as users
from portal.users.services import create_corporate_user
from tests.mailboxes.conftest import enabled_domain

NAME = "handed-over.example"


def _hand_over(make, owner_a, domain_a):
    domains.remove_domain(owner_a, domain_a)
    db.session.commit()
    owner_b = make.user("boss@b.example")
    account_b = make.account(owner_b, "B")
    theirs = domains.add_domain(owner_b, account_b, NAME, "local")
    theirs.verified_at = theirs.created_at
    domains.end_other_claims(theirs)
    domains.set_status(theirs, ENABLED, "proven")
    db.session.commit()
    return owner_b, account_b, theirs


def test_a_profile_taken_over_leaves_the_accounts_its_former_reader_joined(make, owner, account, client):
    domain = enabled_domain(owner, account, NAME)
    x, _link = create_corporate_user(owner, account, first_name="X", last_name="Ray", email=f"x@{NAME}",
                                     personal_mailbox=False)
    grant_role(owner, account, membership_of(x, account), system_role("administrator"))
    third_owner = make.user("carol@c.example")
    third = make.account(third_owner, "C")
    make.member(third, x, roles=("administrator",))  # joined C while A's people read x@
    keeper = make.user("kim@elsewhere.example")
    make.member(account, keeper, roles=("administrator",))
    db.session.commit()
    assert "users.manage" in account_permissions(x, account) and "users.manage" in account_permissions(x, third)

    owner_b, account_b, theirs = _hand_over(make, owner, domain)
    db.session.expire_all()
    x = db.session.get(type(x), x.id)
    assert x.corporate_account_id == account_b.id and membership_of(x, account_b) is not None
    assert membership_of(x, account) is None and membership_of(x, third) is None
    assert account_permissions(x, account) == frozenset() and account_permissions(x, third) == frozenset()
    assert membership_of(keeper, account) is not None  # people elsewhere stay
    entries = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "member.remove",
                                                             AuditEvent.target_id == str(x.id))).scalars().all()
    assert sorted(entry.account_id for entry in entries) == sorted([account.id, third.id])
    assert all(entry.actor_label == "system" and entry.details["domain"] == NAME for entry in entries)
    # Nothing of A's stands in the way of B giving its person a link.
    assert users.send_onboarding(owner_b, account_b, x).startswith("http")
    # B's domain enabled again later (after a failed check) takes nobody over, nor away, twice.
    domains.set_status(theirs, "action_required", "a check failed")
    domains.set_status(theirs, ENABLED, "proven")
    db.session.commit()
    assert membership_of(x, account_b) is not None
    assert db.session.execute(db.select(db.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "user.credentials_retired", AuditEvent.target_id == str(x.id))).scalar() == 1
