from datetime import timedelta

import pytest

from portal.domains import services as domains
from portal.domains.models import DISABLED as DOMAIN_DISABLED
from portal.extensions import db
from portal.jobs.models import Job
from portal.mailboxes import services
from portal.mailboxes.models import DELETED, DISABLED, ENABLED, FAILED, PENDING, PROVISIONING, ProvisioningAttempt
from portal.roles.services import mailbox_permissions
from portal.timeutil import utcnow
from portal.i18n import shown
from tests.domains.conftest import publish_local_mail_records, publish_ownership
from tests.mailboxes.conftest import enabled_domain


def _attempts(mailbox):
    return [(a.operation, a.outcome) for a in db.session.execute(
        db.select(ProvisioningAttempt).where(ProvisioningAttempt.mailbox_id == mailbox.id)
        .order_by(ProvisioningAttempt.id)).scalars()]


def test_create__on_an_enabled_domain_is_provisioned_by_the_worker(owner, account, run_jobs):
    domain = enabled_domain(owner, account)
    mailbox = services.create_mailbox(owner, account, domain, "Info", display_name="Info desk",
                                      quota_bytes=2 * 1024 ** 3)
    db.session.commit()
    assert mailbox.address == "info@example.org" and mailbox.status == PROVISIONING
    run_jobs()
    db.session.refresh(mailbox)
    assert mailbox.status == ENABLED and mailbox.backend_id
    assert _attempts(mailbox) == [("create", "ok")]
    assert services.waiting_secret(mailbox) is not None


def test_create__waits_on_a_pending_domain_and_is_provisioned_when_it_is_enabled(owner, account, run_jobs, dns_zone):
    domain = domains.add_domain(owner, account, "example.org", "local")
    mailbox = services.create_mailbox(owner, account, domain, "team")
    db.session.commit()
    assert mailbox.status == PENDING and "Waits for example.org" in shown(mailbox.status_reason)
    publish_ownership(dns_zone, domain)
    publish_local_mail_records(dns_zone, domain)
    run_jobs()
    run_jobs()
    db.session.refresh(mailbox)
    db.session.refresh(domain)
    assert domain.status == "enabled"
    assert mailbox.status == ENABLED


def test_create__refused_on_a_disabled_domain_with_the_reason(owner, account):
    domain = enabled_domain(owner, account)
    domain.status = DOMAIN_DISABLED
    with pytest.raises(services.MailboxError, match="disabled: no new addresses"):
        services.create_mailbox(owner, account, domain, "team")


@pytest.mark.parametrize("local_part", ["", ".dot", "two..dots", "sp ace", "x" * 65, "dash-"])
def test_create__bad_addresses_are_refused(owner, account, local_part):
    domain = enabled_domain(owner, account)
    with pytest.raises(services.MailboxError):
        services.create_mailbox(owner, account, domain, local_part)


def test_create__duplicate_address_is_refused(owner, account):
    domain = enabled_domain(owner, account)
    services.create_mailbox(owner, account, domain, "team")
    with pytest.raises(services.MailboxError, match="already used in this account"):
        services.create_mailbox(owner, account, domain, "TEAM")


def test_personal_mailbox__its_owner_gets_the_mailbox_owner_role(owner, account, make):
    domain = enabled_domain(owner, account)
    jane = make.user("jane@example.org")
    mailbox = services.create_mailbox(owner, account, domain, "jane", kind="personal", owner=jane)
    db.session.commit()
    assert "mailbox.password" in mailbox_permissions(jane, account, mailbox.id)
    other = services.create_mailbox(owner, account, domain, "other")
    assert mailbox_permissions(jane, account, other.id) == frozenset()


def test_generated_password__is_shown_once_and_never_stored_in_clear(owner, account, run_jobs, app):
    domain = enabled_domain(owner, account)
    mailbox = services.create_mailbox(owner, account, domain, "team")
    db.session.commit()
    run_jobs()
    secret = services.waiting_secret(mailbox)
    password = services.reveal_secret(owner, mailbox)
    assert password and len(password) >= 12
    assert password.encode() not in secret.ciphertext
    assert services.reveal_secret(owner, mailbox) is None
    job = db.session.execute(db.select(Job).where(Job.kind == "mailbox.provision")).scalar_one()
    assert password not in str(job.payload) and password not in (job.last_error or "")


