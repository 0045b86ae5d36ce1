import pytest

from portal.domains.models import ENABLED, Domain
from portal.domains.services import add_domain
from portal.extensions import db
from tests.servers.emu_dimail import DimailEmulator


@pytest.fixture
def dimail():
    with DimailEmulator() as emulator:
        yield emulator


@pytest.fixture
def app_environ(dimail):
    return {"PORTAL_BACKEND_CORP_BACKEND": "dimail", "PORTAL_BACKEND_CORP_URL": dimail.url,
            "PORTAL_BACKEND_CORP_USER": dimail.user, "PORTAL_BACKEND_CORP_PASSWORD": dimail.password,
            "PORTAL_BACKEND_CORP_TIMEOUT": "0.5"}


@pytest.fixture
def owner(make):
    return make.user("owner@example.org")


@pytest.fixture
def account(make, owner):
    return make.account(owner, "Acme")


def enabled_domain(owner, account, name="example.org", connection="local", dimail=None) -> Domain:
    domain = add_domain(owner, account, name, connection)
    domain.status = ENABLED
    domain.verified_at = domain.created_at
    if dimail is not None:
        dimail.domains[name] = {"name": name, "features": ["webmail", "mailbox", "alias"], "delivery": "virtual",
                                "context_name": name}
        dimail.checks[name] = {}
    db.session.commit()
    return domain
