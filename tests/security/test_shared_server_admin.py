"""A Mail-in-a-Box administrator manages every mailbox of its box. Two accounts whose domains
share one box: one made its own mailbox an administrator of the box, revealed its password, and
with it changed the password of the other account's mailbox through the box's own API."""

from __future__ import annotations

import pytest
import requests

from portal.domains.services import DomainError, add_domain
from portal.extensions import db
from portal.i18n import shown
from portal.mailboxes.models import Mailbox
from portal.mailboxes.services import create_mailbox
from tests.emulated import box, box_app_environ  # noqa: F401  (fixtures: Mail-in-a-Box as emu)
from tests.mailboxes.conftest import enabled_domain

REFUSED = "also serves other accounts' domains"


def _account_on_the_box(make, run_jobs, connection, email: str, name: str, domain: str, local_part: str):
    """An account with its domain on the box and a mailbox there."""
    owner = make.user(email)
    account = make.account(owner, name)
    mailbox = create_mailbox(owner, account, enabled_domain(owner, account, domain, connection), local_part)
    db.session.commit()
    run_jobs()
    return owner, account, mailbox


@pytest.fixture
def alone(make, box, run_jobs):
    """Account A alone on the box, with a mailbox."""
    _owner, account_a, box_a = _account_on_the_box(make, run_jobs, box[2], "alice@a-owners.example", "Victim",
                                                   "victim.example.org", "ceo")
    return account_a, box_a


def _attacker(make, connection, run_jobs):
    return _account_on_the_box(make, run_jobs, connection, "mallory@b-owners.example", "Attacker",
                               "attacker.example.org", "inbox")


def test_the_box_wide_privilege_is_not_given_on_a_box_other_accounts_use(alone, box, make, client, auth,
                                                                          run_jobs):
    emulator, _environ, connection = box
    _account_a, box_a = alone
    _owner_b, account_b, box_b = _attacker(make, connection, run_jobs)
    auth.login("mallory@b-owners.example")
    base = f"/accounts/{account_b.id}/mailboxes/{box_b.id}"
    page = client.get(base).get_data(as_text=True)
    assert REFUSED in page and "Make administrator" not in page
    answer = client.post(f"{base}/backend-admin", data={"admin": "yes"}, follow_redirects=True)
    assert REFUSED in answer.get_data(as_text=True)
    run_jobs()
    assert "admin" not in emulator.users[box_b.address]["privileges"]
    assert db.session.get(Mailbox, box_b.id).backend_admin is False
    # So B's mailbox password opens nothing of A's.
    password = emulator.users[box_b.address]["password"]
    answer = requests.post(f"{emulator.url}/admin/mail/users/password",
                           data={"email": box_a.address, "password": "taken-over-by-b-123"},
                           auth=(box_b.address, password), timeout=5)
    assert answer.status_code in (401, 403)
    assert emulator.users[box_a.address]["password"] != "taken-over-by-b-123"


def test_an_account_alone_on_its_box_makes_an_administrator_and_keeps_the_box_to_itself(
        alone, box, make, client, auth, run_jobs):
    """Alone on the box, A gives the privilege; another account then cannot put a domain there
    (its administrators would manage that account's mailboxes too)."""
    emulator, _environ, connection = box
    account_a, box_a = alone
    auth.login("alice@a-owners.example")
    answer = client.post(f"/accounts/{account_a.id}/mailboxes/{box_a.id}/backend-admin", data={"admin": "yes"})
    assert answer.status_code == 302
    run_jobs()
    assert "admin" in emulator.users[box_a.address]["privileges"]
    owner_b = make.user("mallory@b-owners.example")
    account_b = make.account(owner_b, "Attacker")
    with pytest.raises(DomainError, match="Another account administers the server"):
        add_domain(owner_b, account_b, "attacker.example.org", connection)
    # Any other connection stays open to them.
    assert add_domain(owner_b, account_b, "attacker.example.org", "local").connection == "local"


