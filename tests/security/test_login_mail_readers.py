"""A mailbox its own reader may take names for must not start receiving someone's login mail, and a
password reset is never mailed where someone without that person's rights reads. Found by an
attacker-side review: a member with no account permission got her own mailbox's password from her
page, then gave it, as an alias, the name through which a domain alias delivers the owner's login
mail, or the name the catch-all stands at, and received an owner's or an administrator's reset link.
Each test fails without the rule it names."""

from datetime import timedelta

import pytest

from portal.auth import services as auth_services
from portal.domains import settings as domain_settings
from portal.extensions import db
from portal.invitations import services as invitations
from portal.mailboxes import services
from portal.mailboxes.models import Mailbox, MailboxAlias
from tests.mailboxes.conftest import enabled_domain

MANAGER = ("members.view", "mailboxes.view", "mailboxes.create", "mailboxes.manage")


def _ready(mailbox_id):
    db.session.expire_all()
    return db.session.get(Mailbox, mailbox_id)


def _own_mailbox_with_its_password(owner, account, make, domain, client, auth, run_jobs, email):
    """A member with no account permission, her personal mailbox, and its password (from her page)."""
    person = make.user(email)
    make.member(account, person)
    box = services.create_mailbox(owner, account, domain, email.split("@")[0], kind="personal", owner=person)
    db.session.commit()
    run_jobs()
    auth.login(email)
    assert client.post(f"/accounts/{account.id}/mailboxes/{box.id}/password").status_code == 302
    run_jobs()
    assert client.post(f"/accounts/{account.id}/mailboxes/{box.id}/password/reveal").status_code == 200
    return box


def _members_mailbox_receiving_by_a_domain_alias(owner, account, make, client, auth, run_jobs, local: str):
    """A member's own mailbox on other.example takes the alias local@other.example; the owner then
    aliases example.org onto other.example: local@example.org reaches the member's mailbox."""
    enabled_domain(owner, account)
    other = enabled_domain(owner, account, "other.example")
    box = _own_mailbox_with_its_password(owner, account, make, other, client, auth, run_jobs, "mallory@other.example")
    assert client.post(f"/accounts/{account.id}/mailboxes/{box.id}/aliases",
                       data={"alias": f"{local}@other.example"}).status_code == 302
    run_jobs()
    domain_settings.save(owner, other, {"domain_aliases": ["example.org"]})
    db.session.commit()
    run_jobs()
    return box


def _reset_mail(app, run_jobs, smtp_sink, email) -> str:
    """The mail a reset asked for by address brings, the last one asked for being long ago (an
    address gets one every few minutes at most)."""
    from portal.audit.models import AuditEvent

    for event in db.session.execute(db.select(AuditEvent).where(AuditEvent.action.in_(
            ("user.request_password_reset", "user.reset_withheld")))).scalars():
        event.at -= timedelta(hours=1)
    db.session.commit()
    smtp_sink.clear()
    with app.test_request_context():
        auth_services.request_password_reset(email)
        db.session.commit()
    run_jobs()
    [message] = smtp_sink.wait_for(email)
    return smtp_sink.text(message)


def test_an_alias_may_not_be_a_name_a_domain_alias_delivers_someones_login_mail_to(
        app, owner, account, make, client, auth, run_jobs, smtp_sink):
    enabled_domain(owner, account)  # the owner logs in as owner@example.org
    other = enabled_domain(owner, account, "other.example")
    domain_settings.save(owner, other, {"domain_aliases": ["example.org"]})  # x@example.org reaches x@other.example
    db.session.commit()
    run_jobs()
    box = _own_mailbox_with_its_password(owner, account, make, other, client, auth, run_jobs, "mallory@other.example")
    refused = client.post(f"/accounts/{account.id}/mailboxes/{box.id}/aliases", data={"alias": "owner@other.example"})
    assert refused.status_code == 409
    assert "owner@example.org is owner@example.org&#39;s login address" in refused.get_data(as_text=True)
    assert db.session.execute(db.select(MailboxAlias)).first() is None
    # A mailbox made at that name is refused alike, whoever makes it.
    with pytest.raises(services.MailboxError, match="owner@example.org is owner@example.org's login address"):
        services.create_mailbox(owner, account, other, "owner")
    db.session.rollback()
    assert "/password/reset/" in _reset_mail(app, run_jobs, smtp_sink, "owner@example.org")


