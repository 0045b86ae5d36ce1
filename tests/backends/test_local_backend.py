"""The built-in local backend: its own rules and several processes at once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from portal.backends.base import (
    PORTAL_DOMAIN_SETTING_KEYS,
    BackendNotFound,
    MailboxSpec,
    PermanentBackendError,
    TransientBackendError,
)
from portal.backends.local import LocalBackend

REPO_ROOT = Path(__file__).resolve().parents[2]

# Each process imports, says it is ready, waits for "go" (so that the
# creations really overlap), creates the same mailboxes as the others and
# prints how many it created.
_WORKER = """
import json, sys
from portal.backends.base import MailboxSpec
from portal.backends.local import LocalBackend
backend = LocalBackend({"state_path": sys.argv[1]}, timeout=10)
backend.ensure_domain("example.test")
print("ready", flush=True)
sys.stdin.readline()
created = [backend.create_mailbox(MailboxSpec.for_address(f"user{n}@example.test")).created for n in range(6)]
print(json.dumps(sum(created)))
"""


def test_several_processes__create_each_mailbox_exactly_once(tmp_path):
    state_path = str(tmp_path / "shared.sqlite3")
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, state_path], cwd=REPO_ROOT, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
    outputs = [worker.communicate("go\n", timeout=30) for worker in workers]

    assert all(worker.returncode == 0 for worker in workers), [err for _, err in outputs]
    assert sum(json.loads(out) for out, _ in outputs) == 6
    backend = LocalBackend({"state_path": state_path}, timeout=1)
    assert len(backend.list_mailboxes("example.test")) == 6


def _hold_write_lock(path: str) -> sqlite3.Connection:
    """Another process's view: a new file, still in rollback mode, whose write lock is taken."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE someone_elses (x)")
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_new_state_file__waits_for_a_process_holding_the_write_lock(tmp_path):
    # Switching to WAL reads the file, then upgrades to writing; SQLite refuses
    # that upgrade at once, without its busy timeout, while another process
    # writes. Two processes starting on a new file met this in CI.
    state_path = str(tmp_path / "shared.sqlite3")
    holder = _hold_write_lock(state_path)
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    try:
        backend = LocalBackend({"state_path": state_path}, timeout=5)
    finally:
        release.join()
        holder.close()

    assert time.monotonic() - started >= 0.25
    backend.ensure_domain("example.test")
    assert backend.create_mailbox(MailboxSpec.for_address("ada@example.test")).created
    with sqlite3.connect(state_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_new_state_file__gives_up_when_the_lock_outlasts_the_timeout(tmp_path):
    state_path = str(tmp_path / "shared.sqlite3")
    holder = _hold_write_lock(state_path)
    started = time.monotonic()
    try:
        with pytest.raises(TransientBackendError) as caught:
            LocalBackend({"state_path": state_path}, timeout=0.3)
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert 0.25 <= time.monotonic() - started < 3
    assert "locked" in caught.value.message


def test_state_file_that_cannot_be_opened__fails_at_once(tmp_path):
    directory = tmp_path / "state"
    directory.mkdir()
    started = time.monotonic()
    with pytest.raises(TransientBackendError):
        LocalBackend({"state_path": str(directory)}, timeout=5)  # a directory, not a file

    assert time.monotonic() - started < 1


def test_state_file__runs_in_wal_mode(local):
    with sqlite3.connect(local.settings["state_path"]) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_two_adapters__share_the_same_state(local):
    address = local.backend.create_mailbox(local.spec()).address

    assert local.open().get_mailbox(address) is not None


def test_create_mailbox__needs_the_domain_set_up_first(local):
    with pytest.raises(BackendNotFound) as caught:
        local.backend.create_mailbox(MailboxSpec.for_address("jane@elsewhere.test"))

    assert "elsewhere.test" in caught.value.message


def test_ensure_domain__refuses_an_invalid_name(local):
    with pytest.raises(PermanentBackendError):
        local.backend.ensure_domain("not a domain")


def test_reset_password__replaces_the_old_password(local):
    result = local.backend.create_mailbox(local.spec())

    new_password = local.backend.reset_password(result.address)

    assert local.backend.check_password(result.address, new_password)
    assert not local.backend.check_password(result.address, result.generated_password)


def test_create_mailbox__stores_the_portals_password(local):
    address = local.backend.create_mailbox(local.spec(password="Portal-chosen-Pw-42")).address

    assert local.backend.check_password(address, "Portal-chosen-Pw-42")


def test_add_alias__refuses_conflicts(local):
    jane = local.backend.create_mailbox(local.spec()).address
    john = local.backend.create_mailbox(local.spec("john")).address
    local.backend.add_alias(jane, f"team@{local.domain}")

    for alias in (f"team@{local.domain}", jane):
        with pytest.raises(PermanentBackendError) as caught:
            local.backend.add_alias(john, alias)
        assert caught.value.code == "already_exists"
    assert local.backend.get_mailbox(jane).extra["aliases"] == [f"team@{local.domain}"]


def test_delete_mailbox__takes_its_aliases_along(local):
    jane = local.backend.create_mailbox(local.spec()).address
    local.backend.add_alias(jane, f"team@{local.domain}")

    local.backend.delete_mailbox(jane)
    john = local.backend.create_mailbox(local.spec("john")).address
    local.backend.add_alias(john, f"team@{local.domain}")

    assert local.backend.get_mailbox(john).extra["aliases"] == [f"team@{local.domain}"]


def test_required_records__default_to_mail_dot_domain(tmp_path):
    backend = LocalBackend({"state_path": str(tmp_path / "s.sqlite3")}, timeout=1)

    records = backend.required_records("example.test")

    assert [(r.type, r.value) for r in records] == [
        ("MX", "10 mail.example.test."), ("TXT", "v=spf1 mx ~all")]


def test_domain_settings__are_kept_in_the_shared_state(local):
    local.backend.set_domain_settings(local.domain, {"max_users": 10, "allow_senders": ("*@partner.test",)})

    settings = local.open().get_domain_settings(local.domain)

    assert (settings["max_users"], settings["allow_senders"], settings["spam_level"]) == (10, ["*@partner.test"], None)
    assert set(settings) == set(PORTAL_DOMAIN_SETTING_KEYS)


def test_domain_settings__of_a_domain_never_set_up_are_not_found(local):
    with pytest.raises(BackendNotFound):
        local.backend.set_domain_settings("elsewhere.test", {"max_users": 1})


def test_protocols__go_with_the_mailbox(local):
    address = local.backend.create_mailbox(local.spec(protocols={"pop3": False})).address
    local.backend.set_mailbox_active(address, False)
    local.backend.set_mailbox_active(address, True)
    kept = local.backend.get_protocols(address)

    local.backend.delete_mailbox(address)
    local.backend.create_mailbox(local.spec())

    assert kept == {"imap4": True, "pop3": False, "smtp": True, "webmail": True}
    assert local.backend.get_protocols(address)["pop3"] is True


def test_state_of_an_earlier_version__gains_the_new_tables(tmp_path):
    state_path = str(tmp_path / "old.sqlite3")
    with sqlite3.connect(state_path) as db:
        db.executescript("CREATE TABLE domains (name TEXT PRIMARY KEY); INSERT INTO domains VALUES ('old.test');")

    backend = LocalBackend({"state_path": state_path}, timeout=1)

    assert backend.get_domain_settings("old.test")["catch_all"] is None
