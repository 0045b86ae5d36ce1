"""An onboarding link works only while whoever holds it holds every right its person holds now.
Found by an attacker-side review: someone who may only create users made a person, kept the link
the page showed them (or chose the recovery address it was mailed to), and once an owner had made
that person Administrator, set the first password and signed in as the Administrator. Each test
fails without the rule it names."""

import re

import pytest

from portal.auth.models import User
from portal.extensions import db
from portal.jobs.models import FAILED as JOB_FAILED
from portal.jobs.models import Job
from portal.roles.services import grant_role, membership_of, system_role
from portal.users import services as users
from tests.conftest import first_link
from tests.mailboxes.conftest import enabled_domain

NEW_PASSWORD = "a fresh long password 1"


def _clerk(account, make, email="clerk@elsewhere.example"):
    make.member(account, make.user(email), permissions=("users.create",))
    return email


def _person(email="newboss@example.org") -> User:
    return db.session.execute(db.select(User).where(User.email == email)).scalar_one()


def _promote(owner, account, person: User) -> None:
    grant_role(owner, account, membership_of(person, account), system_role("administrator"))
    db.session.commit()


def _made_by_a_clerk_with_the_clerks_recovery_address(owner, account, make, client, auth) -> None:
    enabled_domain(owner, account)
    auth.login(_clerk(account, make))
    client.post(f"/accounts/{account.id}/users/new", data={
        "first_name": "New", "last_name": "Boss", "email": "newboss@example.org",
        "recovery_email": "clerk-private@evil.example"})
    auth.logout()


def _link_shown_to_a_clerk(owner, account, make, client, auth, email) -> str:
    """A clerk who may only create users creates ``email``: the path of the link the page shows them."""
    enabled_domain(owner, account)
    auth.login(_clerk(account, make))
    created = client.post(f"/accounts/{account.id}/users/new", data={
        "first_name": "New", "last_name": "Person", "email": email})
    auth.logout()
    return re.search(r"http://localhost(/welcome/[\w-]+)", created.get_data(as_text=True)).group(1)


def _link_refused_once_promoted(owner, account, client, mailed: str) -> None:
    """The person is made Administrator: the link in ``mailed`` no longer sets their password."""
    path = first_link(mailed, "/welcome/").removeprefix("http://localhost")
    _promote(owner, account, _person())
    assert client.get(path).status_code == 410
    assert _set_password(client, path).status_code in (410, 422)
    db.session.expire_all()
    assert _person().password_hash is None


def _set_password(client, path):
    return client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})


def test_a_link_shown_to_its_creator_stops_working_once_the_person_holds_more(owner, account, make, client, auth):
    path = _link_shown_to_a_clerk(owner, account, make, client, auth, "newboss@example.org")
    _promote(owner, account, _person())
    page = client.get(path)
    assert page.status_code == 410
    assert "given to someone who does not hold every right newboss@example.org holds now" in \
        page.get_data(as_text=True)
    assert _set_password(client, path).status_code in (410, 422)
    db.session.expire_all()
    assert _person().password_hash is None
    # Given again by the owner, who holds every right, a link works.
    auth.login("owner@example.org")
    shown = client.post(f"/accounts/{account.id}/members/{membership_of(_person(), account).id}/onboarding")
    path = re.search(r"http://localhost(/welcome/[\w-]+)", shown.get_data(as_text=True)).group(1)
    auth.logout()
    assert _set_password(client, path).status_code == 302
    db.session.expire_all()
    assert _person().password_hash is not None


def test_a_link_shown_to_its_creator_works_while_the_person_holds_nothing_more(owner, account, make, client, auth):
    path = _link_shown_to_a_clerk(owner, account, make, client, auth, "newhire@example.org")
    assert client.get(path).status_code == 200
    assert _set_password(client, path).status_code == 302


