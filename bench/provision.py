"""Provisioning throughput: mailbox creations through the worker against a slow backend.

Run from the checkout:

    .venv/bin/python bench/provision.py                       # 1,000 mailboxes, 50 ms, 8 slots, SQLite
    .venv/bin/python bench/provision.py --concurrency 16 --latency-ms 20
    .venv/bin/python bench/provision.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/provision.py --processes 4 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

It builds the portal on a fresh database (an SQLite file in a temporary
folder, or a throwaway database made on the given PostgreSQL server and
dropped afterwards), points a domain at the dimail emulator made to answer
every request after ``--latency-ms``, and creates the mailboxes the way the
web does: rows and ``mailbox.provision`` jobs in one transaction (the
"enqueue" time). It then starts a Worker with ``--concurrency`` slots and
measures the wall time until every mailbox is enabled, polling the database
every 0.1 s.

The figure to watch is the ratio to the ideal, N x latency / slots: the
time the slots would take if they did nothing but wait for the backend.
One creation may cost more than one request (a token, a duplicate check), so
the ideal is also given per request actually received by the emulator.

Beside it, what one job costs the worker: its CPU time (the worker's threads
only, read from their own clocks, so the emulator and this script's polling
are not counted; with ``--processes``, the worker processes' whole CPU time)
and its SQL statements (counted on the worker's connections, by kind).

``--processes N`` runs the worker as N processes of ``--concurrency`` slots
each, started and made ready before the clock starts, as a deployment runs
them (PostgreSQL; on SQLite they queue behind one writer). Without it the
worker runs as threads of this process, sharing its interpreter with the
emulator.

Exits non-zero when a mailbox is not enabled or was created twice.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import event, func

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
    parser.add_argument("--concurrency", type=int, default=8, help="worker slots (per process; default 8)")
    parser.add_argument("--processes", type=int, default=0,
                        help="run the worker as this many processes (default: threads of this process)")
    parser.add_argument("--poll-seconds", type=float, default=None,
                        help="how long an idle slot waits before looking again (default: the portal's setting)")
    parser.add_argument("--database-url", default="", help=DATABASE_URL_HELP)
    parser.add_argument("--backend", choices=sorted(EMULATORS), default="dimail",
                        help="the emulated backend (default dimail)")
    parser.add_argument("--timeout", type=float, default=600, help="give up waiting after this many seconds")
    parser.add_argument("--worker-process", action="store_true", help=argparse.SUPPRESS)
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


_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)


def statement_kind(statement: str) -> str:
    """``UPDATE jobs``, ``SELECT mailboxes``...: the verb and the first table named."""
    table = _TABLE.search(statement)
    return f"{statement.split(None, 1)[0].upper()} {table.group(1) if table else '?'}"


class StatementCount:
    """Statements run on the engine's connections by the threads ``counts(thread)`` accepts, by kind."""

    def __init__(self, engine, counts=lambda thread: True):
        self.kinds: Counter[str] = Counter()
        self._counts = counts
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self._counts(threading.current_thread()):
            with self._lock:
                self.kinds[statement_kind(statement)] += 1


def thread_cpu_seconds(threads: list[threading.Thread]) -> float:
    """The CPU time the (still running) threads have used, from their own clocks."""
    return sum(time.clock_gettime(time.pthread_getcpuclockid(thread.ident)) for thread in threads)


def wait_until_provisioned(count: int, started: float, timeout: float) -> float:
    """Poll until every mailbox is enabled, or nothing is left to try; return the wall time since ``started``."""
    from portal.mailboxes.models import ENABLED

    while time.monotonic() - started < timeout:
        if mailbox_statuses()[ENABLED] == count or unfinished_jobs() == 0:
            break
        time.sleep(POLL_INTERVAL)
    return time.monotonic() - started


def provision_in_threads(app, count: int, concurrency: int, poll_seconds: float | None,
                         timeout: float) -> tuple[float, float, Counter[str]]:
    """Run a worker in this process until every mailbox is enabled, or nothing is left to try;
    return the wall time, the worker threads' CPU time and their statements."""
    from portal.jobs.worker import Worker

    worker = Worker(app, concurrency=concurrency, poll_seconds=poll_seconds, name="bench-worker")
    statements = StatementCount(db.engine, lambda thread: thread.name.startswith("worker-"))
    started = time.monotonic()
    threads = worker.start()
    try:
        elapsed = wait_until_provisioned(count, started, timeout)
        cpu_seconds = thread_cpu_seconds(threads)
    finally:
        worker.stop()
        for thread in threads:
            thread.join(timeout=10)
    return elapsed, cpu_seconds, statements.kinds


RESULT_MARK = "bench-worker-result "


