import pytest

from portal.domains.models import ENABLED
from portal.domains.services import add_domain
from portal.extensions import db
from tests.emulated import DOMAIN, emulated


@pytest.fixture(params=["local", "dimail", "opensrs", "odin", "mailinabox"])
def backend(request):
    """(kind, emulator, app environment, connection name) for each backend; tests about
    one backend's behaviour narrow the list with ``parametrize(..., indirect=True)``."""
    with emulated(request.param) as (emulator, environ, connection):
        yield request.param, emulator, environ, connection


@pytest.fixture
def app_environ(backend):
    return backend[2]


@pytest.fixture
def domain(owner, account, backend, run_jobs):
    """An enabled, proven domain on the backend under test, created there like a check would."""
    from portal.backends import service as backends

    created = add_domain(owner, account, DOMAIN, backend[3])
    created.status, created.verified_at = ENABLED, created.created_at
    db.session.commit()
    adapter = backends.adapter(backend[3])
    if adapter.capabilities.domain_api:
        adapter.ensure_domain(DOMAIN)
    run_jobs()  # the first scheduled check, so later jobs are only the ones a test queues
    db.session.refresh(created)
    return created
