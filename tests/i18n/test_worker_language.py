"""The worker writes what people read (a mailbox's status reason, its provisioning history) in the
language of the account the job belongs to, whoever's request queued it."""

from __future__ import annotations

from portal.extensions import db
from portal.jobs import worker
from portal.mailboxes import services as mailboxes
from portal.mailboxes.models import Mailbox
from tests.mailboxes.conftest import enabled_domain


def _created(owner, account, domain, run_jobs, name: str) -> Mailbox:
    mailbox = mailboxes.create_mailbox(owner, account, domain, name)
    db.session.commit()
    assert run_jobs() >= 1
    return db.session.get(Mailbox, mailbox.id)


def test_worker__writes_a_french_accounts_work_in_french_and_an_english_one_in_english(owner, account, run_jobs):
    domain = enabled_domain(owner, account)
    run_jobs()
    english = _created(owner, account, domain, run_jobs, "sales")
    assert english.status_reason == "Created on the backend."
    assert english.attempts.first().message == "Created on the backend."

    account.default_locale = "fr"
    db.session.commit()
    worker.ACCOUNT_LANGUAGE_SECONDS, kept = 0.0, worker.ACCOUNT_LANGUAGE_SECONDS  # read the change at once
    try:
        french = _created(owner, account, domain, run_jobs, "ventes")
    finally:
        worker.ACCOUNT_LANGUAGE_SECONDS = kept
    assert french.status_reason == "Créée sur le serveur de messagerie."
    assert french.attempts.first().message == "Créée sur le serveur de messagerie."
    # The owner who asked reads English: the job's language is its account's, not the requester's.
    assert owner.locale in (None, "en")


def test_worker__reads_an_accounts_language_once_a_minute_not_once_a_job(app, owner, account, run_jobs):
    from sqlalchemy import event

    domain = enabled_domain(owner, account)
    run_jobs()
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        for name in ("a1", "a2", "a3"):
            mailboxes.create_mailbox(owner, account, domain, name)
        db.session.commit()
        seen.clear()
        assert run_jobs() == 3
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    reads = [s for s in seen if "default_locale" in s]
    assert len(reads) <= 1, reads
