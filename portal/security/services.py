"""The rules of second factors: enrolling and removing them, checking a code (once, and not
too often), recovery codes, and the resets by an account's admin or by the operator.

A person "uses two-factor sign-in" when they have a confirmed authenticator app or a passkey.
Recovery codes back those up: they are made with the first factor and go with the last.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

import pyotp
import segno
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import delete, func, update

from portal.accounts.models import Account
from portal.audit.services import SOURCE_CLI, record
from portal.auth import sessions
from portal.auth.models import User
from portal.extensions import db
from portal.i18n import later
from portal.mail.services import send
from portal.roles.services import AccessError, outranks
from portal.sealing import AUTHENTICATOR_SECRET, seal, unseal
from portal.security.models import AuthenticatorApp, FactorFailure, Passkey, RecoveryCode
from portal.timeutil import utcnow
from portal.users.services import is_corporate_of

RECOVERY_CODE_COUNT = 10
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
CODE_STEP_SECONDS = 30
ISSUER = "Mail portal"
RESET = "second factors reset"


class SecurityError(ValueError):
    """A refusal whose message can be shown as it is; ``code`` says which kind."""

    def __init__(self, message: str, code: str = "invalid"):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Factors:
    """What a person has enrolled, for their Security page and their admin's reset page."""

    app: AuthenticatorApp | None
    passkeys: list[Passkey]
    recovery_codes_left: int

    @property
    def any(self) -> bool:
        return self.app is not None or bool(self.passkeys)


def _account_of(user: User) -> int | None:
    """A person's security events are filed under their organisation when they are corporate."""
    return user.corporate_account_id if user.is_corporate else None


def _audit(action: str, user: User, **details) -> None:
    """An event of the person's own doing (or of someone who had their password)."""
    record(action, account=_account_of(user), target=user, actor=user, **details)


def confirmed_app(user: User) -> AuthenticatorApp | None:
    return db.session.execute(db.select(AuthenticatorApp).where(
        AuthenticatorApp.user_id == user.id, AuthenticatorApp.confirmed_at.is_not(None))).scalar_one_or_none()


def passkeys_of(user: User) -> list[Passkey]:
    return list(db.session.execute(db.select(Passkey).where(Passkey.user_id == user.id)
                                   .order_by(Passkey.created_at, Passkey.id)).scalars())


def uses_two_factor(user: User) -> bool:
    """One statement: does the person have a confirmed authenticator app or a passkey?"""
    app = db.select(AuthenticatorApp.id).where(AuthenticatorApp.user_id == user.id,
                                               AuthenticatorApp.confirmed_at.is_not(None))
    passkey = db.select(Passkey.id).where(Passkey.user_id == user.id)
    return db.session.execute(db.select(app.exists() | passkey.exists())).scalar_one()


def factors_of(user: User) -> Factors:
    return Factors(app=confirmed_app(user), passkeys=passkeys_of(user), recovery_codes_left=recovery_codes_left(user))


def recent_events(user: User, limit: int = 10) -> list:
    """The latest security events about the person, for their own Security page."""
    from portal.audit.models import AuditEvent

    return list(db.session.execute(db.select(AuditEvent).where(
        AuditEvent.target_type == "user", AuditEvent.target_id == str(user.id),
        AuditEvent.family == "security")
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)).scalars())


# -- failures ---------------------------------------------------------------------------