def test_a_privilege_asked_before_another_account_came_is_not_pushed(alone, box, make, run_jobs):
    """Asked while A was alone; B's domain came onto the box before its job ran (the two at once:
    B's check saw no administrator yet). The job gives nothing."""
    from portal.auth.models import User
    from portal.domains.models import Domain
    from portal.mailboxes import services as mailboxes

    emulator, _environ, connection = box
    _account_a, box_a = alone
    alice = db.session.execute(db.select(User).where(User.email == "alice@a-owners.example")).scalar_one()
    mailboxes.set_backend_admin(alice, box_a, True)
    owner_b = make.user("mallory@b-owners.example")
    account_b = make.account(owner_b, "Attacker")
    db.session.add(Domain(account_id=account_b.id, name="attacker.example.org", connection=connection,
                          status="pending"))
    db.session.commit()
    run_jobs()
    db.session.expire_all()
    mailbox = db.session.get(Mailbox, box_a.id)
    assert mailbox.backend_admin is False and "admin" not in emulator.users[box_a.address]["privileges"]
    assert REFUSED in shown(mailbox.status_reason)


def test_nor_on_a_box_holding_what_a_deleted_account_left_there(box, make, run_jobs):
    """Alone among the live accounts, a newcomer was given the privilege on a box that keeps a
    deleted account's archived mailboxes: with it, it brought the deleted CEO's mailbox back, mail
    and all, under a password of its own."""
    from portal.accounts.services import delete_account
    from portal.mailboxes import services as mailboxes

    emulator, _environ, connection = box
    owner_c, account_c, box_c = _account_on_the_box(make, run_jobs, connection, "carol@c-owners.example", "Closed",
                                                    "closed.example.org", "ceo")
    emulator.deliver(box_c.address, 7)
    delete_account(owner_c, account_c, "Closed", delete_mailboxes=True)
    db.session.commit()
    run_jobs()
    assert emulator.users["ceo@closed.example.org"]["status"] == "inactive"  # archived, mail kept
    owner_a, _account_a, box_a = _account_on_the_box(make, run_jobs, connection, "mallory@a-owners.example",
                                                     "Newcomer", "newcomer.example.org", "inbox")
    with pytest.raises(mailboxes.MailboxError, match=REFUSED):
        mailboxes.set_backend_admin(owner_a, box_a, True)
    db.session.rollback()
    run_jobs()
    answer = requests.post(f"{emulator.url}/admin/mail/users/add",
                           data={"email": "ceo@closed.example.org", "password": "restored-by-mallory-1"},
                           auth=(box_a.address, emulator.users[box_a.address]["password"]), timeout=5)
    assert answer.status_code in (401, 403)
    assert emulator.users["ceo@closed.example.org"]["status"] == "inactive"


