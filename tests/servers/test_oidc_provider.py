"""The loopback OpenID Connect provider behaves like a strict real one.

The happy path goes through Authlib's client, as the portal does; refusals are
driven with bare HTTP so their status codes and error names can be checked.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.servers.oidc import OidcProvider

CLIENT_ID = "portal"
CLIENT_SECRET = "portal-secret"
REDIRECT_URI = "http://127.0.0.1:5000/auth/oidc/callback"
NONCE = "nonce-1"
VERIFIER = generate_token(48)


@pytest.fixture(scope="module")
def provider():
    with OidcProvider() as provider:
        provider.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])
        yield provider


@pytest.fixture(autouse=True)
def ada_signed_in(provider):
    provider.reset()
    provider.login_as(sub="u-1", email="ada@example.org", email_verified=True, name="Ada Lovelace")


def _authorize(provider: OidcProvider, **changes: str | None) -> requests.Response:
    """An authorization request as a browser sends it; ``None`` leaves a parameter out."""
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid email profile",
        "state": "state-1",
        "nonce": NONCE,
        "code_challenge": create_s256_code_challenge(VERIFIER),
        "code_challenge_method": "S256",
    }
    params.update(changes)
    return requests.get(f"{provider.issuer}/authorize", params=params, allow_redirects=False, timeout=5)


def _callback(response: requests.Response) -> dict[str, str]:
    """The parameters the provider sends back to the portal's redirect_uri."""
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return dict(parse_qsl(urlsplit(location).query))


def _exchange(provider: OidcProvider, code: str, **changes: str | None) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": VERIFIER,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    form.update(changes)
    return requests.post(f"{provider.issuer}/token", data=form, timeout=5)


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_oidc_provider__code_flow_with_pkce_yields_a_verifiable_id_token(provider, auth_method):
    metadata = requests.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=5).json()
    assert metadata["issuer"] == provider.issuer
    session = OAuth2Session(
        CLIENT_ID, CLIENT_SECRET, scope="openid email profile", redirect_uri=REDIRECT_URI,
        code_challenge_method="S256", token_endpoint_auth_method=auth_method)
    url, _ = session.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=VERIFIER, nonce=NONCE)
    browser = requests.get(url, allow_redirects=False, timeout=5)

    token = session.fetch_token(
        metadata["token_endpoint"], authorization_response=browser.headers["Location"], code_verifier=VERIFIER)

    keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=5).json())
    id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": provider.issuer},
        aud={"essential": True, "value": CLIENT_ID},
        nonce={"essential": True, "value": NONCE},
        exp={"essential": True},
    ).validate(id_token.claims)
    ada = {"sub": "u-1", "email": "ada@example.org", "email_verified": True, "name": "Ada Lovelace"}
    assert ada.items() <= id_token.claims.items()
    assert session.get(metadata["userinfo_endpoint"], timeout=5).json() == ada
    used_basic = provider.last_token_request.basic_auth() is not None
    assert used_basic == (auth_method == "client_secret_basic")


@pytest.mark.parametrize("changes, error", [
    ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"nonce": None}, "invalid_request"),
    ({"scope": "email profile"}, "invalid_scope"),
    ({"response_type": "token"}, "unsupported_response_type"),
], ids=["no-pkce", "plain-pkce", "no-nonce", "no-openid-scope", "implicit"])
def test_oidc_provider__bad_authorization_is_redirected_back_as_an_error(provider, changes, error):
    callback = _callback(_authorize(provider, **changes))

    assert callback["error"] == error
    assert callback["state"] == "state-1"
    assert "code" not in callback
    assert provider.codes_issued == []


def test_oidc_provider__unregistered_redirect_uri_is_refused_without_redirecting(provider):
    response = _authorize(provider, redirect_uri="http://127.0.0.1:5000/elsewhere")

    assert response.status_code == 400
    assert "Location" not in response.headers


def test_oidc_provider__deny_next_refuses_one_authorization(provider):
    provider.deny_next()

    assert _callback(_authorize(provider))["error"] == "access_denied"
    assert "code" in _callback(_authorize(provider))


def test_oidc_provider__nobody_signed_in_answers_login_required(provider):
    provider.reset()

    assert _callback(_authorize(provider))["error"] == "login_required"


@pytest.mark.parametrize("changes, status, error", [
    ({"code_verifier": generate_token(48)}, 400, "invalid_grant"),
    ({"code_verifier": None}, 400, "invalid_grant"),
    ({"redirect_uri": "http://127.0.0.1:5000/elsewhere"}, 400, "invalid_grant"),
    ({"client_secret": "wrong"}, 401, "invalid_client"),
], ids=["wrong-verifier", "no-verifier", "wrong-redirect-uri", "wrong-secret"])
def test_oidc_provider__bad_token_request_is_refused(provider, changes, status, error):
    code = _callback(_authorize(provider))["code"]

    response = _exchange(provider, code, **changes)

    assert response.status_code == status
    assert response.json()["error"] == error
    assert "id_token" not in response.json()


def test_oidc_provider__code_works_only_once(provider):
    code = _callback(_authorize(provider))["code"]
    assert _exchange(provider, code).status_code == 200

    reused = _exchange(provider, code)

    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"


def test_oidc_provider__id_token_overrides_change_the_signed_claims(provider):
    provider.id_token_overrides = {"nonce": "someone-else", "email": None}
    code = _callback(_authorize(provider))["code"]

    id_token = jwt.decode(_exchange(provider, code).json()["id_token"], provider.key)

    assert id_token.claims["nonce"] == "someone-else"
    assert "email" not in id_token.claims


def test_oidc_provider__userinfo_needs_a_valid_bearer_token(provider):
    response = requests.get(
        f"{provider.issuer}/userinfo", headers={"Authorization": "Bearer forged"}, timeout=5)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
