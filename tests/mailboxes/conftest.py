from portal.domains.models import ENABLED, Domain
from portal.domains.services import add_domain
from portal.extensions import db
from tests.emulated import app_environ, dimail, serve_on_dimail  # noqa: F401  (fixtures: connection corp on dimail)


def enabled_domain(owner, account, name="example.org", connection="local", dimail=None) -> Domain:
    domain = add_domain(owner, account, name, connection)
    domain.status = ENABLED
    domain.verified_at = domain.created_at
    if dimail is not None:
        serve_on_dimail(dimail, name)
    db.session.commit()
    return domain