def test_the_reset_is_withheld_when_the_owner_routes_their_own_login_mail_to_a_members_mailbox(
        app, owner, account, make, client, auth, run_jobs, smtp_sink):
    """The other order: the member's alias first, the owner's domain alias after it. The reset link
    is withheld, since the member reads that mailbox (her own, its password from her page)."""
    box = _members_mailbox_receiving_by_a_domain_alias(owner, account, make, client, auth, run_jobs, "owner")
    assert [mailbox.id for mailbox in services.receiving("owner@example.org")] == [box.id]
    assert "/password/reset/" not in _reset_mail(app, run_jobs, smtp_sink, "owner@example.org")


def test_the_catch_alls_name_is_for_a_mailbox_only_owners_read(app, owner, account, make, client, auth, run_jobs,
                                                              smtp_sink):
    domain = enabled_domain(owner, account)
    make.member(account, make.user("boss@example.org"), roles=("administrator",))  # no mailbox of their own
    domain_settings.save(owner, domain, {"catch_all": "inbox@example.org"})  # no mailbox there (yet)
    db.session.commit()
    run_jobs()
    box = _own_mailbox_with_its_password(owner, account, make, domain, client, auth, run_jobs, "mallory@example.org")
    refused = client.post(f"/accounts/{account.id}/mailboxes/{box.id}/aliases", data={"alias": "inbox@example.org"})
    assert refused.status_code == 409 and "inbox@example.org is the catch-all of example.org" in \
        refused.get_data(as_text=True)
    assert db.session.execute(db.select(MailboxAlias)).first() is None
    # An owner's mailbox may have it (only owners read it).
    kept = services.create_mailbox(owner, account, domain, "keeper", kind="personal", owner=owner)
    db.session.commit()
    run_jobs()
    services.add_alias(owner, _ready(kept.id), "inbox@example.org")
    db.session.commit()
    assert "/password/reset/" in _reset_mail(app, run_jobs, smtp_sink, "boss@example.org")
    # Made the catch-all by an owner, a member's mailbox does not carry an administrator's reset link.
    domain_settings.save(owner, domain, {"catch_all": "mallory@example.org"})
    db.session.commit()
    run_jobs()
    assert "/password/reset/" not in _reset_mail(app, run_jobs, smtp_sink, "boss@example.org")


def test_an_alias_on_another_domain_is_guarded_for_the_logins_that_domains_aliases_deliver(
        owner, account, make, client, auth, run_jobs):
    """ceo@w.example reaches the alias ceo@z.example (w aliased onto z) of a mailbox on example.org:
    a manager who does not hold the CEO's rights gets no password of it."""
    x = enabled_domain(owner, account)
    z = enabled_domain(owner, account, "z.example")
    enabled_domain(owner, account, "w.example")
    make.member(account, make.user("ceo@w.example"), roles=("administrator",))
    box = services.create_mailbox(owner, account, x, "inbox")
    db.session.commit()
    run_jobs()
    services.add_alias(owner, _ready(box.id), "ceo@z.example")
    db.session.commit()
    run_jobs()
    domain_settings.save(owner, z, {"domain_aliases": ["w.example"]})
    db.session.commit()
    run_jobs()
    assert "ceo@w.example" in services.received_addresses(_ready(box.id))
    make.member(account, make.user("mallory@elsewhere.example"), permissions=MANAGER)
    auth.login("mallory@elsewhere.example")
    refused = client.post(f"/accounts/{account.id}/mailboxes/{box.id}/password")
    assert refused.status_code == 409 and "ceo@w.example" in refused.get_data(as_text=True)


