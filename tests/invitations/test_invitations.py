import threading
from datetime import timedelta

import pytest

from portal.accounts.models import Membership
from portal.auth.models import User
from portal.extensions import db
from portal.invitations import services
from portal.invitations.models import ACCEPTED, DECLINED, PENDING, REVOKED, Invitation
from portal.mailboxes import services as mailboxes
from portal.roles.models import Grant, Role
from portal.roles.services import account_permissions, mailbox_permissions, system_role
from portal.timeutil import utcnow
from tests.conftest import PASSWORD, first_link
from tests.mailboxes.conftest import enabled_domain


def _link(smtp_sink, address):
    message = smtp_sink.wait_for(address)[-1]
    return first_link(smtp_sink.text(message), "/invitations/").removeprefix("http://localhost")


def _sent(owner, account, email, *, roles=(), run_jobs=None):
    invitation = services.start(owner, account, email)
    for key in roles:
        services.add_grant(owner, invitation, role_id=system_role(key).id)
    services.send_invitation(owner, invitation)
    db.session.commit()
    if run_jobs:
        run_jobs()
    return invitation


def test_token__random_hashed_expiring(owner, account, run_jobs, smtp_sink):
    invitation = _sent(owner, account, "new@example.net", run_jobs=run_jobs)
    token = _link(smtp_sink, "new@example.net").rsplit("/", 1)[-1]
    assert len(token) >= 43 and token not in (invitation.token_hash or "")
    assert services.by_token(token).id == invitation.id
    assert invitation.expires_at - utcnow() > timedelta(days=6, hours=23)


def test_unregistered__registers_from_the_link_with_the_address_fixed_and_gets_access(
        owner, account, client, run_jobs, smtp_sink):
    owner.name = "Olive Owner"
    domain = enabled_domain(owner, account)
    mailbox = mailboxes.create_mailbox(owner, account, domain, "team")
    invitation = services.start(owner, account, "new@example.net")
    services.add_grant(owner, invitation, role_id=system_role("administrator").id)
    services.add_grant(owner, invitation, role_id=system_role("mailbox_delegate").id, mailbox=mailbox)
    services.send_invitation(owner, invitation)
    db.session.commit()
    run_jobs()
    path = _link(smtp_sink, "new@example.net")
    response = client.get(path)
    assert response.status_code == 302 and response.headers["Location"].endswith("/register")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'value="new@example.net" readonly' in page
    # Named as the e-mail names the inviter (a walkthrough: "Olive Owner invites you" in the mail,
    # then only an address on the page).
    assert "Olive Owner (owner@example.org) invited you." in page
    response = client.post(response.headers["Location"], data={"name": "Nina New", "password": PASSWORD,
                                                                "confirm": PASSWORD})
    assert response.status_code == 302
    user = db.session.execute(db.select(User).where(User.email == "new@example.net")).scalar_one()
    assert user.is_verified and not user.is_corporate
    assert "members.view" in account_permissions(user, account)
    assert mailbox_permissions(user, account, mailbox.id) >= {"mailbox.read", "mailbox.send_as"}
    run_jobs()
    answered = [m for m in smtp_sink.wait_for("owner@example.org") if "accepted" in m["Subject"]]
    assert answered and "new@example.net accepted your invitation to Acme" == answered[0]["Subject"]
    used = client.get(path)
    assert used.status_code == 410 and "already accepted" in used.get_data(as_text=True)


def test_unregistered_on_an_active_domain__becomes_corporate_with_a_personal_mailbox(
        owner, account, client, run_jobs, smtp_sink):
    enabled_domain(owner, account)
    account.personal_mailboxes = True
    db.session.commit()
    _sent(owner, account, "staff@example.org", run_jobs=run_jobs)
    path = _link(smtp_sink, "staff@example.org")
    client.post(path + "/register", data={"name": "Sam Staff", "password": PASSWORD, "confirm": PASSWORD})
    user = db.session.execute(db.select(User).where(User.email == "staff@example.org")).scalar_one()
    assert user.is_corporate and user.corporate_account_id == account.id
    from portal.mailboxes.models import Mailbox

    personal = db.session.execute(db.select(Mailbox).where(Mailbox.address == "staff@example.org")).scalar_one()
    assert personal.kind == "personal" and personal.owner_id == user.id and personal.status == "provisioning"
    assert "mailbox.password" in mailbox_permissions(user, account, personal.id)
    run_jobs()
    db.session.refresh(personal)
    assert personal.status == "enabled"


