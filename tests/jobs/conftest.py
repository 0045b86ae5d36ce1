"""Worker processes for the tests that kill a worker or run several at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portal.extensions import db
from portal.jobs.models import WorkerBeat
from tests.jobs import handlers  # noqa: F401  (registers the test.* kinds in this process too)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def clean_environ() -> dict[str, str]:
    """This process's environment without PORTAL_* settings, which would change the
    app a subprocess builds, and with the project importable."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    return env


def wait_until(condition, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"{what} did not happen within {timeout}s")


class WorkerProcesses:
    """Start ``tests.jobs.worker_process`` workers; whatever is still running at
    the end of the test is stopped."""

    def __init__(self, database_url: str, instance_dir: Path, output_dir: Path):
        self.database_url = database_url
        self.instance_dir = instance_dir
        self.output_dir = output_dir
        self.started: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *, lease: int = 30, concurrency: int = 2) -> subprocess.Popen:
        output = open(self.output_dir / f"{name}.log", "wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.jobs.worker_process", self.database_url, str(self.instance_dir),
             "--name", name, "--lease", str(lease), "--concurrency", str(concurrency)],
            cwd=PROJECT_ROOT, env=clean_environ(), stdout=output, stderr=subprocess.STDOUT)
        output.close()
        self.started[name] = process
        return process

    def output(self, name: str) -> str:
        return (self.output_dir / f"{name}.log").read_text(errors="replace")

    def wait_ready(self, *names: str, timeout: float = 30) -> None:
        """Wait until each named worker has published its first heartbeat."""
        def ready() -> bool:
            for name in names:
                if self.started[name].poll() is not None:
                    raise AssertionError(f"worker {name} exited early:\n{self.output(name)}")
            seen = set(db.session.execute(db.select(WorkerBeat.name)).scalars())
            db.session.rollback()
            return seen >= set(names)

        wait_until(ready, timeout, f"start-up of workers {names}")

    def stop(self, *names: str, timeout: float = 20) -> list[int]:
        """SIGTERM the named workers together; return their exit codes."""
        for name in names:
            self.started[name].send_signal(signal.SIGTERM)
        return [self.started[name].wait(timeout=timeout) for name in names]

    def stop_all(self) -> None:
        for process in self.started.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.started.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def worker_processes(app, database_url, instance_dir, tmp_path):
    processes = WorkerProcesses(database_url, instance_dir, tmp_path)
    yield processes
    processes.stop_all()