def test_a_deleted_mailbox_does_not_hide_the_catch_all(owner, account, make, run_jobs):
    domain = enabled_domain(owner, account)
    mallory = make.user("mallory@example.org")
    make.member(account, mallory)
    services.create_mailbox(owner, account, domain, "mallory", kind="personal", owner=mallory)
    old = services.create_mailbox(owner, account, domain, "newhire")
    db.session.commit()
    run_jobs()
    domain_settings.save(owner, domain, {"catch_all": "mallory@example.org"})
    services.delete(owner, _ready(old.id))
    db.session.commit()
    run_jobs()
    assert _ready(old.id).status == "deleted"
    assert [mailbox.address for mailbox in services.receiving("newhire@example.org")] == ["mallory@example.org"]
    try:
        invitations.start(owner, account, "newhire@example.org")
    except invitations.InvitationError as refusal:
        assert "reaches a mailbox other people may read" in str(refusal)
    else:
        raise AssertionError("an invitation went through the catch-all a member reads")


def _new_hire_whose_mailbox_password_a_reader_took(owner, account, make, client, auth, run_jobs, reader):
    from portal.users import services as users

    users.create_corporate_user(owner, account, first_name="New", last_name="Hire", email="newhire@example.org",
                                personal_mailbox=True)
    db.session.commit()
    run_jobs()
    box = db.session.execute(db.select(Mailbox.id).where(Mailbox.address == "newhire@example.org")).scalar_one()
    auth.login(reader)
    assert client.post(f"/accounts/{account.id}/mailboxes/{box}/password").status_code == 302
    run_jobs()
    assert client.post(f"/accounts/{account.id}/mailboxes/{box}/password/reveal").status_code == 200
    auth.logout()
    return box


def test_a_reset_link_read_before_the_person_got_more_rights_no_longer_works(app, owner, account, make, client,
                                                                            auth, run_jobs, smtp_sink):
    """A second review: the readers were looked at when the link was mailed, not when it was used."""
    from portal.auth.models import User
    from portal.roles.services import grant_role, membership_of, system_role
    from tests.conftest import first_link

    enabled_domain(owner, account)
    make.member(account, make.user("helper@elsewhere.example"), permissions=MANAGER)
    _new_hire_whose_mailbox_password_a_reader_took(owner, account, make, client, auth, run_jobs,
                                                   "helper@elsewhere.example")
    path = first_link(_reset_mail(app, run_jobs, smtp_sink, "newhire@example.org"),
                      "/password/reset/").removeprefix("http://localhost")
    hire = db.session.execute(db.select(User).where(User.email == "newhire@example.org")).scalar_one()
    grant_role(owner, account, membership_of(hire, account), system_role("administrator"))
    db.session.commit()
    page = client.get(path)
    assert page.status_code == 410 and "may now read the mail sent to your address" in page.get_data(as_text=True)
    client.post(path, data={"password": "a fresh long password 1", "confirm": "a fresh long password 1"})
    db.session.expire_all()
    assert db.session.get(User, hire.id).password_hash is None


