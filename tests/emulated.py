"""Start one backend emulator and describe it as the portal's connection ``emu``."""

from __future__ import annotations

from contextlib import contextmanager

from tests.servers.emu_dimail import DimailEmulator
from tests.servers.emu_mailinabox import MailInABoxEmulator
from tests.servers.emu_odin import OdinEmulator
from tests.servers.emu_opensrs import OpenSrsEmulator

DOMAIN = "corp.example.org"
REMOTE_KINDS = ("dimail", "opensrs", "odin", "mailinabox")
CONNECTION = "emu"


def _env(kind: str, **settings: str) -> dict[str, str]:
    env = {"PORTAL_BACKEND_EMU_BACKEND": kind, "PORTAL_BACKEND_EMU_TIMEOUT": "0.5"}
    env.update({f"PORTAL_BACKEND_EMU_{key.upper()}": value for key, value in settings.items()})
    return env


@contextmanager
def emulated(kind: str):
    """Yield (emulator, app environment, connection name) for ``kind``; ``local`` is the built-in connection."""
    if kind == "local":
        yield None, {}, "local"
        return
    if kind == "dimail":
        with DimailEmulator() as emulator:
            emulator.domains[DOMAIN] = {"name": DOMAIN, "features": ["webmail", "mailbox", "alias"],
                                        "delivery": "virtual", "context_name": DOMAIN}
            emulator.checks[DOMAIN] = {}
            yield emulator, _env(kind, url=emulator.url, user=emulator.user, password=emulator.password), CONNECTION
    elif kind == "opensrs":
        with OpenSrsEmulator() as emulator:
            yield emulator, _env(kind, url=emulator.url, user=emulator.user, password=emulator.password), CONNECTION
    elif kind == "odin":
        with OdinEmulator(domains=(DOMAIN,)) as emulator:
            yield emulator, _env(kind, url=emulator.url, subscription_id=str(emulator.subscription_id)), CONNECTION
    elif kind == "mailinabox":
        with MailInABoxEmulator() as emulator:
            yield emulator, _env(kind, url=emulator.url, user="admin@box.test", password="miab-admin-secret"), CONNECTION
    else:
        raise ValueError(kind)
