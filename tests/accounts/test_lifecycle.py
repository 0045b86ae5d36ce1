import pytest

from portal.accounts import services
from portal.accounts.models import Account, Membership
from portal.audit.models import AuditEvent
from portal.auth.models import User
from portal.backends import service as backends
from portal.domains import services as domains
from portal.extensions import db
from portal.invitations import services as invitations
from portal.invitations.models import REVOKED, Invitation
from portal.mailboxes import services as mailboxes
from portal.users import services as users
from tests.mailboxes.conftest import enabled_domain


def test_delete_account__needs_the_name_typed(owner, account):
    with pytest.raises(services.DeletionRefused, match="Type the account's name"):
        services.delete_account(owner, account, "acme", delete_mailboxes=False)


def test_delete_account__members_lose_access_corporate_users_stay_corporate(owner, account, make, run_jobs,
                                                                           smtp_sink):
    enabled_domain(owner, account)
    jane, _ = users.create_corporate_user(owner, account, first_name="Jane", last_name="Doe",
                                          email="jane@example.org", personal_mailbox=True)
    guest = make.member(account, make.user("guest@elsewhere.example"), roles=("administrator",)).user
    db.session.commit()
    run_jobs()
    outcome = services.delete_account(owner, account, "Acme", delete_mailboxes=False)
    db.session.commit()
    assert outcome == {"jane@example.org": "disabled"}
    assert db.session.get(Account, account.id) is None
    assert db.session.execute(db.select(Membership)).first() is None
    db.session.refresh(jane)
    assert jane.is_corporate and jane.corporate_account_id is None
    with pytest.raises(services.DeletionRefused, match="cannot create accounts"):
        services.create_account(jane, "Jane's own")
    run_jobs()
    remote = backends.adapter("local").get_mailbox("jane@example.org")
    assert remote is not None and remote.active is False
    assert any("was deleted" in m["Subject"] for m in smtp_sink.to("guest@elsewhere.example"))
    event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "account.delete")).scalar_one()
    assert event.actor_id == owner.id and event.target_label == "Acme" and event.details["domains"] == ["example.org"]
    other = make.account(make.user("next@example.net"), "Next")
    assert domains.add_domain(guest, other, "example.org", "local").status == "pending"


def test_delete_account__deletes_mailboxes_where_asked_and_possible(owner, account, run_jobs):
    domain = enabled_domain(owner, account)
    mailboxes.create_mailbox(owner, account, domain, "team")
    db.session.commit()
    run_jobs()
    assert services.delete_account(owner, account, "Acme", delete_mailboxes=True) == {"team@example.org": "deleted"}
    db.session.commit()
    run_jobs()
    assert backends.adapter("local").get_mailbox("team@example.org") is None


def test_delete_account_page__only_owners_and_confirmed(owner, account, make, client, auth):
    make.member(account, make.user("admin@example.net"), roles=("administrator",))
    auth.login("admin@example.net")
    assert client.post(f"/accounts/{account.id}/delete", data={"confirm": "Acme"}).status_code == 403
    client.post("/logout")
    auth.login("owner@example.org")
    response = client.post(f"/accounts/{account.id}/delete", data={"confirm": "Wrong"})
    assert response.status_code == 422 and "exactly to confirm" in response.get_data(as_text=True)
    assert client.post(f"/accounts/{account.id}/delete", data={"confirm": "Acme"}).status_code == 302
    assert db.session.get(Account, account.id) is None


def test_delete_profile__corporate_users_cannot(owner, account, client, auth):
    enabled_domain(owner, account)
    jane, _ = users.create_corporate_user(owner, account, first_name="Jane", last_name="Doe",
                                          email="jane@example.org", personal_mailbox=False)
    with pytest.raises(services.DeletionRefused, match="managed by your organisation"):
        services.delete_profile(jane, "jane@example.org")


def test_delete_profile__sole_owner_must_hand_over_first(owner, account):
    with pytest.raises(services.DeletionRefused, match="only owner of Acme"):
        services.delete_profile(owner, "owner@example.org")