def test_a_suspended_reader_counts_as_one_without_the_rights(app, owner, account, make, client, auth, run_jobs,
                                                            smtp_sink):
    """A second review: a suspended administrator kept a mailbox's password and got the reset links
    of its person (suspension keeps rights; the portal would not let her in, the link would)."""
    from portal.auth.passwords import hash_password
    from portal.roles.services import grant_role, membership_of, system_role
    from portal.timeutil import utcnow
    from portal.users import services as users
    from tests.conftest import PASSWORD

    enabled_domain(owner, account)
    sam, _link = users.create_corporate_user(owner, account, first_name="Sam", last_name="Admin",
                                             email="sam@example.org", personal_mailbox=False)
    grant_role(owner, account, membership_of(sam, account), system_role("administrator"))
    sam.password_hash, sam.email_verified_at = hash_password(PASSWORD), utcnow()
    db.session.commit()
    _new_hire_whose_mailbox_password_a_reader_took(owner, account, make, client, auth, run_jobs, "sam@example.org")
    assert "/password/reset/" in _reset_mail(app, run_jobs, smtp_sink, "newhire@example.org")
    users.suspend(owner, account, sam)  # her rights are kept for her return; the password she took stays hers
    db.session.commit()
    run_jobs()
    assert "/password/reset/" not in _reset_mail(app, run_jobs, smtp_sink, "newhire@example.org")


def test_domain_aliases_are_not_chained(owner, account, make, run_jobs):
    """A second review: mail servers follow aliases from one to the next (boss@example.org reached
    boss@z.example through y.example), while the checks looked one step; a chain is refused, made
    from either end."""
    enabled_domain(owner, account)
    y = enabled_domain(owner, account, "y.example")
    z = enabled_domain(owner, account, "z.example")
    domain_settings.save(owner, y, {"domain_aliases": ["example.org"]})
    db.session.commit()
    with pytest.raises(domain_settings.SettingsInvalid) as refused:
        domain_settings.save(owner, z, {"domain_aliases": ["y.example"]})
    assert "y.example has domain aliases of its own (example.org)" in str(refused.value.problems)
    db.session.rollback()
    domain_settings.save(owner, y, {"domain_aliases": []})
    domain_settings.save(owner, z, {"domain_aliases": ["y.example"]})
    db.session.commit()
    with pytest.raises(domain_settings.SettingsInvalid) as refused:
        domain_settings.save(owner, db.session.get(type(y), y.id), {"domain_aliases": ["example.org"]})
    assert "y.example is itself an alias of z.example" in str(refused.value.problems)


def test_a_tagged_login_address_is_guarded_at_the_plain_name(app, owner, account, make, client, auth, run_jobs,
                                                          smtp_sink):
    """Mail servers deliver name+tag@ to name@ when nothing has the tagged name: a mailbox at boss@
    receives the login mail of boss+hr@ (a second review, on a catch-all written with a tag)."""
    domain = enabled_domain(owner, account)
    box = _own_mailbox_with_its_password(owner, account, make, domain, client, auth, run_jobs, "boss@example.org")
    make.member(account, make.user("boss+hr@example.org"), roles=("administrator",))
    assert [mailbox.id for mailbox in services.receiving("boss+hr@example.org")] == [box.id]
    assert "/password/reset/" not in _reset_mail(app, run_jobs, smtp_sink, "boss+hr@example.org")
    # Made now, a mailbox at the plain name is refused, as one at the login address itself would be.
    make.member(account, make.user("ceo+x@example.org"), roles=("administrator",))
    with pytest.raises(services.MailboxError, match="ceo\\+x@example.org's login address"):
        services.create_mailbox(owner, account, domain, "ceo", kind="shared")
    db.session.rollback()
    # And a catch-all takes no tag.
    with pytest.raises(domain_settings.SettingsInvalid) as refused:
        domain_settings.save(owner, domain, {"catch_all": "inbox+all@example.org"})
    assert "takes no +tag" in str(refused.value.problems)


