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


def _proven_by_a_new_account(make, name: str, owner_email: str = "boss@b.example", account_name: str = "B"):
    """A new account proves and enables ``name``: its owner, the account, its domain."""
    owner_b = make.user(owner_email)
    account_b = make.account(owner_b, account_name)
    theirs = domains.add_domain(owner_b, account_b, name, "local")
    theirs.verified_at = theirs.created_at
    domains.end_other_claims(theirs)
    domains.set_status(theirs, ENABLED, "proven")
    db.session.commit()
    return owner_b, account_b, theirs


def _hand_over(make, owner_a, domain_a):
    domains.remove_domain(owner_a, domain_a)
    db.session.commit()
    return _proven_by_a_new_account(make, NAME)


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


def test_a_profile_confirmed_through_the_former_holders_mail_is_taken_over(make, owner, account, client,
                                                                           run_jobs, smtp_sink):
    """A review: A proved the name and never enabled it; A's owner registered ceo@ there and
    confirmed it with the link A's mail server delivered; A removed the name and B proved it: ceo@
    joined B as its corporate user, and A's owner signed in as them with the password they chose.
    A proof through a link delivered while an account held the name counts as that account holding
    the profile. Someone who proves their address while nobody holds the name keeps their password."""
    import re

    from portal.domains.models import ACTION_REQUIRED
    from portal.auth.models import User
    from tests.conftest import PASSWORD

    domain = enabled_domain(owner, account, NAME)
    domains.set_status(domain, ACTION_REQUIRED, "records missing")  # proven, not enabled
    make.user(f"early@{NAME}", password="early bird's own 77")  # confirmed before anyone held the name
    db.session.commit()
    client.post("/register", data={"email": f"ceo@{NAME}", "name": "C E O", "password": PASSWORD,
                                   "confirm": PASSWORD})
    run_jobs()
    link = next(link for link in smtp_sink.links(smtp_sink.wait_for(f"ceo@{NAME}")[-1]) if "/verify/" in link)
    assert client.post(re.sub(r"^https?://[^/]+", "", link), data={"password": PASSWORD}).status_code == 302
    ceo = db.session.execute(db.select(User).where(User.email == f"ceo@{NAME}")).scalar_one()
    proof = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "user.address_proven")).scalar_one()
    assert (proof.account_id, proof.target_id) == (account.id, str(ceo.id))
    client.post("/logout")

    _owner_b, account_b, _theirs = _hand_over(make, owner, domain)
    db.session.expire_all()
    ceo = db.session.get(User, ceo.id)
    assert ceo.corporate_account_id == account_b.id and ceo.password_hash is None
    assert client.post("/login", data={"email": f"ceo@{NAME}", "password": PASSWORD}).status_code == 422
    early = db.session.execute(db.select(User).where(User.email == f"early@{NAME}")).scalar_one()
    assert early.corporate_account_id == account_b.id and early.password_hash is not None


def test_a_profile_given_a_deleted_profiles_id_is_not_taken_over_for_what_was_done_to_it(make, owner, account):
    """A review: SQLite gives a deleted profile's id again; the entries another account wrote about
    the deleted one counted against the next person made, who lost their password and their own
    account when their employer first proved its domain. Only entries since a profile was made count."""
    from portal.accounts.models import Membership
    from portal.auth.models import User
    from portal.mailboxes import services as mailboxes
    from portal.users.services import remove_corporate_user

    domain = enabled_domain(owner, account, "m.example")
    ghost, _link = create_corporate_user(owner, account, first_name="Z", last_name="Z", email="z@m.example",
                                         personal_mailbox=False)
    db.session.commit()
    ghost_id = ghost.id
    remove_corporate_user(owner, account, membership_of(ghost, account), "keep")
    mailboxes.create_mailbox(owner, account, domain, "z")  # the vacant profile at z@ goes
    db.session.commit()
    assert db.session.get(User, ghost_id) is None
    victim = make.user("vic@x.example")
    own = make.account(victim, "Victim's own")
    if db.engine.dialect.name == "sqlite":
        assert victim.id == ghost_id  # the case in point
    _boss, employer, _theirs = _proven_by_a_new_account(make, "x.example", "boss@x-corp.example", "Employer")
    db.session.expire_all()
    victim = db.session.get(User, victim.id)
    assert victim.password_hash is not None and victim.corporate_account_id == employer.id
    assert db.session.execute(db.select(Membership).where(Membership.user_id == victim.id,
                                                          Membership.account_id == own.id)).first() is not None