def test_only_an_owner_makes_the_box_administrator_and_only_of_a_mailbox_owners_alone_read(
        alone, box, make, client, auth, run_jobs):
    """A review: an Administrator (not an Owner) made a shared mailbox whose password they held the
    box's administrator, and set the Owner's mailbox password through the box's own API; the
    portal would mail the Owner's password resets there. The privilege reaches every mailbox of
    the box: only an owner gives it, to a mailbox owners alone read, and only an owner gets the
    password of a mailbox that holds it."""
    from portal.mailboxes import services as mailboxes
    from portal.accounts.models import Membership
    from portal.roles.models import Grant

    emulator, _environ, connection = box
    account_a, box_a = alone
    admin = make.member(account_a, make.user("admin@elsewhere.example"), roles=("administrator",)).user
    tools = create_mailbox(admin, account_a, box_a.domain, "tools")
    db.session.commit()
    run_jobs()
    mailboxes.reveal_secret(admin, db.session.get(Mailbox, tools.id))
    db.session.commit()
    auth.login("admin@elsewhere.example")
    answer = client.post(f"/accounts/{account_a.id}/mailboxes/{tools.id}/backend-admin", data={"admin": "yes"},
                         follow_redirects=True)
    assert "Only an owner of the account may make a mailbox the server" in answer.get_data(as_text=True)
    run_jobs()
    assert db.session.get(Mailbox, tools.id).backend_admin is False
    assert "admin" not in emulator.users[tools.address]["privileges"]
    auth.logout()

    # The owner may not either while the Administrator reads it (they were given its password).
    alice = db.session.execute(db.select(Membership).where(Membership.account_id == account_a.id,
                                                           Membership.user_id != admin.id)).scalars().first().user
    with pytest.raises(mailboxes.MailboxError, match="read by someone who is not an owner"):
        mailboxes.set_backend_admin(alice, db.session.get(Mailbox, tools.id), True)
    db.session.rollback()
    # A mailbox owners alone read may be; its password is then the owners' alone to get.
    mailboxes.set_backend_admin(alice, db.session.get(Mailbox, box_a.id), True)
    db.session.commit()
    run_jobs()
    holder = make.member(account_a, make.user("helper@elsewhere.example"))
    for permission in ("mailbox.view", "mailbox.password"):
        db.session.add(Grant(membership_id=holder.id, account_id=account_a.id, permission=permission,
                             mailbox_id=box_a.id))
    db.session.commit()
    for person in (admin, holder.user):
        with pytest.raises(mailboxes.MailboxError, match="is the server's administrator"):
            mailboxes.reveal_secret(person, db.session.get(Mailbox, box_a.id))
        db.session.rollback()
        with pytest.raises(mailboxes.MailboxError, match="is the server's administrator"):
            mailboxes.reset_password(person, db.session.get(Mailbox, box_a.id))
        db.session.rollback()
    mailboxes.reveal_secret(alice, db.session.get(Mailbox, box_a.id))  # the owner may


def test_the_mailbox_page_offers_the_privilege_to_owners_only(alone, make, client, auth):
    account_a, box_a = alone
    make.member(account_a, make.user("admin@elsewhere.example"), roles=("administrator",))
    auth.login("admin@elsewhere.example")
    page = client.get(f"/accounts/{account_a.id}/mailboxes/{box_a.id}").get_data(as_text=True)
    assert "Only an owner of the account may make a mailbox" in page and "Make administrator" not in page
    auth.logout()
    auth.login("alice@a-owners.example")
    assert "Make administrator" in client.get(f"/accounts/{account_a.id}/mailboxes/{box_a.id}").get_data(as_text=True)


