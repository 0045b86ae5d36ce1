import pytest

from portal.domains.models import Domain
from portal.extensions import db


def publish_ownership(zone, domain: Domain) -> None:
    zone.set(f"_portal-challenge.{domain.name}", "TXT", [domain.challenge])


def publish_local_mail_records(zone, domain: Domain) -> None:
    zone.set(domain.name, "MX", [f"10 mail.{domain.name}"])
    zone.set(domain.name, "TXT", ["v=spf1 mx ~all"])


@pytest.fixture
def check(run_jobs):
    """Run the domain's due check (and any mail it queued); return the fresh domain."""
    def run(domain: Domain) -> Domain:
        run_jobs()
        db.session.expire_all()
        return db.session.get(Domain, domain.id)

    return run
