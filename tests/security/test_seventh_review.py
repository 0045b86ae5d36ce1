"""What a seventh attacker-side review found, each held now: removing a corporate user deleted
their personal mailboxes for someone who may not delete mailboxes (on the page and through an API
token), and anyone could have the portal mail an address reset or verification links without end."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.audit.models import AuditEvent
from portal.auth import services as auth_services
from portal.auth.models import UserToken
from portal.extensions import db
from portal.jobs.models import Job
from portal.mailboxes.models import Mailbox
from portal.roles.models import Grant
from portal.roles.services import membership_of, system_role
from portal.tokens import services as tokens
from portal.users.services import create_corporate_user
from tests.mailboxes.conftest import enabled_domain


@pytest.fixture
def uma(owner, account, run_jobs):
    """A corporate user with her personal mailbox, enabled; the Owner reads it as a delegate."""
    enabled_domain(owner, account)
    user, _link = create_corporate_user(owner, account, first_name="Uma", last_name="User", email="uma@example.org",
                                        personal_mailbox=True, recovery_email="uma@elsewhere.example")
    db.session.commit()
    run_jobs()
    box = db.session.execute(db.select(Mailbox).where(Mailbox.owner_id == user.id)).scalar_one()
    assert box.status == "enabled"
    db.session.add(Grant(membership_id=membership_of(owner, account).id, account_id=account.id,
                         role_id=system_role("mailbox_delegate").id, mailbox_id=box.id))
    db.session.commit()
    return membership_of(user, account), box


def _status(box) -> str:
    db.session.expire_all()
    return db.session.get(Mailbox, box.id).status


def test_removing_a_user_deletes_their_mailboxes_only_for_whoever_may_delete_mailboxes(
        client, auth, make, owner, account, uma, run_jobs):
    membership, box = uma
    clerk = make.member(account, make.user("clerk@elsewhere.example"), permissions=("users.manage", "members.view"))
    db.session.commit()
    auth.login("clerk@elsewhere.example")
    url = f"/accounts/{account.id}/members/{membership.id}/remove-user"
    page = client.get(url).get_data(as_text=True)
    assert 'value="delete"' not in page and "Deleting them needs the right to manage mailboxes." in page
    refused = client.post(url, data={"mailboxes": "delete"})
    run_jobs()
    assert refused.status_code == 200 and _status(box) == "enabled"
    assert membership_of(db.session.get(type(owner), membership.user_id), account) is not None
    # Disabling, as a suspension does, can be undone: it stays open to whoever may manage users.
    assert client.post(url, data={"mailboxes": "disable"}).status_code == 302
    run_jobs()
    assert _status(box) == "disabled"
    assert db.session.get(type(clerk), clerk.id) is not None  # the clerk's own membership is untouched


def test_an_api_token_removing_a_user_deletes_mailboxes_only_if_it_reaches_them(client, make, owner, account, uma,
                                                                                run_jobs):
    membership, box = uma
    clerk = make.user("clerk@elsewhere.example")
    make.member(account, clerk, permissions=("users.manage", "members.view", "members.remove", "users.create",
                                             "access.grant"))
    _token, clerks = tokens.create(clerk, account, name="hr", scopes={"users:write"}, expires_at=None)
    # The owner may delete mailboxes, but a token of theirs made for people's settings does not reach them.
    _token, owners = tokens.create(owner, account, name="people", scopes={"users:write"}, expires_at=None)
    db.session.commit()
    path = f"/api/v1/accounts/{account.id}/users/{membership.id}?mailboxes=delete"
    for raw in (clerks, owners):
        answer = client.delete(path, headers={"Authorization": f"Bearer {raw}"})
        assert answer.status_code == 403, answer.get_data(as_text=True)
        assert "needs the right to manage mailboxes" in answer.get_data(as_text=True)
    run_jobs()
    assert _status(box) == "enabled"
    _token, full = tokens.create(owner, account, name="all", scopes={"users:write", "mailboxes:write"},
                                 expires_at=None)
    db.session.commit()
    assert client.delete(path, headers={"Authorization": f"Bearer {full}"}).status_code == 204
    run_jobs()
    assert _status(box) in ("deleted", "deleting")


def _age_links(minutes: float) -> None:
    """Every link and reset mailed so far, as if mailed ``minutes`` earlier."""
    for link in db.session.execute(db.select(UserToken)).scalars():
        link.created_at -= timedelta(minutes=minutes)
    for event in db.session.execute(db.select(AuditEvent).where(AuditEvent.action.in_(
            ("user.request_password_reset", "user.reset_withheld")))).scalars():
        event.at -= timedelta(minutes=minutes)
    db.session.commit()


def test_anyone_asking_again_and_again_gets_an_address_few_reset_links(client, make, run_jobs, smtp_sink):
    make.user("victim@example.org")
    for _ in range(25):
        assert client.post("/password/forgot", data={"email": "victim@example.org"}).status_code == 200
    # One look-up waits however often it is asked for; it mails one link.
    assert db.session.execute(db.select(db.func.count(Job.id)).where(
        Job.kind == auth_services.ADDRESS_MAIL_KIND)).scalar_one() == 1
    run_jobs()
    [first] = smtp_sink.wait_for("victim@example.org")
    for _ in range(5):
        client.post("/password/forgot", data={"email": "victim@example.org"})
        run_jobs()
    assert len(smtp_sink.to("victim@example.org")) == 1
    # The link mailed stays alive: nobody's requests retire it within the interval.
    assert db.session.execute(db.select(db.func.count(UserToken.id)).where(
        UserToken.used_at.is_(None))).scalar_one() == 1
    # Past the interval, another; the interval doubles with each link mailed in the day.
    def ask_after(minutes: float) -> int:
        _age_links(minutes)
        client.post("/password/forgot", data={"email": "victim@example.org"})
        run_jobs()
        return len(smtp_sink.to("victim@example.org"))

    assert ask_after(3) == 2     # 2 minutes after the first
    assert ask_after(3) == 2     # 4 after the second
    assert ask_after(2) == 3
    assert ask_after(7) == 3     # 8 after the third
    for mailed in range(4, 8):
        assert ask_after(61) == mailed
    # Never more than an hour: strangers asking all day cannot keep the person from a reset.
    for mailed in range(8, 14):
        assert ask_after(58) == mailed - 1
        assert ask_after(3) == mailed


def test_anyone_asking_again_and_again_gets_a_registration_few_verification_links(client, make, run_jobs,
                                                                                  smtp_sink):
    make.user("newcomer@example.org", verified=False)
    for _ in range(10):
        client.post("/verify", data={"email": "newcomer@example.org"})
        run_jobs()
    assert len(smtp_sink.wait_for("newcomer@example.org")) == 1
    assert len(smtp_sink.to("newcomer@example.org")) == 1
    _age_links(3)
    client.post("/verify", data={"email": "newcomer@example.org"})
    run_jobs()
    assert len(smtp_sink.wait_for("newcomer@example.org", count=2)) == 2


def _failed_login_ip(client, **headers) -> str:
    from portal.auth.models import LoginFailure

    client.post("/login", data={"email": "ada@example.org", "password": "not the password"}, headers=headers)
    return db.session.execute(db.select(LoginFailure.ip).order_by(LoginFailure.id.desc())).scalars().first()


def test_a_forwarded_address_is_not_taken_from_the_client_without_trusted_proxies(client, make):
    make.user("ada@example.org")
    assert _failed_login_ip(client, **{"X-Forwarded-For": "203.0.113.9"}) == "127.0.0.1"


class TestBehindOneProxy:
    """Behind a proxy (PORTAL_TRUSTED_PROXIES=1), the client's address is the one the proxy saw:
    log-in limits, the audit log and tokens' networks counted everyone as the proxy (a review)."""

    @pytest.fixture
    def app_settings(self):
        return {"TRUSTED_PROXIES": 1}

    def test_the_address_is_the_one_the_proxy_added_not_one_the_client_wrote(self, client, make):
        make.user("ada@example.org")
        assert _failed_login_ip(client, **{"X-Forwarded-For": "203.0.113.9"}) == "203.0.113.9"
        # A client writing the header itself: the proxy appends what it saw, and that is taken.
        assert _failed_login_ip(client, **{"X-Forwarded-For": "6.6.6.6, 198.51.100.7"}) == "198.51.100.7"