def provision_in_processes(app, processes: int, count: int, concurrency: int, poll_seconds: float | None,
                           timeout: float) -> tuple[float, float, Counter[str]]:
    """The same with worker processes, each started and ready before the clock starts; the CPU
    time is theirs, whole."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker-process"]
    config = json.dumps({**app.extensions["bench"], "concurrency": concurrency, "poll_seconds": poll_seconds})
    children = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for _ in range(processes)]
    try:
        for number, child in enumerate(children):
            child.stdin.write(json.dumps({**json.loads(config), "name": f"bench-worker-{number}"}) + "\n")
            child.stdin.flush()
        for child in children:
            if child.stdout.readline().strip() != "ready":
                raise SystemExit("a worker process did not start")
        started = time.monotonic()
        for child in children:
            child.stdin.write("start\n")
            child.stdin.flush()
        elapsed = wait_until_provisioned(count, started, timeout)
        cpu_seconds, statements = 0.0, Counter()
        for child in children:
            child.stdin.write("stop\n")
            child.stdin.flush()
        for child in children:
            result = next(line for line in child.stdout if line.startswith(RESULT_MARK))
            figures = json.loads(result[len(RESULT_MARK):])
            cpu_seconds += figures["cpu_seconds"]
            statements.update(figures["statements"])
            child.wait(timeout=30)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    return elapsed, cpu_seconds, statements


def serve_as_worker_process() -> None:
    """A worker process of ``provision_in_processes``: its configuration on the first line of stdin,
    then ``start`` and ``stop``; its CPU time and statements on stdout."""
    from portal import create_app
    from portal.jobs.worker import Worker

    config = json.loads(sys.stdin.readline())
    app = create_app(config["overrides"], environ=config["environ"])
    with app.app_context():
        statements = StatementCount(db.engine)
    worker = Worker(app, concurrency=config["concurrency"], poll_seconds=config["poll_seconds"], name=config["name"])
    print("ready", flush=True)
    sys.stdin.readline()
    cpu_started = time.process_time()
    threads = worker.start()
    sys.stdin.readline()
    worker.stop()
    for thread in threads:
        thread.join(timeout=30)
    print(RESULT_MARK + json.dumps({"cpu_seconds": time.process_time() - cpu_started,
                                    "statements": statements.kinds}), flush=True)


def request_kinds(emulator: DimailEmulator) -> Counter[str]:
    def kind(request) -> str:
        if request.path == "/token/":
            return "GET token"
        if "/mailboxes/" in request.path:
            return f"{request.method} mailbox"
        return f"{request.method} {request.path}"

    return Counter(kind(request) for request in emulator.requests)


def data_generation() -> int:
    """The number every writing transaction raises (portal.web.pagecache)."""
    from portal.web.pagecache import current_generation

    value = current_generation()
    db.session.commit()
    return value


# -- reporting ----------------------------------------------------------------------

def report(*, count: int, concurrency: int, processes: int, latency: float, enqueue_seconds: float,
           wall_seconds: float, cpu_seconds: float, statements: Counter[str], requests: Counter[str],
           statuses: Counter[str], creations: Counter[str], addresses: list[str], generations: int) -> bool:
    """Print the figures; return whether every mailbox was enabled and created once."""
    from portal.mailboxes.models import ENABLED

    slots = concurrency * max(processes, 1)
    total_requests = sum(requests.values())
    issue_ideal = count * latency / slots
    request_ideal = total_requests * latency / slots
    breakdown = ", ".join(f"{number} {kind}" for kind, number in requests.most_common())
    total_statements = sum(statements.values())
    statement_kinds = ", ".join(f"{number / count:.2f} {kind}" for kind, number in statements.most_common())
    rows = [
        ("mailboxes", f"{count}"),
        ("worker", f"{processes} processes x {concurrency} slots" if processes
                   else f"{concurrency} slots (threads of this process)"),
        ("latency per request", f"{latency * 1000:g} ms"),
        ("enqueue (one transaction)", f"{enqueue_seconds:.2f} s"),
        ("provisioning wall time", f"{wall_seconds:.2f} s"),
        ("HTTP requests", f"{total_requests} ({breakdown}) = {total_requests / count:.3f} per creation"),
        ("ideal, 1 request each", f"{issue_ideal:.2f} s = {count} x {latency * 1000:g} ms / {slots}"
                                  f"   ratio {wall_seconds / issue_ideal:.2f}x"),
        ("ideal, requests made", f"{request_ideal:.2f} s = {total_requests} x {latency * 1000:g} ms / {slots}"
                                 f"   ratio {wall_seconds / request_ideal:.2f}x"),
        ("throughput", f"{statuses[ENABLED] / wall_seconds:.1f} mailboxes/s"),
        ("worker CPU", f"{cpu_seconds * 1000 / count:.2f} ms per job ({cpu_seconds:.2f} s in all)"),
        ("SQL statements", f"{total_statements / count:.2f} per job ({statement_kinds})"),
        # Run on the driver's own cursor (portal.web.pagecache), so not among the statements above.
        ("data generation raised", f"{generations / count:.2f} times per job (one statement each, not counted above)"),
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
    if args.worker_process:
        serve_as_worker_process()
        return 0
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
            generation_before = data_generation()
            if args.processes:
                wall_seconds, cpu_seconds, statements = provision_in_processes(
                    app, args.processes, args.mailboxes, args.concurrency, args.poll_seconds, args.timeout)
            else:
                wall_seconds, cpu_seconds, statements = provision_in_threads(
                    app, args.mailboxes, args.concurrency, args.poll_seconds, args.timeout)
            passed = report(count=args.mailboxes, concurrency=args.concurrency, processes=args.processes,
                            latency=latency, enqueue_seconds=enqueue_seconds, wall_seconds=wall_seconds,
                            cpu_seconds=cpu_seconds, statements=statements, requests=request_kinds(emulator),
                            statuses=mailbox_statuses(), creations=emulator.creations, addresses=addresses,
                            generations=data_generation() - generation_before)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
