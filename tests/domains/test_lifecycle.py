from datetime import timedelta

import pytest

from portal.audit.models import AuditEvent
from portal.accounts.models import Membership
from portal.domains import services
from portal.domains.models import ACTION_REQUIRED, DISABLED, ENABLED, PENDING, Domain, DomainCheckRun
from portal.extensions import db
from portal.jobs.models import Job
from portal.timeutil import utcnow
from portal.i18n import shown
from tests.domains.conftest import publish_local_mail_records, publish_ownership


def test_add__stores_the_normalised_name_and_schedules_a_check(owner, account):
    domain = services.add_domain(owner, account, "Bücher.Example", "local")
    db.session.commit()
    assert domain.name == "xn--bcher-kva.example" and domain.status == PENDING
    assert len(domain.challenge) >= 32
    job = db.session.execute(db.select(Job).where(Job.kind == "domain.check")).scalar_one()
    assert job.payload == {"domain_id": domain.id, "trigger": "added"}


def test_add__refuses_duplicates_unknown_backends_and_domains_proven_elsewhere(owner, account, make):
    services.add_domain(owner, account, "example.org", "local")
    with pytest.raises(services.DomainError, match="already one of this account"):
        services.add_domain(owner, account, "EXAMPLE.org", "local")
    with pytest.raises(services.DomainError, match="configured mail backends"):
        services.add_domain(owner, account, "other.org", "nowhere")
    other_owner = make.user("other@example.net")
    other = make.account(other_owner, "Other")
    unproven = services.add_domain(other_owner, other, "example.org", "local")
    assert unproven.status == PENDING  # claiming is allowed until someone proves it
    db.session.get(Domain, unproven.id).verified_at = utcnow()
    db.session.commit()
    third = make.account(make.user("third@example.com"), "Third")
    with pytest.raises(services.DomainError, match="proven to belong to another account"):
        services.add_domain(owner, third, "example.org", "local")


def test_check__stays_pending_until_the_txt_record_is_published(owner, account, dns_zone, check):
    domain = services.add_domain(owner, account, "example.org", "local")
    db.session.commit()
    domain = check(domain)
    assert domain.status == PENDING and domain.verified_at is None
    assert domain.records[0]["state"] == "missing"
    assert "_portal-challenge.example.org" in shown(domain.status_reason)


def test_check__proven_domain_needs_the_backend_records_then_is_enabled(owner, account, dns_zone, check,
                                                                        smtp_sink):
    domain = services.add_domain(owner, account, "example.org", "local")
    db.session.commit()
    publish_ownership(dns_zone, domain)
    domain = check(domain)
    assert domain.verified_at is not None
    assert domain.status == ACTION_REQUIRED
    states = {(r["type"], r["name"]): r["state"] for r in domain.records}
    assert states == {("TXT", "_portal-challenge.example.org"): "ok", ("MX", "example.org"): "missing",
                      ("TXT", "example.org"): "missing"}
    dns_zone.set("example.org", "TXT", ["v=spf1 include:elsewhere.example -all"])
    services.request_check(owner, domain)
    db.session.commit()
    domain = check(domain)
    assert {r["state"] for r in domain.records if r["type"] == "TXT" and r["name"] == "example.org"} == {"wrong"}
    publish_local_mail_records(dns_zone, domain)
    domain.last_manual_check_at = None
    services.request_check(owner, domain)
    db.session.commit()
    domain = check(domain)
    assert domain.status == ENABLED and domain.enabled_at is not None
    runs = db.session.execute(db.select(DomainCheckRun).where(DomainCheckRun.domain_id == domain.id)).scalars().all()
    assert [run.status_after for run in runs] == [ACTION_REQUIRED, ACTION_REQUIRED, ENABLED]
    changes = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "domain.status")).scalars().all()
    assert [(e.details["before"], e.details["after"]) for e in changes] == [
        (PENDING, ACTION_REQUIRED), (ACTION_REQUIRED, ENABLED)]
    subjects = [m["Subject"] for m in smtp_sink.wait_for("owner@example.org", count=2)]
    assert subjects == ["example.org: Action required", "example.org: Enabled"]