def test_registered__accepts_one_and_declines_another_from_the_invites_tab(owner, account, make, client, auth,
                                                                        run_jobs, smtp_sink):
    other_owner = make.user("boss@other.example")
    other = make.account(other_owner, "Other")
    make.user("bob@example.net")
    first = _sent(owner, account, "bob@example.net", roles=("administrator",))
    second = _sent(other_owner, other, "bob@example.net")
    run_jobs()
    assert "log in" in smtp_sink.text(smtp_sink.wait_for("bob@example.net", count=2)[0]).lower()
    auth.login("bob@example.net")
    page = client.get("/profile/invites").get_data(as_text=True)
    assert "Acme" in page and "Other" in page and "Account Administrator" in page
    assert client.post(f"/profile/invites/{second.id}/decline").status_code == 302
    assert client.post(f"/profile/invites/{first.id}/accept").status_code == 302
    db.session.expire_all()
    assert (first.status, second.status) == (ACCEPTED, DECLINED)
    bob = db.session.execute(db.select(User).where(User.email == "bob@example.net")).scalar_one()
    assert "members.view" in account_permissions(bob, account)
    assert account_permissions(bob, other) == frozenset()
    run_jobs()
    assert any("declined" in m["Subject"] for m in smtp_sink.to("boss@other.example"))


def test_access_is_granted_only_on_acceptance(owner, account, make):
    bob = make.user("bob@example.net")
    _sent(owner, account, "bob@example.net", roles=("administrator",))
    assert account_permissions(bob, account) == frozenset()
    assert db.session.execute(db.select(Membership).where(Membership.user_id == bob.id)).first() is None


