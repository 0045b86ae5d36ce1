"""Provisioning throughput: mailbox creations through the worker against a slow backend.

Run from the checkout:

    .venv/bin/python bench/provision.py                       # 1,000 mailboxes, 50 ms, 8 slots, SQLite
    .venv/bin/python bench/provision.py --concurrency 16 --latency-ms 20
    .venv/bin/python bench/provision.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

It builds the portal on a fresh database (an SQLite file in a temporary
folder, or a throwaway database made on the given PostgreSQL server and
dropped afterwards), points a domain at the dimail emulator made to answer
every request after ``--latency-ms``, and creates the mailboxes the way the
web does: rows and ``mailbox.provision`` jobs in one transaction (the
"enqueue" time). It then starts a Worker with ``--concurrency`` slots and
measures the wall time until every mailbox is enabled, polling the database
every 0.1 s.

The figure to watch is the ratio to the ideal, N x latency / concurrency:
the time the slots would take if they did nothing but wait for the backend.
One creation may cost more than one request (a token, a duplicate check), so
the ideal is also given per request actually received by the emulator.

Exits non-zero when a mailbox is not enabled or was created twice.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from sqlalchemy import func

from common import DATABASE_URL_HELP, account_with_domain, migrated_app
from portal.extensions import db
from tests.emulated import connection_environ, serve_on_dimail
from tests.servers.emu_dimail import DimailEmulator

EMULATORS = {"dimail": DimailEmulator}
CONNECTION = "bench"
DOMAIN = "bench.example"
POLL_INTERVAL = 0.1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, default=1000, help="mailboxes to create (default 1000)")
    parser.add_argument("--latency-ms", type=float, default=50, help="the emulator's delay per request (default 50)")
    parser.add_argument("--concurrency", type=int, default=8, help="worker slots (default 8)")
    parser.add_argument("--poll-seconds", type=float, default=None,
                        help="how long an idle slot waits before looking again (default: the portal's setting)")
    parser.add_argument("--database-url", default="", help=DATABASE_URL_HELP)
    parser.add_argument("--backend", choices=sorted(EMULATORS), default="dimail",
                        help="the emulated backend (default dimail)")
    parser.add_argument("--timeout", type=float, default=600, help="give up waiting after this many seconds")
    return parser.parse_args()


# -- measuring --------------------------------------------------------------------

def enqueue_mailboxes(owner, account, domain, count: int) -> list[str]:
    from portal.mailboxes.services import create_mailbox

    addresses = [create_mailbox(owner, account, domain, f"user{number:05d}").address for number in range(count)]
    db.session.commit()
    return addresses


def mailbox_statuses() -> Counter[str]:
    from portal.mailboxes.models import Mailbox

    rows = db.session.execute(db.select(Mailbox.status, func.count()).group_by(Mailbox.status)).all()
    db.session.rollback()  # end the read so the next poll sees the worker's commits
    return Counter(dict(rows))


def unfinished_jobs() -> int:
    from portal.jobs.models import QUEUED, RUNNING, Job

    count = db.session.execute(db.select(func.count()).select_from(Job)
                               .where(Job.status.in_((QUEUED, RUNNING)))).scalar_one()
    db.session.rollback()
    return count


def provision(app, count: int, concurrency: int, poll_seconds: float | None, timeout: float) -> float:
    """Run a worker until every mailbox is enabled, or nothing is left to try; return the wall time."""
    from portal.jobs.worker import Worker
    from portal.mailboxes.models import ENABLED

    worker = Worker(app, concurrency=concurrency, poll_seconds=poll_seconds, name="bench-worker")
    started = time.monotonic()
    threads = worker.start()
    try:
        while time.monotonic() - started < timeout:
            if mailbox_statuses()[ENABLED] == count or unfinished_jobs() == 0:
                break
            time.sleep(POLL_INTERVAL)
        elapsed = time.monotonic() - started
    finally:
        worker.stop()
        for thread in threads:
            thread.join(timeout=10)
    return elapsed


def request_kinds(emulator: DimailEmulator) -> Counter[str]:
    def kind(request) -> str:
        if request.path == "/token/":
            return "GET token"
        if "/mailboxes/" in request.path:
            return f"{request.method} mailbox"
        return f"{request.method} {request.path}"

    return Counter(kind(request) for request in emulator.requests)


# -- reporting ----------------------------------------------------------------------

def report(*, count: int, concurrency: int, latency: float, enqueue_seconds: float, wall_seconds: float,
           requests: Counter[str], statuses: Counter[str], creations: Counter[str], addresses: list[str]) -> bool:
    """Print the figures; return whether every mailbox was enabled and created once."""
    from portal.mailboxes.models import ENABLED

    total_requests = sum(requests.values())
    issue_ideal = count * latency / concurrency
    request_ideal = total_requests * latency / concurrency
    breakdown = ", ".join(f"{number} {kind}" for kind, number in requests.most_common())
    rows = [
        ("mailboxes", f"{count}"),
        ("concurrency", f"{concurrency}"),
        ("latency per request", f"{latency * 1000:g} ms"),
        ("enqueue (one transaction)", f"{enqueue_seconds:.2f} s"),
        ("provisioning wall time", f"{wall_seconds:.2f} s"),
        ("HTTP requests", f"{total_requests} ({breakdown}) = {total_requests / count:.3f} per creation"),
        ("ideal, 1 request each", f"{issue_ideal:.2f} s = {count} x {latency * 1000:g} ms / {concurrency}"
                                  f"   ratio {wall_seconds / issue_ideal:.2f}x"),
        ("ideal, requests made", f"{request_ideal:.2f} s = {total_requests} x {latency * 1000:g} ms / {concurrency}"
                                 f"   ratio {wall_seconds / request_ideal:.2f}x"),
        ("throughput", f"{statuses[ENABLED] / wall_seconds:.1f} mailboxes/s"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")

    problems = []
    if statuses[ENABLED] != count:
        problems.append(f"{count - statuses[ENABLED]} mailboxes not enabled: {dict(statuses)}")
    twice = sorted(address for address, times in creations.items() if times > 1)
    if twice:
        problems.append(f"{len(twice)} mailboxes created more than once, e.g. {twice[0]}")
    never = [address for address in addresses if creations[address] == 0]
    if never:
        problems.append(f"{len(never)} mailboxes never created on the backend, e.g. {never[0]}")
    for problem in problems:
        print(f"FAILED: {problem}")
    return not problems


def main() -> int:
    args = parse_args()
    latency = args.latency_ms / 1000
    with EMULATORS[args.backend]() as emulator, \
            migrated_app(args.database_url, environ=connection_environ(
                CONNECTION, args.backend, timeout=10, url=emulator.url, user=emulator.user,
                password=emulator.password)) as app:
        with app.app_context():
            owner, account, domain = account_with_domain("owner@bench.example", "Bench", DOMAIN, CONNECTION)
            serve_on_dimail(emulator, DOMAIN)

            started = time.monotonic()
            addresses = enqueue_mailboxes(owner, account, domain, args.mailboxes)
            enqueue_seconds = time.monotonic() - started

            emulator.requests.clear()
            emulator.faults.slow(latency)
            wall_seconds = provision(app, args.mailboxes, args.concurrency, args.poll_seconds, args.timeout)
            passed = report(count=args.mailboxes, concurrency=args.concurrency, latency=latency,
                            enqueue_seconds=enqueue_seconds, wall_seconds=wall_seconds,
                            requests=request_kinds(emulator), statuses=mailbox_statuses(),
                            creations=emulator.creations, addresses=addresses)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
