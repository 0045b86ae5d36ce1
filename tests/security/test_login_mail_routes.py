"""Whoever gets the password of a mailbox that receives someone's login mail can take over their
profile (a password reset arrives there). Found by an attacker-side review: the portal only
looked at the mailbox's own address, not at the aliases, domain aliases and catch-all that route
a login address's mail to it. Each test fails without the rule it names."""

import pytest

from portal.audit.models import AuditEvent
from portal.auth import services as auth_services
from portal.domains import settings as domain_settings
from portal.extensions import db
from portal.mailboxes import services
from portal.mailboxes.models import Mailbox
from portal.roles.models import Grant
from portal.roles.services import system_role
from tests.mailboxes.conftest import enabled_domain

MANAGER = ("members.view", "mailboxes.view", "mailboxes.create", "mailboxes.manage")


def _ready(mailbox_id):
    db.session.expire_all()
    return db.session.get(Mailbox, mailbox_id)


def test_an_alias_at_someones_login_address_makes_its_mailbox_theirs_to_guard(owner, account, make, client, auth,
                                                                               run_jobs):
    domain = enabled_domain(owner, account)  # the owner logs in as owner@example.org
    box = services.create_mailbox(owner, account, domain, "owner.box", kind="personal", owner=owner)
    db.session.commit()
    run_jobs()
    services.add_alias(owner, _ready(box.id), "owner@example.org")
    db.session.commit()
    run_jobs()
    make.member(account, make.user("mallory@elsewhere.example"), permissions=MANAGER)
    auth.login("mallory@elsewhere.example")
    refused = client.post(f"/accounts/{account.id}/mailboxes/{box.id}/password")
    assert refused.status_code == 409
    assert "receives the mail of owner@example.org&#39;s login address" in refused.get_data(as_text=True)


def test_only_an_owner_adds_a_domain_alias_and_its_mailboxes_are_guarded_for_the_aliased_logins(
        owner, account, make, client, auth, run_jobs):
    enabled_domain(owner, account)  # owner@example.org
    other = enabled_domain(owner, account, "other.example")
    make.member(account, make.user("mallory@elsewhere.example"),
                permissions=MANAGER + ("domains.view", "domains.manage"))
    auth.login("mallory@elsewhere.example")
    refused = client.post(f"/accounts/{account.id}/domains/{other.id}/settings", data={"domain_aliases": "example.org"})
    assert refused.status_code == 422 and "Only an owner of the account can add a domain alias" in \
        refused.get_data(as_text=True)
    assert not (db.session.get(type(other), other.id).settings or {}).get("domain_aliases")
    # An owner adds it (written in capitals: kept as a domain name); owner@other.example, a mailbox
    # made before, now receives owner@example.org.
    box = services.create_mailbox(owner, account, other, "owner")
    db.session.commit()
    run_jobs()
    domain_settings.save(owner, other, {"domain_aliases": ["EXAMPLE.ORG."]})
    db.session.commit()
    assert other.settings["domain_aliases"] == ["example.org"]
    run_jobs()
    refused = client.post(f"/accounts/{account.id}/mailboxes/{box.id}/password")
    assert refused.status_code == 409 and "owner@example.org&#39;s login address" in refused.get_data(as_text=True)
    # The aliased domain cannot be removed while it routes there, whatever the case it was written in.
    assert "routes mail to example.org" in (services.routing_blocks_removal(
        db.session.execute(db.select(type(other)).where(type(other).name == "example.org")).scalar_one()) or "")


def test_a_catch_alls_mailbox_password_is_an_owners_to_get(owner, account, make, client, auth, run_jobs):
    domain = enabled_domain(owner, account)
    target = services.create_mailbox(owner, account, domain, "inbox")
    db.session.commit()
    domain_settings.save(owner, domain, {"catch_all": "inbox@example.org"})
    db.session.commit()
    run_jobs()
    make.member(account, make.user("mallory@elsewhere.example"), permissions=MANAGER)
    auth.login("mallory@elsewhere.example")
    refused = client.post(f"/accounts/{account.id}/mailboxes/{target.id}/password")
    assert refused.status_code == 409 and "is the catch-all of example.org" in refused.get_data(as_text=True)
    auth.logout()
    auth.login("owner@example.org")
    assert client.post(f"/accounts/{account.id}/mailboxes/{target.id}/password").status_code == 302


def test_a_reset_is_withheld_from_a_mailbox_that_receives_the_login_address_through_an_alias(
        app, owner, account, make, run_jobs, smtp_sink):
    from portal.accounts.models import Membership

    domain = enabled_domain(owner, account)
    bob = make.user("bob@example.org")
    bob_membership = make.member(account, bob)
    helper = make.member(account, make.user("helper@elsewhere.example"), permissions=MANAGER + ("users.manage",))
    box = services.create_mailbox(owner, account, domain, "bob.box", kind="personal", owner=bob)
    db.session.commit()
    run_jobs()
    services.add_alias(owner, _ready(box.id), "bob@example.org")
    db.session.commit()
    run_jobs()
    services.reset_password(helper.user, _ready(box.id))
    db.session.commit()
    run_jobs()
    assert services.reveal_secret(helper.user, _ready(box.id))  # the helper held all Bob's rights then
    db.session.commit()
    assert isinstance(bob_membership, Membership)
    db.session.add(Grant(membership_id=bob_membership.id, account_id=account.id,
                         role_id=system_role("administrator").id))
    db.session.commit()
    smtp_sink.clear()
    with app.test_request_context():
        auth_services.request_password_reset("bob@example.org")
        db.session.commit()
    run_jobs()
    [message] = smtp_sink.wait_for("bob@example.org")
    assert "/password/reset/" not in smtp_sink.text(message)
    assert db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "user.reset_withheld")).scalar_one()


@pytest.mark.parametrize("value", ["²", "1²", "①"])
def test_a_number_setting_in_other_digits_is_refused_not_a_500(owner, account, client, auth, value):
    domain = enabled_domain(owner, account)
    auth.login("owner@example.org")
    answer = client.post(f"/accounts/{account.id}/domains/{domain.id}/settings", data={"max_users": value})
    assert answer.status_code == 422 and "Enter a whole number." in answer.get_data(as_text=True)


def test_the_mailboxes_that_receive_an_address(owner, account, run_jobs):
    """What a reset for a person is checked against: the mailbox at the address, one with it as an
    alias, the same local part on a domain it is aliased onto, and the catch-all (named by a mailbox's
    address or by one of its aliases) when nothing else receives it."""
    domain = enabled_domain(owner, account)
    other = enabled_domain(owner, account, "other.example")
    inbox = services.create_mailbox(owner, account, domain, "inbox")
    aliased = services.create_mailbox(owner, account, domain, "carol.box")
    mirror = services.create_mailbox(owner, account, other, "dave")
    db.session.commit()
    run_jobs()
    services.add_alias(owner, _ready(inbox.id), "catch@example.org")
    services.add_alias(owner, _ready(aliased.id), "carol@example.org")
    db.session.commit()
    run_jobs()
    domain_settings.save(owner, domain, {"catch_all": "catch@example.org"})
    domain_settings.save(owner, _ready(mirror.id).domain, {"domain_aliases": ["example.org"]})
    db.session.commit()

    def receivers(address):
        return sorted(mailbox.address for mailbox in services.receiving(address))

    assert receivers("inbox@example.org") == ["inbox@example.org"]
    assert receivers("carol@example.org") == ["carol.box@example.org"]
    assert receivers("dave@example.org") == ["dave@other.example"]
    assert receivers("nobody@example.org") == ["inbox@example.org"]