def test_accepting_twice_or_from_two_tabs_grants_once(owner, account, make, app):
    bob = make.user("bob@example.net")
    invitation = _sent(owner, account, "bob@example.net", roles=("administrator",))
    url = f"/profile/invites/{invitation.id}/accept"
    landing = f"/accounts/{account.id}/"
    tabs = [app.test_client() for _ in range(2)]
    for tab in tabs:
        assert tab.post("/login", data={"email": "bob@example.net", "password": PASSWORD}).status_code == 302
    answers = []

    def accept_in(tab):
        # A thread of its own, like a request of its own: its own app context and session.
        response = tab.post(url)
        answers.append(response.headers["Location"])

    threads = [threading.Thread(target=accept_in, args=(tab,)) for tab in tabs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [landing, "/profile/invites"]
    grants = db.session.execute(db.select(Grant).join(Membership).where(Membership.user_id == bob.id)).scalars().all()
    assert len(grants) == 1


def test_resend_kills_the_old_link_and_revoke_kills_the_new(owner, account, client, run_jobs, smtp_sink):
    invitation = _sent(owner, account, "new@example.net", run_jobs=run_jobs)
    old = _link(smtp_sink, "new@example.net")
    services.resend(owner, invitation)
    db.session.commit()
    run_jobs()
    new = [first_link(smtp_sink.text(m), "/invitations/").removeprefix("http://localhost")
           for m in smtp_sink.to("new@example.net")][-1]
    assert new != old
    assert client.get(old).status_code == 410
    assert client.get(new).status_code == 302
    services.revoke(owner, invitation)
    db.session.commit()
    response = client.get(new)
    assert response.status_code == 410
    assert "withdrawn by the account's administrators" in response.get_data(as_text=True)


def test_expired_link__shows_a_clear_page_and_the_list_says_expired(owner, account, client, run_jobs, smtp_sink, auth):
    invitation = _sent(owner, account, "new@example.net", run_jobs=run_jobs)
    path = _link(smtp_sink, "new@example.net")
    invitation.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    response = client.get(path)
    assert response.status_code == 410 and "expired" in response.get_data(as_text=True)
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{account.id}/invitations?status=expired").get_data(as_text=True)
    assert "new@example.net" in page


@pytest.mark.parametrize("tamper", [lambda t: t[:-1], lambda t: t[:10], lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
                                    lambda t: t + "x" * 200])
def test_tampered_or_truncated_tokens_are_refused(owner, account, client, run_jobs, smtp_sink, tamper):
    invitation = _sent(owner, account, "new@example.net", run_jobs=run_jobs)
    token = _link(smtp_sink, "new@example.net").rsplit("/", 1)[-1]
    response = client.get(f"/invitations/{tamper(token)}")
    assert response.status_code == 410 and "no longer works" in response.get_data(as_text=True)
    assert client.get(f"/invitations/{token}").status_code == 302  # the real link still works
    db.session.refresh(invitation)
    assert invitation.status == PENDING


def test_nobody_invites_with_access_they_do_not_hold(owner, account, make):
    helper = make.member(account, make.user("helper@example.org"), permissions=("users.invite",))
    invitation = services.start(helper.user, account, "new@example.net")
    with pytest.raises(services.InvitationError, match="do not hold"):
        services.add_grant(helper.user, invitation, role_id=system_role("administrator").id)
    with pytest.raises(services.InvitationError, match="do not hold"):
        services.add_grant(helper.user, invitation, permission="account.delete")
    services.add_grant(helper.user, invitation, permission="users.invite")


def test_deleted_role_or_mailbox_before_acceptance__the_rest_is_granted_and_the_loss_reported(owner, account, make):
    domain = enabled_domain(owner, account)
    mailbox = mailboxes.create_mailbox(owner, account, domain, "team")
    from portal.roles.services import create_role, delete_role

    custom = create_role(owner, account, name="Auditors", scope="account", description="", permissions={"audit.view"})
    bob = make.user("bob@example.net")
    invitation = services.start(owner, account, "bob@example.net")
    services.add_grant(owner, invitation, role_id=custom.id)
    services.add_grant(owner, invitation, role_id=system_role("mailbox_delegate").id, mailbox=mailbox)
    services.add_grant(owner, invitation, permission="members.view")
    services.send_invitation(owner, invitation)
    delete_role(owner, account, custom)
    db.session.delete(mailbox)
    db.session.commit()
    db.session.expire_all()
    gone = services.accept(bob, invitation)
    db.session.commit()
    assert sorted(gone) == ["Auditors", "Mailbox Delegate on team@example.org"]
    assert account_permissions(bob, account) == {"members.view"}


def test_deleted_account_before_acceptance__link_says_it_no_longer_works(owner, account, client, run_jobs, smtp_sink):
    _sent(owner, account, "new@example.net", run_jobs=run_jobs)
    path = _link(smtp_sink, "new@example.net")
    db.session.delete(account)
    db.session.commit()
    assert client.get(path).status_code == 410


def test_invitation_for_an_address_that_registers_with_another__stays_pending(owner, account, client, make, auth,
                                                                             run_jobs, smtp_sink):
    invitation = _sent(owner, account, "invited@example.net", run_jobs=run_jobs)
    make.user("different@example.net")
    auth.login("different@example.net")
    response = client.get(_link(smtp_sink, "invited@example.net"))
    assert response.status_code == 302 and response.headers["Location"].endswith("/register")
    assert client.get("/profile/invites").get_data(as_text=True).count("Accept") == 0
    assert client.post(f"/profile/invites/{invitation.id}/accept").status_code == 404
    db.session.refresh(invitation)
    assert invitation.status == PENDING


def test_invitation_pages__invite_grant_send_and_list_with_status(owner, account, client, auth, run_jobs, smtp_sink):
    auth.login("owner@example.org")
    response = client.post(f"/accounts/{account.id}/invitations/new", data={"email": "New@Example.net"})
    assert response.status_code == 302
    edit = response.headers["Location"]
    admin_role = db.session.execute(db.select(Role).where(Role.system_key == "administrator")).scalar_one()
    assert client.post(edit + "/grants", data={"scope": "account", "role_id": admin_role.id}).status_code == 302
    draft = client.get(edit).get_data(as_text=True)
    assert "Account Administrator" in draft
    # Sent after choosing what it grants: the button follows the choices, and says what it sends.
    assert draft.index("Add mailbox access") < draft.index(">Send invitation</button>")
    assert "It grants the 1 access listed above." in draft
    assert client.post(edit + "/send").status_code == 302
    run_jobs()
    assert smtp_sink.wait_for("new@example.net")
    assert client.get(f"/accounts/{account.id}/invitations").status_code == 200
    listing = client.get(f"/accounts/{account.id}/invitations?status=pending")
    assert listing.status_code == 200
    page = listing.get_data(as_text=True)
    assert "new@example.net" in page and "Account Administrator" in page
    assert "Withdraw the invitation" in client.get(edit + "/revoke").get_data(as_text=True)
    assert client.post(edit + "/revoke").status_code == 302
    page = client.get(f"/accounts/{account.id}/invitations?status=revoked", headers={"HX-Request": "true"})
    assert page.status_code == 200 and "new@example.net" in page.get_data(as_text=True)
    assert db.session.execute(db.select(Invitation)).scalar_one().status == REVOKED
    response = client.post(f"/accounts/{account.id}/invitations/new", data={"email": "owner@example.org"})
    assert response.status_code == 422 and "already a member" in response.get_data(as_text=True)


def test_invitation_list__shows_each_invitations_offers_in_order_in_the_readers_language(owner, account, make, client,
                                                                                         auth):
    import re

    from portal.roles.services import create_role

    from tests.mailboxes.conftest import enabled_domain
    from portal.mailboxes.services import create_mailbox

    custom = create_role(owner, account, name="Auditors", scope="account", description="", permissions={"audit.view"})
    sales = create_mailbox(owner, account, enabled_domain(owner, account), "sales")
    first = services.start(owner, account, "first@example.net")
    services.add_grant(owner, first, role_id=system_role("administrator").id)
    services.add_grant(owner, first, role_id=custom.id)
    # Added in English: the list showed the label kept then (a walkthrough in French).
    services.add_grant(owner, first, role_id=system_role("mailbox_delegate").id, mailbox=sales)
    services.start(owner, account, "second@example.net")
    other = make.user("other@example.org")
    services.start(other, make.account(other, "Elsewhere"), "stranger@example.net")
    owner.locale = "fr"
    db.session.commit()
    auth.login("owner@example.org")
    for headers in ({}, {"HX-Request": "true"}):
        page = client.get(f"/accounts/{account.id}/invitations", headers=headers).get_data(as_text=True)
        rows = {re.search(r">([^<>]+@example\.net)</a>", row).group(1): row
                for row in re.findall(r"<tr>.*?</tr>", page, re.S) if "@example.net</a>" in row}
        assert set(rows) == {"first@example.net", "second@example.net"}
        assert ("<td>Administrateur du compte, Auditors, Délégué de la boîte aux lettres sur sales@example.org</td>"
                in rows["first@example.net"])
        assert "<td>—</td>" in rows["second@example.net"]
        assert "<td>owner@example.org</td>" in rows["first@example.net"]


def test_unregistered__declines_from_the_link_without_making_a_profile(owner, account, client, run_jobs, smtp_sink):
    invitation = _sent(owner, account, "new@example.net", roles=("administrator",), run_jobs=run_jobs)
    path = _link(smtp_sink, "new@example.net")
    page = client.get(path + "/register").get_data(as_text=True)
    assert f'action="{path}/decline"' in page and "Decline the invitation" in page
    response = client.post(path + "/decline")
    assert response.status_code == 200 and "You declined the invitation from Acme" in response.get_data(as_text=True)
    db.session.expire_all()
    assert invitation.status == DECLINED and invitation.user_id is None and invitation.responded_at is not None
    assert db.session.execute(db.select(User).where(User.email == "new@example.net")).first() is None
    assert db.session.execute(db.select(Membership).join(User).where(User.email == "new@example.net")).first() is None
    run_jobs()
    told = [m for m in smtp_sink.to("owner@example.org") if "declined" in m["Subject"]]
    assert told and "new@example.net declined your invitation to Acme" == told[0]["Subject"]
    assert "from the invitation's link" in smtp_sink.text(told[0])
    # The link is spent: neither a second decline nor registering works, and the page says why.
    again = client.post(path + "/decline")
    assert again.status_code == 410 and "The invitation was declined." in again.get_data(as_text=True)
    assert client.get(path + "/register").status_code == 410
    from portal.audit.models import AuditEvent

    event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "invitation.decline")).scalar_one()
    assert event.target_label == "new@example.net" and event.details.get("via") == "link"
    assert event.actor_label == "new@example.net" and event.actor_id is None


