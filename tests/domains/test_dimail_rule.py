"""People's rule for dimail, through the real adapter and the dimail emulator:
ok -> enabled; an external check failing -> action_required; only internal
ones failing -> fix, then enabled or failed."""

import pytest

from portal.domains import services
from portal.domains.models import ACTION_REQUIRED, ENABLED, FAILED
from portal.extensions import db
from portal.i18n import shown
from tests.domains.conftest import publish_ownership
from tests.emulated import app_environ, dimail  # noqa: F401  (fixtures: connection corp on dimail)


def _publish_spec(zone, name):
    zone.set(name, "MX", ["10 mx.dimail.test"])
    zone.set(name, "TXT", ["v=spf1 include:_spf.dimail.test -all"])
    zone.set(f"imap.{name}", "CNAME", ["imap.dimail.test"])
    zone.set(f"dimail._domainkey.{name}", "TXT", ["v=DKIM1; k=rsa; p=MIIBIjANBgkq"])


@pytest.fixture
def proven(owner, account, dns_zone, check, dimail):
    domain = services.add_domain(owner, account, "corp.example", "corp")
    db.session.commit()
    publish_ownership(dns_zone, domain)
    _publish_spec(dns_zone, "corp.example")
    return domain


def test_dimail__all_checks_ok_enables_the_domain_created_on_dimail(proven, check, dimail):
    domain = check(proven)
    assert "corp.example" in dimail.domains
    assert domain.status == ENABLED
    assert {r["type"] for r in domain.records} == {"TXT", "MX", "CNAME"}
    assert all(r["state"] == "ok" for r in domain.records)


def test_dimail__external_check_failing_is_action_required(proven, check, dimail):
    domain = check(proven)
    dimail.fail_check("corp.example", "dkim", "DKIM record not found")
    services.run_check(domain, "manual")
    db.session.commit()
    assert domain.status == ENABLED  # an enabled domain is not degraded by one failed check
    domain.status = ACTION_REQUIRED  # from a state that is not enabled, the rule applies at once
    services.run_check(domain, "manual")
    assert domain.status == ACTION_REQUIRED and "Signatures (DKIM)" in shown(domain.status_reason)


def test_dimail__internal_only_failure_is_fixed_then_enabled(proven, check, dimail):
    dimail.domains["corp.example"] = {"name": "corp.example"}
    dimail.checks["corp.example"] = {"postfix": {"ok": False, "internal": True, "errors": [{"code": "x", "detail": "no"}]},
                                     "mx": {"ok": True, "internal": False, "errors": []}}
    domain = check(proven)
    assert domain.status == ENABLED
    assert any(request.path.endswith("/fix/") for request in dimail.requests)


def test_dimail__internal_failure_the_fix_cannot_repair_is_failed(proven, check, dimail):
    dimail.fix_repairs = False
    dimail.domains["corp.example"] = {"name": "corp.example"}
    dimail.checks["corp.example"] = {"ox": {"ok": False, "internal": True, "errors": [{"code": "x", "detail": "no"}]}}
    domain = check(proven)
    assert domain.status == FAILED and "after an automatic repair" in shown(domain.status_reason)


def test_dimail__backend_down_keeps_the_status_and_says_so(proven, check, dimail):
    dimail.faults.refuse()
    domain = check(proven)
    assert domain.status == "pending" and domain.verified_at is not None
    assert "could not be reached" in shown(domain.status_reason)
    dimail.faults.restore()
