"""Kept pages (portal.web.pagecache): answered again only to the same session's same request while
the database is unchanged, within a few seconds; any write, of any process, makes them stale."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text, update

from portal import timeutil
from portal.accounts.models import Membership
from portal.audit.models import AuditEvent
from portal.domains.services import add_domain
from portal.extensions import db
from portal.jobs.services import enqueue
from portal.jobs.worker import Worker
from portal.roles.services import system_role
from portal.web import pagecache
from tests.web.test_list_statements import counted

HIT, STORED = "hit", "stored"


@pytest.fixture
def app_settings():
    return {"PAGE_CACHE": True, "PAGE_CACHE_SECONDS": 10}


@pytest.fixture(autouse=True)
def clock_held_still(monkeypatch):
    """Pages are kept for a slice of time: the portal's clock, as the cache reads it, is held still
    so that no slice ends between two requests a test expects answered alike (one did, in CI)."""
    now = timeutil.utcnow()
    monkeypatch.setattr(timeutil, "utcnow", lambda: now)


def generation() -> int:
    value = pagecache.current_generation()
    db.session.commit()
    return value


def kept(response) -> str | None:
    assert response.status_code == 200, response.status_code
    return response.headers.get(pagecache.HEADER)


def log_in(client, email):
    from tests.conftest import PASSWORD

    assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 302
    # The first page after log-in gives the session its CSRF secret: that page is not kept.
    assert client.get("/", follow_redirects=True).status_code == 200


@pytest.fixture
def members_url(client, account):
    log_in(client, "owner@example.org")
    return f"/accounts/{account.id}/members"


def test_a_page_is_answered_again_to_the_same_request_and_the_second_runs_only_the_gate(client, members_url):
    first = client.get(members_url)
    assert kept(first) == STORED
    with counted() as statements:
        second = client.get(members_url)
    assert kept(second) == HIT
    assert second.get_data() == first.get_data()
    # The session (which reads the generation too) and the access check: nothing of the list itself.
    assert len(statements) == 2, "\n".join(statements)
    assert "FROM user_sessions" in statements[0] and "data_generation" in statements[0]
    assert not [sql for sql in statements if "FROM memberships" in sql and "LIMIT" in sql]


def test_a_write_through_the_portal_makes_the_page_stale(client, make, account, members_url):
    helper = make.member(account, make.user("helper@example.org"))
    assert kept(client.get(members_url)) == STORED
    before = generation()
    answer = client.post(f"/accounts/{account.id}/members/{helper.id}/roles",
                         data={"role_id": system_role("administrator").id})
    assert answer.status_code == 302
    assert generation() > before
    page = client.get(members_url)
    assert kept(page) != HIT  # the flash of the grant is shown once, and that page is not kept
    assert "Administrator" in page.get_data(as_text=True)
    again = client.get(members_url)
    assert kept(again) == STORED and "now has the role" not in again.get_data(as_text=True)
    assert kept(client.get(members_url)) == HIT


def test_a_write_of_another_process_core_or_outside_a_transaction_makes_the_page_stale(client, app, owner, account,
                                                                                       members_url):
    audit_url = f"/accounts/{account.id}/audit"
    assert kept(client.get(audit_url)) == STORED
    assert kept(client.get(audit_url)) == HIT
    # A Core insert on a connection of its own, as the import and the worker write.
    with db.engine.begin() as connection:
        connection.execute(insert(AuditEvent), [{"at": timeutil.utcnow(), "actor_label": "Imported",
                                                 "account_id": account.id, "action": "user.created",
                                                 "family": "users", "target_type": "user",
                                                 "target_label": "zoe.zed@example.org", "source": "web"}])
    page = client.get(audit_url)
    assert kept(page) == STORED and "zoe.zed@example.org" in page.get_data(as_text=True)
    # The worker's claim, a statement outside a transaction: counted when it took a job, and only then.
    add_domain(owner, account, "example.org", "local")
    db.session.commit()
    domain_url = f"/accounts/{account.id}/domains"
    worker = Worker(app, name="test-worker")
    while worker.claim() is not None:  # the domain's first check
        pass
    assert kept(client.get(domain_url)) == STORED
    before = generation()
    assert worker.claim() is None  # nothing due: an idle look changes nothing
    assert generation() == before
    assert kept(client.get(domain_url)) == HIT
    enqueue("mail.send", {})
    db.session.commit()
    queued = generation()
    assert queued == before + 1
    assert worker.claim() is not None
    assert generation() == queued + 1
    assert kept(client.get(domain_url)) == STORED


def test_statements_outside_a_transaction_are_run_by_the_worker_s_claim_alone():
    """They are not counted by themselves (pagecache.raise_now): a new one must count its writes."""
    root = Path(pagecache.__file__).parents[1]
    places = sorted(str(path.relative_to(root)) for path in root.rglob("*.py")
                    if "AUTOCOMMIT" in path.read_text() and path.name != "pagecache.py")
    assert places == ["jobs/worker.py"]
    assert Path(root / "jobs/worker.py").read_text().count("AUTOCOMMIT") == 1


def test_a_write_that_changes_no_row_counts_for_nothing(app, account):
    before = generation()
    db.session.execute(update(Membership).where(Membership.id == -1).values(created_at=timeutil.utcnow()))
    db.session.commit()
    assert generation() == before


def test_reads_and_rollbacks_leave_the_generation_as_it_was(app, account):
    before = generation()
    db.session.execute(select(Membership.id)).all()
    db.session.commit()
    db.session.execute(update(Membership).values(created_at=Membership.created_at))
    db.session.rollback()
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        connection.commit()
    assert generation() == before
    db.session.execute(update(Membership).values(created_at=Membership.created_at))
    db.session.commit()
    assert generation() == before + 1


def test_never_answered_to_another_session_nor_to_someone_with_other_rights(app, client, make, account, members_url):
    helper = make.member(account, make.user("viewer@example.org"), permissions=("members.view",))
    assert kept(client.get(members_url)) == STORED
    owners_page = client.get(members_url).get_data(as_text=True)
    assert "bulk-action" in owners_page

    other = app.test_client()
    log_in(other, "viewer@example.org")
    assert kept(other.get(members_url)) == STORED
    viewer_page = other.get(members_url)
    assert kept(viewer_page) == HIT  # their own page, the second time
    assert "bulk-action" not in viewer_page.get_data(as_text=True)  # they may take no action
    # Losing the right is a write: the gate refuses at once.
    db.session.execute(update(Membership).where(Membership.id == helper.id).values(created_at=timeutil.utcnow()))
    from portal.roles.models import Grant
    db.session.execute(Grant.__table__.delete().where(Grant.membership_id == helper.id))
    db.session.commit()
    assert other.get(members_url).status_code == 403

    # The same person in a second session (another browser) gets a page of their own.
    second = app.test_client()
    log_in(second, "owner@example.org")
    assert kept(second.get(members_url)) == STORED


def test_kept_apart_by_language_htmx_and_address(client, members_url):
    english = client.get(members_url, headers={"Accept-Language": "en"})
    assert kept(english) == STORED
    french = client.get(members_url, headers={"Accept-Language": "fr"})
    assert kept(french) == STORED and 'lang="fr"' in french.get_data(as_text=True)
    assert kept(client.get(members_url, headers={"Accept-Language": "en"})) == HIT
    fragment = client.get(members_url, headers={"Accept-Language": "en", "HX-Request": "true"})
    assert kept(fragment) == STORED and "<html" not in fragment.get_data(as_text=True)
    searched = client.get(members_url + "?q=owner", headers={"Accept-Language": "en"})
    assert kept(searched) == STORED


def test_kept_for_a_slice_of_time_and_the_domain_page_for_one_second(client, monkeypatch, owner, account, members_url):
    domain = add_domain(owner, account, "example.org", "local")
    db.session.commit()
    domain_url = f"/accounts/{account.id}/domains/{domain.id}"
    start = timeutil.utcnow().replace(microsecond=0) + timedelta(seconds=30)
    start -= timedelta(seconds=start.second % 10)  # the start of a 10-second slice
    clock = {"now": start}
    monkeypatch.setattr(timeutil, "utcnow", lambda: clock["now"])
    assert kept(client.get(members_url)) == STORED
    assert kept(client.get(domain_url)) == STORED
    clock["now"] = start + timedelta(seconds=1)
    assert kept(client.get(members_url)) == HIT
    assert kept(client.get(domain_url)) == STORED  # its countdown moved on
    clock["now"] = start + timedelta(seconds=10)
    assert kept(client.get(members_url)) == STORED


def test_a_view_that_changes_the_session_is_not_kept(client, make, owner, account):
    log_in(client, "owner@example.org")
    other = make.account(owner, "Other")
    client.get(f"/accounts/{other.id}/")  # the Overview remembers the account last seen
    overview = f"/accounts/{account.id}/"
    assert kept(client.get(overview)) is None  # it changed the session: not kept
    assert kept(client.get(overview)) == STORED
    assert kept(client.get(overview)) == HIT


def test_posts_and_refusals_are_never_kept(app, client, make, account, members_url):
    # A POST answered 200 (the new-mailbox form looking for an owner), twice: rendered both times.
    for _ in range(2):
        post = client.post(f"/accounts/{account.id}/mailboxes/new", data={"action": "find-owner", "owner_q": "o"})
        assert post.status_code == 200 and pagecache.HEADER not in post.headers
    # Refusals, twice each: another account's id, a huge one, a NUL byte; a member without the right.
    other = make.account(make.user("stranger@example.org"), "Elsewhere")
    for url in (f"/accounts/{other.id}/members", f"/accounts/{10 ** 30}/members",
                f"/accounts/{account.id}/members?q=a%00b"):
        for _ in range(2):
            answer = client.get(url)
            assert answer.status_code in (400, 404) and pagecache.HEADER not in answer.headers, url
    make.member(account, make.user("nobody@example.org"))
    viewer = app.test_client()
    log_in(viewer, "nobody@example.org")
    for _ in range(2):
        answer = viewer.get(members_url)
        assert answer.status_code == 403 and pagecache.HEADER not in answer.headers


def test_the_cache_is_bounded_least_recently_used_first():
    cache = pagecache.PageCache(limit=1000, seconds=10)
    for number in range(5):
        cache.put(bytes([number]), pagecache.Kept(b"x" * 240, 200, ()))
    assert len(cache) == 4 and cache.size == 960
    assert cache.get(bytes([0])) is None and cache.get(bytes([1])) is not None
    cache.put(bytes([9]), pagecache.Kept(b"y" * 240, 200, ()))
    assert cache.get(bytes([1])) is not None and cache.get(bytes([2])) is None  # 1 was used
    cache.put(bytes([10]), pagecache.Kept(b"z" * 900, 200, ()))  # over a quarter of the whole: not kept
    assert cache.get(bytes([10])) is None and cache.size <= 1000


def test_a_connection_a_migration_marked_counts_writes_again_once_returned(app, account):
    before = generation()
    with db.engine.connect() as connection:
        connection.info[pagecache.NOT_COUNTED] = True
        connection.execute(update(Membership).values(created_at=Membership.created_at))
        connection.commit()
    assert generation() == before
    db.session.execute(update(Membership).values(created_at=Membership.created_at))
    db.session.commit()
    assert generation() == before + 1


@pytest.mark.parametrize("app_settings", [{"PAGE_CACHE": False}])
def test_turned_off(client, members_url, app):
    assert "page_cache" not in app.extensions
    assert pagecache.HEADER not in client.get(members_url).headers
    assert pagecache.HEADER not in client.get(members_url).headers


# -- from an attacker-side review ------------------------------------------------------------

def test_bookkeeping_no_kept_page_shows_counts_for_nothing(app, client, account, members_url, run_jobs):
    from portal.auth.models import UserSession
    from portal.jobs.worker import _publish_heartbeat

    assert kept(client.get(members_url)) == STORED
    before = generation()
    # A session's last use (touched each minute of every session), a worker's heartbeat.
    db.session.execute(update(UserSession).values(last_seen_at=timeutil.utcnow()))
    db.session.commit()
    with app.app_context():
        _publish_heartbeat(Worker(app, name="beating"))
        db.session.commit()
    assert generation() == before
    assert kept(client.get(members_url)) == HIT


def test_any_other_htmx_header_is_the_same_page(client, members_url):
    """Keyed on every HX-* header, one member could fill the cache with copies of one page."""
    assert kept(client.get(members_url)) == STORED
    for number in range(3):
        assert kept(client.get(members_url, headers={"HX-Junk": str(number), "HX-Current-URL": "x"})) == HIT


def test_a_claim_whose_count_fails_still_hands_the_job_to_the_worker(app, monkeypatch, caplog):
    enqueue("mail.send", {})
    db.session.commit()

    def fails(*_arguments):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(pagecache, "_raise", fails)
    claimed = Worker(app, name="test-worker").claim()
    assert claimed is not None  # the job is the worker's to run, not held by nobody for its lease
    assert "could not raise the data generation" in caplog.text


def test_a_process_that_saw_no_table_counts_and_keeps_once_it_is_there(app, client, make, account, members_url,
                                                                       monkeypatch):
    """A process that wrote before the migration ran elsewhere: it looks again (every 30 s; here at
    once), then counts its writes and keeps pages; it never keeps pages while it counts nothing."""
    schema = pagecache._schema(db.engine)
    schema.present, schema.checked = False, 10 ** 9  # seen missing just now
    monkeypatch.setattr(pagecache.time, "monotonic", lambda: 10 ** 9)
    assert pagecache.HEADER not in client.get(members_url).headers  # nothing kept
    before = generation()
    make.member(account, make.user("new@example.org"))
    assert generation() == before  # not counted either
    monkeypatch.setattr(pagecache.time, "monotonic", lambda: 10 ** 9 + pagecache.RECHECK_SECONDS)
    assert kept(client.get(members_url)) == STORED
    helper = make.member(account, make.user("newer@example.org"))
    assert generation() > before
    page = client.get(members_url)
    assert kept(page) == STORED and helper.user.email in page.get_data(as_text=True)