def refuse_if_rate_limited(user: User) -> None:
    since = utcnow() - FAILURE_WINDOW
    failures = db.session.execute(db.select(func.count()).select_from(FactorFailure).where(
        FactorFailure.user_id == user.id, FactorFailure.at >= since)).scalar_one()
    if failures >= MAX_FAILURES:
        minutes = int(FAILURE_WINDOW.total_seconds() // 60)
        raise SecurityError(_("Too many wrong codes or passwords. Wait %(minutes)s minutes and try again, or use a "
                              "passkey.",
                              minutes=minutes), "rate_limited")


def record_failure(user: User, kind: str, stage: str) -> None:
    """Count a wrong code or password (``kind``) given for ``user`` at ``stage``, and audit it.
    The caller commits it even though the request fails."""
    db.session.add(FactorFailure(user_id=user.id, kind=kind))
    _audit("security.factor_refused", user, kind=kind, stage=stage)


# -- authenticator app (TOTP) -----------------------------------------------------------

def pending_app(user: User) -> AuthenticatorApp | None:
    return db.session.execute(db.select(AuthenticatorApp).where(
        AuthenticatorApp.user_id == user.id, AuthenticatorApp.confirmed_at.is_(None))).scalar_one_or_none()


def start_app(user: User) -> AuthenticatorApp:
    """A new secret for the person's authenticator app, waiting for a first code to confirm it."""
    if confirmed_app(user) is not None:
        raise SecurityError(_("You already use an authenticator app: remove it first to set up another."))
    app = pending_app(user)
    if app is None:
        app = AuthenticatorApp(user_id=user.id)
        db.session.add(app)
    app.sealed_secret = seal(AUTHENTICATOR_SECRET, pyotp.random_base32())
    app.created_at = utcnow()
    db.session.flush()
    return app


def app_secret(app: AuthenticatorApp) -> str | None:
    """The app's secret, or None when it was sealed under a secret key the portal no longer has."""
    return unseal(AUTHENTICATOR_SECRET, app.sealed_secret)


def provisioning_uri(user: User, secret: str, host: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=f"{ISSUER} ({host})")


def qr_code_svg(uri: str) -> Markup:
    """The QR code of ``uri`` as inline SVG (no image service sees the secret)."""
    svg = segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff", title="QR code to scan")
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))


def _matching_step(secret: str, code: str) -> int | None:
    """The time step (this one or a neighbour, for clocks a little off) whose code is ``code``."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=CODE_STEP_SECONDS)
    current = int(time.time()) // CODE_STEP_SECONDS
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def confirm_app(user: User, code: str) -> list[str] | None:
    """Confirm the app being set up with its first code; return new recovery codes when it is the
    person's first second factor (to be shown once), else None."""
    app = pending_app(user)
    if app is None:
        raise SecurityError(_("There is no authenticator app being set up: start again."))
    secret = app_secret(app)
    step = _matching_step(secret, code) if secret else None
    if step is None:
        raise SecurityError(_("That code is not the one your app shows now. Check the app's clock and try again."))
    first = not uses_two_factor(user)
    app.confirmed_at, app.last_used_step, app.last_used_at = utcnow(), step, utcnow()
    _audit("security.app_added", user)
    return issue_recovery_codes(user) if first else None


def check_app_code(user: User, code: str, stage: str) -> None:
    """Accept a code of the person's app once: refused when wrong, when already used (or older than
    one used), and after too many failures. Two requests with the same code cannot both pass."""
    refuse_if_rate_limited(user)
    app = confirmed_app(user)
    if app is None:
        raise SecurityError(_("You have no authenticator app."))
    secret = app_secret(app)
    if secret is None:
        raise SecurityError(_("Your authenticator app can no longer be checked (the portal's secret key changed): "
                              "use a passkey or a recovery code, then set the app up again."))
    step = _matching_step(secret, code)
    accepted = step is not None and db.session.execute(
        update(AuthenticatorApp).where(AuthenticatorApp.id == app.id, AuthenticatorApp.last_used_step < step)
        .values(last_used_step=step, last_used_at=utcnow())).rowcount == 1
    if not accepted:
        record_failure(user, "app_code", stage)
        if step is not None:
            raise SecurityError(_("That code was already used. Wait for your app to show the next one."), "replayed")
        raise SecurityError(_("That code is not right. Enter the code your app shows now."))


def remove_app(user: User) -> None:
    app = confirmed_app(user) or pending_app(user)
    if app is None:
        raise SecurityError(_("You have no authenticator app."))
    was_confirmed = app.confirmed_at is not None
    db.session.delete(app)
    db.session.flush()
    if was_confirmed:
        _audit("security.app_removed", user)
        _drop_recovery_codes_without_factors(user)


# -- passkeys ----------------------------------------------------------------------------

def add_passkey(user: User, *, name: str, credential_id: bytes, public_key: bytes, sign_count: int, rp_id: str,
                transports: list[str]) -> tuple[Passkey, list[str] | None]:
    """Keep a verified passkey; with it, new recovery codes when it is the first second factor."""
    name = " ".join((name or "").split())[:60] or "Passkey"
    first = not uses_two_factor(user)
    passkey = Passkey(user_id=user.id, name=name, credential_id=credential_id, public_key=public_key,
                      sign_count=sign_count, rp_id=rp_id, transports=",".join(transports)[:120])
    db.session.add(passkey)
    db.session.flush()
    _audit("security.passkey_added", user, name=name)
    return passkey, issue_recovery_codes(user) if first else None


