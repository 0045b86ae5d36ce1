"""Page speed with 10,000 members: each list, the Overview, a domain page and the new-mailbox form against a floor page.

Run from the checkout:

    .venv/bin/python bench/pages.py                           # 10,000 members, SQLite
    .venv/bin/python bench/pages.py --members 1000
    .venv/bin/python bench/pages.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/pages.py --explain audit-100       # the SQL of one request, no load
    .venv/bin/python bench/pages.py --profile overview        # cProfile of 50 requests, no load

It builds the portal on a fresh database (an SQLite file in a temporary
folder, or a throwaway database made on the given PostgreSQL server and
dropped afterwards) and seeds, with Core bulk inserts, one account with
``--members`` members (default 10,000): half are corporate users of its
enabled domain, each with a personal mailbox, the others people from
elsewhere; most hold an account role (system or custom) or a single
permission, some a role over a shared mailbox. The account has as many
mailboxes as members in all, 3 % as many invitations, five custom roles,
eight domains in every state and ten audit entries per member. On
PostgreSQL the tables are then vacuumed and analyzed, as autovacuum would do soon after.

Then, in the same run:

- SQL statements per request, counted in this process: the same app on the
  same database, the owner logged in through the Flask test client, an
  SQLAlchemy ``before_cursor_execute`` listener recording what each of 20
  requests of a page executes, after a first one that warms the caches. The
  statements and HTML size are those of the first of them; the in-process
  times are medians over the 20 (no HTTP, no concurrency): of the request,
  and of the time its statements took to execute, fetching their rows
  included (SQLite does most of a statement's work as its rows are fetched:
  the in-process app's SQLite connections time their cursors' fetches and
  add them to the statement being recorded; PostgreSQL's rows have all
  arrived when the statement returns). This app keeps no pages
  (``PAGE_CACHE`` off): these figures are what rendering each page costs.
- Throughput and latency over HTTP: the portal (``app:app``) and the floor
  (``bench/floor.py``: one ORM query of 50 users through a Jinja template; its start-up
  objects frozen as the portal's ``app.py`` freezes its own)
  each served by gunicorn, 2 sync workers, on 127.0.0.1, configured by
  environment variables, the portal as deployed: it keeps pages
  (``portal.web.pagecache``; ``--no-page-cache`` turns that off, and then
  every request renders its page). The owner logs in with a POST to /login
  (the CSRF token read from the login page) and opens the page it is sent to
  (which gives the session its CSRF secret); the load driver sends that
  session cookie. Nothing writes while the pages are driven, so a kept page is answered
  again until its time runs out (then each web process renders it once more); the "kept"
  column is the share of a page's requests answered from a kept page
  (``X-Portal-Cache: hit``, counted by the load driver). After a warm-up of
  one second on every URL, each round drives the floor, then each page, with
  a floor run between every two pages and after the last one, ``--seconds``
  each, so that whatever else the machine does hits both; a page's ratio in a
  round is
  its req/s over the mean req/s of the two floor runs around it, and the
  table gives the median ratio over the rounds (the range in brackets).

The load driver is wrk (``apt-get install wrk``), one thread, closed loop with
``--connections`` connections (16), its Lua script sending the cookie,
counting status codes and writing each run's latency histogram (microsecond
resolution), so p50 and p99 are exact over every request of every round.
gunicorn's sync workers close the connection after each response, so every
request includes its TCP connect, for the floor and the pages alike.

The aim (issue 11): every page at 0.5x the floor's throughput or more, with a
p99 of 100 ms or less; the statement count should be the same at 1,000 and
10,000 members. For each page that misses the aim the run prints its
statements, one line each with their time in this process; ``--explain PAGE``
prints them in full with their parameters (and the plan of those taking
0.5 ms or more), ``--profile PAGE`` where the Python time of the page goes.

Exits non-zero when a page answers anything but 200 (in process or over HTTP).
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from sqlalchemy import event, insert, text

from common import DATABASE_URL_HELP, PROJECT_ROOT, account_with_domain, migrated_app
from portal.extensions import db

BENCH_DIR = Path(__file__).resolve().parent
OWNER_EMAIL = "owner@owner.example"
PASSWORD = "bench password 1234"
MAIN_DOMAIN = "bench.example"
SHARED_DOMAINS = ("team1.example", "team2.example", "team3.example")
OTHER_DOMAINS = (("new.example", "pending"), ("records.example", "action_required"),
                 ("broken.example", "failed"), ("old.example", "disabled"))
FIRST_NAMES = ("Alice", "Bruno", "Chloé", "David", "Emma", "Farid", "Gabrielle", "Hugo", "Inès", "Jules",
               "Karim", "Léa", "Marc", "Nina", "Omar", "Paul", "Quentin", "Rose", "Samuel", "Théo")
LAST_NAMES = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
              "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "Blanc", "Bertrand", "Roux", "Vincent", "Fournier")
# Custom roles: (scope, name, permissions).
CUSTOM_ROLES = (
    ("account", "Helpdesk", ("members.view", "mailboxes.view", "mailboxes.manage", "users.manage")),
    ("account", "Mail manager", ("mailboxes.view", "mailboxes.create", "mailboxes.manage", "domains.view")),
    ("account", "Auditor", ("audit.view", "members.view", "roles.view")),
    ("mailbox", "Assistant", ("mailbox.view", "mailbox.read", "mailbox.send_as")),
    ("mailbox", "Archivist", ("mailbox.view",)),
)
AUDIT_ACTIONS = (("member.add", "user"), ("access.grant", "user"), ("access.revoke", "user"),
                 ("mailbox.create", "mailbox"), ("mailbox.disable", "mailbox"), ("domain.check", "domain"),
                 ("user.create_corporate", "user"), ("invitation.send", "invitation"), ("role.update", "role"),
                 ("bulk.run", "bulkrun"), ("users.import_done", "importrun"), ("account.settings", "account"))

AIM_RATIO = 0.5
AIM_P99_MS = 100.0
WRK_TIMEOUT = "60s"
TIMED_REQUESTS = 20
PLAN_FROM_MS = 0.5


@dataclass(frozen=True)
class Page:
    key: str
    label: str
    path: str  # formatted with the seeded ids

    def url_path(self, seeded: Seeded) -> str:
        return self.path.format(account=seeded.account_id, domain=seeded.domain_id)


PAGES = (
    Page("users", "Users", "/accounts/{account}/members"),
    Page("users-search", "Users, search", "/accounts/{account}/members?" + urlencode({"q": "durand"})),
    Page("mailboxes", "Mailboxes", "/accounts/{account}/mailboxes"),
    Page("mailboxes-filtered", "Mailboxes, filtered",
         "/accounts/{account}/mailboxes?" + urlencode({"status": "enabled", "kind": "shared", "sort": "created",
                                                       "dir": "desc"})),
    Page("invitations", "Invitations", "/accounts/{account}/invitations"),
    Page("domains", "Domains", "/accounts/{account}/domains"),
    Page("domain", "Domain page", "/accounts/{account}/domains/{domain}"),
    Page("roles", "Roles", "/accounts/{account}/roles"),
    Page("audit", "Audit log", "/accounts/{account}/audit"),
    Page("audit-100", "Audit log, page 100", "/accounts/{account}/audit?page=100"),
    Page("audit-search", "Audit log, search", "/accounts/{account}/audit?" + urlencode({"q": "durand"})),
    Page("overview", "Overview", "/accounts/{account}/"),
    Page("new-mailbox", "New mailbox form", "/accounts/{account}/mailboxes/new"),
)
PAGE_KEYS = tuple(page.key for page in PAGES)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=10_000,
                        help="members of the account (default 10000); mailboxes as many, audit entries 10x")
    parser.add_argument("--database-url", default="", help=DATABASE_URL_HELP)
    parser.add_argument("--seconds", type=int, default=3,
                        help="length of each run of a page or of the floor, whole seconds (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every page (default 3)")
    parser.add_argument("--explain", action="append", choices=PAGE_KEYS + ("all",), metavar="PAGE",
                        help=f"print the SQL of one request of PAGE ({', '.join(PAGE_KEYS)} or all) and stop; "
                             "may be repeated")
    parser.add_argument("--profile", choices=PAGE_KEYS, metavar="PAGE",
                        help="print a cProfile of 50 requests of PAGE in process and stop")
    parser.add_argument("--no-page-cache", action="store_true",
                        help="serve the portal over HTTP with PORTAL_PAGE_CACHE=false: "
                             "every request renders its page")
    args = parser.parse_args()
    if args.members < 100:
        parser.error("--members must be 100 or more")
    if args.seconds < 1 or args.rounds < 1 or args.connections < 1:
        parser.error("--seconds, --rounds and --connections must be 1 or more")
    return args


# -- seeding ------------------------------------------------------------------------

@dataclass(frozen=True)
class Seeded:
    account_id: int
    domain_id: int
    counts: dict[str, int]


def person(number: int) -> tuple[str, str]:
    """(name, e-mail address) of member ``number``: even numbers are corporate users of the main domain."""
    first, last = FIRST_NAMES[number % 20], LAST_NAMES[number // 20 % 20]
    if number % 2 == 0:
        return f"{first} {last}", f"user{number:06d}@{MAIN_DOMAIN}"
    return f"{first} {last}", f"{first.lower()}.{last.lower()}.{number}@partner{number % 5}.example"


def seed(members: int) -> Seeded:
    """The account and everything in it, committed; returns its ids and what was written."""
    from portal.accounts.models import Membership
    from portal.audit.models import AuditEvent
    from portal.auth.models import User
    from portal.auth.passwords import hash_password
    from portal.domains.models import Domain, DomainCheckRun
    from portal.invitations.models import Invitation, InvitationGrant
    from portal.mailboxes.models import Mailbox, ProvisioningAttempt
    from portal.roles import catalogue
    from portal.roles.models import Grant, Role, RolePermission
    from portal.roles.services import system_role
    from portal.timeutil import utcnow

    owner, account, main_domain = account_with_domain(OWNER_EMAIL, "Bench", MAIN_DOMAIN)
    owner.password_hash = hash_password(PASSWORD)
    db.session.commit()
    account_id, owner_id, main_domain_id = account.id, owner.id, main_domain.id
    now = utcnow()
    password_hash = hash_password(PASSWORD)
    execute = db.session.execute

    def domain(name: str, status: str) -> dict:
        return {"account_id": account_id, "name": name, "connection": "local", "status": status,
                "status_reason": "" if status in ("pending", "enabled") else f"Bench domain left {status}.",
                "verified_at": None if status == "pending" else now,
                "enabled_at": now if status == "enabled" else None, "created_at": now}

    domain_ids = dict(execute(insert(Domain.__table__).returning(Domain.name, Domain.id), [
        domain(name, "enabled") for name in SHARED_DOMAINS] + [
        domain(name, status) for name, status in OTHER_DOMAINS]).all())
    domain_ids[MAIN_DOMAIN] = main_domain_id
    execute(insert(DomainCheckRun.__table__), [
        {"domain_id": main_domain_id, "at": now - timedelta(hours=number), "trigger": "scheduled",
         "status_before": "enabled", "status_after": "enabled", "summary": "Every record is in place."}
        for number in range(30)])

    role_ids = {}
    for scope, name, permissions in CUSTOM_ROLES:
        role_ids[name] = execute(insert(Role.__table__).returning(Role.id), {
            "account_id": account_id, "scope": scope, "name": name, "description": f"{name} (bench)",
            "created_at": now, "updated_at": now}).scalar_one()
        execute(insert(RolePermission.__table__), [{"role_id": role_ids[name], "permission": code}
                                                   for code in permissions])
    administrator = system_role(catalogue.ADMINISTRATOR).id
    mailbox_owner = system_role(catalogue.MAILBOX_OWNER).id
    delegate = system_role(catalogue.MAILBOX_DELEGATE).id

    numbers = range(1, members)  # the owner is the first member
    people = {number: person(number) for number in numbers}
    user_ids = dict(execute(insert(User.__table__).returning(User.email, User.id), [{
        "email": email, "name": name, "is_corporate": number % 2 == 0,
        "corporate_account_id": account_id if number % 2 == 0 else None,
        "password_hash": None if number % 4 == 0 else password_hash,
        "email_verified_at": now if number % 2 else None,
        "last_login_at": None if number % 4 == 0 else now - timedelta(minutes=number),
        "suspended_at": now if number % 100 == 2 else None,
        "created_at": now - timedelta(minutes=2 * number)} for number, (name, email) in people.items()]).all())
    user_of = {number: user_ids[email] for number, (_, email) in people.items()}
    membership_ids = dict(execute(insert(Membership.__table__).returning(Membership.user_id, Membership.id), [
        {"account_id": account_id, "user_id": user_id, "email": people[number][1],
         "created_at": now - timedelta(minutes=number)} for number, user_id in user_of.items()]).all())
    membership_of = {number: membership_ids[user_id] for number, user_id in user_of.items()}

    def mailbox_state(number: int) -> dict:
        status = {0: "failed", 2: "provisioning", 4: "disabled", 6: "pending"}.get(number % 50, "enabled")
        reason = {"failed": "The backend refused: quota exceeded (bench).",
                  "provisioning": "Being created on the backend."}.get(status, "")
        return {"status": status, "status_reason": reason, "want_active": status != "disabled",
                "created_at": now - timedelta(minutes=number), "updated_at": now - timedelta(minutes=number)}

    corporate = [number for number in numbers if number % 2 == 0]
    personal_ids = dict(execute(insert(Mailbox.__table__).returning(Mailbox.address, Mailbox.id), [{
        "account_id": account_id, "domain_id": main_domain_id, "local_part": f"user{number:06d}",
        "address": people[number][1], "kind": "personal", "owner_id": user_of[number],
        "first_name": people[number][0].split()[0], "last_name": people[number][0].split()[1],
        "display_name": people[number][0], **mailbox_state(number)} for number in corporate]).all())
    shared_domains = (MAIN_DOMAIN, *SHARED_DOMAINS)
    shared_count = members - len(corporate)
    shared = [(f"team{number:06d}", shared_domains[number % len(shared_domains)]) for number in range(shared_count)]
    shared_ids = list(execute(insert(Mailbox.__table__).returning(Mailbox.id), [{
        "account_id": account_id, "domain_id": domain_ids[domain], "local_part": local_part,
        "address": f"{local_part}@{domain}", "kind": "shared", "display_name": f"Team {number}",
        **mailbox_state(number + 1)} for number, (local_part, domain) in enumerate(shared)]).scalars())
    execute(insert(ProvisioningAttempt.__table__), [
        {"mailbox_id": mailbox_id, "operation": "create", "at": now, "outcome": "failed",
         "message": "quota exceeded (bench)"} for mailbox_id in shared_ids[49::50]])

    account_role = {0: administrator, 1: role_ids["Helpdesk"], 2: role_ids["Helpdesk"], 3: role_ids["Helpdesk"],
                    4: role_ids["Mail manager"], 5: role_ids["Mail manager"], 6: role_ids["Auditor"]}
    grants = []
    for number in numbers:
        grant = {"membership_id": membership_of[number], "account_id": account_id, "role_id": None, "permission": None,
                 "mailbox_id": None, "granted_by_id": owner_id, "created_at": now}
        if number % 10 in account_role:
            grants.append({**grant, "role_id": account_role[number % 10]})
        elif number % 10 == 7:
            grants.append({**grant, "permission": "mailboxes.view"})
        if number % 2 == 0:
            grants.append({**grant, "role_id": mailbox_owner, "mailbox_id": personal_ids[people[number][1]]})
        if number % 10 == 3:
            grants.append({**grant, "role_id": delegate, "mailbox_id": shared_ids[number % len(shared_ids)]})
        if number % 25 == 0:
            grants.append({**grant, "role_id": role_ids["Assistant"],
                           "mailbox_id": shared_ids[(number * 7) % len(shared_ids)]})
    execute(insert(Grant.__table__), grants)

    invitation_count = members * 3 // 100
    invitation_ids = list(execute(insert(Invitation.__table__).returning(Invitation.id), [
        invitation(account_id, owner_id, number, now) for number in range(invitation_count)]).scalars())
    execute(insert(InvitationGrant.__table__), [
        {"invitation_id": invitation_id, "role_id": role_ids["Helpdesk"], "on_mailbox": False, "mailbox_id": None,
         "label": "Helpdesk"}
        for invitation_id in invitation_ids] + [
        {"invitation_id": invitation_id, "role_id": delegate, "on_mailbox": True,
         "mailbox_id": shared_ids[number % len(shared_ids)], "label": "Mailbox Delegate"}
        for number, invitation_id in enumerate(invitation_ids) if number % 2 == 0])

    audit_count = members * 10
    step = timedelta(days=365) / audit_count
    actors = [(owner_id, OWNER_EMAIL)] + [(user_of[number], people[number][1]) for number in numbers
                                          if number % 10 == 0]
    execute(insert(AuditEvent.__table__), [{
        "at": now - step * number, "actor_id": actors[number % len(actors)][0],
        "actor_label": actors[number % len(actors)][1], "account_id": account_id,
        "action": AUDIT_ACTIONS[number % len(AUDIT_ACTIONS)][0],
        "target_type": AUDIT_ACTIONS[number % len(AUDIT_ACTIONS)][1], "target_id": str(number % members + 1),
        "target_label": people[number % (members - 1) + 1][1], "source": "web" if number % 3 else "worker",
        "ip": f"192.0.2.{number % 250 + 1}", "user_agent": "Mozilla/5.0 (bench)",
        "details": {"bench": number}} for number in range(audit_count)])
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        # Autovacuum would vacuum and analyze tables this size within a minute of the inserts
        # (PostgreSQL 13 and later vacuum after inserts too). Without the statistics the planner
        # would judge every page by those of empty tables; without the vacuum, an index-only scan
        # (a count read from an index) would still visit every row to learn whether it is visible.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    return Seeded(account_id=account_id, domain_id=main_domain_id, counts={
        "members": members, "corporate users": len(corporate), "mailboxes": len(personal_ids) + len(shared_ids),
        "grants": len(grants) + 1, "invitations": invitation_count, "custom roles": len(CUSTOM_ROLES),
        "domains": len(domain_ids), "audit entries": audit_count})


def invitation(account_id: int, owner_id: int, number: int, now) -> dict:
    """Invitations in every state: pending (a sixth expiring within a day), expired, answered, revoked, draft."""
    row = {"account_id": account_id, "email": f"guest{number:05d}@guest.example", "invited_by_id": owner_id,
           "created_at": now - timedelta(hours=number), "token_hash": f"{number:064x}", "sent_at": None,
           "expires_at": None, "responded_at": None}
    kind = number % 6
    if kind == 5:
        return {**row, "status": "draft", "token_hash": None}
    row.update(sent_at=now - timedelta(hours=number), expires_at=now + timedelta(days=7) - timedelta(hours=number))
    if kind in (0, 1):
        return {**row, "status": "pending", "expires_at": now + timedelta(hours=number % 48 - 24)}
    if kind == 2:
        return {**row, "status": "accepted", "responded_at": now}
    return {**row, "status": "declined" if kind == 3 else "revoked", "responded_at": now}


# -- statements, counted in process -----------------------------------------------

@dataclass
class Statement:
    sql: str
    parameters: object
    seconds: float = 0.0


@dataclass
class InProcess:
    """One page requested in this process: its answer, its statements, and its time without HTTP.

    Times are medians over the timed requests: of the whole request, of the time its statements
    took to execute, and of each statement's own (where every request made the same statements).
    """

    status: int
    html_bytes: int
    statements: list[Statement]
    request_ms: float
    sql_ms: float


class FetchTimedCursor(sqlite3.Cursor):
    """A cursor whose fetches add their time to the statement being recorded (see ``StatementLog``)."""

    recording: StatementLog | None = None

    def _timed(self, fetch, *arguments):
        started = time.perf_counter()
        try:
            return fetch(*arguments)
        finally:
            log = FetchTimedCursor.recording
            if log is not None and log.recording and log.statements:
                log.statements[-1].seconds += time.perf_counter() - started

    def fetchone(self):
        return self._timed(super().fetchone)

    def fetchmany(self, *size):
        return self._timed(super().fetchmany, *size)

    def fetchall(self):
        return self._timed(super().fetchall)


class FetchTimedConnection(sqlite3.Connection):
    def cursor(self, factory=FetchTimedCursor):
        return super().cursor(factory)


class StatementLog:
    """Every statement an engine executes while ``recording`` is on, with the time it took to
    execute (and, on SQLite connections made by ``FetchTimedConnection``, to fetch its rows)."""

    def __init__(self, engine):
        self.engine, self.statements, self.recording = engine, [], False
        event.listen(engine, "before_cursor_execute", self.before)
        event.listen(engine, "after_cursor_execute", self.after)

    def before(self, _connection, _cursor, statement, parameters, _context, _executemany):
        if self.recording:
            self.statements.append(Statement(statement, parameters, time.perf_counter()))

    def after(self, *_):
        if self.recording and self.statements:
            last = self.statements[-1]
            last.seconds = time.perf_counter() - last.seconds

    @contextmanager
    def record(self):
        self.statements, self.recording = [], True
        FetchTimedCursor.recording = self
        try:
            yield self.statements
        finally:
            self.recording = False
            FetchTimedCursor.recording = None

    def close(self):
        event.remove(self.engine, "before_cursor_execute", self.before)
        event.remove(self.engine, "after_cursor_execute", self.after)


CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token_in(html: str) -> str:
    found = CSRF_FIELD.search(html)
    if found is None:
        raise SystemExit("the login page has no csrf_token field")
    return found.group(1)


def logged_in_client(app):
    """A test client with the owner logged in, as a browser does it (the CSRF token read from the page)."""
    client = app.test_client()
    token = csrf_token_in(client.get("/login").get_data(as_text=True))
    answer = client.post("/login", data={"email": OWNER_EMAIL, "password": PASSWORD, "csrf_token": token})
    if answer.status_code != 302:
        raise SystemExit(f"in-process log-in answered {answer.status_code}")
    return client


def measure_in_process(client, engine, path: str, timed: int) -> InProcess:
    """A first request (caches warm), then ``timed`` requests with their statements recorded."""
    client.get(path)
    log = StatementLog(engine)
    requests = []
    try:
        for _ in range(timed):
            with log.record() as statements:
                started = time.perf_counter()
                response = client.get(path)
                elapsed = time.perf_counter() - started
            requests.append((elapsed, statements, response))
    finally:
        log.close()
    _, statements, response = requests[0]
    alike = [recorded for _, recorded, _ in requests
             if [statement.sql for statement in recorded] == [statement.sql for statement in statements]]
    typical = [Statement(statement.sql, statement.parameters,
                         statistics.median(recorded[number].seconds for recorded in alike))
               for number, statement in enumerate(statements)]
    status = next((answer.status_code for _, _, answer in requests if answer.status_code != 200), 200)
    return InProcess(status, len(response.get_data()), typical,
                     statistics.median(elapsed for elapsed, _, _ in requests) * 1000,
                     statistics.median(sum(statement.seconds for statement in recorded)
                                       for _, recorded, _ in requests) * 1000)


def count_statements(app, paths: dict[str, str], timed: int = TIMED_REQUESTS) -> dict[str, InProcess]:
    """Each path requested by the logged-in owner in this process."""
    with app.app_context():
        engine = db.engine
    client = logged_in_client(app)
    return {key: measure_in_process(client, engine, path, timed) for key, path in paths.items()}


def count_floor_statements(database_url: str) -> InProcess:
    from floor import create_app as create_floor

    floor = create_floor(database_url, FetchTimedConnection)
    try:
        return measure_in_process(floor.test_client(), floor.extensions["floor_engine"], "/", TIMED_REQUESTS)
    finally:
        floor.extensions["floor_engine"].dispose()


def profile(app, path: str, requests: int = 50) -> None:
    """Where the time of ``requests`` requests of ``path`` goes, in this process (cProfile)."""
    import cProfile
    import pstats

    client = logged_in_client(app)
    for _ in range(5):
        client.get(path)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        client.get(path)
    profiler.disable()
    print(f"== {path}: {requests} requests in process")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)


COLUMN_LIST = re.compile(r"SELECT ((?:\w+\.\w+(?: AS \w+)?, )+\w+\.\w+(?: AS \w+)?) FROM")


def one_line(sql: str) -> str:
    """The statement on one line, each plain list of columns replaced by how many there are."""
    return COLUMN_LIST.sub(lambda found: f"SELECT [{found.group(1).count(',') + 1} columns] FROM", " ".join(sql.split()))


def explain(engine, measured: dict[str, InProcess], keys: list[str]) -> None:
    """Each statement of the pages in full, with its parameters, and the plan of those over PLAN_FROM_MS."""
    plan_prefix = "EXPLAIN ANALYZE " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
    connection = engine.raw_connection()
    try:
        for key in keys:
            found = measured[key]
            page = next(page for page in PAGES if page.key == key)
            print(f"== {page.label} ({key}): status {found.status}, {len(found.statements)} statements taking "
                  f"{found.sql_ms:.1f} ms to execute, {found.html_bytes:,} bytes of HTML; "
                  f"{found.request_ms:.1f} ms per request in process")
            for number, statement in enumerate(found.statements, start=1):
                print(f"-- {number}: {statement.seconds * 1000:.2f} ms; parameters {statement.parameters!r}")
                print(statement.sql.strip() + ";")
                if statement.seconds * 1000 >= PLAN_FROM_MS and statement.sql.lstrip().upper().startswith("SELECT"):
                    cursor = connection.cursor()
                    cursor.execute(plan_prefix + statement.sql, statement.parameters)
                    print("\n".join(f"--   plan: {' '.join(str(value) for value in row)}" for row in cursor.fetchall()))
                    cursor.close()
            print()
    finally:
        connection.rollback()
        connection.close()


# -- serving ----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def gunicorn(name: str, target: str, environ: dict[str, str], log_folder: Path, pythonpath: Path | None = None):
    """``target`` served by gunicorn, 2 sync workers, on a free port of 127.0.0.1; yields its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--workers", "2", "--worker-class", "sync",
               "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    if pythonpath is not None:
        command += ["--pythonpath", str(pythonpath)]
    log_path = log_folder / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command + [target], cwd=PROJECT_ROOT, env=environ, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        wait_until_serving(process, port, log_path)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_serving(process: subprocess.Popen, port: int, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn stopped (exit {process.returncode}):\n{log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"gunicorn did not listen on {port} within {timeout:g} s:\n{log_path.read_text()}")


def portal_environ(app, page_cache: bool = True) -> dict[str, str]:
    """The bench app's configuration as the environment variables a production portal reads."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("PORTAL_", "FLOOR_"))}
    instance = app.instance_path
    environ.update(PORTAL_DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
                   PORTAL_SECRET_KEY=app.config["SECRET_KEY"], PORTAL_PASSWORD_HASHING="fast",
                   PORTAL_WORKER="external", PORTAL_LOG_LEVEL="WARNING", PORTAL_TEST_INSTANCE_PATH=instance,
                   PORTAL_SMTP_URL=f"file://{instance}/mail", PORTAL_PAGE_CACHE="true" if page_cache else "false")
    return environ


def log_in(base_url: str) -> str:
    """Log the owner in over HTTP as a browser does; returns the Cookie header to send."""
    host = base_url.removeprefix("http://")
    cookies: dict[str, str] = {}

    def request(method: str, path: str, body: str | None = None) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection(host, timeout=60)
        headers = {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.body = response.read()
        connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]
        return response

    token = csrf_token_in(request("GET", "/login").body.decode())
    answer = request("POST", "/login", urlencode({"email": OWNER_EMAIL, "password": PASSWORD, "csrf_token": token}))
    if answer.status != 302:
        raise SystemExit(f"log-in over HTTP answered {answer.status}: {answer.body[:500]!r}")
    # The first page after log-in gives the session its CSRF secret (a new cookie), as a browser's does.
    home = request("GET", "/")
    if home.status in (301, 302, 303):
        request("GET", urlsplit(home.getheader("Location")).path)
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


# -- load -------------------------------------------------------------------------------

WRK_SCRIPT = r"""
-- Sends the session cookie, counts status codes and answers from kept pages, writes the latency histogram.
wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE") or ""

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  kept = 0
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if (headers["X-Portal-Cache"] or headers["x-portal-cache"]) == "hit" then
    kept = kept + 1
  end
end

function done(summary, latency, requests)
  local histogram = io.open(os.getenv("BENCH_HISTOGRAM"), "w")
  for i = 1, #latency do
    local value, count = latency(i)
    histogram:write(string.format("%d %d\n", value, count))
  end
  histogram:close()
  local e = summary.errors
  io.write(string.format("BENCH summary %d %d %d %d %d %d %d %d\n", summary.requests, summary.duration,
    summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      io.write(string.format("BENCH status %d %d\n", status, count))
    end
    io.write(string.format("BENCH kept %d\n", thread:get("kept")))
  end
end
"""


@dataclass
class Run:
    """One wrk run against one URL."""

    requests: int
    seconds: float
    socket_errors: int
    statuses: Counter
    latencies: Counter  # microseconds -> requests
    kept: int = 0  # answered from a kept page (X-Portal-Cache: hit)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class Driver:
    def __init__(self, folder: Path, connections: int, seconds: int):
        self.folder, self.connections, self.seconds = folder, connections, seconds
        self.script = folder / "bench.lua"
        self.script.write_text(WRK_SCRIPT)
        self.histogram = folder / "histogram.txt"

    def run(self, url: str, cookie: str = "") -> Run:
        environ = {**os.environ, "BENCH_COOKIE": cookie, "BENCH_HISTOGRAM": str(self.histogram)}
        command = ["wrk", "-t1", f"-c{self.connections}", f"-d{self.seconds}s",
                   f"--timeout={WRK_TIMEOUT}", "-s", str(self.script), url]
        finished = subprocess.run(command, capture_output=True, text=True, env=environ)
        lines = [line.split()[1:] for line in finished.stdout.splitlines() if line.startswith("BENCH ")]
        summaries = [fields[1:] for fields in lines if fields[0] == "summary"]
        if finished.returncode or not summaries:
            raise SystemExit(f"wrk failed on {url}:\n{finished.stdout}\n{finished.stderr}")
        requests, duration, _bytes, connect, read, write, _status, timeout = map(int, summaries[0])
        statuses, kept = Counter(), 0
        for fields in lines:
            if fields[0] == "status":
                statuses[int(fields[1])] += int(fields[2])
            elif fields[0] == "kept":
                kept += int(fields[1])
        latencies = Counter()
        for line in self.histogram.read_text().splitlines():
            value, count = line.split()
            latencies[int(value)] += int(count)
        return Run(requests, duration / 1e6, connect + read + write + timeout, statuses, latencies, kept)


@dataclass
class Measured:
    """Every run of one page (or the floor), and the page's ratio to the floor in each round."""

    runs: list[Run] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return sum(run.requests for run in self.runs) / sum(run.seconds for run in self.runs)

    def percentile_ms(self, fraction: float) -> float:
        pooled = sum((run.latencies for run in self.runs), Counter())
        wanted, seen = fraction * sum(pooled.values()), 0
        for value in sorted(pooled):
            seen += pooled[value]
            if seen >= wanted:
                return value / 1000
        return float("nan")

    @property
    def kept_share(self) -> float:
        """The share of requests answered from a kept page."""
        return sum(run.kept for run in self.runs) / max(sum(run.requests for run in self.runs), 1)

    @property
    def statuses(self) -> Counter:
        return sum((run.statuses for run in self.runs), Counter())

    @property
    def socket_errors(self) -> int:
        return sum(run.socket_errors for run in self.runs)


def drive(driver: Driver, floor_url: str, portal_url: str, cookie: str, paths: dict[str, str],
          rounds: int) -> tuple[Measured, dict[str, Measured]]:
    """Rounds of floor, page, floor, page ... floor; each page's ratio against the floor runs around it."""
    floor = Measured()
    pages = {key: Measured() for key in paths}
    warm_up = Driver(driver.folder, driver.connections, 1)
    for url in [floor_url] + [portal_url + path for path in paths.values()]:
        warm_up.run(url, "" if url == floor_url else cookie)
    for number in range(1, rounds + 1):
        before = driver.run(floor_url)
        floor.runs.append(before)
        for key, path in paths.items():
            run = driver.run(portal_url + path, cookie)
            after = driver.run(floor_url)
            floor.runs.append(after)
            pages[key].runs.append(run)
            pages[key].ratios.append(run.rate / ((before.rate + after.rate) / 2))
            before = after
        print(f"round {number}/{rounds} done: floor {statistics.median(r.rate for r in floor.runs):.0f} req/s "
              f"(median so far)", flush=True)
    return floor, pages


# -- reporting ----------------------------------------------------------------------------

def report(floor: Measured, floor_counted: InProcess, pages: dict[str, Measured],
           counted: dict[str, InProcess]) -> tuple[list[str], list[str]]:
    """Print the table; return the pages that miss the aim and those that answered an error."""
    header = ("page", "kept", "req/s", "p50 ms", "p99 ms", "SQL/req", "HTML bytes", "in-process ms (SQL)",
              "ratio to floor", "aim")

    def in_process(found: InProcess) -> str:
        return f"{found.request_ms:.1f} ({found.sql_ms:.1f})"

    rows = [("floor (50 users, Jinja)", "", f"{floor.rate:.0f}", f"{floor.percentile_ms(0.5):.1f}",
             f"{floor.percentile_ms(0.99):.1f}", str(len(floor_counted.statements)), f"{floor_counted.html_bytes:,}",
             in_process(floor_counted), "1", "")]
    missed, failed = [], []
    for page in PAGES:
        measured, found = pages[page.key], counted[page.key]
        ratio = statistics.median(measured.ratios)
        p99 = measured.percentile_ms(0.99)
        misses = [f"ratio < {AIM_RATIO:g}"] * (ratio < AIM_RATIO) + [f"p99 > {AIM_P99_MS:g} ms"] * (p99 > AIM_P99_MS)
        wrong = {status: count for status, count in measured.statuses.items() if status != 200}
        if wrong or found.status != 200 or measured.socket_errors:
            failed.append(f"{page.label}: in process {found.status}, over HTTP {dict(measured.statuses)}, "
                          f"{measured.socket_errors} socket errors")
        if misses:
            missed.append(page.key)
        rows.append((page.label, f"{measured.kept_share:.1%}", f"{measured.rate:.0f}",
                     f"{measured.percentile_ms(0.5):.1f}", f"{p99:.1f}",
                     str(len(found.statements)), f"{found.html_bytes:,}", in_process(found),
                     f"{ratio:.2f} ({min(measured.ratios):.2f}-{max(measured.ratios):.2f})",
                     "MISS: " + ", ".join(misses) if misses else "ok"))
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]
    numeric = {1, 2, 3, 4, 5, 6, 7}

    def line(row) -> str:
        return "  ".join(cell.rjust(width) if column in numeric else cell.ljust(width)
                         for column, (cell, width) in enumerate(zip(row, widths))).rstrip()

    print(line(header))
    print(line(tuple("-" * width for width in widths)))
    for row in rows:
        print(line(row))
    return missed, failed


def print_statements_of(missed: list[str], counted: dict[str, InProcess]) -> None:
    for key in missed:
        found = counted[key]
        label = next(page.label for page in PAGES if page.key == key)
        print(f"\n{label} misses the aim: {found.request_ms:.1f} ms per request in process, "
              f"{len(found.statements)} statements taking {found.sql_ms:.1f} ms to execute "
              f"(--explain {key}: their parameters; --profile {key}: where the time goes)")
        for statement in found.statements:
            print(f"  {statement.seconds * 1000:7.2f} ms  {one_line(statement.sql)}")


def main() -> int:
    args = parse_args()
    if not (args.explain or args.profile) and shutil.which("wrk") is None:
        raise SystemExit("wrk is needed to drive the pages: apt-get install wrk")
    started = time.monotonic()
    # The in-process app's SQLite connections time the fetching of rows too (gunicorn's app reads
    # its configuration from the environment: it is not affected).
    # In this process pages are always rendered (no kept pages): its figures are what rendering costs.
    settings = {"PAGE_CACHE": False} if args.database_url else {
        "PAGE_CACHE": False,
        "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"timeout": 30, "factory": FetchTimedConnection}}}
    with migrated_app(args.database_url, settings) as app, \
            tempfile.TemporaryDirectory(prefix="bench-pages-") as folder:
        with app.app_context():
            seeding_started = time.monotonic()
            seeded = seed(args.members)
            seeding_seconds = time.monotonic() - seeding_started
            dialect = db.engine.dialect.name
            db.session.remove()
        print(f"{dialect}: migrations {seeding_started - started:.1f} s, seeding {seeding_seconds:.1f} s: "
              + ", ".join(f"{count:,} {what}" for what, count in seeded.counts.items()), flush=True)
        paths = {page.key: page.url_path(seeded) for page in PAGES}
        if args.profile:
            profile(app, paths[args.profile])
            return 0
        counted = count_statements(app, paths)
        if args.explain:
            with app.app_context():
                explain(db.engine, counted, list(PAGE_KEYS) if "all" in args.explain else args.explain)
            return 0 if all(found.status == 200 for found in counted.values()) else 1
        database_url = app.config["SQLALCHEMY_DATABASE_URI"]
        floor_counted = count_floor_statements(database_url)

        environ = portal_environ(app, page_cache=not args.no_page_cache)
        floor_environ = {**environ, "FLOOR_DATABASE_URL": database_url}
        driver = Driver(Path(folder), args.connections, args.seconds)
        with gunicorn("portal", "app:app", environ, Path(folder)) as portal_url, \
                gunicorn("floor", "floor:served()", floor_environ, Path(folder), BENCH_DIR) as floor_url:
            cookie = log_in(portal_url)
            load_started, load_before = time.monotonic(), os.getloadavg()[0]
            floor, pages = drive(driver, floor_url + "/", portal_url, cookie, paths, args.rounds)
            load_seconds, load_after = time.monotonic() - load_started, os.getloadavg()[0]

    print(f"\n{args.members:,} members on {dialect}; {args.rounds} rounds of {args.seconds} s per run, "
          f"{args.connections} connections (wrk), gunicorn 2 sync workers each; {os.cpu_count()} CPUs, "
          f"load average {load_before:.1f} before the load, {load_after:.1f} after\n")
    missed, failed = report(floor, floor_counted, pages, counted)
    print(f"\naim: ratio >= {AIM_RATIO:g} and p99 <= {AIM_P99_MS:g} ms; "
          f"{len(PAGES) - len(missed)} of {len(PAGES)} pages meet it")
    print_statements_of(missed, counted)
    print(f"\nseeding {seeding_seconds:.1f} s, load {load_seconds:.0f} s, whole run {time.monotonic() - started:.0f} s")
    for problem in failed:
        print(f"FAILED: {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