def test_check__dns_timeout_or_servfail_never_counts_against_the_domain(owner, account, dns_zone, check):
    domain = services.add_domain(owner, account, "example.org", "local")
    db.session.commit()
    dns_zone.set("_portal-challenge.example.org", "TXT", ["x"])
    dns_zone.fail("_portal-challenge.example.org", "timeout")
    domain = check(domain)
    assert domain.status == PENDING
    assert domain.records[0]["state"] == "unknown"
    assert "did not answer in time" in shown(domain.status_reason)
    dns_zone.fail("_portal-challenge.example.org", "servfail")
    services.request_check(owner, domain)
    db.session.commit()
    domain = check(domain)
    assert "SERVFAIL" in domain.records[0]["message"]


def test_manual_check__is_throttled_to_once_a_minute_by_waiting_not_refusing(owner, account):
    domain = services.add_domain(owner, account, "example.org", "local")
    services.request_check(owner, domain)
    assert services.next_check_at(domain) <= utcnow()
    services.waiting_check(domain).status = "done"  # the worker ran it
    services.request_check(owner, domain)
    waits = services.next_check_at(domain) - utcnow()
    assert timedelta(seconds=50) < waits <= timedelta(minutes=1), "the second asked-for check waits its minute"
    assert services.watching(domain, services.waiting_check(domain))


def test_manual_check__clicks_while_one_waits_ask_for_nothing_more_and_the_page_stops_once_it_ran(
        owner, account, client, auth, run_jobs, monkeypatch):
    """A review: each click pushed the asked-for check a minute on while the queued one kept its
    time, so the page followed (polled) for minutes after it ran, and the next click waited for
    every earlier one."""
    from tests.mailboxes.conftest import enabled_domain

    domain = enabled_domain(owner, account)
    domain_id, url = domain.id, f"/accounts/{account.id}/domains/{domain.id}/check"
    run_jobs()  # the check made when it was added
    auth.login("owner@example.org")
    start = utcnow()
    clock = {"now": start}
    monkeypatch.setattr(services, "utcnow", lambda: clock["now"])

    def clicks(count: int):
        for _click in range(count):
            assert client.post(url).status_code == 302

    def waiting():
        return services.waiting_check(db.session.get(Domain, domain_id))

    clicks(4)
    assert waiting().run_at <= start and waiting().payload["trigger"] == "manual", "one check, at once"
    run_jobs(start)
    clock["now"] = start + timedelta(seconds=10)
    clicks(3)  # too soon after the first: one check, a minute after it, whatever the clicks
    assert waiting().run_at == start + timedelta(minutes=1)
    assert services.watching(db.session.get(Domain, domain_id), waiting()), "the page follows the check that waits"
    later = start + timedelta(seconds=70)
    run_jobs(later)
    clock["now"] = later
    assert not services.watching(db.session.get(Domain, domain_id), waiting()), "it ran: nothing more to follow"
    clicks(1)
    assert waiting().run_at - later <= timedelta(minutes=1)


def test_schedule__each_check_queues_the_next_with_backoff(owner, account, dns_zone, check):
    domain = services.add_domain(owner, account, "example.org", "local")
    db.session.commit()
    check(domain)
    first = services.waiting_check(domain)
    assert first is not None and first.payload["trigger"] == "scheduled"
    assert timedelta(seconds=50) < first.run_at - utcnow() <= timedelta(minutes=1)
    db.session.get(Domain, domain.id).failed_checks = 5
    first.run_at = utcnow()
    db.session.commit()
    check(domain)
    second = services.waiting_check(domain)
    assert timedelta(minutes=15) < second.run_at - utcnow() <= timedelta(minutes=32)


def test_schedule__pending_domains_stop_after_72_hours_with_a_notice(owner, account, dns_zone, check, smtp_sink):
    domain = services.add_domain(owner, account, "example.org", "local")
    domain.created_at = utcnow() - timedelta(hours=73)
    db.session.commit()
    domain = check(domain)
    assert domain.status == PENDING
    assert shown(domain.status_reason).startswith("Automatic checks stopped after 72 hours")
    assert services.waiting_check(domain) is None
    assert "Automatic checks stopped" in smtp_sink.text(smtp_sink.wait_for("owner@example.org")[0])
    publish_ownership(dns_zone, domain)
    publish_local_mail_records(dns_zone, domain)
    services.request_check(owner, domain)
    db.session.commit()
    assert check(domain).status == ENABLED