def test_the_servers_own_administrator_is_adopted_by_an_owner_only_and_known_as_such(
        alone, box, make, client, auth, run_jobs):
    """A review: drift adoption ignored the privilege the server lists, so the box's own set-up
    administrator came in as a plain shared mailbox: an Administrator adopted it, took its password
    and set the Owner's mailbox password with it. Adopting it is an owner's, and the portal then
    knows it as the administrator (its password is the owners' alone); one the portal already has,
    made administrator behind its back, is known as such at the next comparison."""
    from portal.audit.models import AuditEvent
    from portal.mailboxes import drift, services as mailboxes

    emulator, _environ, connection = box
    account_a, box_a = alone
    domain = box_a.domain
    admin = make.member(account_a, make.user("admin@elsewhere.example"), roles=("administrator",)).user
    emulator.users["me@victim.example.org"] = {"password": "set-up-by-the-operator-1", "privileges": ["admin"],
                                               "quota": "0", "status": "active"}
    emulator.users[box_a.address]["privileges"] = ["admin"]  # behind the portal's back
    drift.request_comparison(domain)
    db.session.commit()
    run_jobs()
    known = db.session.get(Mailbox, box_a.id)
    assert known.backend_admin is True
    assert db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "mailbox.backend_admin_found",
                                                          AuditEvent.target_id == str(box_a.id))).first()

    auth.login("admin@elsewhere.example")
    answer = client.post(f"/accounts/{account_a.id}/domains/{domain.id}/drift/settle",
                         data={"address": "me@victim.example.org", "kind": drift.UNKNOWN_TO_PORTAL, "how": "adopt"})
    assert answer.status_code == 409 and "only an owner of the account may bring it" in answer.get_data(as_text=True)
    page = client.post(f"/accounts/{account_a.id}/domains/{domain.id}/drift/settle-all", data={"how": "adopt"},
                       follow_redirects=True).get_data(as_text=True)
    assert "(me@victim.example.org)" in page  # refused, still listed
    assert db.session.execute(db.select(Mailbox).where(Mailbox.address == "me@victim.example.org")).first() is None
    with pytest.raises(mailboxes.MailboxError, match="is the server's administrator"):
        mailboxes.reset_password(admin, db.session.get(Mailbox, box_a.id))
    db.session.rollback()
    auth.logout()

    from portal.auth.models import User

    alice = db.session.execute(db.select(User).where(User.email == "alice@a-owners.example")).scalar_one()
    drift.settle(alice, domain, drift.latest_report(domain), "me@victim.example.org", drift.UNKNOWN_TO_PORTAL, "adopt")
    db.session.commit()
    adopted = db.session.execute(db.select(Mailbox).where(Mailbox.address == "me@victim.example.org")).scalar_one()
    assert adopted.backend_admin is True


def test_whoever_reads_the_servers_administrator_counts_as_reading_every_mailbox_there(make, box, run_jobs):
    """A review: the privilege was checked only when given. An Owner who read the administrator
    mailbox, made an Administrator since, kept its password, and the remaining Owner's resets were
    still mailed to a mailbox on that server, whose password the box's administrator can set."""
    from portal.auth.services import reset_withheld
    from portal.mailboxes import services as mailboxes
    from portal.roles.models import Grant
    from portal.roles.services import membership_of, revoke_grant, system_role

    emulator, _environ, connection = box
    boss = make.user("boss@victim.example.org")
    account = make.account(boss, "Victim")
    domain = enabled_domain(boss, account, "victim.example.org", connection)
    create_mailbox(boss, account, domain, "boss", kind="personal", owner=boss)
    deputy = make.user("deputy@elsewhere.example")
    make.member(account, deputy, roles=("owner",))
    admin_box = create_mailbox(boss, account, domain, "it")
    db.session.commit()
    run_jobs()
    mailboxes.reset_password(deputy, admin_box)
    db.session.commit()
    run_jobs()
    assert mailboxes.reveal_secret(deputy, admin_box)
    mailboxes.set_backend_admin(deputy, admin_box, True)
    db.session.commit()
    run_jobs()
    assert reset_withheld(boss) is None  # owners alone read it: the boss's resets go to boss@
    owner_grant = db.session.execute(db.select(Grant).where(
        Grant.membership_id == membership_of(deputy, account).id, Grant.role_id == system_role("owner").id)).scalar_one()
    db.session.add(Grant(membership_id=owner_grant.membership_id, account_id=account.id,
                         role_id=system_role("administrator").id))
    revoke_grant(boss, account, owner_grant)
    db.session.commit()
    assert reset_withheld(boss) is not None and reset_withheld(boss).id == admin_box.id


def _set_up_administrator(emulator) -> None:
    """The box's own administrator on the organisation's domain, made by the operator, unknown to the portal."""
    emulator.users["me@victim.example.org"] = {"password": "set-up-by-the-operator-1", "privileges": ["admin"],
                                               "quota": "0", "status": "active"}


