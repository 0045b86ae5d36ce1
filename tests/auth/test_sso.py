"""Single sign-on against a real OpenID Connect provider on loopback."""

from urllib.parse import urlsplit

import pytest
import requests

from portal.auth.models import User
from portal.extensions import db
from portal.roles.services import account_permissions
from tests.conftest import PASSWORD
from tests.mailboxes.conftest import enabled_domain
from tests.servers.oidc import OidcProvider

CALLBACK = "http://localhost/login/sso/callback"


@pytest.fixture(scope="module")
def provider():
    with OidcProvider() as running:
        running.register_client("portal", "portal-client-secret", [CALLBACK])
        yield running


@pytest.fixture
def app_settings(provider):
    provider.reset()
    return {"OIDC_ISSUER": provider.issuer, "OIDC_CLIENT_ID": "portal", "OIDC_CLIENT_SECRET": "portal-client-secret",
            "OIDC_SCOPES": "openid email profile", "OIDC_LABEL": "Sign in with Corp ID"}


def _sso(client):
    """Run the browser's part of the flow: portal -> provider -> portal."""
    start = client.get("/login/sso")
    assert start.status_code == 302
    authorize = requests.get(start.headers["Location"], allow_redirects=False, timeout=5)
    back = urlsplit(authorize.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    return client.get(f"{back.path}?{back.query}")


def test_sso__first_log_in_creates_a_verified_profile_linked_to_the_subject(client, provider, make):
    make.user("root@example.net", superadmin=True)
    assert "Sign in with Corp ID" in client.get("/login").get_data(as_text=True)
    provider.login_as(sub="corp-123", email="Ada@Example.net", name="Ada Lovelace")
    response = _sso(client)
    assert response.status_code == 302
    user = db.session.execute(db.select(User).where(User.email == "ada@example.net")).scalar_one()
    assert user.oidc_subject == "corp-123" and user.is_verified and user.password_hash is None
    assert client.get("/profile").status_code == 200
    token_request = provider.last_token_request
    assert "code_verifier" in token_request.body.decode()


def test_sso__matches_on_the_subject_even_after_the_address_changed(client, provider, make):
    user = make.user("old@example.net")
    user.oidc_subject = "corp-123"
    db.session.commit()
    provider.login_as(sub="corp-123", email="new@example.net")
    assert _sso(client).status_code == 302
    assert db.session.execute(db.select(db.func.count()).select_from(User)).scalar_one() == 1


def test_sso__links_an_existing_profile_by_verified_address(client, provider, make):
    user = make.user("ada@example.net")
    provider.login_as(sub="corp-9", email="ada@example.net")
    assert _sso(client).status_code == 302
    db.session.refresh(user)
    assert user.oidc_subject == "corp-9"


def test_sso__unverified_address_is_not_trusted(client, provider, make):
    make.user("ada@example.net")
    provider.login_as(sub="corp-9", email="ada@example.net", email_verified=False)
    response = _sso(client)
    assert response.status_code == 403
    assert "verified e-mail address" in response.get_data(as_text=True)
    assert client.get("/profile").status_code == 302


@pytest.mark.parametrize("claim", ["false", "False", " FALSE ", "0", "no", "", 0, 1, None, [], ["true"], {"v": True}])
def test_sso__only_a_plain_yes_says_the_address_is_verified(client, provider, make, claim):
    """A provider that sends the claim as text sent "false" for an unverified address, which linked
    to the profile at that address (a superadmin's here) and signed in as its owner."""
    root = make.user("root@example.net", superadmin=True)
    provider.login_as(sub="attacker-1", email="root@example.net", email_verified=claim)
    response = _sso(client)
    assert response.status_code == 403 and "verified e-mail address" in response.get_data(as_text=True)
    db.session.refresh(root)
    assert root.oidc_subject is None and client.get("/profile").status_code == 302


@pytest.mark.parametrize("claim", [True, "true", "TRUE"])
def test_sso__the_standard_yes_and_its_text_form_link_the_profile(client, provider, make, claim):
    user = make.user("ada@example.net")
    provider.login_as(sub="corp-9", email="ada@example.net", email_verified=claim)
    assert _sso(client).status_code == 302
    db.session.refresh(user)
    assert user.oidc_subject == "corp-9"


def test_sso__on_an_active_domain_joins_the_account_as_corporate(client, provider, make):
    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    enabled_domain(owner, account)
    provider.login_as(sub="corp-77", email="cora@example.org", name="Cora")
    assert _sso(client).status_code == 302
    cora = db.session.execute(db.select(User).where(User.email == "cora@example.org")).scalar_one()
    assert cora.is_corporate and cora.corporate_account_id == account.id
    assert account_permissions(cora, account) == frozenset()


def test_sso__denied_or_tampered_answers_do_not_log_in(client, provider, make):
    provider.login_as(sub="corp-1", email="ada@example.net")
    provider.deny_next()
    response = _sso(client)
    assert response.status_code == 403 and "did not let you in" in response.get_data(as_text=True)
    provider.id_token_overrides = {"nonce": "not-the-portals"}
    response = _sso(client)
    assert response.status_code in (400, 403)
    assert client.get("/profile").status_code == 302
    assert db.session.execute(db.select(User).where(User.email == "ada@example.net")).first() is None


def test_sso__forged_callback_without_a_started_flow_is_refused(client):
    response = client.get("/login/sso/callback?code=abc&state=forged")
    assert response.status_code == 403
    assert client.get("/profile").status_code == 302


def test_password_login__can_be_turned_off(app, client, make):
    make.user("ada@example.net")
    app.config["PORTAL"] = {**app.config["PORTAL"], "PASSWORD_LOGIN": False}
    page = client.get("/login").get_data(as_text=True)
    assert 'type="password"' not in page and "Sign in with Corp ID" in page
    assert client.post("/login", data={"email": "ada@example.net", "password": PASSWORD}).status_code == 404


def test_sso__linking_a_profile_nobody_confirmed_drops_the_password_it_was_registered_with(app, client, provider):
    """Someone registers a person's address first with a password of their choosing; the real person
    later signs in through the provider, which links the profile by address. The stranger's password
    must not keep working (found by an attacker-side review)."""
    stranger = app.test_client()
    assert stranger.post("/register", data={"email": "Ada@Example.net", "name": "Ada",
                                            "password": PASSWORD, "confirm": PASSWORD}).status_code in (200, 302)
    user = db.session.execute(db.select(User).where(User.email == "ada@example.net")).scalar_one()
    assert user.email_verified_at is None and user.password_hash
    provider.login_as(sub="corp-9", email="ada@example.net")
    assert _sso(client).status_code == 302
    db.session.expire_all()
    user = db.session.get(User, user.id)
    assert user.oidc_subject == "corp-9" and user.email_verified_at is not None and user.password_hash is None
    answer = stranger.post("/login", data={"email": "ada@example.net", "password": PASSWORD})
    assert answer.status_code == 422
    assert client.get("/profile").status_code == 200, "the person who signed in through the provider is in"


def test_sso__linking_a_confirmed_profile_keeps_its_password(app, client, provider, make):
    make.user("ada@example.net")
    provider.login_as(sub="corp-9", email="ada@example.net")
    assert _sso(client).status_code == 302
    assert app.test_client().post("/login", data={"email": "ada@example.net", "password": PASSWORD}).status_code == 302


# -- the person's own second factor, after the provider ------------------------------------------

def _enrolled(app, make, email: str = "ada@example.net") -> str:
    """A confirmed profile at ``email`` with an authenticator app; returns the app's secret."""
    from tests.security.two_factor_helpers import enrol_app

    make.user(email)
    own = app.test_client()
    assert own.post("/login", data={"email": email, "password": PASSWORD}).status_code == 302
    secret, _codes = enrol_app(own)
    return secret


def test_sso__a_profile_with_a_second_factor_is_linked_only_once_that_factor_is_right(app, client, provider, make):
    """A review: whoever could prove the person's address to the provider signed in as them,
    their authenticator app never asked for, and the provider's subject was theirs from then on."""
    from portal.auth.models import UserSession
    from tests.security.two_factor_helpers import code_of_another_step, signed_in

    secret = _enrolled(app, make)
    provider.login_as(sub="corp-9", email="ada@example.net")
    answer = _sso(client)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/login/two-factor")
    assert not signed_in(client)
    page = client.get("/login/two-factor").get_data(as_text=True)
    assert "The sign-on provider vouched for <strong>ada@example.net</strong>" in page
    db.session.expire_all()
    user = db.session.execute(db.select(User).where(User.email == "ada@example.net")).scalar_one()
    assert user.oidc_subject is None, "not linked before the second step"

    near = {code_of_another_step(secret, step) for step in (-1, 0, 1)}
    wrong = client.post("/login/two-factor", data={"code": next(c for c in ("000000", "111111", "222222") if c not in near)})
    assert wrong.status_code == 422 and not signed_in(client)
    db.session.expire_all()
    assert db.session.get(User, user.id).oidc_subject is None

    # The next step's code: the current one was used to set the app up, and is spent.
    assert client.post("/login/two-factor", data={"code": code_of_another_step(secret, 1)}).status_code == 302
    assert signed_in(client)
    db.session.expire_all()
    assert db.session.get(User, user.id).oidc_subject == "corp-9"
    latest = db.session.execute(db.select(UserSession).where(UserSession.user_id == user.id)
                                .order_by(UserSession.id.desc()).limit(1)).scalar_one()
    assert latest.signed_in_with == "second_factor"


def test_sso__a_linked_profile_with_a_second_factor_is_asked_for_it_every_time(app, client, provider, make):
    from tests.security.two_factor_helpers import signed_in

    _enrolled(app, make)
    user = db.session.execute(db.select(User).where(User.email == "ada@example.net")).scalar_one()
    user.oidc_subject = "corp-9"
    db.session.commit()
    provider.login_as(sub="corp-9", email="ada@example.net")
    answer = _sso(client)
    assert answer.headers["Location"].endswith("/login/two-factor")
    assert not signed_in(client)


def test_sso__without_a_second_factor_signs_in_at_once(client, provider, make):
    from tests.security.two_factor_helpers import signed_in

    make.user("ada@example.net")
    provider.login_as(sub="corp-9", email="ada@example.net")
    assert not _sso(client).headers["Location"].endswith("/login/two-factor")
    assert signed_in(client)


def test_sso__second_factors_set_up_before_anyone_proved_the_address_go_with_its_password(app, client, provider,
                                                                                           make):
    """Nobody had proven the address (an onboarding link shown to an administrator): whoever set
    the password may have set up the factors too; they would stand between the person and the
    portal, so they go with it."""
    from portal.security.models import AuthenticatorApp
    from tests.security.two_factor_helpers import signed_in

    _enrolled(app, make)
    user = db.session.execute(db.select(User).where(User.email == "ada@example.net")).scalar_one()
    user.address_proven_at = None
    db.session.commit()
    provider.login_as(sub="corp-9", email="ada@example.net")
    assert not _sso(client).headers["Location"].endswith("/login/two-factor")
    assert signed_in(client)
    db.session.expire_all()
    assert db.session.get(User, user.id).oidc_subject == "corp-9"
    assert db.session.execute(db.select(db.func.count()).select_from(AuthenticatorApp)
                              .where(AuthenticatorApp.user_id == user.id)).scalar_one() == 0


def test_sso__a_profile_made_at_a_name_an_account_holds_is_in_its_log_as_proven_there(client, provider, make):
    """The provider vouched for the address as a link mailed there would: where an account holds the
    name's proven copy (not yet enabled), its mail server may have delivered the provider's check,
    so its log keeps the proof (``user.address_proven``), as for a registration confirmed by link;
    a name nobody holds leaves no entry."""
    from portal.audit.models import AuditEvent
    from portal.domains import services as domains
    from portal.domains.models import ACTION_REQUIRED

    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    domains.set_status(enabled_domain(owner, account), ACTION_REQUIRED, "records missing")
    db.session.commit()
    provider.login_as(sub="corp-88", email="ceo@example.org", name="C E O")
    assert _sso(client).status_code == 302
    ceo = db.session.execute(db.select(User).where(User.email == "ceo@example.org")).scalar_one()
    assert ceo.oidc_subject == "corp-88" and ceo.address_proven and not ceo.is_corporate
    proofs = db.session.execute(db.select(AuditEvent.account_id, AuditEvent.target_id).where(
        AuditEvent.action == "user.address_proven")).all()
    assert proofs == [(account.id, str(ceo.id))]
    client.post("/logout")
    provider.login_as(sub="corp-89", email="someone@nobody-holds.example", name="Some One")
    assert _sso(client).status_code == 302
    assert db.session.execute(db.select(db.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "user.address_proven")).scalar() == 1
