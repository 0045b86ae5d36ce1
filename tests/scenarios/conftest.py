"""Each HTTP backend as the portal meets it in production, through its emulator: dimail in
both versions (public, current) and Mail-in-a-Box, as the connection ``emu``.

``Server`` gives a scenario one vocabulary for what the server really holds, and for what
happens on it behind the portal's back, whatever the backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import requests

from portal.domains.models import Domain
from portal.extensions import db
from tests.emulated import connection_environ
from tests.servers.emu_dimail import DimailEmulator
from tests.servers.emu_mailinabox import MailInABoxEmulator

KINDS = ("dimail-public", "dimail-current", "mailinabox")
DOMAIN = "corp.example.org"
BOX_ADMIN = ("admin@box.test", "miab-admin-secret")


@dataclass
class Server:
    kind: str
    emulator: DimailEmulator | MailInABoxEmulator
    environ: dict[str, str]

    @property
    def dimail(self) -> bool:
        return isinstance(self.emulator, DimailEmulator)

    # -- what it holds ------------------------------------------------------------------

    def has(self, address: str) -> bool:
        if self.dimail:
            return address in self.emulator.mailboxes
        return self.emulator.users.get(address, {}).get("status") == "active"

    def active(self, address: str) -> bool:
        if self.dimail:
            return self.emulator.mailboxes[address]["active"] == "yes" or self.emulator.mode == "public"
        return self.has(address)

    def password(self, address: str) -> str:
        return (self.emulator.mailboxes if self.dimail else self.emulator.users)[address]["password"]

    def aliases_of(self, address: str) -> list[str]:
        if self.dimail:
            return sorted(alias for alias, targets in self.emulator.aliases.items() if address in targets)
        return sorted(alias for alias, entry in self.emulator.aliases.items() if address in entry["forwards_to"])

    # -- behind the portal's back, through the server's own API ------------------------

    def _bearer(self) -> dict[str, str]:
        token = requests.get(f"{self.emulator.url}/token/", auth=(self.emulator.user, self.emulator.password),
                             timeout=2).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    def create(self, address: str) -> None:
        local_part, domain = address.split("@")
        if self.dimail:
            answer = requests.post(f"{self.emulator.url}/domains/{domain}/mailboxes/{local_part}",
                                   json={"givenName": "Made", "surName": "Elsewhere", "displayName": "x"},
                                   headers=self._bearer(), timeout=2)
            assert answer.status_code == 201, answer.text
        else:
            answer = requests.post(f"{self.emulator.url}/admin/mail/users/add",
                                   data={"email": address, "password": "made-elsewhere-pw"}, auth=BOX_ADMIN, timeout=2)
            assert answer.text.startswith("mail user added"), answer.text

    def remove(self, address: str) -> None:
        local_part, domain = address.split("@")
        if self.dimail:
            answer = requests.delete(f"{self.emulator.url}/domains/{domain}/mailboxes/{local_part}",
                                     headers=self._bearer(), timeout=2)
            assert answer.status_code == 204, answer.text
        else:
            answer = requests.post(f"{self.emulator.url}/admin/mail/users/remove", data={"email": address},
                                   auth=BOX_ADMIN, timeout=2)
            assert answer.text.startswith("mail user removed"), answer.text

    def receive_mail(self, address: str) -> None:
        if not self.dimail:
            self.emulator.deliver(address)


@pytest.fixture(params=KINDS)
def server(request):
    kind = request.param
    if kind.startswith("dimail"):
        with DimailEmulator(mode=kind.split("-", 1)[1]) as emulator:
            # The public dimail states no DNS records: the connection says where its mail goes.
            yield Server(kind, emulator, connection_environ(
                "emu", "dimail", url=emulator.url, user=emulator.user, password=emulator.password,
                mx_host="mx.ox.example.net", spf_include="_spf.ox.example.net"))
    else:
        with MailInABoxEmulator() as emulator:
            yield Server(kind, emulator, connection_environ(
                "emu", "mailinabox", url=emulator.url, user=BOX_ADMIN[0], password=BOX_ADMIN[1],
                mx_host="box.example.net"))


@pytest.fixture
def app_environ(server):
    return server.environ


@pytest.fixture
def portal(client, auth, owner, account):
    auth.login("owner@example.org")
    return client


@pytest.fixture
def enable_domain(portal, account, dns_zone, run_jobs):
    """Add the domain through the portal, publish what it asks for, and let the worker check it."""
    def enable(name: str = DOMAIN) -> Domain:
        response = portal.post(f"/accounts/{account.id}/domains/new", data={"name": name, "connection": "emu"})
        assert response.status_code == 302, response.get_data(as_text=True)[:3000]
        domain = db.session.execute(db.select(Domain).where(Domain.name == name)).scalar_one()
        dns_zone.set(f"_portal-challenge.{name}", "TXT", [domain.challenge])
        run_jobs()
        db.session.refresh(domain)
        for record in domain.records[1:]:
            value = record["expected"]
            if record["type"] == "MX" and " " not in value:
                value = f"10 {value}"  # dimail's spec names the host only
            dns_zone.set(record["name"], record["type"], [value])
        assert portal.post(f"/accounts/{account.id}/domains/{domain.id}/check").status_code == 302
        run_jobs()
        db.session.refresh(domain)
        return domain

    return enable