def test_delete_profile__withdraws_invitations_and_keeps_audit_tombstones(owner, account, make, client, auth):
    bob = make.user("bob@example.net")
    make.member(account, bob, roles=("administrator",))
    invitation = invitations.start(owner, account, "bob-alias@example.net")
    pending = invitations.start(owner, make.account(make.user("x@example.net"), "Other"), "bob@example.net")
    invitations.send_invitation(db.session.get(User, pending.invited_by_id), pending)
    db.session.commit()
    auth.login("bob@example.net")
    response = client.post("/profile/delete", data={"confirm": "bob@example.net"})
    assert response.status_code == 302
    assert db.session.execute(db.select(User).where(User.email == "bob@example.net")).first() is None
    assert db.session.get(Invitation, pending.id).status == REVOKED
    assert db.session.get(Invitation, invitation.id).status == "draft"  # someone else's address
    event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "user.login")).scalars().first()
    assert event.actor_id is None and event.actor_label == "bob@example.net"


def _grown_account(make, owner, name: str, size: int):
    """An account with ``size`` members (half corporate), mailboxes with grants, invitations, audit
    entries and domains, as a large account has them."""
    from portal.domains.models import ENABLED
    from portal.roles.services import create_role
    from tests.seeding import seed

    account = make.account(owner, name)
    domain = domains.add_domain(owner, account, f"{name.lower()}.example", "local")
    domain.status, domain.verified_at = ENABLED, domain.created_at
    role = create_role(owner, account, name="Staff", scope="account", description="", permissions={"members.view"})
    db.session.commit()
    seed(account, domain, role, size, 0)
    return account


def test_delete_account__as_many_statements_for_many_members_and_mailboxes_as_for_few(make, owner):
    """10,000 members and mailboxes were deleted one by one, with an e-mail rendered for each, in the
    request: the account now goes in a fixed number of statements, the database removing the rest."""
    from portal.jobs.models import Job
    from portal.mailboxes.models import Mailbox
    from portal.roles.models import Grant, Role
    from tests.web.test_list_statements import counted

    counts = []
    # The first deletion also reads what the process keeps of its backends: not counted.
    for name, size in (("Warm", 1), ("Small", 3), ("Large", 60)):
        account = _grown_account(make, owner, name, size)
        account_id = account.id
        people = [user_id for (user_id,) in db.session.execute(
            db.select(Membership.user_id).where(Membership.account_id == account_id))]
        with counted() as statements:
            outcome = services.delete_account(owner, account, name, delete_mailboxes=False)
            db.session.commit()
        counts.append(len(statements))
        assert len(outcome) == size and set(outcome.values()) == {"disabled"}
        for model in (Membership, Mailbox, Role, Invitation):
            assert db.session.execute(db.select(model.id).where(model.account_id == account_id)).first() is None
        assert db.session.execute(db.select(Grant.id).join(Membership, isouter=True)
                                  .where(Membership.id.is_(None))).first() is None
        # The people stay; the corporate ones stay corporate, made by an organisation that is gone.
        kept = db.session.execute(db.select(User).where(User.id.in_(people))).scalars().all()
        assert len(kept) == size + 1 and all(u.corporate_account_id is None for u in kept)
        assert sum(u.is_corporate for u in kept) == (size + 1) // 2
        decommissions = db.session.execute(db.select(Job.payload).where(
            Job.kind == "mailbox.decommission", Job.payload.is_not(None))).scalars().all()
        assert {p["address"] for p in decommissions} >= set(outcome)
        event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "account.delete",
                                                               AuditEvent.target_label == name)).scalar_one()
        assert event.details["mailboxes"] == {"disabled": size} and event.details["members"] == size + 1
    assert counts[1] == counts[2], counts


def test_delete_account__each_member_is_told_once_in_their_language_a_batch_at_a_time(
        owner, account, make, run_jobs, smtp_sink, monkeypatch):
    monkeypatch.setattr(services, "NOTICE_BATCH", 2)
    enabled_domain(owner, account)
    account.default_locale = "fr"
    # Made by the account, with no language of their own: the account's, read before it goes.
    jane, _ = users.create_corporate_user(owner, account, first_name="Jane", last_name="Doe",
                                          email="jane@example.org", personal_mailbox=False)
    guests = [make.member(account, make.user(f"guest{n}@elsewhere.example")).user for n in range(3)]
    db.session.commit()
    run_jobs()
    services.delete_account(owner, account, "Acme", delete_mailboxes=False)
    db.session.commit()
    assert run_jobs() >= 3 + 5  # three notice jobs (2 + 2 + 1 members), then a mail each
    for person in [owner, jane, *guests]:
        told = [m for m in smtp_sink.to(person.email) if "Acme" in m["Subject"]]
        assert len(told) == 1, person.email
    assert smtp_sink.to("jane@example.org")[-1]["Subject"] == "Le compte Acme a été supprimé"
    assert smtp_sink.to("guest0@elsewhere.example")[-1]["Subject"] == "The account Acme was deleted"
