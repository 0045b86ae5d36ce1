"""What the worker writes for people (a mailbox's status reason, its provisioning history) is
stored untranslated and read in each reader's language, whatever the account's language; what it
still writes as text is in its account's language, read once a minute."""

from __future__ import annotations

from portal.extensions import db
from portal.i18n import in_language, shown
from portal.jobs import worker
from portal.mailboxes import services as mailboxes
from portal.mailboxes.models import Mailbox
from tests.mailboxes.conftest import enabled_domain


def _created(owner, account, domain, run_jobs, name: str) -> Mailbox:
    mailbox = mailboxes.create_mailbox(owner, account, domain, name)
    db.session.commit()
    assert run_jobs() >= 1
    return db.session.get(Mailbox, mailbox.id)


def test_worker__writes_for_every_reader_a_french_account_and_an_english_one_alike(owner, account, run_jobs,
                                                                                  client, auth, make):
    domain = enabled_domain(owner, account)
    run_jobs()
    english = _created(owner, account, domain, run_jobs, "sales")
    account.default_locale = "fr"
    db.session.commit()
    worker.ACCOUNT_LANGUAGE_SECONDS, kept = 0.0, worker.ACCOUNT_LANGUAGE_SECONDS  # read the change at once
    try:
        french = _created(owner, account, domain, run_jobs, "ventes")
    finally:
        worker.ACCOUNT_LANGUAGE_SECONDS = kept
    for mailbox in (english, french):
        with in_language("en"):
            assert shown(mailbox.status_reason) == "Created on the backend."
            assert shown(mailbox.attempts.first().message) == "Created on the backend."
        with in_language("fr"):
            assert shown(mailbox.status_reason) == "Créée sur le serveur de messagerie."
            assert shown(mailbox.attempts.first().message) == "Créée sur le serveur de messagerie."
    # Pages: the owner reads English in the French account, a French admin French.
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{account.id}/mailboxes/{french.id}").get_data(as_text=True)
    assert "Created on the backend." in page and "Créée sur le serveur" not in page
    admin = make.user("admin@example.org")
    admin.locale = "fr"
    make.member(account, admin, roles=("administrator",))
    db.session.commit()
    auth.logout()
    auth.login("admin@example.org")
    page = client.get(f"/accounts/{account.id}/mailboxes/{english.id}").get_data(as_text=True)
    assert "Créée sur le serveur de messagerie." in page and "Created on the backend." not in page


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


def test_worker__a_job_the_worker_lost_for_good_reads_in_each_readers_language(app, owner, account, run_jobs):
    """The "gave up … (worker lost the job)" reason on a mailbox was written in the account's
    language: an English reader of a French account read French."""
    from datetime import timedelta

    from portal.jobs.models import FAILED, Job
    from portal.timeutil import utcnow

    domain = enabled_domain(owner, account)
    run_jobs()
    account.default_locale = "fr"
    db.session.commit()
    mailbox = mailboxes.create_mailbox(owner, account, domain, "perdue")
    job = db.session.execute(db.select(Job).where(Job.subject == f"mailbox:{mailbox.id}")).scalar_one()
    job.max_attempts = 1
    db.session.commit()
    worker.ACCOUNT_LANGUAGE_SECONDS, kept = 0.0, worker.ACCOUNT_LANGUAGE_SECONDS
    try:
        dead, rescuer = worker.Worker(app, name="dead", lease_seconds=30), worker.Worker(app, name="rescuer")
        assert dead.claim() is not None  # and then its process died
        assert rescuer.run_job(*rescuer.claim(now=utcnow() + timedelta(seconds=31))) == FAILED
    finally:
        worker.ACCOUNT_LANGUAGE_SECONDS = kept
    db.session.expire_all()
    lost = db.session.get(Mailbox, mailbox.id)
    with in_language("en"):
        assert shown(lost.status_reason) == "Gave up after 2 attempts: gave up after 1 attempt (worker lost the job)"
    with in_language("fr"):
        assert shown(lost.status_reason) == ("Abandon après 2 tentatives\u00a0: abandon après 1 tentative (le processus de "
                                             "traitement a perdu la tâche)")
