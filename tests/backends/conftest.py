"""Fixtures for the backend adapter tests: no Flask, no database.

Each adapter runs against a real HTTP server on loopback that emulates its
backend (tests/servers/emu_*.py), or, for the local backend, against a
SQLite file under tmp_path. dimail runs twice, once per version the
emulator reproduces: ``dimail`` (the current one, with domain checks,
password reset and disabling) and ``dimail-public`` (the public one,
without). A ``Harness`` bundles an adapter, already told what its server
offers (``discover()``), with what the contract suite needs to know about
its backend: how to count what really got created, what a quota looks like
on the wire, which request creates a mailbox, a mailbox name the backend
refuses and its own words for it, and how a mailbox receives mail.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from portal.backends import local as local_module
from portal.backends.base import Backend, MailboxSpec
from portal.backends.dimail import DimailBackend
from portal.backends.local import LocalBackend
from portal.backends.mailinabox import MailInABoxBackend
from portal.backends.odin import OdinBackend
from portal.backends.opensrs import OpenSrsBackend
from tests.servers.emu_common import Emulator, RecordedRequest
from tests.servers.emu_dimail import DimailEmulator
from tests.servers.emu_mailinabox import MailInABoxEmulator
from tests.servers.emu_odin import OdinEmulator
from tests.servers.emu_opensrs import OpenSrsEmulator

# Generous: the emulators answer from threads of the test process, which a loaded machine can
# stall for a moment (the set-up's first call once timed out at 0.5 s in CI). The test of a slow
# answer opens an adapter with a timeout of its own.
TIMEOUT = 2.0
DOMAIN = "example.test"
MIB = 1024**2
GIB = 1024**3

ALL_BACKENDS = ["local", "dimail", "dimail-public", "opensrs", "odin", "mailinabox"]
NETWORK_BACKENDS = ALL_BACKENDS[1:]


@pytest.fixture(autouse=True)
def cheap_local_password_hashing(monkeypatch):
    """scrypt at its interactive-login cost takes 0.2 s a mailbox; these tests
    are about the adapter's behaviour, not the hash's cost."""
    monkeypatch.setattr(local_module, "_SCRYPT", {"n": 2**4, "r": 8, "p": 1})


@dataclass
class Harness:
    name: str
    backend: Backend
    emulator: Emulator | None
    settings: dict[str, str]
    creations: Callable[[str], int]
    wire_quota: Callable[[str], Any] | None
    # (bytes asked, value stored on the backend, bytes read back)
    quota_cases: list[tuple[int, Any, int]]
    invalid_local_part_message: str
    is_create_request: Callable[[RecordedRequest], bool]
    # The aliases delivering to an address, and the domains set up, as the
    # backend itself holds them (no domains for backends without a domain API).
    aliases: Callable[[str], list[str]]
    domains: Callable[[], list[str]]
    domain: str = DOMAIN
    invalid_local_part: str = "Not Valid!"
    # Mail arriving in a mailbox (Mail-in-a-Box keeps the folder of a removed user that has mail).
    receive_mail: Callable[[str], None] = lambda address: None

    def open(self, timeout: float = TIMEOUT, **settings: str) -> Backend:
        """Another adapter on the same backend, with some settings changed (not yet discovered)."""
        return type(self.backend)({**self.settings, **settings}, timeout=timeout)

    def spec(self, local_part: str = "jane.doe", **fields: Any) -> MailboxSpec:
        return MailboxSpec.for_address(
            f"{local_part}@{self.domain}", **{"first_name": "Jane", "last_name": "Doe", **fields}
        )


def _local(stack: ExitStack, tmp_path) -> Harness:
    settings = {"state_path": str(tmp_path / "local-backend.sqlite3"), "mail_host": "mx.local.test"}
    backend = LocalBackend(settings, timeout=TIMEOUT)

    def query(sql: str, *parameters: Any) -> list[tuple]:
        with sqlite3.connect(settings["state_path"]) as db:
            return db.execute(sql, parameters).fetchall()

    return Harness(
        name="local", backend=backend, emulator=None, settings=settings,
        creations=lambda address: int(backend.get_mailbox(address) is not None),
        wire_quota=lambda address: query("SELECT quota_bytes FROM mailboxes WHERE address = ?", address)[0][0],
        quota_cases=[(5 * GIB, 5 * GIB, 5 * GIB), (1_234_567, 1_234_567, 1_234_567)],
        invalid_local_part_message="Invalid local part",
        is_create_request=lambda request: False,
        aliases=lambda address: [alias for (alias,) in query("SELECT alias FROM aliases WHERE address = ?", address)],
        domains=lambda: [name for (name,) in query("SELECT name FROM domains")],
    )


def _dimail(stack: ExitStack, tmp_path, mode: str = "current") -> Harness:
    emulator = stack.enter_context(DimailEmulator(mode=mode))
    settings = {"url": emulator.url, "user": emulator.user, "password": emulator.password}
    if mode == "public":  # it states no records: they come from the mail host, named as an operator must
        settings["mx_host"] = "mx.dimail.test"
    return Harness(
        name="dimail" if mode == "current" else f"dimail-{mode}", backend=DimailBackend(settings, timeout=TIMEOUT),
        emulator=emulator, settings=settings,
        creations=lambda address: emulator.creations[address],
        wire_quota=None,
        quota_cases=[],
        # dimail takes nearly any name as given, but not more than dovecot's 128 characters.
        invalid_local_part="x" * 129,
        invalid_local_part_message="at most 128 characters",
        is_create_request=lambda request: request.method == "POST" and "/mailboxes/" in request.path,
        aliases=lambda address: [alias for alias, targets in emulator.aliases.items() if address in targets],
        domains=lambda: list(emulator.domains),
    )


def _dimail_public(stack: ExitStack, tmp_path) -> Harness:
    return _dimail(stack, tmp_path, mode="public")


def _opensrs(stack: ExitStack, tmp_path) -> Harness:
    emulator = stack.enter_context(OpenSrsEmulator())
    settings = {"url": emulator.url, "user": emulator.user, "password": emulator.password,
                "mx_host": "mail.hostedemail.test"}
    return Harness(
        name="opensrs", backend=OpenSrsBackend(settings, timeout=TIMEOUT), emulator=emulator, settings=settings,
        creations=lambda address: emulator.creations[address],
        wire_quota=lambda address: emulator.users[address].get("quota"),
        quota_cases=[(5 * GIB, 5_368_709_120, 5 * GIB), (1_234_567, 1_234_567, 1_234_567)],
        invalid_local_part_message="Invalid user name",
        is_create_request=lambda request: request.path.endswith("/change_user"),
        aliases=lambda address: emulator.users[address].get("aliases", []),
        domains=lambda: list(emulator.domains),
    )


def _odin(stack: ExitStack, tmp_path) -> Harness:
    emulator = stack.enter_context(OdinEmulator(domains=(DOMAIN,)))
    emulator.basic_auth = ("portal", "odin-basic-secret")
    settings = {"url": emulator.url, "subscription_id": str(emulator.subscription_id),
                "user": "portal", "password": "odin-basic-secret", "mx_host": "mx.exchange.test"}
    return Harness(
        name="odin", backend=OdinBackend(settings, timeout=TIMEOUT), emulator=emulator, settings=settings,
        creations=lambda address: emulator.creations[address],
        wire_quota=lambda address: emulator.mailbox_by_address(address)["size_limit"],
        quota_cases=[(5 * GIB, 5_242_880, 5 * GIB), (1536 * MIB, 1_572_864, 1536 * MIB), (1025, 2, 2048)],
        invalid_local_part_message="Invalid e-mail address",
        is_create_request=lambda request: b"pem.exchange.addMailbox" in request.body,
        aliases=lambda address: emulator.mailbox_by_address(address)["email_addresses"][1:],
        domains=list,
    )


def _mailinabox(stack: ExitStack, tmp_path) -> Harness:
    emulator = stack.enter_context(MailInABoxEmulator())
    settings = {"url": emulator.url, "user": "admin@box.test", "password": "miab-admin-secret"}
    return Harness(
        # The box refuses special-use domains such as .test ("Invalid email address.").
        domain="example.org",
        receive_mail=emulator.deliver,
        name="mailinabox", backend=MailInABoxBackend(settings, timeout=TIMEOUT), emulator=emulator,
        settings=settings,
        creations=lambda address: emulator.creations[address],
        wire_quota=lambda address: emulator.users[address]["quota"],
        quota_cases=[(5 * GIB, "5G", 5 * GIB), (1536 * MIB, "1536M", 1536 * MIB), (MIB + 1, "2M", 2 * MIB)],
        invalid_local_part_message="Invalid email address.",
        is_create_request=lambda request: request.path.endswith("/users/add"),
        aliases=lambda address: [alias for alias, entry in emulator.aliases.items()
                                 if address in entry["forwards_to"]],
        domains=list,
    )


_FACTORIES = {"local": _local, "dimail": _dimail, "dimail-public": _dimail_public, "opensrs": _opensrs,
              "odin": _odin, "mailinabox": _mailinabox}


def _harness(name: str, tmp_path) -> Iterator[Harness]:
    with ExitStack() as stack:
        harness = _FACTORIES[name](stack, tmp_path)
        harness.backend.discover()
        harness.backend.ensure_domain(harness.domain)
        yield harness


@pytest.fixture(params=ALL_BACKENDS)
def harness(request, tmp_path) -> Iterator[Harness]:
    """Each adapter in turn, its domain set up."""
    yield from _harness(request.param, tmp_path)


@pytest.fixture(params=NETWORK_BACKENDS)
def network_harness(request, tmp_path) -> Iterator[Harness]:
    """Each adapter that talks to a server, its domain set up."""
    yield from _harness(request.param, tmp_path)


@pytest.fixture
def dimail(tmp_path) -> Iterator[Harness]:
    """The current dimail (with checks, password reset and disabling)."""
    yield from _harness("dimail", tmp_path)


@pytest.fixture
def dimail_public(tmp_path) -> Iterator[Harness]:
    """The public dimail (no checks, no password reset, ``active`` ignored)."""
    yield from _harness("dimail-public", tmp_path)


@pytest.fixture(params=["dimail", "dimail-public"])
def any_dimail(request, tmp_path) -> Iterator[Harness]:
    """Each dimail version in turn."""
    yield from _harness(request.param, tmp_path)


@pytest.fixture
def opensrs(tmp_path) -> Iterator[Harness]:
    yield from _harness("opensrs", tmp_path)


@pytest.fixture
def odin(tmp_path) -> Iterator[Harness]:
    yield from _harness("odin", tmp_path)


@pytest.fixture
def mailinabox(tmp_path) -> Iterator[Harness]:
    yield from _harness("mailinabox", tmp_path)


@pytest.fixture
def local(tmp_path) -> Iterator[Harness]:
    yield from _harness("local", tmp_path)