def test_disable_enable_reset_quota_and_delete__each_through_a_job(owner, account, run_jobs):
    domain = enabled_domain(owner, account)
    mailbox = services.create_mailbox(owner, account, domain, "team")
    db.session.commit()
    run_jobs()
    services.set_active(owner, mailbox, False)
    db.session.commit()
    with pytest.raises(services.MailboxError, match="still running"):
        services.set_active(owner, mailbox, True)
    run_jobs()
    assert mailbox.status == DISABLED
    services.set_active(owner, mailbox, True)
    db.session.commit()
    run_jobs()
    services.set_quota(owner, mailbox, 512 * 1024 ** 2)
    db.session.commit()
    run_jobs()
    services.reset_password(owner, mailbox)
    db.session.commit()
    run_jobs()
    assert services.reveal_secret(owner, mailbox)
    message = services.delete(owner, mailbox)
    db.session.commit()
    run_jobs()
    db.session.refresh(mailbox)
    assert mailbox.status == DELETED and "deleted" in message.lower()
    assert [op for op, outcome in _attempts(mailbox)] == ["create", "set_active", "set_active", "set_quota",
                                                          "reset_password", "delete"]


def test_domain_with_mailboxes__cannot_be_removed(owner, account):
    domain = enabled_domain(owner, account)
    services.create_mailbox(owner, account, domain, "team")
    with pytest.raises(domains.DomainError, match="still has 1 mailbox"):
        domains.remove_domain(owner, domain)


def test_dimail__duplicate_after_a_lost_answer_is_found_not_recreated(owner, account, run_jobs, dimail):
    domain = enabled_domain(owner, account, "corp.example", "corp", dimail)
    dimail.faults.drop_after_acting(1, matching=lambda r: r.method == "POST" and "/mailboxes/" in r.path)
    mailbox = services.create_mailbox(owner, account, domain, "jane", first_name="Jane", last_name="Doe")
    db.session.commit()
    run_jobs()
    db.session.refresh(mailbox)
    assert mailbox.status == PROVISIONING
    assert _attempts(mailbox) == [("create", "retrying")]
    run_jobs(now=utcnow() + timedelta(hours=1))
    db.session.refresh(mailbox)
    assert mailbox.status == ENABLED
    assert dimail.creations["jane@corp.example"] == 1
    assert _attempts(mailbox) == [("create", "retrying"), ("create", "ok")]


def test_dimail__permanent_error_fails_with_the_message_and_retry_recovers(owner, account, run_jobs, dimail):
    domain = enabled_domain(owner, account, "corp.example", "corp", dimail)
    dimail.password = "changed-behind-our-back"
    mailbox = services.create_mailbox(owner, account, domain, "jane", first_name="Jane", last_name="Doe")
    db.session.commit()
    run_jobs()
    db.session.refresh(mailbox)
    assert mailbox.status == FAILED
    assert _attempts(mailbox)[-1][1] == "failed" and shown(mailbox.status_reason)
    dimail.password = dimail.__class__().password
    services.retry(owner, mailbox)
    db.session.commit()
    run_jobs()
    db.session.refresh(mailbox)
    assert mailbox.status == ENABLED and dimail.creations["jane@corp.example"] == 1


def test_dimail__backend_down_then_back_every_mailbox_ends_enabled_once(owner, account, run_jobs, dimail):
    domain = enabled_domain(owner, account, "corp.example", "corp", dimail)
    dimail.faults.refuse()
    boxes = [services.create_mailbox(owner, account, domain, f"user{n}", first_name="U", last_name=str(n))
             for n in range(5)]
    db.session.commit()
    run_jobs()
    assert {b.status for b in boxes} == {PROVISIONING}
    dimail.faults.restore()
    run_jobs(now=utcnow() + timedelta(hours=2))
    for mailbox in boxes:
        db.session.refresh(mailbox)
        assert mailbox.status == ENABLED
        assert dimail.creations[mailbox.address] == 1


def test_pending_mailbox__can_be_deleted_and_no_longer_blocks_its_domain(owner, account):
    domain = domains.add_domain(owner, account, "typo.example.org", "local")
    mailbox = services.create_mailbox(owner, account, domain, "team")
    message = services.delete(owner, mailbox)
    assert mailbox.status == DELETED and "had not been created" in message
    domains.remove_domain(owner, domain)
    db.session.commit()