def passkey_of(user: User, passkey_id: int) -> Passkey | None:
    passkey = db.session.get(Passkey, passkey_id)
    return passkey if passkey is not None and passkey.user_id == user.id else None


def remove_passkey(user: User, passkey_id: int) -> str:
    passkey = passkey_of(user, passkey_id)
    if passkey is None:
        raise SecurityError(_("That passkey was already removed."), "gone")
    name = passkey.name
    db.session.delete(passkey)
    db.session.flush()
    _audit("security.passkey_removed", user, name=name)
    _drop_recovery_codes_without_factors(user)
    return name


def record_passkey_use(passkey: Passkey, sign_count: int) -> None:
    passkey.sign_count, passkey.last_used_at = sign_count, utcnow()


# -- recovery codes ---------------------------------------------------------------------

def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _normalised(code: str) -> str:
    return "".join(character for character in code.lower() if character.isascii() and character.isalnum())


def _new_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()  # 80 random bits, 16 characters
    return "-".join(raw[index:index + 4] for index in range(0, 16, 4))


def issue_recovery_codes(user: User) -> list[str]:
    """Replace the person's recovery codes with 10 new ones, returned once and kept only hashed."""
    if not uses_two_factor(user):
        raise SecurityError(_("Recovery codes back up an authenticator app or a passkey: add one first."))
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_new_code() for number in range(RECOVERY_CODE_COUNT)]
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=_code_hash(_normalised(code))) for code in codes)
    db.session.flush()
    _audit("security.recovery_codes_issued", user, count=len(codes))
    return codes


def recovery_codes_left(user: User) -> int:
    return db.session.execute(db.select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))).scalar_one()


def use_recovery_code(user: User, code: str, stage: str) -> int:
    """Use up one recovery code; return how many are left. Each code works once."""
    refuse_if_rate_limited(user)
    used = db.session.execute(update(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _code_hash(_normalised(code)[:64]),
        RecoveryCode.used_at.is_(None)).values(used_at=utcnow())).rowcount == 1
    if not used:
        record_failure(user, "recovery_code", stage)
        raise SecurityError(_("That recovery code is not right, or was already used."))
    left = recovery_codes_left(user)
    _audit("security.recovery_code_used", user, left=left)
    return left


def _drop_recovery_codes_without_factors(user: User) -> None:
    if not uses_two_factor(user):
        db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


# -- resets ------------------------------------------------------------------------------

def remove_every_factor(user: User) -> dict[str, int]:
    removed = {
        "app": db.session.execute(delete(AuthenticatorApp).where(AuthenticatorApp.user_id == user.id)).rowcount,
        "passkeys": db.session.execute(delete(Passkey).where(Passkey.user_id == user.id)).rowcount,
        "recovery_codes": db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id)).rowcount,
    }
    db.session.execute(delete(FactorFailure).where(FactorFailure.user_id == user.id))
    sessions.end_all(user, RESET)
    return removed


def reset_by_admin(actor: User, account: Account, user: User) -> dict[str, int]:
    """An admin of ``account`` resets the second factors of one of its corporate users who lost
    them: only theirs, only when the admin holds every right the person holds; the person's
    sessions end and they are told by e-mail."""
    if not is_corporate_of(user, account):
        raise AccessError(later("Only the second factors of this account's corporate users can be reset here."))
    if user.id == actor.id:
        raise AccessError(later("You cannot reset your own second factors: manage them on your Security page."))
    if not outranks(actor, account, user):
        raise AccessError(later("You cannot reset the second factors of someone who holds rights you do not hold "
                                "(in this account, on one of its mailboxes, or in another account)."))
    removed = remove_every_factor(user)
    record("security.reset_by_admin", account=account, target=user, actor=actor, removed=removed)
    send(user.email, "two_factor_reset", for_account=account, user=user, admin=actor.display_name,
         account_name=account.name)
    return removed


def reset_by_operator(user: User) -> dict[str, int]:
    """The instance operator resets someone's second factors (``flask portal reset-two-factor``)."""
    removed = remove_every_factor(user)
    record("security.reset_by_operator", account=_account_of(user), target=user, source=SOURCE_CLI, removed=removed)
    send(user.email, "two_factor_reset", user=user, admin=None, account_name=None)
    return removed