def _enabled_domain(owner, account, dns_zone, check):
    domain = services.add_domain(owner, account, "example.org", "local")
    db.session.commit()
    publish_ownership(dns_zone, domain)
    publish_local_mail_records(dns_zone, domain)
    domain = check(domain)
    assert domain.status == ENABLED
    return domain


def _run_scheduled(domain, check, at):
    job = services.waiting_check(domain)
    job.run_at = utcnow()
    db.session.commit()
    domain.failing_since = domain.failing_since and min(domain.failing_since, at)
    return check(domain)


def test_enabled_domain__survives_a_dns_hiccup_and_degrades_after_24_hours(owner, account, dns_zone, check):
    domain = _enabled_domain(owner, account, dns_zone, check)
    assert services.waiting_check(domain).run_at - utcnow() > timedelta(hours=23)
    dns_zone.remove("example.org", "MX")
    domain = _run_scheduled(domain, check, utcnow())
    assert domain.status == ENABLED and domain.failing_since is not None
    assert "Still enabled" in shown(domain.status_reason)
    assert services.waiting_check(domain).run_at - utcnow() <= timedelta(hours=1)
    domain = _run_scheduled(domain, check, utcnow())
    assert domain.status == ENABLED
    domain.failing_since = utcnow() - timedelta(hours=25)
    db.session.commit()
    domain = _run_scheduled(domain, check, utcnow())
    assert domain.status == ACTION_REQUIRED


def test_enabled_domain__a_good_check_clears_the_failure_count(owner, account, dns_zone, check):
    domain = _enabled_domain(owner, account, dns_zone, check)
    dns_zone.remove("example.org", "MX")
    domain = _run_scheduled(domain, check, utcnow())
    publish_local_mail_records(dns_zone, domain)
    domain = _run_scheduled(domain, check, utcnow())
    assert domain.failing_since is None and domain.failed_checks == 0
    assert shown(domain.status_reason).startswith("Every record is published")


def test_activation__assigns_users_on_the_domain_as_corporate_keeping_their_access(owner, account, make, dns_zone,
                                                                                   check):
    elsewhere = make.account(make.user("boss@other.example"), "Elsewhere")
    early = make.user("early@example.org")
    make.member(elsewhere, early, roles=("administrator",))
    bystander = make.user("someone@notexample.org")
    _enabled_domain(owner, account, dns_zone, check)
    db.session.refresh(early)
    assert early.is_corporate and early.corporate_account_id == account.id
    memberships = {m.account_id for m in db.session.execute(
        db.select(Membership).where(Membership.user_id == early.id)).scalars()}
    assert memberships == {account.id, elsewhere.id}
    from portal.roles.services import account_permissions

    assert account_permissions(early, account) == frozenset()
    assert "members.view" in account_permissions(early, elsewhere)
    db.session.refresh(bystander)
    assert not bystander.is_corporate


def test_disable__keeps_users_and_stops_checks_enable_checks_again(owner, account, make, dns_zone, check):
    domain = _enabled_domain(owner, account, dns_zone, check)
    services.disable(owner, domain)
    db.session.commit()
    assert domain.status == DISABLED
    job = services.waiting_check(domain)
    job.run_at = utcnow()
    db.session.commit()
    assert check(domain).status == DISABLED
    with pytest.raises(services.DomainError, match="disabled"):
        services.request_check(owner, domain)
    services.enable(owner, domain)
    db.session.commit()
    assert check(domain).status == ENABLED


def test_mark_verified__superadmin_proves_ownership_by_hand(owner, account, make, dns_zone, check):
    domain = services.add_domain(owner, account, "example.org", "local")
    db.session.commit()
    admin = make.user("root@example.net", superadmin=True)
    services.mark_verified(admin, domain)
    db.session.commit()
    publish_local_mail_records(dns_zone, domain)
    domain = check(domain)
    assert domain.verified_by_hand and domain.status == ENABLED
    event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "domain.mark_verified")).scalar_one()
    assert event.actor_id == admin.id


def test_remove__releases_the_domain_for_another_account(owner, account, make, dns_zone, check):
    domain = _enabled_domain(owner, account, dns_zone, check)
    services.remove_domain(owner, domain)
    db.session.commit()
    other = make.account(make.user("next@example.net"), "Next")
    assert services.add_domain(owner, other, "example.org", "local").status == PENDING
