"""What the two-factor tests share: a software passkey authenticator that answers WebAuthn
ceremonies as a browser and its authenticator would, and steps through the portal's pages."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import struct
import time

import cbor2
import pyotp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import PASSWORD

ORIGIN = "http://localhost"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SoftAuthenticator:
    """One passkey (ES256) kept in memory, with a signature counter."""

    def __init__(self, origin: str = ORIGIN, counts_signatures: bool = True):
        self.origin = origin
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = secrets.token_bytes(16)
        self.sign_count = 0
        self.counts_signatures = counts_signatures

    def _cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}).encode()

    def _next_count(self) -> int:
        if self.counts_signatures:
            self.sign_count += 1
        return self.sign_count

    def create(self, options: dict) -> str:
        """The JSON a browser sends after ``navigator.credentials.create(options)``."""
        public_key = options["publicKey"]
        rp_hash = hashlib.sha256(public_key["rp"]["id"].encode()).digest()
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id + self._cose_public_key()
        auth_data = rp_hash + bytes([0x45]) + struct.pack(">I", self._next_count()) + attested
        client_data = self._client_data("webauthn.create", public_key["challenge"])
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps({"id": b64url(self.credential_id), "rawId": b64url(self.credential_id), "type": "public-key",
                           "response": {"clientDataJSON": b64url(client_data), "attestationObject": b64url(attestation),
                                        "transports": ["internal"]},
                           "clientExtensionResults": {}})

    def get(self, options: dict, *, rp_id: str | None = None) -> str:
        """The JSON a browser sends after ``navigator.credentials.get(options)``."""
        public_key = options["publicKey"]
        rp_hash = hashlib.sha256((rp_id or public_key["rpId"]).encode()).digest()
        auth_data = rp_hash + bytes([0x05]) + struct.pack(">I", self._next_count())
        client_data = self._client_data("webauthn.get", public_key["challenge"])
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return json.dumps({"id": b64url(self.credential_id), "rawId": b64url(self.credential_id), "type": "public-key",
                           "response": {"clientDataJSON": b64url(client_data), "authenticatorData": b64url(auth_data),
                                        "signature": b64url(signature), "userHandle": None},
                           "clientExtensionResults": {}})


# -- steps through the pages ----------------------------------------------------------------

def secret_on_page(html: str) -> str:
    found = re.search(r'id="app-secret">([A-Z2-7 ]+)<', html)
    assert found, "the set-up page shows the key as text"
    return found.group(1).replace(" ", "")


def code_now(secret: str) -> str:
    return pyotp.TOTP(secret).now()


def code_of_another_step(secret: str, steps: int) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * steps)


def code_at_step(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).at(step * 30)


def enrol_app(client) -> tuple[str, list[str]]:
    """Set up an authenticator app for the signed-in person; return its secret and the recovery codes."""
    assert client.post("/profile/security/app").status_code == 302
    secret = secret_on_page(client.get("/profile/security/app").get_data(as_text=True))
    page = client.post("/profile/security/app/confirm", data={"code": code_now(secret)})
    assert page.status_code == 200, page.get_data(as_text=True)[:1500]
    return secret, codes_on_page(page.get_data(as_text=True))


def codes_on_page(html: str) -> list[str]:
    return re.findall(r'<code class="value">([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</code>', html)


def enrol_passkey(client, authenticator: SoftAuthenticator, name: str = "Laptop"):
    options = client.post("/profile/security/passkeys/options").get_json()
    return client.post("/profile/security/passkeys", data={"name": name, "credential": authenticator.create(options)})


def password_step(client, email: str, password: str = PASSWORD, next_path: str | None = None):
    url = "/login" + (f"?next={next_path}" if next_path else "")
    return client.post(url, data={"email": email, "password": password})


def signed_in(client) -> bool:
    return client.get("/profile").status_code == 200


def make_stale(session_id: int | None = None) -> None:
    """The sessions' last confirmation (or the one of ``session_id``) is older than ten minutes."""
    from datetime import timedelta

    from sqlalchemy import update

    from portal.auth.models import UserSession
    from portal.extensions import db
    from portal.timeutil import utcnow

    query = update(UserSession)
    if session_id is not None:
        query = query.where(UserSession.id == session_id)
    db.session.execute(query.values(confirmed_at=utcnow() - timedelta(minutes=11)))
    db.session.commit()