def test_no_verification_link_for_someone_made_by_an_account(app, owner, account, make, client, auth, run_jobs,
                                                             smtp_sink):
    """A third review: a person made by an account who never signed in counted as unverified, so a
    verification link ("send it again", on the public page) was mailed to their address, and its
    "choose a new password" took no notice of who reads that mail: the helper who held the mailbox's
    password, its reset withheld, signed in as the Administrator it now belonged to."""
    from portal.auth.models import User
    from portal.roles.services import grant_role, membership_of, system_role

    enabled_domain(owner, account)
    make.member(account, make.user("helper@elsewhere.example"), permissions=MANAGER)
    _new_hire_whose_mailbox_password_a_reader_took(owner, account, make, client, auth, run_jobs,
                                                   "helper@elsewhere.example")
    hire = db.session.execute(db.select(User).where(User.email == "newhire@example.org")).scalar_one()
    grant_role(owner, account, membership_of(hire, account), system_role("administrator"))
    db.session.commit()
    smtp_sink.clear()
    assert client.post("/verify", data={"email": "newhire@example.org"}).status_code == 200
    run_jobs()
    assert smtp_sink.to("newhire@example.org") == []
    # Nor does a verification link made for them before work (issued by hand here).
    with app.test_request_context():
        raw = auth_services.tokens.issue(hire, auth_services.tokens.VERIFY_EMAIL, 24)
        db.session.commit()
    assert client.get(f"/verify/{raw}").status_code == 410
    client.post(f"/verify/{raw}", data={"new-password": "a fresh long password 1",
                                        "new-confirm": "a fresh long password 1", "new-name": "Taken"})
    db.session.expire_all()
    assert db.session.get(User, hire.id).password_hash is None


def test_a_strangers_registration_at_a_mailboxs_address_reads_nothing(app, owner, account, make, run_jobs,
                                                                      smtp_sink):
    """A third review: any profile at a mailbox's address counted as its reader, a registration
    nobody confirmed among them: a stranger registering the catch-all's address stopped the resets
    of everyone whose mail arrives there."""
    from portal.accounts.models import Account

    domain = enabled_domain(owner, account)
    db.session.get(Account, account.id).self_registration = True
    make.member(account, make.user("boss@example.org"), roles=("administrator",))
    services.create_mailbox(owner, account, domain, "inbox")
    db.session.commit()
    run_jobs()
    domain_settings.save(owner, domain, {"catch_all": "inbox@example.org"})
    db.session.commit()
    run_jobs()
    with app.test_request_context():
        assert auth_services.register("inbox@example.org", "Stranger", "a stranger's long password 1") is None
        db.session.commit()
    assert auth_services.find_user("inbox@example.org") is None  # registering there makes nothing now
    # One made before that rule (written here): a registration nobody confirmed reads nothing.
    from portal.auth.models import User
    from portal.auth.passwords import hash_password

    db.session.add(User(email="inbox@example.org", name="Stranger", password_hash=hash_password("x" * 20)))
    db.session.commit()
    assert services.readers_of(_ready(services.receiving("boss@example.org")[0].id)) == set()
    assert "/password/reset/" in _reset_mail(app, run_jobs, smtp_sink, "boss@example.org")


def test_whoever_was_given_a_mailboxs_password_is_not_a_profile_made_after(app, owner, account, make, client, auth,
                                                                           run_jobs, smtp_sink):
    """A third review: the helper given the mailbox's password deleted her profile; SQLite gave her id
    to the next profile made, an Administrator, whose rights then counted as hers."""
    from portal.accounts.services import delete_profile
    from portal.auth.models import User
    from portal.roles.services import grant_role, membership_of, system_role
    from portal.users import services as users

    enabled_domain(owner, account)
    hire, _link = users.create_corporate_user(owner, account, first_name="New", last_name="Hire",
                                              email="newhire@example.org", personal_mailbox=True)
    db.session.commit()
    run_jobs()
    box = db.session.execute(db.select(Mailbox.id).where(Mailbox.address == "newhire@example.org")).scalar_one()
    make.member(account, make.user("helper@elsewhere.example"), permissions=MANAGER)  # the highest id
    auth.login("helper@elsewhere.example")
    assert client.post(f"/accounts/{account.id}/mailboxes/{box}/password").status_code == 302
    run_jobs()
    assert client.post(f"/accounts/{account.id}/mailboxes/{box}/password/reveal").status_code == 200
    auth.logout()
    hire = db.session.execute(db.select(User).where(User.email == "newhire@example.org")).scalar_one()
    grant_role(owner, account, membership_of(hire, account), system_role("administrator"))
    helper = db.session.execute(db.select(User).where(User.email == "helper@elsewhere.example")).scalar_one()
    given_to = helper.id
    delete_profile(helper, "helper@elsewhere.example")
    db.session.commit()
    sam, _link = users.create_corporate_user(owner, account, first_name="Sam", last_name="Admin",
                                             email="sam@example.org", personal_mailbox=False)
    db.session.flush()
    assert sam.id == given_to or db.engine.dialect.name != "sqlite"
    grant_role(owner, account, membership_of(sam, account), system_role("administrator"))
    db.session.commit()
    assert _ready(box).password_given_to_id == given_to
    assert "/password/reset/" not in _reset_mail(app, run_jobs, smtp_sink, "newhire@example.org")