def test_a_domain_handed_over_leaves_the_former_holder_no_way_into_the_profiles_on_it(client, auth, make, owner,
                                                                                      account, run_jobs):
    """A review: account A made users on its domain (one signed in with the password A's owner set
    through the link shown to them), removed the domain, and account B proved it: A's owner signed
    in as B's user, and could still get a link for the other. Now, removed (or taken), A's corporate
    users there are its corporate users no more; proven by B, the ways in A's people may know of go,
    and B onboards them. Someone who registered there by themselves keeps their password."""
    from portal.auth.passwords import hash_password
    from portal.domains import services as domains
    from portal.domains.models import ENABLED
    from portal.users import services as users

    domain = enabled_domain(owner, account, "handed-over.example")
    x, _link = create_corporate_user(owner, account, first_name="X", last_name="Ray", email="x@handed-over.example",
                                     personal_mailbox=False)
    y, _link = create_corporate_user(owner, account, first_name="Y", last_name="Why", email="y@handed-over.example",
                                     personal_mailbox=False)
    x.password_hash, x.email_verified_at = hash_password("set by the owner of A"), x.created_at
    x.recovery_email = "owner@example.org"
    z = make.user("z@handed-over.example", password="z's own passphrase")  # registered and confirmed
    db.session.add(Grant(membership_id=membership_of(x, account).id, account_id=account.id, permission="audit.view"))
    db.session.flush()
    _token, xs_token = tokens.create(x, account, name="as x", scopes={"audit:read"}, expires_at=None)
    from portal.invitations import services as invitations

    invited = invitations.start(owner, account, "w@handed-over.example")
    invitations.send_invitation(owner, invited)
    db.session.commit()
    y_membership = membership_of(y, account).id
    domains.remove_domain(owner, domain)
    db.session.commit()
    assert not users.is_corporate_of(y, account)
    auth.login("owner@example.org")
    refused = client.post(f"/accounts/{account.id}/members/{y_membership}/onboarding")
    assert refused.status_code in (403, 404) and "/welcome/" not in refused.get_data(as_text=True)
    auth.logout()

    other_owner = make.user("boss@b.example")
    other = make.account(other_owner, "B")
    theirs = domains.add_domain(other_owner, other, "handed-over.example", "local")
    theirs.verified_at = theirs.created_at
    domains.end_other_claims(theirs)
    domains.set_status(theirs, ENABLED, "proven")
    db.session.commit()
    for person in (x, y):
        db.session.refresh(person)
        assert person.corporate_account_id == other.id and person.password_hash is None
    assert x.recovery_email is None
    refused = client.post("/login", data={"email": "x@handed-over.example", "password": "set by the owner of A"})
    assert refused.status_code == 422
    assert client.get(f"/accounts/{other.id}/").headers["Location"].startswith("/login")
    db.session.refresh(z)
    assert z.corporate_account_id == other.id and z.password_hash is not None
    auth.login("z@handed-over.example", "z's own passphrase")
    assert membership_of(x, other) is not None
    # The token made as x and the invitation mailed while A held the name work no more.
    assert tokens.authenticate(xs_token, "127.0.0.1") is None
    db.session.refresh(invited)
    assert invited.shown_status == "expired"
    # B gives them a way in; A cannot.
    assert users.send_onboarding(other_owner, other, y) is not None
    db.session.rollback()
    # Taken over once: x's password set since stays when the domain is enabled again later.
    x.password_hash = hash_password("x's own now")
    db.session.commit()
    domains.set_status(theirs, "action_required", "a check failed")
    domains.set_status(theirs, ENABLED, "checked again")
    db.session.commit()
    db.session.refresh(x)
    assert x.password_hash is not None


