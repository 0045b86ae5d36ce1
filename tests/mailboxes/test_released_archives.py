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
from portal.i18n import shown
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
    assert mailbox.status == FAILED and "was left on the backend" in shown(mailbox.status_reason)
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


def test_the_next_holder_cannot_pass_anothers_archive_off_as_its_own(owner, account, make, run_jobs, box):
    """Newco, refused Acme's archive, deleted its refused mailbox and removed the domain: the
    record was rewritten as left by Newco, which then proved the name again and got Acme's mail."""
    domain = enabled_domain(owner, account, NAME, "box")
    assert _created(owner, account, run_jobs, domain, "sales").status == ENABLED
    box.deliver(f"sales@{NAME}", 7)
    accounts.delete_account(owner, account, account.name, delete_mailboxes=False)
    db.session.commit()
    run_jobs()
    boss, newco = _newco(make)
    theirs = enabled_domain(boss, newco, NAME, "box")
    refused = _created(boss, newco, run_jobs, theirs, "sales")
    assert refused.status == FAILED
    services.delete(boss, refused)
    db.session.commit()
    run_jobs()
    remove_domain(boss, theirs)
    db.session.commit()
    row = db.session.execute(db.select(ReleasedMailbox)).scalar_one()
    assert row.account_id is None and row.account_name != "Newco"
    again = _created(boss, newco, run_jobs, enabled_domain(boss, newco, NAME, "box"), "sales")
    assert again.status == FAILED and box.users[f"sales@{NAME}"]["status"] == "inactive"


def test_a_late_clear_leaves_the_next_holders_routing(owner, account, make, run_jobs, box):
    """The clearing job, delayed by the backend, ran after Newco had proven the name and routed
    mail there: it took Newco's domain alias off the backend, while Newco's page said applied."""
    from datetime import timedelta

    from portal.jobs.models import Job
    from portal.timeutil import utcnow

    enabled_domain(owner, account, "a-alias.example.org", "box")
    domain = enabled_domain(owner, account, NAME, "box")
    settings.save(owner, domain, {"domain_aliases": ["a-alias.example.org"]})
    db.session.commit()
    run_jobs()
    remove_domain(owner, domain)
    db.session.commit()
    box.faults.fail_5xx(1)
    run_jobs()
    assert db.session.execute(db.select(Job.status).where(Job.kind == settings.CLEAR_KIND)).scalar_one() == "queued"
    boss, newco = _newco(make)
    enabled_domain(boss, newco, "b-alias.example.org", "box")
    theirs = enabled_domain(boss, newco, NAME, "box")
    settings.save(boss, theirs, {"domain_aliases": ["b-alias.example.org"]})
    db.session.commit()
    run_jobs()
    assert box.forwards_to("@b-alias.example.org") == [f"@{NAME}"]
    assert run_jobs(utcnow() + timedelta(minutes=5)) >= 1
    assert box.forwards_to("@b-alias.example.org") == [f"@{NAME}"]


def test_removing_a_domain_clears_routing_a_pending_change_had_not_taken_off_yet(owner, account, run_jobs, box):
    enabled_domain(owner, account, "a-alias.example.org", "box")
    domain = enabled_domain(owner, account, NAME, "box")
    settings.save(owner, domain, {"domain_aliases": ["a-alias.example.org"]})
    db.session.commit()
    run_jobs()
    settings.save(owner, domain, {"domain_aliases": None})
    db.session.commit()
    remove_domain(owner, domain)  # before the worker applied the change
    db.session.commit()
    run_jobs()
    assert not box.forwards_to("@a-alias.example.org")


def test_removing_a_domain_of_a_connection_no_longer_configured_answers(owner, account, client, auth, run_jobs, box):
    """It answered 500: the removal asked the retired connection what its backend does."""
    domain = enabled_domain(owner, account, NAME, "box")
    ceo = _created(owner, account, run_jobs, domain, "ceo")
    services.delete(owner, ceo)
    db.session.commit()
    run_jobs()
    domain.connection = "retired"
    db.session.commit()
    auth.login(owner.email)
    answer = client.post(f"/accounts/{account.id}/domains/{domain.id}/remove", data={"confirm": NAME})
    assert answer.status_code in (302, 303), answer.status_code
    assert db.session.execute(db.select(ReleasedMailbox.address)).scalar_one() == f"ceo@{NAME}"