def test_decline_by_link__is_filed_under_the_link_not_whoever_is_signed_in(owner, account, make, client, auth,
                                                                           run_jobs, smtp_sink):
    """A review: the decline was filed as the doing of whoever happened to be signed in."""
    from portal.audit.models import AuditEvent

    make.member(account, make.user("bystander@example.org"))
    _sent(owner, account, "new@example.net", run_jobs=run_jobs)
    path = _link(smtp_sink, "new@example.net")
    auth.login("bystander@example.org")
    assert client.post(path + "/decline").status_code == 200
    event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "invitation.decline")).scalar_one()
    assert (event.actor_label, event.actor_id) == ("new@example.net", None)


def test_decline_by_link__is_not_for_an_address_with_a_profile(owner, account, make, client, run_jobs, smtp_sink):
    """A review: an invitation to someone with a profile is sent without asking who else reads the
    address (they answer signed in): the link alone declined it in their place, and the inviter was
    told they had. Its decline leads to logging in, and the invitation waits."""
    make.user("rita@example.net")
    invitation = _sent(owner, account, "rita@example.net", run_jobs=run_jobs)
    path = _link(smtp_sink, "rita@example.net")
    response = client.post(path + "/decline")
    assert response.status_code == 302 and response.headers["Location"].endswith(path)
    assert client.get(path).headers["Location"].startswith("/login")
    with pytest.raises(services.InvitationError):
        services.decline_by_link(path.rsplit("/", 1)[-1])
    db.session.expire_all()
    assert invitation.status == PENDING