def test_a_corporate_user_has_one_removal_the_one_that_decides_their_mailboxes(client, auth, make, owner, account,
                                                                                uma, run_jobs):
    """A walkthrough: the member page's "Remove from the account…" took a corporate user's
    membership away and left their mailbox live, beside the Settings tab's "Remove user…". The
    member page now leads to the latter, and removing them as a plain member is refused."""
    membership, box = uma
    guest = make.member(account, make.user("guest@elsewhere.example"))
    _token, raw = tokens.create(owner, account, name="people", scopes={"users:write"}, expires_at=None)
    db.session.commit()
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{account.id}/members/{membership.id}").get_data(as_text=True)
    assert f"/members/{membership.id}/remove-user" in page and f'/members/{membership.id}/remove"' not in page
    other = client.get(f"/accounts/{account.id}/members/{guest.id}").get_data(as_text=True)
    assert f'/members/{guest.id}/remove"' in other
    refused = client.post(f"/accounts/{account.id}/members/{membership.id}/remove")
    assert refused.status_code == 403 and "remove them from their Settings tab" in refused.get_data(as_text=True)
    api = client.delete(f"/api/v1/accounts/{account.id}/members/{membership.id}",
                        headers={"Authorization": f"Bearer {raw}"})
    assert api.status_code == 403
    run_jobs()
    assert membership_of(db.session.get(type(owner), membership.user_id), account) is not None
    assert _status(box) == "enabled"