def test_a_recovery_address_its_creator_chose_gets_no_link_once_the_person_holds_more(
        owner, account, make, client, auth, run_jobs, smtp_sink):
    _made_by_a_clerk_with_the_clerks_recovery_address(owner, account, make, client, auth)
    assert _person().recovery_set_by_id is not None
    _promote(owner, account, _person())
    smtp_sink.clear()
    run_jobs()
    assert smtp_sink.to("clerk-private@evil.example") == []
    failed = db.session.execute(db.select(Job).where(Job.kind == users.ONBOARDING_KIND)).scalar_one()
    assert failed.status == JOB_FAILED and "recovery address was chosen, or is read, by someone" in failed.last_error
    # The owner sets the address again (the same one, say, after checking it): it is theirs now.
    auth.login("owner@example.org")
    membership = membership_of(_person(), account)
    users.update_settings(owner, account, _person(), first_name="New", last_name="Boss", timezone="UTC", phone="",
                          default_mailbox_id=None, recovery_email="")
    users.update_settings(owner, account, _person(), first_name="New", last_name="Boss", timezone="UTC", phone="",
                          default_mailbox_id=None, recovery_email="boss-home@example.net")
    db.session.commit()
    assert client.post(f"/accounts/{account.id}/members/{membership.id}/onboarding").status_code == 302
    run_jobs()
    [message] = smtp_sink.wait_for("boss-home@example.net")
    assert "/welcome/" in smtp_sink.text(message)


def test_a_link_mailed_to_the_creators_recovery_address_stops_working_once_the_person_holds_more(
        owner, account, make, client, auth, run_jobs, smtp_sink):
    _made_by_a_clerk_with_the_clerks_recovery_address(owner, account, make, client, auth)
    smtp_sink.clear()
    run_jobs()  # mailed while the person holds nothing
    [message] = smtp_sink.wait_for("clerk-private@evil.example")
    _link_refused_once_promoted(owner, account, client, smtp_sink.text(message))


MANAGER = ("members.view", "mailboxes.view", "mailboxes.create", "mailboxes.manage")


def test_a_link_mailed_to_the_persons_mailbox_stops_working_once_a_reader_of_it_lacks_their_rights(
        owner, account, make, client, auth, run_jobs, smtp_sink):
    """A second review: a helper who manages mailboxes took a new hire's mailbox password while the
    hire held nothing, read the onboarding link mailed there, and used it once the hire was made
    Administrator (the readers were looked at only when it was mailed)."""
    from portal.mailboxes.models import Mailbox

    enabled_domain(owner, account)
    make.member(account, make.user("helper@elsewhere.example"), permissions=MANAGER)
    users.create_corporate_user(owner, account, first_name="New", last_name="Boss", email="newboss@example.org",
                                personal_mailbox=True)
    db.session.commit()
    smtp_sink.clear()
    run_jobs()
    box = db.session.execute(db.select(Mailbox.id).where(Mailbox.address == "newboss@example.org")).scalar_one()
    auth.login("helper@elsewhere.example")
    assert client.post(f"/accounts/{account.id}/mailboxes/{box}/password").status_code == 302
    run_jobs()
    assert client.post(f"/accounts/{account.id}/mailboxes/{box}/password/reveal").status_code == 200
    auth.logout()
    [message] = smtp_sink.wait_for("newboss@example.org")
    _link_refused_once_promoted(owner, account, client, smtp_sink.text(message))


def test_no_link_goes_to_a_recovery_address_one_of_the_accounts_mailboxes_receives_for_someone_else(
        owner, account, make, client, auth, run_jobs, smtp_sink):
    """A second review: the recovery address was on another of the account's domains, and a member
    gave its name to her own mailbox as an alias: the Administrator's link was mailed there."""
    from portal.mailboxes import services as mailboxes

    enabled_domain(owner, account)
    other = enabled_domain(owner, account, "other.example")
    mallory = make.user("mallory@other.example")
    make.member(account, mallory)
    box = mailboxes.create_mailbox(owner, account, other, "mallory", kind="personal", owner=mallory)
    db.session.commit()
    run_jobs()
    boss, _link = users.create_corporate_user(owner, account, first_name="New", last_name="Boss",
                                              email="newboss@example.org", personal_mailbox=False,
                                              recovery_email="newboss.home@other.example")
    db.session.commit()
    _promote(owner, account, _person())
    mailboxes.add_alias(owner, db.session.get(type(box), box.id), "newboss.home@other.example")
    db.session.commit()
    smtp_sink.clear()
    run_jobs()
    assert smtp_sink.to("newboss.home@other.example") == []
    failed = db.session.execute(db.select(Job).where(Job.kind == users.ONBOARDING_KIND)).scalar_one()
    assert failed.status == JOB_FAILED and "or is read, by someone" in failed.last_error