def test_decline_by_link__needs_the_link_and_a_form_token(owner, account, client, run_jobs, smtp_sink):
    invitation = _sent(owner, account, "new@example.net", run_jobs=run_jobs)
    path = _link(smtp_sink, "new@example.net")
    assert client.post("/invitations/" + "x" * 43 + "/decline").status_code == 410
    assert client.post("/invitations/" + "x" * 500 + "/decline").status_code == 410
    assert client.post(path + "/decline", csrf=False).status_code == 400
    assert client.post(path + "/decline", csrf="bad").status_code == 400
    db.session.expire_all()
    assert invitation.status == PENDING


def test_invites_tab__shows_the_first_fifty_and_says_how_many_wait(make, client, auth):
    """A review: 10,000 invitations waiting for one person made a 3.4 MB page of 23 statements. The tab
    shows the first 50 sent, with as many statements however many wait."""
    from datetime import timedelta

    from sqlalchemy import insert

    from portal.accounts.models import Account
    from portal.invitations.models import Invitation
    from portal.timeutil import utcnow
    from tests.sql import on_each_statement

    make.user("bob@example.net")
    now = utcnow()

    def invited_by(count: int, start: int) -> None:
        accounts = db.session.execute(insert(Account).returning(Account.id), [
            {"name": f"Inviter {start + n:03d}", "created_at": now} for n in range(count)]).scalars().all()
        db.session.execute(insert(Invitation.__table__), [
            {"account_id": account_id, "email": "bob@example.net", "status": "pending", "created_at": now,
             "sent_at": now + timedelta(seconds=start + n), "expires_at": now + timedelta(days=7)}
            for n, account_id in enumerate(accounts)])
        db.session.commit()

    auth.login("bob@example.net")
    invited_by(3, 0)
    assert client.get("/profile/invites").status_code == 200
    db.session.expunge_all()
    few = []
    with on_each_statement(few.append):
        page = client.get("/profile/invites").get_data(as_text=True)
    assert page.count("<section class=\"card\">") == 3 and "Invites (3)" in page and "The first" not in page
    invited_by(120, 3)
    db.session.expunge_all()
    many = []
    with on_each_statement(many.append):
        page = client.get("/profile/invites").get_data(as_text=True)
    assert page.count("<section class=\"card\">") == 50 and "Invites (123)" in page
    assert "The first 50 of your 123 invitations" in page
    assert "Inviter 000" in page and "Inviter 049" in page and "Inviter 050" not in page
    assert len(many) == len(few) + 1, "\n".join(["FEW"] + few + ["MANY"] + many)