def test_removing_a_domain_costs_the_same_statements_whatever_it_held(owner, account):
    """Each deleted mailbox cost a DELETE and an INSERT of its record, besides its own DELETE."""
    from portal.mailboxes.models import Mailbox
    from tests.sql import on_each_statement

    def cost(name, size):
        domain = enabled_domain(owner, account, name, "box")
        for number in range(size):
            services.create_mailbox(owner, account, domain, f"user{number}")
        db.session.flush()
        db.session.execute(db.update(Mailbox).where(Mailbox.domain_id == domain.id).values(status=DELETED))
        db.session.commit()
        domain = db.session.merge(domain)
        statements = []
        with on_each_statement(statements.append):
            remove_domain(owner, domain)
        db.session.commit()
        return len(statements)

    assert cost("few.example.org", 2) == cost("many.example.org", 30)
    assert db.session.execute(db.select(db.func.count()).select_from(ReleasedMailbox)).scalar_one() == 32


def _removed_with_deleted_mailbox_and_a_helper(owner, account, make, run_jobs):
    """Jane, removed with her personal mailbox deleted (archived by the box), and a helper who may
    only create users; returns the domain, Jane and the helper."""
    from portal.accounts.models import Membership
    from portal.users import services as users

    domain = enabled_domain(owner, account, NAME, connection="box")
    jane, _link = users.create_corporate_user(owner, account, first_name="Jane", last_name="Doe",
                                              email=f"jane@{NAME}", personal_mailbox=True)
    db.session.commit()
    run_jobs()
    membership = db.session.execute(db.select(Membership).where(Membership.user_id == jane.id)).scalar_one()
    users.remove_corporate_user(owner, account, membership, "delete")
    db.session.commit()
    run_jobs()
    helper = make.user("helper@outside.example")
    make.member(account, helper, permissions=("users.create",))
    return domain, jane, helper


def _live_at(address: str):
    return db.session.execute(db.select(services.Mailbox).where(
        services.Mailbox.address == address, services.Mailbox.status != DELETED)).first()


def test_re_creating_an_archived_address_is_for_whoever_manages_the_mailboxes(owner, account, make, run_jobs, box):
    """A review: someone who may only create users made a person again at the address of their
    deleted personal mailbox, the link to set the first password mailed to a recovery address of
    theirs: the box restored the archive, and they read the removed person's mail through it."""
    from portal.auth.models import User
    from portal.users import services as users

    domain, jane, helper = _removed_with_deleted_mailbox_and_a_helper(owner, account, make, run_jobs)
    jane, _link = users.create_corporate_user(helper, account, first_name="Jane", last_name="Doe",
                                              email=f"jane@{NAME}", personal_mailbox=True,
                                              recovery_email="helper.private@outside.example")
    db.session.commit()
    assert _live_at(f"jane@{NAME}") is None
    # By hand, for someone who manages the account's mailboxes (the owner), it is made again.
    with pytest.raises(services.MailboxError, match="whose mail its backend kept"):
        services.create_mailbox(helper, account, domain, "jane", kind="personal", owner=jane)
    again = services.create_mailbox(owner, account, domain, "jane", kind="personal",
                                    owner=db.session.get(User, jane.id))
    db.session.commit()
    assert again.status != DELETED


def test_an_import_by_someone_who_does_not_manage_mailboxes_does_not_restore_an_archive(owner, account, make, run_jobs,
                                                                                        box):
    """The same through an import: the uploader who may only create users re-imports the person."""
    from portal.users import imports
    from tests.users.test_import import _preview, _template
    from tests.users.workbooks import fill

    _domain, _jane, helper = _removed_with_deleted_mailbox_and_a_helper(owner, account, make, run_jobs)
    run = _preview(helper, account, fill(_template(account), users=[("Jane", "Doe", f"jane@{NAME}", "Y")]))
    imports.confirm(helper, run)
    db.session.commit()
    run_jobs()
    run_jobs()
    assert _live_at(f"jane@{NAME}") is None