def test_a_mailbox_made_over_the_servers_administrator_is_known_as_it_and_a_reset_asked_before_is_not_done(
        alone, box, make, run_jobs):
    """A review: an Administrator made a portal mailbox at the set-up administrator's address; the
    server's 'already exists' took it in as a plain mailbox, whose password they then reset and
    revealed, and set the Owner's mailbox password with it. The worker asks the server what the
    mailbox it found is; a reset asked for a mailbox the portal did not know as the administrator
    is not done when the server says it is."""
    from portal.mailboxes import services as mailboxes

    emulator, _environ, _connection = box
    account_a, box_a = alone
    admin = make.member(account_a, make.user("admin@elsewhere.example"), roles=("administrator",)).user
    _set_up_administrator(emulator)
    taken = create_mailbox(admin, account_a, box_a.domain, "me")
    db.session.commit()
    run_jobs()
    taken = db.session.get(Mailbox, taken.id)
    assert taken.backend_admin is True
    with pytest.raises(mailboxes.MailboxError, match="is the server's administrator"):
        mailboxes.reset_password(admin, taken)
    db.session.rollback()

    # A reset asked for while the portal did not know (a mailbox made administrator on the server since).
    emulator.users[box_a.address]["privileges"] = ["admin"]
    mailboxes.reset_password(admin, db.session.get(Mailbox, box_a.id))
    db.session.commit()
    before = emulator.users[box_a.address]["password"]
    run_jobs()
    db.session.expire_all()
    known = db.session.get(Mailbox, box_a.id)
    assert emulator.users[box_a.address]["password"] == before and known.backend_admin is True
    assert "Not reset: the backend lists this mailbox as its administrator" in shown(known.status_reason)
    with pytest.raises(mailboxes.MailboxError, match="is the server's administrator"):
        mailboxes.reveal_secret(admin, known)


def test_only_an_owner_takes_the_privilege_away(alone, box, make, run_jobs):
    """A review: an Administrator took the privilege away in the portal and, before the server had,
    revealed the password waiting there."""
    from portal.mailboxes import services as mailboxes

    from portal.auth.models import User

    account_a, box_a = alone
    alice = db.session.execute(db.select(User).where(User.email == "alice@a-owners.example")).scalar_one()
    mailboxes.set_backend_admin(alice, db.session.get(Mailbox, box_a.id), True)
    db.session.commit()
    run_jobs()
    admin = make.member(account_a, make.user("admin@elsewhere.example"), roles=("administrator",)).user
    with pytest.raises(mailboxes.MailboxError, match="Only an owner of the account may make a mailbox"):
        mailboxes.set_backend_admin(admin, db.session.get(Mailbox, box_a.id), False)
    db.session.rollback()
    assert db.session.get(Mailbox, box_a.id).backend_admin is True


def test_a_comparison_that_did_not_read_the_privilege_adopts_for_owners_only(alone, box, make, run_jobs):
    """A review: a comparison stored before the privilege was read (no 'admin' on its backend side)
    let an Administrator adopt the set-up administrator as a plain mailbox."""
    from portal.mailboxes import drift, services as mailboxes
    from portal.mailboxes.drift import DriftReport

    emulator, _environ, _connection = box
    account_a, box_a = alone
    _set_up_administrator(emulator)
    db.session.add(DriftReport(domain_id=box_a.domain.id, differences=[{
        "address": "me@victim.example.org", "kind": drift.UNKNOWN_TO_PORTAL, "portal": None,
        "backend": {"status": "enabled", "quota_bytes": None, "display_name": ""}}]))
    admin = make.member(account_a, make.user("admin@elsewhere.example"), roles=("administrator",)).user
    db.session.commit()
    with pytest.raises(mailboxes.MailboxError, match="changed since the comparison; compare again"):
        drift.settle(admin, box_a.domain, drift.latest_report(box_a.domain), "me@victim.example.org",
                     drift.UNKNOWN_TO_PORTAL, "adopt")
    db.session.rollback()
    assert db.session.execute(db.select(Mailbox).where(Mailbox.address == "me@victim.example.org")).first() is None
