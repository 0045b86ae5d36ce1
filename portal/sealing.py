"""Encryption at rest for what must be stored but must not be readable in the database:
passwords a backend generated, queued e-mails (which may hold one-time links), and the
secrets of authenticator apps.

Each purpose has its own key, derived from the portal's secret key; a value sealed
under a key that has since changed cannot be opened (``None``), never half-read.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app

MAILBOX_PASSWORD = b"mailbox-secrets"
QUEUED_MAIL = b"queued-mail"
AUTHENTICATOR_SECRET = b"authenticator-secrets"


def _fernet(purpose: bytes) -> Fernet:
    key = hashlib.sha256(purpose + b":" + current_app.secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(purpose: bytes, text: str) -> bytes:
    return _fernet(purpose).encrypt(text.encode())


def unseal(purpose: bytes, sealed: bytes) -> str | None:
    try:
        return _fernet(purpose).decrypt(sealed).decode()
    except InvalidToken:
        return None
