"""Mail an account left archived on a backend that restores archives (Mail-in-a-Box), and routing
a removed domain left there, never reach the next account that proves the domain.

Creating an address a deleted account left, or one the account archived and then removed the
domain of, is refused before the backend is asked (it answers "created" when it restores the
archive); the account that removed the domain takes its own back. Removing a domain, or deleting
its account, takes its domain aliases and catch-all off the backend."""

from __future__ import annotations

import pytest

from portal.accounts import services as accounts
from portal.domains import settings
from portal.domains.services import remove_domain
from portal.extensions import db
from portal.mailboxes import services
from portal.mailboxes.models import DELETED, ENABLED, FAILED, ReleasedMailbox
from tests.emulated import connection_environ
from tests.mailboxes.conftest import enabled_domain
from tests.servers.emu_mailinabox import MailInABoxEmulator

BOX_ADMIN = ("admin@box.test", "miab-admin-secret")
NAME = "corp.example.org"


@pytest.fixture
def box():
    with MailInABoxEmulator(*BOX_ADMIN) as emulator:
        yield emulator


@pytest.fixture
def app_environ(box):
    return connection_environ("box", "mailinabox", url=box.url, user=BOX_ADMIN[0], password=BOX_ADMIN[1])


def _created(owner, account, run_jobs, domain, local_part):
    mailbox = services.create_mailbox(owner, account, domain, local_part)
    db.session.commit()
    run_jobs()
    db.session.refresh(mailbox)
    return mailbox


def _newco(make):
    boss = make.user("boss@newco.example")
    return boss, make.account(boss, "Newco")


def test_a_deleted_accounts_archive_is_not_restored_for_the_next_account(owner, account, make, run_jobs, box):
    domain = enabled_domain(owner, account, NAME, "box")
    assert _created(owner, account, run_jobs, domain, "sales").status == ENABLED
    box.deliver(f"sales@{NAME}", 7)
    assert accounts.delete_account(owner, account, account.name, delete_mailboxes=False) == {
        f"sales@{NAME}": "archived"}
    db.session.commit()
    run_jobs()
    boss, newco = _newco(make)
    mailbox = _created(boss, newco, run_jobs, enabled_domain(boss, newco, NAME, "box"), "sales")
    assert mailbox.status == FAILED and "was left on the backend" in mailbox.status_reason
    assert box.creations[f"sales@{NAME}"] == 1 and box.users[f"sales@{NAME}"]["status"] == "inactive"
    assert services.waiting_secret(mailbox) is None


def test_a_removed_domains_archive_goes_back_to_its_account_only(owner, account, make, run_jobs, box):
    domain = enabled_domain(owner, account, NAME, "box")
    ceo = _created(owner, account, run_jobs, domain, "ceo")
    box.deliver(f"ceo@{NAME}", 3)
    services.delete(owner, ceo)
    db.session.commit()
    run_jobs()
    db.session.refresh(ceo)
    assert ceo.status == DELETED
    remove_domain(owner, domain)
    db.session.commit()
    left = db.session.execute(db.select(ReleasedMailbox)).scalar_one()
    assert (left.address, left.account_id, left.account_name) == (f"ceo@{NAME}", account.id, account.name)
    boss, newco = _newco(make)
    theirs = enabled_domain(boss, newco, NAME, "box")
    refused = _created(boss, newco, run_jobs, theirs, "ceo")
    assert refused.status == FAILED and box.folders[f"ceo@{NAME}"] == 3
    assert box.users[f"ceo@{NAME}"]["status"] == "inactive"
    # Newco lets the name go; the account that left the archive proves it again and takes it back.
    services.forget_deleted_mailboxes(theirs)
    db.session.delete(refused)
    db.session.delete(theirs)
    db.session.commit()
    again = _created(owner, account, run_jobs, enabled_domain(owner, account, NAME, "box"), "ceo")
    assert again.status == ENABLED and box.users[f"ceo@{NAME}"]["status"] == "active"
    assert db.session.execute(db.select(ReleasedMailbox)).first() is None


def test_removing_a_domain_takes_its_routing_off_the_backend(owner, account, make, run_jobs, box):
    alias, target = "a-corp.example.org", "d-brand.example.org"
    enabled_domain(owner, account, alias, "box")
    domain = enabled_domain(owner, account, target, "box")
    catch = _created(owner, account, run_jobs, domain, "catchall")
    settings.save(owner, domain, {"domain_aliases": [alias], "catch_all": catch.address})
    db.session.commit()
    run_jobs()
    db.session.refresh(domain)
    assert domain.settings_state == "applied", domain.settings_message
    assert box.forwards_to(f"@{alias}") == [f"@{target}"] and box.forwards_to(f"@{target}") == [catch.address]
    services.delete(owner, catch)
    db.session.commit()
    run_jobs()
    remove_domain(owner, domain)
    db.session.commit()
    run_jobs()
    assert not box.forwards_to(f"@{alias}") and not box.forwards_to(f"@{target}")


def test_deleting_an_account_takes_its_domains_routing_off_the_backend(owner, account, run_jobs, box):
    alias, target = "a-corp.example.org", "d-brand.example.org"
    enabled_domain(owner, account, alias, "box")
    domain = enabled_domain(owner, account, target, "box")
    settings.save(owner, domain, {"domain_aliases": [alias]})
    db.session.commit()
    run_jobs()
    assert box.forwards_to(f"@{alias}") == [f"@{target}"]
    accounts.delete_account(owner, account, account.name, delete_mailboxes=False)
    db.session.commit()
    run_jobs()
    assert not box.forwards_to(f"@{alias}")