def test_invitation_page__says_whether_an_invitee_on_an_active_domain_gets_a_personal_mailbox(owner, account, client,
                                                                                              auth):
    """A walkthrough: an invitee on the account's active domain became a corporate user without a
    personal mailbox (the account's setting was off) and no page said so."""
    enabled_domain(owner, account)
    db.session.commit()
    auth.login("owner@example.org")
    ours = client.post(f"/accounts/{account.id}/invitations/new", data={"email": "carol@example.org"})
    theirs = client.post(f"/accounts/{account.id}/invitations/new", data={"email": "dan@elsewhere.example"})
    page = client.get(ours.headers["Location"]).get_data(as_text=True)
    assert "on accepting they become a corporate user, without a personal mailbox" in page
    assert f"/accounts/{account.id}/settings" in page
    assert 'id="corporate-note"' not in client.get(theirs.headers["Location"]).get_data(as_text=True)
    account.personal_mailboxes = True
    db.session.commit()
    page = client.get(ours.headers["Location"]).get_data(as_text=True)
    assert "become a corporate user and get a personal mailbox at that address" in page


def test_invitation_sent__its_offers_read_in_each_readers_language_in_the_log(owner, account, app, run_jobs):
    """A walkthrough: a French log read « offres : See members » for an invitation an English
    administrator sent. The offers are kept as texts read in each reader's language; a custom
    role's name as it was written."""
    from portal.audit.models import AuditEvent
    from portal.i18n import in_language
    from portal.roles.services import create_role

    desk = create_role(owner, account, name="Front desk", scope="account", description="", permissions={"members.view"})
    mailbox = mailboxes.create_mailbox(owner, account, enabled_domain(owner, account), "team")
    invitation = services.start(owner, account, "new@example.net")
    services.add_grant(owner, invitation, permission="members.view")
    services.add_grant(owner, invitation, role_id=desk.id)
    services.add_grant(owner, invitation, role_id=system_role("mailbox_delegate").id, mailbox=mailbox)
    services.send_invitation(owner, invitation)
    db.session.commit()
    entry = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "invitation.send")).scalar_one()
    with app.test_request_context("/"):
        english = dict(entry.details_shown)
        with in_language("fr"):
            french = dict(entry.details_shown)
    assert english["offers"] == "See members, Front desk, Mailbox Delegate on team@example.org"
    assert "Voir les membres" in french["offres"] and "Front desk" in french["offres"]
    assert "See members" not in french["offres"] and "team@example.org" in french["offres"]
