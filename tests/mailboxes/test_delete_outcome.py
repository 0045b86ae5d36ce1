"""After a delete, the mailbox says what the backend did: removed (and archived, where the backend
archives), or nothing to do because the backend no longer had it."""

from __future__ import annotations

import pytest
import requests

from portal.extensions import db
from portal.mailboxes import services
from portal.mailboxes.models import DELETED, ENABLED, ProvisioningAttempt
from portal.i18n import shown
from tests.emulated import connection_environ, dimail_environ
from tests.mailboxes.conftest import enabled_domain
from tests.servers.emu_mailinabox import MailInABoxEmulator

BOX_ADMIN = ("admin@box.test", "miab-admin-secret")


@pytest.fixture
def box():
    with MailInABoxEmulator(*BOX_ADMIN) as emulator:
        yield emulator


@pytest.fixture
def app_environ(dimail, box):
    """The connection corp on dimail, and box on Mail-in-a-Box."""
    return {**dimail_environ(dimail), **connection_environ("box", "mailinabox", url=box.url, user=BOX_ADMIN[0],
                                                           password=BOX_ADMIN[1])}


def _enabled_mailbox(owner, account, run_jobs, domain, local_part: str):
    mailbox = services.create_mailbox(owner, account, domain, local_part, first_name="Ann", last_name="Lee")
    db.session.commit()
    run_jobs()
    db.session.refresh(mailbox)
    assert mailbox.status == ENABLED, shown(mailbox.status_reason)
    return mailbox


def _delete(owner, mailbox, run_jobs) -> str:
    services.delete(owner, mailbox)
    db.session.commit()
    run_jobs()
    db.session.refresh(mailbox)
    assert mailbox.status == DELETED, shown(mailbox.status_reason)
    last = db.session.execute(db.select(ProvisioningAttempt).where(ProvisioningAttempt.mailbox_id == mailbox.id)
                              .order_by(ProvisioningAttempt.id.desc()).limit(1)).scalar_one()
    assert (last.operation, last.outcome, shown(last.message)) == ("delete", "ok", shown(mailbox.status_reason))
    return shown(mailbox.status_reason)


def test_delete__on_mail_in_a_box_says_the_box_keeps_the_mail_archived(owner, account, run_jobs, box):
    domain = enabled_domain(owner, account, "corp.example.org", "box")
    mailbox = _enabled_mailbox(owner, account, run_jobs, domain, "ann")

    message = _delete(owner, mailbox, run_jobs)

    assert message == "Removed on the backend, which keeps any mail it held archived."
    assert box.users["ann@corp.example.org"]["status"] == "inactive"


def test_delete__a_user_mail_in_a_box_no_longer_had_says_whether_the_box_kept_its_mail(owner, account, run_jobs, box):
    """Removed behind the portal's back, a user with a mail folder stays archived on the box (listed
    inactive; seen on the real v75 daemon): the page must not say nothing was left to archive. A user
    without a folder is really gone."""
    domain = enabled_domain(owner, account, "corp.example.org", "box")
    mailbox = _enabled_mailbox(owner, account, run_jobs, domain, "ann")
    box.folders_on_creation = False
    gone = _enabled_mailbox(owner, account, run_jobs, domain, "bob")
    for address in (mailbox.address, gone.address):
        answer = requests.post(f"{box.url}/admin/mail/users/remove", data={"email": address}, auth=BOX_ADMIN,
                               timeout=2)
        assert answer.text.startswith("mail user removed")

    messages = [_delete(owner, m, run_jobs) for m in (mailbox, gone)]

    assert box.users[mailbox.address]["status"] == "inactive" and gone.address not in box.users
    assert messages == [
        "The backend had already removed this mailbox; it keeps the mail it held archived.",
        "The backend no longer had this mailbox: nothing was left to archive.",
    ]


def test_delete__on_dimail_says_deleted_or_already_gone(owner, account, run_jobs, dimail):
    domain = enabled_domain(owner, account, "corp.example", "corp", dimail)
    kept, vanished = (_enabled_mailbox(owner, account, run_jobs, domain, name) for name in ("kept", "vanished"))
    del dimail.mailboxes[vanished.address]

    assert _delete(owner, kept, run_jobs) == "Deleted."
    assert _delete(owner, vanished, run_jobs) == "The backend no longer had this mailbox: nothing was left to delete."
