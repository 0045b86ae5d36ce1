import pytest

from portal.extensions import db
from portal.mailboxes import services as mailboxes
from tests.mailboxes.conftest import enabled_domain


@pytest.fixture
def domain(owner, account):
    return enabled_domain(owner, account)


@pytest.fixture
def shared(owner, account, domain):
    boxes = [mailboxes.create_mailbox(owner, account, domain, name) for name in ("sales", "support")]
    db.session.commit()
    return boxes