def test_no_profile_is_made_at_an_address_a_mailbox_receives(app, owner, account, make, client, auth, run_jobs,
                                                             smtp_sink):
    """A fourth review: a member aliased ceo@ onto her own mailbox, registered ceo@ with a password
    of her own, confirmed it with the link her mailbox received, and held the corporate user an
    administrator later made Administrator. Nothing is made there, by registration or by sign-on."""
    from portal.accounts.models import Account
    from portal.auth import sso
    from portal.auth.models import User

    domain = enabled_domain(owner, account)
    db.session.get(Account, account.id).self_registration = True
    db.session.commit()
    box = _own_mailbox_with_its_password(owner, account, make, domain, client, auth, run_jobs, "mallory@example.org")
    assert client.post(f"/accounts/{account.id}/mailboxes/{box.id}/aliases",
                       data={"alias": "ceo@example.org"}).status_code == 302
    run_jobs()
    auth.logout()
    smtp_sink.clear()
    answer = client.post("/register", data={"email": "ceo@example.org", "name": "The CEO",
                                            "password": "mallory's long password 1",
                                            "confirm": "mallory's long password 1"})
    assert answer.status_code == 200 and "Check your e-mail" in answer.get_data(as_text=True)  # as for anyone
    run_jobs()
    assert db.session.execute(db.select(User).where(User.email == "ceo@example.org")).first() is None
    assert smtp_sink.to("ceo@example.org") == []
    with app.test_request_context(), pytest.raises(sso.SsoError, match="received by a mailbox others may read"):
        sso.reconcile({"sub": "idp-ceo", "email": "ceo+x@example.org", "email_verified": True})
    # An address no mailbox receives registers as before.
    client.post("/register", data={"email": "newcomer@example.org", "name": "New Comer",
                                   "password": "a newcomer's long password 1",
                                   "confirm": "a newcomer's long password 1"})
    assert db.session.execute(db.select(User).where(User.email == "newcomer@example.org")).first() is not None


def test_sign_on_links_no_profile_whose_mail_someone_without_its_rights_reads(app, owner, account, make, client,
                                                                             auth, run_jobs, smtp_sink):
    """A fourth review: the provider vouches for an address whose mail reaches a member's mailbox; the
    member signed up there as the Administrator's address and was signed in as the Administrator."""
    from portal.auth import sso

    make.member(account, make.user("boss@example.org"), roles=("administrator",))
    _members_mailbox_receiving_by_a_domain_alias(owner, account, make, client, auth, run_jobs, "boss")
    with app.test_request_context(), pytest.raises(sso.SsoError, match="does not link a sign-on identity"):
        sso.reconcile({"sub": "idp-mallory", "email": "boss@example.org", "email_verified": True})
    db.session.rollback()
    with app.test_request_context():  # the owner, whose mail nobody else reads, links as before
        assert sso.reconcile({"sub": "idp-owner", "email": "owner@example.org", "email_verified": True}).id == owner.id
