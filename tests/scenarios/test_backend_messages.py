"""Every failure the real servers were seen giving (reference/OBSERVED.md) reaches the administrator in
the server's own words: in the attempt history and on the mailbox page, through the worker.

Some mailboxes here are written straight into the database, as rows made before the portal refused
such names up front would be: the point is what the worker does with the server's answer.
"""

from __future__ import annotations

import html

import pytest

from portal.domains.models import ENABLED as DOMAIN_ENABLED
from portal.domains.models import Domain
from portal.extensions import db
from portal.mailboxes import services
from portal.mailboxes.models import ENABLED, FAILED, Mailbox
from portal.i18n import shown
from tests.emulated import connection_environ, serve_on_dimail
from tests.servers.emu_dimail import DimailEmulator
from tests.servers.emu_mailinabox import NOT_LOWERCASE, RESERVED, MailInABoxEmulator

from .conftest import BOX_ADMIN


@pytest.fixture
def public():
    with DimailEmulator(mode="public") as emulator:
        yield emulator


@pytest.fixture
def pretender():
    """A dimail whose OpenAPI document says PATCH takes "active", and which ignores it as the public one does."""
    with DimailEmulator(mode="public") as emulator:
        emulator.openapi = DimailEmulator(mode="current").openapi
        yield emulator


@pytest.fixture
def box():
    with MailInABoxEmulator() as emulator:
        yield emulator


@pytest.fixture
def app_environ(public, pretender, box):
    def dimail(name, emulator, password=None):
        return connection_environ(name, "dimail", url=emulator.url, user=emulator.user,
                                  password=password or emulator.password)
    return {**dimail("pub", public), **dimail("pretender", pretender), **dimail("wrongpw", public, "not-it"),
            **connection_environ("box", "mailinabox", url=box.url, user=BOX_ADMIN[0], password=BOX_ADMIN[1]),
            **connection_environ("wrongbox", "mailinabox", url=box.url, user=BOX_ADMIN[0], password="not-it")}


def _domain(account, name: str, connection: str) -> Domain:
    domain = Domain(account_id=account.id, name=name, connection=connection, status=DOMAIN_ENABLED)
    domain.verified_at = domain.created_at = db.func.now()
    db.session.add(domain)
    db.session.commit()
    return domain


def _queue(account, domain: Domain, local_part: str, operation: str = "create", **fields) -> Mailbox:
    """A mailbox row and its provisioning job, as a web request writes them."""
    mailbox = Mailbox(account_id=account.id, domain_id=domain.id, local_part=local_part,
                      address=f"{local_part}@{domain.name}", first_name="Jane", last_name="Doe", **fields)
    db.session.add(mailbox)
    db.session.flush()
    services._start(mailbox, operation)
    db.session.commit()
    return mailbox


def _shown(client, auth, account, mailbox: Mailbox) -> str:
    auth.login("owner@example.org")
    return html.unescape(client.get(f"/accounts/{account.id}/mailboxes/{mailbox.id}").get_data(as_text=True))


@pytest.mark.parametrize(("local_part", "domain_name", "words"), [
    ("postmaster", "corp.example.org", RESERVED),
    ("Jane", "corp.example.org", NOT_LOWERCASE),
    ("jane", "corp.test", "Invalid email address."),
])
def test_mailinabox__a_refused_address_fails_with_the_boxs_words(account, run_jobs, client, auth, local_part,
                                                                  domain_name, words):
    mailbox = _queue(account, _domain(account, domain_name, "box"), local_part)

    run_jobs()

    db.session.refresh(mailbox)
    assert (mailbox.status, shown(mailbox.status_reason)) == (FAILED, f"Mail-in-a-Box: {words}")
    assert [(a.operation, a.outcome, a.message) for a in mailbox.attempts] == [
        ("create", "failed", f"Mail-in-a-Box: {words}")]
    assert words in _shown(client, auth, account, mailbox)


def test_mailinabox__refused_credentials_are_shown_with_the_boxs_reason(account, run_jobs, client, auth):
    mailbox = _queue(account, _domain(account, "corp.example.org", "wrongbox"), "jane")

    run_jobs()

    db.session.refresh(mailbox)
    expected = "Mail-in-a-Box refused the credentials (HTTP 401): Incorrect email address or password."
    assert (mailbox.status, mailbox.attempts.first().message) == (FAILED, expected)
    assert expected in _shown(client, auth, account, mailbox)


def test_dimail__refused_credentials_are_shown_with_dimails_words(account, run_jobs, client, auth, public):
    domain = _domain(account, "corp.example.org", "wrongpw")
    serve_on_dimail(public, domain.name)
    mailbox = _queue(account, domain, "jane")

    run_jobs()

    db.session.refresh(mailbox)
    expected = "dimail refused the credentials (HTTP 403): Permission denied"
    assert (mailbox.status, mailbox.attempts.first().message) == (FAILED, expected)
    assert expected in _shown(client, auth, account, mailbox)


def test_dimail__a_mailbox_on_a_domain_dimail_does_not_know_says_so_not_server_error(account, run_jobs, public):
    mailbox = _queue(account, _domain(account, "corp.example.org", "pub"), "jane")

    run_jobs()

    db.session.refresh(mailbox)
    assert mailbox.status == FAILED
    assert shown(mailbox.status_reason) == "dimail does not know the domain corp.example.org; set the domain up first"


def test_dimail__ignored_active_leaves_the_mailbox_enabled_with_the_reason(account, owner, run_jobs, client, auth,
                                                                           pretender):
    domain = _domain(account, "corp.example.org", "pretender")
    serve_on_dimail(pretender, domain.name)
    mailbox = _queue(account, domain, "jane")
    run_jobs()
    services.set_active(owner, mailbox, False)  # the portal believes this dimail can disable
    db.session.commit()

    run_jobs()

    db.session.refresh(mailbox)
    assert (mailbox.status, mailbox.want_active) == (ENABLED, True)
    assert shown(mailbox.status_reason).startswith("dimail answered the change with success but did not keep it: "
                                            "jane@corp.example.org is still enabled.")
    attempt = mailbox.attempts.first()
    assert (attempt.operation, attempt.outcome, shown(attempt.message)) == ("set_active", "failed", shown(mailbox.status_reason))
    page = _shown(client, auth, account, mailbox)
    assert "is still enabled" in page and ">Disable</button>" not in page
    domain_page = html.unescape(client.get(f"/accounts/{account.id}/domains/{domain.id}").get_data(as_text=True))
    assert 'This dimail ignores "active" when a mailbox is changed' in domain_page
    with pytest.raises(services.MailboxError, match="cannot disable"):
        services.set_active(owner, mailbox, False)


@pytest.mark.parametrize(("operation", "words"), [
    ("set_active", 'This dimail ignores "active"'),
    ("reset_password", "This dimail cannot reset passwords (no reset_password route)"),
])
def test_dimail_public__a_change_queued_before_the_worker_knew_stays_undone_with_why(account, run_jobs, client, auth,
                                                                                     public, operation, words):
    domain = _domain(account, "corp.example.org", "pub")
    serve_on_dimail(public, domain.name)
    mailbox = _queue(account, domain, "jane")
    run_jobs()
    mailbox.want_active = operation != "set_active"
    services._start(mailbox, operation)
    db.session.commit()

    run_jobs()

    db.session.refresh(mailbox)
    assert (mailbox.status, mailbox.want_active) == (ENABLED, True)
    assert words in shown(mailbox.status_reason) and words in mailbox.attempts.first().message
    assert public.mailboxes["jane@corp.example.org"]["active"] == "yes"
    assert words in _shown(client, auth, account, mailbox)
