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
