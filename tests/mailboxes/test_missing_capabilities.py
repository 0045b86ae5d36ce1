"""Where the mailbox page has no Disable or new-password button because the backend cannot do it,
it says why, in the backend's own note, in the button's place."""

from __future__ import annotations

import pytest

from portal.extensions import db
from portal.mailboxes import services
from portal.mailboxes.models import ENABLED
from portal.i18n import shown
from tests.emulated import connection_environ, dimail_environ
from tests.mailboxes.conftest import enabled_domain
from tests.servers.emu_dimail import DimailEmulator
from tests.servers.emu_mailinabox import MailInABoxEmulator

BOX_ADMIN = ("admin@box.test", "miab-admin-secret")


@pytest.fixture
def public_dimail():
    with DimailEmulator(mode="public") as emulator:
        yield emulator


@pytest.fixture
def box():
    with MailInABoxEmulator(*BOX_ADMIN) as emulator:
        yield emulator


@pytest.fixture
def app_environ(public_dimail, box):
    """The connection corp on a public dimail (no password reset, "active" ignored), box on Mail-in-a-Box."""
    return {**dimail_environ(public_dimail), **connection_environ("box", "mailinabox", url=box.url,
                                                                  user=BOX_ADMIN[0], password=BOX_ADMIN[1])}


def _mailbox_page(client, auth, owner, account, run_jobs, domain) -> str:
    mailbox = services.create_mailbox(owner, account, domain, "ann", first_name="Ann", last_name="Lee")
    db.session.commit()
    run_jobs()  # the worker learns what the server offers and records it for the page
    db.session.refresh(mailbox)
    assert mailbox.status == ENABLED, shown(mailbox.status_reason)
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{account.id}/mailboxes/{mailbox.id}")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_mailbox_page__a_dimail_without_reset_or_disable_says_why_in_place_of_both_buttons(
        client, auth, owner, account, run_jobs, public_dimail):
    domain = enabled_domain(owner, account, "corp.example", "corp", public_dimail)

    page = _mailbox_page(client, auth, owner, account, run_jobs, domain)

    assert ">Disable</button>" not in page and "make a new password" not in page
    assert ('<p class="hint" id="disable-why">This dimail ignores &#34;active&#34; when a mailbox is changed: '
            "mailboxes cannot be disabled here; delete them instead.</p>") in page
    assert ('<p class="hint" id="password-why">This dimail cannot reset passwords (no reset_password route): '
            "a new password must be set in Open-Xchange by its operator.</p>") in page


def test_mailbox_page__mail_in_a_box_explains_the_missing_disable_and_keeps_its_password_button(
        client, auth, owner, account, run_jobs, box):
    domain = enabled_domain(owner, account, "corp.example.org", "box")

    page = _mailbox_page(client, auth, owner, account, run_jobs, domain)

    assert ">Disable</button>" not in page
    assert ('<p class="hint" id="disable-why">Mail-in-a-Box cannot suspend a user; delete (archive) the mailbox '
            "instead.</p>") in page
    assert "Set a new password</button>" in page and 'id="password-why"' not in page


def test_mailbox_page__no_note_where_the_backend_can_do_both(client, auth, owner, account, run_jobs):
    domain = enabled_domain(owner, account)

    page = _mailbox_page(client, auth, owner, account, run_jobs, domain)

    assert ">Disable</button>" in page and "Set a new password</button>" in page
    assert 'id="disable-why"' not in page and 'id="password-why"' not in page
