"""Rendered pages kept for a few seconds, for the same session, while the database is unchanged.

A list of 10,000 people or the Overview takes 3-9 ms to read and render, and the same person
asks for it again and again (paging back and forth, the list after each action, a second tab).
The views marked ``@cached_page`` keep what they answered in this process and answer the same
request with it again, as long as nothing in the database has changed since, and for at most
``PORTAL_PAGE_CACHE_SECONDS``.

**What counts as unchanged.** The table ``data_generation`` holds one number. Every transaction,
of any process, that wrote anything (an insert, update or delete, or a statement that may have
written; the same test as ``portal.readonly``) adds one to it just before it commits, in the same
transaction: a reader sees the new number exactly when it sees the new data. A statement run
outside a transaction is counted by whoever runs it: the worker's claim of a job, the only one,
adds one right after it took a job (``raise_now``). A write that changed no row counts for
nothing, nor does a write to bookkeeping no kept page shows (``UNSHOWN``: sessions' last use,
worker heartbeats, failed log-ins, API tokens' rate windows). A page is kept under the number the
request read first (with its session), so after any other write anywhere every kept page is
stale and rendered again. (Migrations do not count: their connection is marked; restart the
processes after them, as the README says.)

**Whose page.** The gate runs first: the access rule, the live session and the person's
permissions are checked on every request as for any other. A kept page is answered only to a
request with the same session (the whole signed session: its server-side session token, CSRF
secret, sign-in freshness...), the same URL (host, path and query), the same htmx headers
(those the views read: ``HTMX_HEADERS``), the same language and time zone, within the same slice of
``PORTAL_PAGE_CACHE_SECONDS`` of the portal's clock (a page that counts seconds takes slices of
one second). So a kept page is never shown to another session, even of the same person.

**What is never kept.** Anything but a GET answered 200; a request with messages waiting to be
shown (they are shown once); a request whose view wrote to the database or changed the session,
or that set a cookie. The cache is per process, bounded by ``PORTAL_PAGE_CACHE_MB`` (least
recently used pages go first), and ``PORTAL_PAGE_CACHE=false`` turns it off. A kept answer
carries ``X-Portal-Cache: hit``, a fresh one that was kept ``X-Portal-Cache: stored``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timezone

from flask import Flask, Response, current_app, g, has_request_context, request, session
from sqlalchemy import event, literal_column, text

from portal import timeutil
from portal.extensions import db
from portal.i18n import current_language, select_timezone
from portal.readonly import wrote

# The connection's current transaction wrote (its generation is raised when it commits).
_PENDING = "portal_generation_pending"
# A connection whose writes are not counted (a migration's).
NOT_COUNTED = "portal_generation_not_counted"
# This request wrote, after the point a view was entered (a page it answered is not kept).
_REQUEST_WROTE = "_portal_request_wrote"

# SQLite: a row, raised in the transaction that wrote (SQLite has one writer at a time anyway).
# PostgreSQL: a sequence, advanced just after the commit (a row there would have every writing
# transaction wait for the one before to commit; a review measured 7,428 -> 3,638 commits a second
# for 8 writers). A reader that reads the new number started after the commit, so sees its data.
RAISE = {"sqlite": "UPDATE data_generation SET n = n + 1 WHERE id = 1",
         "postgresql": "SELECT nextval('data_generation_seq')"}
READ = {"sqlite": "SELECT n FROM data_generation WHERE id = 1",
        "postgresql": "SELECT last_value FROM data_generation_seq"}
_NOTED = "_portal_generation"
HEADER = "X-Portal-Cache"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kept:
    body: bytes
    status: int
    headers: tuple[tuple[str, str], ...]


class PageCache:
    """Kept answers by key, least recently used dropped first past ``limit`` bytes."""

    def __init__(self, limit: int, seconds: int):
        self.limit = limit
        self.seconds = seconds
        self.size = 0
        self._kept: OrderedDict[bytes, Kept] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> Kept | None:
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
            return found

    def put(self, key: bytes, kept: Kept) -> bool:
        """Keep ``kept`` (not a page of over a quarter of the whole); whether it was kept."""
        if len(kept.body) > self.limit // 4:
            return False
        with self._lock:
            earlier = self._kept.pop(key, None)
            if earlier is not None:
                self.size -= len(earlier.body)
            self._kept[key] = kept
            self.size += len(kept.body)
            while self.size > self.limit:
                _, dropped = self._kept.popitem(last=False)
                self.size -= len(dropped.body)
        return True

    def __len__(self) -> int:
        return len(self._kept)


DDL = re.compile(r"\s*(CREATE|DROP|ALTER)\b", re.IGNORECASE)
RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
PRESENT = {
    "sqlite": "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'data_generation'",
    "postgresql": "SELECT count(*) FROM pg_class WHERE oid = to_regclass('data_generation_seq')",
}
# Bookkeeping no kept page shows, written all the time: a session's last use (each minute of each
# session), worker heartbeats (every 30 s), failed log-ins and second steps, an API token's rate
# window and last use, the API's idempotency keys. Counted, each would make every kept page stale
# (a review). The access check reads sessions on every request, kept page or not.
UNSHOWN = frozenset({"user_sessions", "worker_beats", "login_failures", "factor_failures", "api_tokens",
                     "idempotent_requests"})
# The htmx headers a kept view's answer depends on (an answer for any other header is the same
# page: keyed on every HX-* header, a member could fill the cache with copies; a review).
HTMX_HEADERS = ("HX-Request", "HX-Boosted", "HX-History-Restore-Request", "HX-Target")
RECHECK_SECONDS = 30.0


class _Schema:
    """Whether the database has the table, as this process last saw: one answer for counting writes
    and for keeping pages. Looked at again after any change of the schema this process makes, and
    every RECHECK_SECONDS while the table is missing (a process that wrote before ``db upgrade`` ran
    elsewhere counts its writes within that time; a review). A missing table is not written to,
    which on PostgreSQL would abort the transaction."""

    def __init__(self, dialect: str):
        self.sql = PRESENT[dialect]
        self.present: bool | None = None
        self.checked = 0.0

    def stale(self) -> bool:
        return self.present is None or (not self.present and time.monotonic() - self.checked >= RECHECK_SECONDS)

    def look(self, count) -> bool:
        if self.stale():
            self.present, self.checked = bool(count(self.sql)), time.monotonic()
        return bool(self.present)


_SCHEMA: weakref.WeakKeyDictionary[object, _Schema] = weakref.WeakKeyDictionary()


def _schema(engine) -> _Schema:
    found = _SCHEMA.get(engine)
    if found is None:
        found = _SCHEMA[engine] = _Schema(engine.dialect.name)
    return found


def _raise(engine, dbapi_connection) -> None:
    # On the driver's own cursor: not seen by SQLAlchemy's events (no recursion, and the counts of
    # statements tests and benches take are of the portal's own statements).
    cursor = dbapi_connection.cursor()

    def count(sql: str) -> int:
        cursor.execute(sql)
        return cursor.fetchone()[0]

    try:
        if _schema(engine).look(count):
            cursor.execute(RAISE[engine.dialect.name])
    finally:
        cursor.close()


def _driver_connection(connection):
    return getattr(connection, "dbapi_connection", None) or connection


def _advance_after_commit(engine) -> None:
    """PostgreSQL: advance the sequence once the transaction that wrote has committed, outside any
    transaction (nothing is left open on the connection). A failure is logged: the write stands, and
    kept pages show it once their time runs out."""
    dialect = engine.dialect
    commit = dialect.do_commit

    def do_commit(connection):
        commit(connection)
        driver = _driver_connection(connection)
        if driver not in _AFTER_COMMIT:
            return
        _AFTER_COMMIT.discard(driver)
        try:
            driver.autocommit = True
            try:
                _raise(engine, driver)
            finally:
                driver.autocommit = False
        except Exception:  # noqa: BLE001 - whatever the driver raised, the commit stands
            log.exception("could not raise the data generation after a commit")

    dialect.do_commit = do_commit


# PostgreSQL connections whose transaction wrote and is committing.
_AFTER_COMMIT: weakref.WeakSet = weakref.WeakSet()


def raise_now(connection) -> None:
    """Raise the data generation at once, on ``connection``: for a write its caller ran outside a
    transaction (statements in autocommit are not counted by themselves; the worker's claim of a
    job, the only one, calls this when it took one). A failure is logged, not raised: the write is
    done, and a job claimed must not be left held by nobody (a review); kept pages then show the
    change once their time runs out."""
    try:
        _raise(connection.engine, connection.connection.dbapi_connection)
    except Exception:  # noqa: BLE001 - whatever the driver raised, the caller's write stands
        log.exception("could not raise the data generation after a write outside a transaction")


def _table_of(context) -> str | None:
    statement = getattr(getattr(context, "compiled", None), "statement", None)
    return getattr(getattr(statement, "table", None), "name", None)


def count_writes(engine) -> None:
    """Raise the data generation with every transaction that writes, on ``engine``."""

    @event.listens_for(engine, "after_cursor_execute")
    def noted(connection, cursor, statement, _parameters, context, _executemany):
        if DDL.match(statement):
            _schema(engine).present = None
        if connection.info.get(NOT_COUNTED) or not wrote(statement, context):
            return
        # A write that changed no row changes no page (an idle worker's look for expired leases).
        # SQLite tells how many rows a statement with RETURNING changed only once they are read.
        if cursor.rowcount == 0 and not RETURNING.search(statement):
            return
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT" \
                or _table_of(context) in UNSHOWN:
            return
        if has_request_context():
            g.setdefault(_REQUEST_WROTE, True)
        connection.info[_PENDING] = True

    after_commit = engine.dialect.name == "postgresql"
    if after_commit:
        _advance_after_commit(engine)

    @event.listens_for(engine, "commit")
    def committing(connection):
        if connection.info.pop(_PENDING, False) and not connection.info.get(NOT_COUNTED):
            if after_commit:
                _AFTER_COMMIT.add(connection.connection.dbapi_connection)
            else:
                _raise(engine, connection.connection.dbapi_connection)

    @event.listens_for(engine, "rollback")
    def rolled_back(connection):
        connection.info.pop(_PENDING, None)

    @event.listens_for(engine, "checkin")
    def returned(_dbapi_connection, record):
        record.info.pop(_PENDING, None)
        record.info.pop(NOT_COUNTED, None)


def init_app(app: Flask) -> None:
    settings = app.config["PORTAL"]
    with app.app_context():
        engine = db.engine
    if engine.dialect.name not in PRESENT:
        return
    count_writes(engine)
    if settings["PAGE_CACHE"]:
        app.extensions["page_cache"] = PageCache(settings["PAGE_CACHE_MB"] * 1024 * 1024,
                                                 settings["PAGE_CACHE_SECONDS"])


def _cache() -> PageCache | None:
    """This process's kept pages, while the database has the generation (the same answer as for
    counting writes: a process that does not count its own writes keeps nothing)."""
    cache = current_app.extensions.get("page_cache")
    if cache is None:
        return None
    schema = _schema(db.engine)
    if schema.stale() and not schema.look(lambda sql: db.session.execute(text(sql)).scalar()):
        log.warning("pages are not kept: the database has no data_generation table (run the migrations)")
    return cache if schema.present else None


def reads_generation() -> bool:
    """Whether the request's first statement (the session look-up) should read the generation."""
    return has_request_context() and request.method == "GET" and _cache() is not None


