"""A real OpenID Connect provider on loopback, for the portal's SSO tests.

It speaks the authorization code flow with PKCE (S256 required) and signs ID
tokens with RS256 under a key of its own. It has no login page: a test picks
beforehand who is signed in.

    with OidcProvider() as provider:
        provider.register_client("portal", "s3cret", ["http://127.0.0.1:5000/auth/callback"])
        provider.login_as(sub="u-1", email="ada@example.org", name="Ada Lovelace")
        ...  # point the portal at provider.issuer

``deny_next()`` makes the next authorization answer ``access_denied``;
``id_token_overrides`` changes the claims of the ID tokens it signs (``None``
removes a claim), to show that the portal refuses a wrong nonce, audience or
expiry. Like every emulator it records requests in ``requests`` and takes
``faults`` (see emu_common), so tests can make the provider slow or down.

It is stricter than the specification where that proves something about the
portal: ``state`` and ``nonce`` are required, and so is PKCE.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.servers.emu_common import Emulator, RecordedRequest, Reply

TOKEN_LIFETIME = 3600


@dataclass(frozen=True)
class OidcClient:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]


@dataclass(frozen=True)
class OidcUser:
    sub: str
    email: str
    email_verified: bool
    name: str


@dataclass(frozen=True)
class _Grant:
    """What an authorization code stands for until it is exchanged."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str
    user: OidcUser


def _s256(code_verifier: str) -> str:
    """The PKCE S256 challenge of a verifier (RFC 7636, 4.2)."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _redirect(redirect_uri: str, **params: str | None) -> Reply:
    query = urlencode({key: value for key, value in params.items() if value is not None})
    separator = "&" if "?" in redirect_uri else "?"
    return Reply(302, content_type="text/plain", headers={"Location": f"{redirect_uri}{separator}{query}"})


def _error(error: str, description: str, status: int = 400, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps({"error": error, "error_description": description}).encode()
    return Reply(status, body, headers=headers or {})


class OidcProvider(Emulator):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
        self.clients: dict[str, OidcClient] = {}
        self.reset()

    @property
    def issuer(self) -> str:
        return self.url

    # -- what tests call ------------------------------------------------------
    def register_client(self, client_id: str, client_secret: str, redirect_uris: list[str]) -> OidcClient:
        client = OidcClient(client_id, client_secret, tuple(redirect_uris))
        with self.lock:
            self.clients[client_id] = client
        return client

    def login_as(self, sub: str, email: str, email_verified: bool = True, name: str = "") -> OidcUser:
        """Sign ``sub`` in: every later authorization is granted as this user."""
        user = OidcUser(sub, email, email_verified, name)
        with self.lock:
            self.user = user
        return user

    def deny_next(self) -> None:
        """Answer the next authorization with ``access_denied``, as when a user clicks "Cancel"."""
        with self.lock:
            self._deny_next = True

    def reset(self) -> None:
        """Forget users, codes, tokens and requests; keep the clients and the key."""
        with self.lock:
            self.user: OidcUser | None = None
            self.id_token_overrides: dict[str, Any] = {}
            self.codes_issued: list[str] = []
            self.access_tokens: dict[str, OidcUser] = {}
            self.last_token_request: RecordedRequest | None = None
            self.requests.clear()
            self._grants: dict[str, _Grant] = {}
            self._deny_next = False
        self.faults.reset()

    # -- the endpoints --------------------------------------------------------
    def handle(self, request: RecordedRequest) -> Reply:
        routes = {
            ("GET", "/.well-known/openid-configuration"): self._configuration,
            ("GET", "/jwks"): self._jwks,
            ("GET", "/authorize"): self._authorize,
            ("POST", "/token"): self._token,
            ("GET", "/userinfo"): self._userinfo,
        }
        endpoint = routes.get((request.method, request.path))
        if endpoint is None:
            return _error("not_found", f"no {request.method} {request.path}", 404)
        return endpoint(request)

    def _configuration(self, request: RecordedRequest) -> Reply:
        return Reply.json({
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "email", "email_verified", "name"],
        })

    def _jwks(self, request: RecordedRequest) -> Reply:
        return Reply.json({"keys": [self.key.as_dict(private=False)]})

    def _authorize(self, request: RecordedRequest) -> Reply:
        params = {key: values[-1] for key, values in request.query.items()}
        client = self.clients.get(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri", "")
        if client is None or redirect_uri not in client.redirect_uris:
            # Never redirect to an address the client did not register (RFC 6749, 4.1.2.1).
            return _error("invalid_request", "unknown client_id or unregistered redirect_uri")
        state = params.get("state")
        refusal = self._authorization_refusal(params)
        if refusal is not None:
            error, description = refusal
            return _redirect(redirect_uri, error=error, error_description=description, state=state)
        code = secrets.token_urlsafe(32)
        self._grants[code] = _Grant(client.client_id, redirect_uri, params["code_challenge"], params["nonce"], self.user)
        self.codes_issued.append(code)
        return _redirect(redirect_uri, code=code, state=state)

    def _authorization_refusal(self, params: dict[str, str]) -> tuple[str, str] | None:
        if params.get("response_type") != "code":
            return "unsupported_response_type", "only response_type=code is supported"
        if "openid" not in params.get("scope", "").split():
            return "invalid_scope", "scope must include openid"
        for name in ("state", "nonce", "code_challenge"):
            if not params.get(name):
                return "invalid_request", f"{name} is required"
        if params.get("code_challenge_method") != "S256":
            return "invalid_request", "code_challenge_method must be S256"
        if self._deny_next:
            self._deny_next = False
            return "access_denied", "the user refused"
        if self.user is None:
            return "login_required", "nobody is signed in"
        return None

    def _token(self, request: RecordedRequest) -> Reply:
        self.last_token_request = request
        form = request.form()
        client = self._authenticated_client(request, form)
        if client is None:
            return _error("invalid_client", "client authentication failed", 401,
                          {"WWW-Authenticate": 'Basic realm="oidc"'})
        if form.get("grant_type") != "authorization_code":
            return _error("unsupported_grant_type", "only authorization_code is supported")
        # Popped before any other check: a code is spent by its first use, even a failed one.
        grant = self._grants.pop(form.get("code", ""), None)
        if grant is None or grant.client_id != client.client_id:
            return _error("invalid_grant", "unknown or already used code")
        if form.get("redirect_uri") != grant.redirect_uri:
            return _error("invalid_grant", "redirect_uri differs from the authorization request")
        if _s256(form.get("code_verifier", "")) != grant.code_challenge:
            return _error("invalid_grant", "code_verifier does not match the code_challenge")
        access_token = secrets.token_urlsafe(32)
        self.access_tokens[access_token] = grant.user
        return Reply.json({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "scope": "openid email profile",
            "id_token": self._id_token(grant),
        })

    def _authenticated_client(self, request: RecordedRequest, form: dict[str, str]) -> OidcClient | None:
        client_id, client_secret = request.basic_auth() or (form.get("client_id", ""), form.get("client_secret", ""))
        client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(client.client_secret.encode(), client_secret.encode()):
            return None
        return client

    def _id_token(self, grant: _Grant) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": grant.client_id,
            "iat": now,
            "exp": now + TOKEN_LIFETIME,
            "nonce": grant.nonce,
            **asdict(grant.user),
            **self.id_token_overrides,
        }
        claims = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key)

    def _userinfo(self, request: RecordedRequest) -> Reply:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        user = self.access_tokens.get(token) if scheme.lower() == "bearer" else None
        if user is None:
            return _error("invalid_token", "missing or unknown access token", 401,
                          {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return Reply.json(asdict(user))