def test_a_profile_made_after_the_recovery_address_was_chosen_is_not_its_chooser(owner, account, make, run_jobs,
                                                                               smtp_sink):
    """A second review: the chooser's profile deleted, SQLite gave its id to the next profile made,
    an Administrator, whose rights then counted as the chooser's."""
    from portal.accounts.services import delete_profile

    enabled_domain(owner, account)
    users.create_corporate_user(owner, account, first_name="New", last_name="Boss", email="newboss@example.org",
                                personal_mailbox=False)
    db.session.commit()
    clerk = make.user("clerk@elsewhere.example")
    make.member(account, clerk, permissions=("members.view", "users.manage"))
    users.update_settings(clerk, account, _person(), first_name="New", last_name="Boss", timezone="UTC", phone="",
                          default_mailbox_id=None, recovery_email="clerk-private@evil.example")
    db.session.commit()
    chooser = _person().recovery_set_by_id
    delete_profile(clerk, "clerk@elsewhere.example")
    db.session.commit()
    _promote(owner, account, _person())
    successor, _link = users.create_corporate_user(owner, account, first_name="Chief", last_name="Finance",
                                                   email="cfo@example.org", personal_mailbox=False)
    db.session.flush()
    assert successor.id == chooser or db.engine.dialect.name != "sqlite"  # its id again (on SQLite)
    grant_role(owner, account, membership_of(successor, account), system_role("administrator"))
    db.session.commit()
    smtp_sink.clear()
    users.send_onboarding(owner, account, _person())
    db.session.commit()
    run_jobs()
    assert smtp_sink.to("clerk-private@evil.example") == []


def test_a_recovery_address_written_in_unicode_is_kept_as_its_mailboxes_know_it(owner, account, make, run_jobs,
                                                                                smtp_sink):
    """A third review: the settings kept jane@bücher.example, the mailboxes know xn--bcher-kva.example:
    the mailbox a member reads there was not seen to receive it, and got the link."""
    from portal.mailboxes import services as mailboxes

    enabled_domain(owner, account)
    idn = enabled_domain(owner, account, "xn--bcher-kva.example")
    mallory = make.user("mallory@xn--bcher-kva.example")
    make.member(account, mallory)
    box = mailboxes.create_mailbox(owner, account, idn, "mallory", kind="personal", owner=mallory)
    db.session.commit()
    run_jobs()
    mailboxes.add_alias(owner, db.session.get(type(box), box.id), "jane@xn--bcher-kva.example")
    users.create_corporate_user(owner, account, first_name="New", last_name="Boss", email="newboss@example.org",
                                personal_mailbox=False)
    db.session.commit()
    run_jobs()
    _promote(owner, account, _person())
    # Read in its ASCII form, the address is seen to reach the member's mailbox: refused where it
    # is given now (a later review), which is where the link would have gone.
    with pytest.raises(users.UserError, match="jane@xn--bcher-kva.example is received by a mailbox"):
        users.update_settings(owner, account, _person(), first_name="New", last_name="Boss", timezone="UTC",
                              phone="", default_mailbox_id=None, recovery_email="Jane@Bücher.example")
    db.session.rollback()
    assert _person().recovery_email is None
    smtp_sink.clear()
    users.send_onboarding(owner, account, _person())
    db.session.commit()
    run_jobs()
    assert smtp_sink.to("jane@xn--bcher-kva.example") == []
    users.update_settings(owner, account, _person(), first_name="New", last_name="Boss", timezone="UTC", phone="",
                          default_mailbox_id=None, recovery_email="Ann@Bücher.example")
    db.session.commit()
    assert _person().recovery_email == "ann@xn--bcher-kva.example"
