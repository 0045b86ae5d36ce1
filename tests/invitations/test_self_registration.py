import pytest

from portal.auth.models import User
from portal.domains.models import DISABLED
from portal.extensions import db
from portal.mailboxes.models import Mailbox
from portal.roles.services import account_permissions
from tests.conftest import PASSWORD, first_link
from tests.mailboxes.conftest import enabled_domain


@pytest.fixture
def owner(make):
    make.user("root@example.net", superadmin=True)
    return make.user("owner@example.org")


def _register_and_verify(client, run_jobs, smtp_sink, email):
    response = client.post("/register", data={"name": "Cora Corp", "email": email, "password": PASSWORD,
                                              "confirm": PASSWORD})
    if response.status_code != 200 or "Check your e-mail" not in response.get_data(as_text=True):
        return response
    run_jobs()
    path = first_link(smtp_sink.text(smtp_sink.wait_for(email)[0]), "/verify/").removeprefix("http://localhost")
    return client.post(path)


def test_self_registration_on_an_active_domain__joins_the_account_with_no_permissions(
        owner, account, client, run_jobs, smtp_sink):
    enabled_domain(owner, account)
    account.personal_mailboxes = True
    db.session.commit()
    assert _register_and_verify(client, run_jobs, smtp_sink, "cora@example.org").status_code == 302
    cora = db.session.execute(db.select(User).where(User.email == "cora@example.org")).scalar_one()
    assert cora.is_corporate and cora.corporate_account_id == account.id
    assert account_permissions(cora, account) == frozenset()
    mailbox = db.session.execute(db.select(Mailbox).where(Mailbox.address == "cora@example.org")).scalar_one()
    assert mailbox.owner_id == cora.id


def test_self_registration__no_personal_mailbox_when_the_account_says_no(owner, account, client, run_jobs, smtp_sink):
    enabled_domain(owner, account)
    _register_and_verify(client, run_jobs, smtp_sink, "cora@example.org")
    assert db.session.execute(db.select(Mailbox)).first() is None


def test_self_registration__refused_on_a_disabled_domain_with_the_reason(owner, account, client):
    domain = enabled_domain(owner, account)
    domain.status = DISABLED
    db.session.commit()
    response = client.post("/register", data={"name": "C", "email": "cora@example.org", "password": PASSWORD,
                                              "confirm": PASSWORD})
    assert response.status_code == 422
    assert "the domain is disabled" in response.get_data(as_text=True)
    assert db.session.execute(db.select(User).where(User.email == "cora@example.org")).first() is None


def test_self_registration__refused_where_the_account_closed_it(owner, account, client):
    enabled_domain(owner, account)
    account.self_registration = False
    db.session.commit()
    response = client.post("/register", data={"name": "C", "email": "cora@example.org", "password": PASSWORD,
                                              "confirm": PASSWORD})
    assert response.status_code == 422 and "does not accept self-registration" in response.get_data(as_text=True)


def test_account_settings_page__saves_the_registration_choices(owner, account, client, auth):
    auth.login("owner@example.org")
    from portal.roles.models import Role

    delegate = db.session.execute(db.select(Role).where(Role.system_key == "mailbox_delegate")).scalar_one()
    response = client.post(f"/accounts/{account.id}/settings", data={
        "name": "Acme Ltd", "personal_mailboxes": "y", "personal_mailbox_role_id": delegate.id})
    assert response.status_code == 302
    db.session.refresh(account)
    assert (account.name, account.self_registration, account.personal_mailboxes) == ("Acme Ltd", False, True)
    assert account.personal_mailbox_role_id == delegate.id
