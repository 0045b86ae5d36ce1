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
outside a transaction is counted by whoever runs it: the worker's claim of a job, the only one, adds one
right after it took a job (``raise_now``). A write that changed no row counts for nothing. A page is kept
under the number read at the start of its request, so after any write anywhere every kept page
is stale and rendered again. (Migrations do not count: their connection is marked; restart the
processes after them, as the README says.)

**Whose page.** The gate runs first: the access rule, the live session and the person's
permissions are checked on every request as for any other. A kept page is answered only to a
request with the same session (the whole signed session: its server-side session token, CSRF
secret, sign-in freshness, language cookie...), the same URL (host, path and query), the same
htmx headers, the same language and time zone, within the same slice of
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
import weakref
from collections import OrderedDict
from dataclasses import dataclass

from flask import Flask, Response, current_app, g, has_request_context, request, session
from sqlalchemy import event, select, text

from portal import timeutil
from portal.extensions import db
from portal.i18n import current_language, select_timezone
from portal.readonly import wrote
from portal.web.models import data_generation

# The connection's current transaction wrote (its generation is raised when it commits).
_PENDING = "portal_generation_pending"
# A connection whose writes are not counted (a migration's).
NOT_COUNTED = "portal_generation_not_counted"
# This request wrote, after the point a view was entered (a page it answered is not kept).
_REQUEST_WROTE = "_portal_request_wrote"

RAISE = "UPDATE data_generation SET n = n + 1 WHERE id = 1"
READ = text("SELECT n FROM data_generation WHERE id = 1")
# The same, as a column of another statement (the session look-up's).
GENERATION = select(data_generation.c.n).where(data_generation.c.id == 1).scalar_subquery().label("data_generation")
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

    def __init__(self, limit: int, seconds: int, present_sql: str | None = None):
        self.limit = limit
        self.seconds = seconds
        # Whether the database has the data generation, asked at the first kept page (a database
        # not migrated yet has none: then nothing tells a change, and nothing is kept).
        self.present = None if present_sql else False
        self.present_sql = text(present_sql) if present_sql else None
        self.size = 0
        self._kept: OrderedDict[bytes, Kept] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> Kept | None:
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
            return found

    def put(self, key: bytes, kept: Kept) -> None:
        if len(kept.body) > self.limit // 4:
            return
        with self._lock:
            earlier = self._kept.pop(key, None)
            if earlier is not None:
                self.size -= len(earlier.body)
            self._kept[key] = kept
            self.size += len(kept.body)
            while self.size > self.limit:
                _, dropped = self._kept.popitem(last=False)
                self.size -= len(dropped.body)

    def __len__(self) -> int:
        return len(self._kept)


DDL = re.compile(r"\s*(CREATE|DROP|ALTER)\b", re.IGNORECASE)
RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
PRESENT = {
    "sqlite": "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'data_generation'",
    "postgresql": "SELECT count(*) FROM pg_class WHERE oid = to_regclass('data_generation')",
}
# Per engine: whether the table is there, as last seen by this process. Looked at again after any
# change of the schema this process makes (a migration, or a test going down to an older revision):
# a missing table is not written to, which on PostgreSQL would abort the transaction.
_SCHEMA: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _raise(engine, dbapi_connection) -> None:
    # On the driver's own cursor: not seen by SQLAlchemy's events (no recursion, and the counts of
    # statements tests and benches take are of the portal's own statements).
    schema = _SCHEMA.setdefault(engine, {"present": None})
    cursor = dbapi_connection.cursor()
    try:
        if schema["present"] is None:
            cursor.execute(PRESENT[engine.dialect.name])
            schema["present"] = bool(cursor.fetchone()[0])
        if schema["present"]:
            cursor.execute(RAISE)
    finally:
        cursor.close()


def raise_now(connection) -> None:
    """Raise the data generation at once, on ``connection``: for a write its caller ran outside a
    transaction (statements in autocommit are not counted by themselves; the worker's claim of a
    job, the only one, calls this when it took one)."""
    _raise(connection.engine, connection.connection.dbapi_connection)


def count_writes(engine) -> None:
    """Raise the data generation with every transaction that writes, on ``engine``."""
    _SCHEMA[engine] = {"present": None}

    @event.listens_for(engine, "after_cursor_execute")
    def noted(connection, cursor, statement, _parameters, context, _executemany):
        if DDL.match(statement):
            _SCHEMA[engine]["present"] = None
        if connection.info.get(NOT_COUNTED) or not wrote(statement, context):
            return
        # A write that changed no row changes no page (an idle worker's look for expired leases).
        # SQLite tells how many rows a statement with RETURNING changed only once they are read.
        if cursor.rowcount == 0 and not RETURNING.search(statement):
            return
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return
        if has_request_context():
            g.setdefault(_REQUEST_WROTE, True)
        connection.info[_PENDING] = True

    @event.listens_for(engine, "commit")
    def committing(connection):
        if connection.info.pop(_PENDING, False) and not connection.info.get(NOT_COUNTED):
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
                                                 settings["PAGE_CACHE_SECONDS"], PRESENT[engine.dialect.name])


def _cache() -> PageCache | None:
    cache = current_app.extensions.get("page_cache")
    if cache is not None and cache.present is None:
        cache.present = bool(db.session.execute(cache.present_sql).scalar())
        if not cache.present:
            log.warning("pages are not kept: the database has no data_generation table "
                        "(run the migrations, then restart the web processes)")
    return cache if cache is not None and cache.present else None


def reads_generation() -> bool:
    """Whether the request's first statement (the session look-up) should read the generation."""
    return has_request_context() and request.method == "GET" and _cache() is not None


def note_generation(value: int | None) -> None:
    g.setdefault(_NOTED, value)


def _session_text() -> str:
    return json.dumps(dict(session), sort_keys=True, default=str)


def _key(generation: int, seconds: int, session_text: str) -> bytes:
    hx = sorted((name.lower(), value) for name, value in request.headers.items() if name.lower().startswith("hx-"))
    parts = [generation, int(timeutil.utcnow().timestamp() // seconds), request.url, hx, current_language(),
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
                generation = db.session.execute(READ).scalar()
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
                cache.put(key, Kept(response.get_data(), response.status_code, tuple(response.headers.items())))
                response.headers[HEADER] = "stored"
            return response

        return answer

    return decorate
