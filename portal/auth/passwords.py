"""Password hashing with argon2id; cheap parameters only when the test suite asks."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import gettext as _, ngettext

MIN_LENGTH = 10
MAX_LENGTH = 256

_hashers = {
    "strong": PasswordHasher(),
    "fast": PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
}
# Verifying against this when the address is unknown keeps timing even.
_DUMMY = _hashers["strong"].hash("not a real password")


def _hasher() -> PasswordHasher:
    return _hashers[current_app.config["PORTAL"]["PASSWORD_HASHING"]]


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    hasher = _hasher()
    try:
        return hasher.verify(stored or _dummy(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def _dummy() -> str:
    return _DUMMY if current_app.config["PORTAL"]["PASSWORD_HASHING"] == "strong" else _hashers["fast"].hash("x")


def needs_rehash(stored: str) -> bool:
    return _hasher().check_needs_rehash(stored)


def password_problem(password: str, email: str = "") -> str | None:
    if len(password) < MIN_LENGTH:
        return ngettext("Use at least %(num)d character.", "Use at least %(num)d characters.", MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        return ngettext("Use at most %(num)d character.", "Use at most %(num)d characters.", MAX_LENGTH)
    if email and password.lower() == email.lower():
        return _("Do not use your e-mail address as your password.")
    if len(set(password)) < 4:
        return _("Use a less repetitive password.")
    return None
