"""Two accounts on the same backend, as an attacker would set them up: B added the same
domain name as A while it was unproven; A proved it. Tests walk B over every path that
names an address or a domain, through HTTP."""

from __future__ import annotations

import pytest

from portal.backends import service as backends
from portal.domains.models import Domain
from portal.domains.services import add_domain, schedule_check
from portal.extensions import db

SHARED = "victim.example.org"
OWN_B = "attacker.example.org"


def publish_everything(zone, domain: Domain) -> None:
    """The ownership record and every record the domain's backend asks for."""
    zone.set(f"_portal-challenge.{domain.name}", "TXT", [domain.challenge])
    for record in backends.adapter(domain.connection).required_records(domain.name):
        values = zone.records.get((record.name.rstrip(".").lower() + ".", record.type), [])
        value = record.value.rstrip(".") if record.type in ("MX", "CNAME") else record.value
        zone.set(record.name, record.type, values + [value])


def prove(zone, run_jobs, domain: Domain) -> Domain:
    publish_everything(zone, domain)
    schedule_check(domain, trigger="manual")
    db.session.commit()
    run_jobs()
    db.session.expire_all()
    return db.session.get(Domain, domain.id)


@pytest.fixture
def world(make, backend, dns_zone, run_jobs):
    """Account A proved ``SHARED``; account B holds a copy of it added while it was unproven, and
    its own proven ``OWN_B`` with a mailbox. ``backend`` comes from the test module."""
    connection = backend[3]
    owner_a = make.user("alice@a-owners.example", name="Alice")
    owner_b = make.user("mallory@b-owners.example", name="Mallory")
    account_a = make.account(owner_a, "Victim")
    account_b = make.account(owner_b, "Attacker")
    copy_b = add_domain(owner_b, account_b, SHARED, connection)
    shared_a = add_domain(owner_a, account_a, SHARED, connection)
    own_b = add_domain(owner_b, account_b, OWN_B, connection)
    db.session.commit()
    shared_a = prove(dns_zone, run_jobs, shared_a)
    own_b = prove(dns_zone, run_jobs, own_b)
    from portal.mailboxes.services import create_mailbox

    mailbox_b = create_mailbox(owner_b, account_b, own_b, "inbox")
    db.session.commit()
    run_jobs()
    db.session.expire_all()
    return {"a": account_a, "b": account_b, "owner_a": owner_a, "owner_b": owner_b, "shared_a": shared_a,
            "copy_b": db.session.get(Domain, copy_b.id), "own_b": own_b, "mailbox_b": mailbox_b,
            "connection": connection, "emulator": backend[1]}
