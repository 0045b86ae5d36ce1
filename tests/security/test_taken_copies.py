"""A copy of a domain the account does not hold (never proven, or taken since another account
proved the name) reaches no backend: the names on it are, or may become, the other account's.

Found by an attacker-side review: account B added A's domain before A proved it and queued
mailboxes on its copy; once A proved the name, B's mailboxes were "failed", and B could retry them
(creating addresses on A's domain, or taking over A's existing mailbox and revealing a new
password for it), delete them (deleting A's mailbox), delete its own account (disabling A's
mailbox), or save the copy's settings (blocking every sender of A's domain)."""

from __future__ import annotations

import pytest

from portal.backends import service as backends
from portal.domains.models import TAKEN, Domain
from portal.domains.services import add_domain
from portal.extensions import db
from portal.mailboxes.models import Mailbox, MailboxAlias
from portal.mailboxes.services import create_mailbox
from portal.i18n import in_language, shown
from tests.security.conftest import prove
# The same emulated backends (local, Mail-in-a-Box) as the other name-ownership tests.
from tests.security.test_name_ownership import app_environ, backend  # noqa: F401

SHARED = "victim.example.org"


@pytest.fixture
def squat(make, backend, dns_zone, run_jobs):
    """B's copy of A's name holds mailboxes ceo@ and grab@ queued before A proved the name and made ceo@."""
    connection = backend[3]
    owner_a, owner_b = make.user("alice@a-owners.example"), make.user("mallory@b-owners.example")
    a, b = make.account(owner_a, "Victim"), make.account(owner_b, "Attacker")
    shared_a = add_domain(owner_a, a, SHARED, connection)
    copy_b = add_domain(owner_b, b, SHARED, connection)
    db.session.commit()
    ceo_b, grab_b = (create_mailbox(owner_b, b, copy_b, local_part) for local_part in ("ceo", "grab"))
    create_mailbox(owner_a, a, shared_a, "ceo")
    db.session.commit()
    prove(dns_zone, run_jobs, shared_a)
    run_jobs()
    db.session.expire_all()
    assert db.session.get(Domain, copy_b.id).status == TAKEN
    assert {db.session.get(Mailbox, box.id).status for box in (ceo_b, grab_b)} == {"failed"}
    adapter = backends.adapter(connection)
    assert adapter.get_mailbox(f"ceo@{SHARED}").active
    return {"b": b, "copy_b": copy_b, "ceo_b": ceo_b.id, "grab_b": grab_b.id, "adapter": adapter}


def test_taken_copy__its_failed_mailboxes_cannot_be_retried_by_page_or_api(squat, client, auth, run_jobs, make):
    from portal.auth.models import User
    from portal.tokens import services as tokens

    b = squat["b"]
    auth.login("mallory@b-owners.example")
    for box in (squat["ceo_b"], squat["grab_b"]):
        page = client.post(f"/accounts/{b.id}/mailboxes/{box}/retry", follow_redirects=True)
        assert "was proven by another account" in page.get_data(as_text=True)
    owner_b = db.session.execute(db.select(User).where(User.email == "mallory@b-owners.example")).scalar_one()
    _, raw = tokens.create(owner_b, b, name="t", scopes=set(tokens.SCOPES) - {"scim:read"}, expires_at=None)
    db.session.commit()
    answer = client.post(f"/api/v1/accounts/{b.id}/mailboxes/{squat['ceo_b']}/retry",
                         headers={"Authorization": f"Bearer {raw}"})
    assert answer.status_code in (409, 422) and "proven by another account" in answer.get_data(as_text=True)
    run_jobs()
    assert squat["adapter"].get_mailbox(f"grab@{SHARED}") is None
    assert db.session.get(Mailbox, squat["ceo_b"]).status == "failed"


def test_taken_copy__deleting_its_mailbox_forgets_it_and_leaves_the_backend_alone(squat, client, auth, run_jobs):
    auth.login("mallory@b-owners.example")
    page = client.post(f"/accounts/{squat['b'].id}/mailboxes/{squat['ceo_b']}/delete", follow_redirects=True)
    assert "nothing was sent to the backend" in page.get_data(as_text=True)
    run_jobs()
    assert db.session.get(Mailbox, squat["ceo_b"]).status == "deleted"
    assert squat["adapter"].get_mailbox(f"ceo@{SHARED}").active, "A's mailbox is untouched"


