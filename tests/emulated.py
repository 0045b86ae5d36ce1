"""Backend emulators described as the portal's connections.

``emulated(kind)`` starts one emulator of any kind as the connection ``emu``;
the ``dimail`` and ``app_environ`` fixtures, imported by a test module or a
conftest, give its tests the connection ``corp`` on a dimail emulator.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from tests.servers.emu_dimail import DimailEmulator
from tests.servers.emu_mailinabox import MailInABoxEmulator
from tests.servers.emu_odin import OdinEmulator
from tests.servers.emu_opensrs import OpenSrsEmulator

DOMAIN = "corp.example.org"
REMOTE_KINDS = ("dimail", "opensrs", "odin", "mailinabox")
CONNECTION = "emu"


# Generous, so a loaded CI machine does not turn a slow answer into a failure; the
# fault switches the portal's tests use (refuse, drop, 5xx) fail at once anyway.
def connection_environ(connection: str, kind: str, timeout: float = 3.0, **settings: str) -> dict[str, str]:
    """The app environment that declares the backend connection ``connection`` of kind ``kind``."""
    prefix = f"PORTAL_BACKEND_{connection.upper()}_"
    env = {f"{prefix}BACKEND": kind, f"{prefix}TIMEOUT": str(timeout)}
    env.update({f"{prefix}{key.upper()}": value for key, value in settings.items()})
    return env


def dimail_environ(emulator: DimailEmulator, connection: str = "corp", timeout: float = 3.0) -> dict[str, str]:
    """The app environment that points the connection ``connection`` at a running dimail emulator."""
    return connection_environ(connection, "dimail", timeout, url=emulator.url, user=emulator.user,
                              password=emulator.password)


def serve_on_dimail(emulator: DimailEmulator, name: str) -> None:
    """Make ``name`` a domain the dimail emulator already serves, every check of it passing."""
    emulator.domains[name] = {"name": name, "features": ["webmail", "mailbox", "alias"], "delivery": "virtual",
                              "context_name": name}
    emulator.checks[name] = {}


@pytest.fixture
def dimail():
    with DimailEmulator() as emulator:
        yield emulator


@pytest.fixture
def app_environ(dimail):
    return dimail_environ(dimail)


@contextmanager
def emulated(kind: str):
    """Yield (emulator, app environment, connection name) for ``kind``; ``local`` is the built-in connection."""
    if kind == "local":
        yield None, {}, "local"
        return
    if kind == "dimail":
        with DimailEmulator() as emulator:
            serve_on_dimail(emulator, DOMAIN)
            yield emulator, dimail_environ(emulator, CONNECTION), CONNECTION
    elif kind == "opensrs":
        with OpenSrsEmulator() as emulator:
            yield emulator, connection_environ(CONNECTION, kind, url=emulator.url, user=emulator.user,
                                               password=emulator.password), CONNECTION
    elif kind == "odin":
        with OdinEmulator(domains=(DOMAIN,)) as emulator:
            yield emulator, connection_environ(CONNECTION, kind, url=emulator.url,
                                               subscription_id=str(emulator.subscription_id)), CONNECTION
    elif kind == "mailinabox":
        with MailInABoxEmulator() as emulator:
            yield emulator, connection_environ(CONNECTION, kind, url=emulator.url, user="admin@box.test",
                                               password="miab-admin-secret"), CONNECTION
    else:
        raise ValueError(kind)


@pytest.fixture
def box():
    """A Mail-in-a-Box emulator as the connection ``emu``: (emulator, app environment, connection name).
    A module imports it with ``box_app_environ`` (``from tests.emulated import box, box_app_environ``)."""
    with emulated("mailinabox") as started:
        yield started


@pytest.fixture(name="app_environ")
def box_app_environ(box):
    return box[1]
