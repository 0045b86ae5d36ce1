"""Mailboxes a deleted account left on its backend, with their mail, are not handed to the next
account that proves the domain (found by an attacker-side review): it adopted them from a
comparison, or created the address and was linked to the mailbox already there, then set a new
password and read the mail of the deleted account's people."""

import pytest

from portal.accounts import services as accounts
from portal.extensions import db
from portal.mailboxes import drift, services
from portal.mailboxes.models import FAILED, Mailbox, ReleasedMailbox
from portal.i18n import shown
from tests.mailboxes.conftest import enabled_domain


@pytest.fixture
def left_behind(owner, account, make, run_jobs, dimail):
    """Acme had sales@ and team@ on dimail and was deleted, its mailboxes kept (disabled);
    Newco then proves the domain."""
    domain = enabled_domain(owner, account, "corp.example", "corp", dimail)
    for name in ("sales", "team"):
        services.create_mailbox(owner, account, domain, name)
    db.session.commit()
    run_jobs()
    outcome = accounts.delete_account(owner, account, "Acme", delete_mailboxes=False)
    db.session.commit()
    run_jobs()
    assert outcome == {"sales@corp.example": "disabled", "team@corp.example": "disabled"}
    assert dimail.mailboxes["sales@corp.example"]["active"] == "no"
    newco_owner = make.user("boss@newco.example")
    newco = make.account(newco_owner, "Newco")
    return {"owner": newco_owner, "account": newco,
            "domain": enabled_domain(newco_owner, newco, "corp.example", "corp", dimail)}


def test_they_are_remembered_with_the_account_that_left_them(left_behind):
    rows = db.session.execute(db.select(ReleasedMailbox).order_by(ReleasedMailbox.address)).scalars().all()
    assert [(r.connection, r.address, r.account_name) for r in rows] == [
        ("corp", "sales@corp.example", "Acme"), ("corp", "team@corp.example", "Acme")]


def test_creating_the_address_does_not_link_the_mailbox_left_there(left_behind, run_jobs):
    mailbox = services.create_mailbox(left_behind["owner"], left_behind["account"], left_behind["domain"], "sales")
    db.session.commit()
    run_jobs()
    mailbox = db.session.get(Mailbox, mailbox.id)
    assert mailbox.status == FAILED
    assert "was left on the backend, with its mail, by the account Acme when it was deleted" in shown(mailbox.status_reason)
    assert services.waiting_secret(mailbox) is None and not mailbox.password_lost


def test_a_comparison_shows_them_but_adopting_one_is_refused(left_behind, run_jobs, app, client, auth):
    domain = left_behind["domain"]
    drift.request_comparison(domain)
    db.session.commit()
    run_jobs()
    report = drift.latest_report(domain)
    assert {d["address"] for d in report.differences if d["kind"] == drift.UNKNOWN_TO_PORTAL} == {
        "sales@corp.example", "team@corp.example"}
    with pytest.raises(services.MailboxError, match="by the account Acme when it was deleted"):
        drift.settle(left_behind["owner"], domain, report, "sales@corp.example", drift.UNKNOWN_TO_PORTAL, "adopt")
    db.session.rollback()
    report = drift.latest_report(domain)
    assert drift.settle_all(left_behind["owner"], domain, report, "adopt") == (0, [])
    # "Adopt all" says so before it is confirmed: nothing to adopt, both left, no button to press.
    auth.login("boss@newco.example")
    confirm = client.get(f"/accounts/{left_behind['account'].id}/domains/{domain.id}/drift/settle-all",
                               query_string={"how": "adopt"}).get_data(as_text=True)
    assert "0 differences are adopted." in confirm and "2 others are left as they are." in confirm
    assert "sales@corp.example" not in confirm and ">Adopt all</button>" not in confirm
    assert db.session.execute(db.select(Mailbox).where(Mailbox.account_id == left_behind["account"].id)).first() is None

    # The operator releases one (its organisation handed its mail over): it can be adopted then.
    result = app.test_cli_runner().invoke(args=["portal", "release-mailbox", "SALES@corp.example", "--yes"])
    assert result.exit_code == 0, result.output
    report = drift.latest_report(domain)
    drift.settle(left_behind["owner"], domain, report, "sales@corp.example", drift.UNKNOWN_TO_PORTAL, "adopt")
    db.session.commit()
    adopted = db.session.execute(db.select(Mailbox).where(Mailbox.address == "sales@corp.example")).scalar_one()
    assert adopted.account_id == left_behind["account"].id
    missing = app.test_cli_runner().invoke(args=["portal", "release-mailbox", "nobody@corp.example", "--yes"])
    assert missing.exit_code != 0 and "No deleted account left nobody@corp.example" in missing.output


def test_deleted_ones_are_not_remembered(owner, account, run_jobs, dimail):
    domain = enabled_domain(owner, account, "corp.example", "corp", dimail)
    services.create_mailbox(owner, account, domain, "sales")
    db.session.commit()
    run_jobs()
    outcome = accounts.delete_account(owner, account, "Acme", delete_mailboxes=True)
    db.session.commit()
    assert outcome == {"sales@corp.example": "deleted"}
    assert db.session.execute(db.select(ReleasedMailbox)).first() is None