@pytest.mark.parametrize("delete_mailboxes", [True, False])
def test_taken_copy__deleting_the_account_leaves_the_other_accounts_mailbox_alone(squat, client, auth, run_jobs,
                                                                                 delete_mailboxes):
    auth.login("mallory@b-owners.example")
    answer = client.post(f"/accounts/{squat['b'].id}/delete",
                         data={"confirm": "Attacker", **({"delete_mailboxes": "y"} if delete_mailboxes else {})})
    assert answer.status_code == 302
    run_jobs()
    assert squat["adapter"].get_mailbox(f"ceo@{SHARED}").active


def test_taken_copy__a_job_queued_before_the_name_was_taken_sends_nothing(squat, run_jobs):
    from portal.jobs.services import enqueue
    from portal.mailboxes.services import PROVISION_KIND

    db.session.get(Mailbox, squat["grab_b"]).status = "provisioning"
    enqueue(PROVISION_KIND, {"mailbox_id": squat["grab_b"], "operation": "create"}, subject=f"mailbox:{squat['grab_b']}",
            account=squat["b"].id)
    db.session.commit()
    run_jobs()
    db.session.expire_all()
    mailbox = db.session.get(Mailbox, squat["grab_b"])
    assert mailbox.status == "failed" and "proven by another account" in shown(mailbox.status_reason)
    assert squat["adapter"].get_mailbox(f"grab@{SHARED}") is None
    # The refusal is kept for each reader's language, as the portal's other reasons.
    with in_language("fr"):
        assert "a été prouvé par un autre compte" in shown(mailbox.status_reason)
        assert "a été prouvé par un autre compte" in shown(mailbox.attempts.first().message)


def test_taken_copy__its_settings_are_refused_and_never_sent(squat, backend, client, auth, run_jobs):
    if backend[0] != "local":
        pytest.skip("Mail-in-a-Box has no domain-wide settings")
    before = squat["adapter"].get_domain_settings(SHARED)
    auth.login("mallory@b-owners.example")
    answer = client.post(f"/accounts/{squat['b'].id}/domains/{squat['copy_b'].id}/settings",
                         data={"block_senders": "*@*", "max_users": "0", "send_limit": "0"})
    assert answer.status_code == 422 and "Another account proved that" in answer.get_data(as_text=True)
    run_jobs()
    assert squat["adapter"].get_domain_settings(SHARED) == before
    assert not db.session.get(Domain, squat["copy_b"].id).settings_state, "nothing was queued"


def test_removing_a_domain__waits_until_nothing_routes_mail_to_it(make, backend, dns_zone, run_jobs, client, auth):
    """Removing a domain left its aliases and a domain alias naming it on the backend: whoever proved
    the name next had its mail routed to the old holder (found by the same review)."""
    connection = backend[3]
    owner = make.user("mallory@b-owners.example")
    account = make.account(owner, "Attacker")
    x, y = (prove(dns_zone, run_jobs, domain) for domain in (add_domain(owner, account, SHARED, connection),
                                                            add_domain(owner, account, "own.example.org",
                                                                       connection)))
    db.session.commit()
    inbox = create_mailbox(owner, account, y, "inbox")
    db.session.commit()
    run_jobs()
    auth.login("mallory@b-owners.example")
    assert client.post(f"/accounts/{account.id}/mailboxes/{inbox.id}/aliases",
                       data={"alias": f"sales@{SHARED}"}).status_code == 302
    run_jobs()
    remove = f"/accounts/{account.id}/domains/{x.id}/remove"
    refused = client.post(remove, data={"confirm": SHARED})
    assert refused.status_code == 409
    assert f"still has aliases (sales@{SHARED})" in refused.get_data(as_text=True)
    y.settings = {**(y.settings or {}), "domain_aliases": [SHARED]}
    db.session.execute(db.delete(MailboxAlias))
    db.session.commit()
    refused = client.post(remove, data={"confirm": SHARED})
    assert refused.status_code == 409 and "own.example.org routes mail to" in refused.get_data(as_text=True)
    y.settings = {**y.settings, "domain_aliases": []}
    db.session.commit()
    assert client.post(remove, data={"confirm": SHARED}).status_code == 302
    assert db.session.get(Domain, x.id) is None
