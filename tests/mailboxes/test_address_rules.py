"""What a backend will refuse is refused up front, with the backend's own reason, before any
job is written: the mailbox form, single corporate users, the import preview and invitations
that bring a personal mailbox (Mail-in-a-Box's reserved and upper-case addresses)."""

from __future__ import annotations

import pytest

from portal.domains.models import ENABLED
from portal.domains.services import add_domain
from portal.extensions import db
from portal.jobs.models import Job
from portal.mailboxes.models import Mailbox
from tests.emulated import box, box_app_environ  # noqa: F401  (fixtures: Mail-in-a-Box as emu)

RESERVED = "frequently used for domain control validation"


@pytest.fixture
def domain(owner, account, box):
    created = add_domain(owner, account, "corp.example.org", box[2])
    created.status, created.verified_at = ENABLED, created.created_at
    db.session.commit()
    return created


def _provision_jobs() -> list:
    return db.session.execute(db.select(Job).where(Job.kind == "mailbox.provision")).scalars().all()


@pytest.mark.parametrize("local_part", ["postmaster", "admin", "abuse", "hostmaster", "webmaster", "administrator"])
def test_mailbox_form__refuses_the_reserved_addresses_with_the_boxs_words(client, auth, account, domain, local_part):
    auth.login("owner@example.org")
    response = client.post(f"/accounts/{account.id}/mailboxes/new",
                           data={"local_part": local_part, "domain": domain.id, "kind": "shared", "owner": "0"})
    assert response.status_code == 422 and RESERVED in response.get_data(as_text=True)
    assert db.session.execute(db.select(Mailbox)).first() is None and _provision_jobs() == []


def test_corporate_user__with_a_personal_mailbox_at_a_reserved_address_is_refused(client, auth, account, domain):
    auth.login("owner@example.org")
    response = client.post(f"/accounts/{account.id}/users/new",
                           data={"first_name": "Post", "last_name": "Master", "email": "postmaster@corp.example.org",
                                 "personal_mailbox": "y"})
    assert response.status_code == 422 and RESERVED in response.get_data(as_text=True)
    assert _provision_jobs() == []


def test_import__a_personal_mailbox_at_a_reserved_address_is_a_problem_of_its_row(owner, account, domain, run_jobs):
    from portal.users import imports, workbook
    from tests.users.workbooks import fill

    data = fill(workbook.template(account), users=[("Web", "Master", "webmaster@corp.example.org", "Y"),
                                                   ("Ann", "Able", "ann@corp.example.org", "Y")])
    run = imports.receive(owner, account, "u.xlsx", data)
    db.session.commit()
    run_jobs()
    db.session.refresh(run)
    assert (run.to_create, run.to_skip) == (1, 1)
    assert RESERVED in run.problems[0]["message"] and run.problems[0]["column"] == "D"


def test_invitation__to_a_reserved_address_that_would_get_a_personal_mailbox_is_refused(client, auth, account,
                                                                                        domain):
    account.personal_mailboxes = True
    db.session.commit()
    auth.login("owner@example.org")
    response = client.post(f"/accounts/{account.id}/invitations/new", data={"email": "abuse@corp.example.org"})
    assert response.status_code == 422 and RESERVED in response.get_data(as_text=True)


def test_alias__follows_the_alias_rules_not_the_mailbox_rules(client, auth, owner, account, domain, run_jobs, box):
    """Aliases have rules of their own (the box lower-cases them; a domain-control address may only
    reach its administrators): upper case is fine for an alias, a reserved address is not."""
    from portal.mailboxes.services import create_mailbox

    mailbox = create_mailbox(owner, account, domain, "team")
    db.session.commit()
    run_jobs()
    auth.login("owner@example.org")
    response = client.post(f"/accounts/{account.id}/mailboxes/{mailbox.id}/aliases",
                           data={"alias": "Team.Lead@corp.example.org"})
    assert response.status_code == 302
    run_jobs()
    assert box[0].forwards_to("team.lead@corp.example.org") == ["team@corp.example.org"]
    response = client.post(f"/accounts/{account.id}/mailboxes/{mailbox.id}/aliases",
                           data={"alias": "postmaster@corp.example.org"})
    assert response.status_code == 409 and "administrators" in response.get_data(as_text=True)