def note_generation(value: int | None) -> None:
    g.setdefault(_NOTED, value)


def generation_column(dialect: str):
    """The generation as a column of another statement (the session look-up's)."""
    return literal_column(f"({READ[dialect]})").label("data_generation")


def current_generation() -> int | None:
    """The generation now (for the tests and the benches; None without the table)."""
    return db.session.execute(text(READ[db.engine.dialect.name])).scalar()


def _session_text() -> str:
    return json.dumps(dict(session), sort_keys=True, default=str)


def _key(generation: int, seconds: int, session_text: str) -> bytes:
    hx = [request.headers.get(name) for name in HTMX_HEADERS]
    # Stored times are naive UTC: read as UTC, not as the machine's zone (which repeats an hour).
    moment = timeutil.utcnow().replace(tzinfo=timezone.utc).timestamp()
    parts = [generation, int(moment // seconds), request.url, hx, current_language(),
             select_timezone(), session_text]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).digest()


def cached_page(seconds: int | None = None):
    """Keep this GET view's answers as the module says; ``seconds``: a shorter slice of time, for a
    page that shows a time counting down."""

    def decorate(view):
        @functools.wraps(view)
        def answer(*args, **kwargs):
            cache = _cache()
            if cache is None or request.method != "GET" or "_flashes" in session:
                return view(*args, **kwargs)
            # Read by the session look-up, before anything else this request ran; else now.
            generation = g.get(_NOTED)
            if generation is None:
                generation = current_generation()
            if generation is None:  # the row is missing: nothing can tell a change
                return view(*args, **kwargs)
            before = _session_text()
            key = _key(generation, min(seconds or cache.seconds, cache.seconds), before)
            kept = cache.get(key)
            if kept is not None:
                response = Response(kept.body, kept.status, list(kept.headers))
                response.headers[HEADER] = "hit"
                return response
            g.pop(_REQUEST_WROTE, None)
            response = current_app.make_response(view(*args, **kwargs))
            if response.status_code == 200 and not response.is_streamed and not g.get(_REQUEST_WROTE) \
                    and _session_text() == before \
                    and "Set-Cookie" not in response.headers and not db.session.new and not db.session.dirty \
                    and not db.session.deleted:
                if cache.put(key, Kept(response.get_data(), response.status_code, tuple(response.headers.items()))):
                    response.headers[HEADER] = "stored"
            return response

        return answer

    return decorate
