"""Passkeys (WebAuthn, with the ``webauthn`` library): the options the browser's
``navigator.credentials`` calls need, and the checks of what it answers.

The relying party is the host the browser sees: the one of ``PORTAL_BASE_URL`` when the request
comes that way (behind a TLS proxy the request itself may say http), otherwise the request's
own host (``localhost`` on a trial that ``PORTAL_BASE_URL`` calls 127.0.0.1). A passkey only ever
signs for the host it was made on, so a request naming another host gains nothing. Browsers
refuse passkeys on an IP address.

Each ceremony's challenge waits in the signed session cookie for five minutes and is used once.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app, request, session
from flask_babel import gettext as _
from webauthn import (generate_authentication_options, generate_registration_options, options_to_json,
                      verify_authentication_response, verify_registration_response)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (AuthenticatorSelectionCriteria, PublicKeyCredentialDescriptor,
                                      ResidentKeyRequirement, UserVerificationRequirement)

from portal.auth.models import User
from portal.extensions import db
from portal.security import services
from portal.security.models import Passkey

CHALLENGE_KEY = "passkey_challenge"
CHALLENGE_SECONDS = 300
# What a browser sends back is small; anything larger is not a credential.
MAX_CREDENTIAL_LENGTH = 20_000
# Registering and signing in are separate ceremonies: a challenge made for one does not serve the other.
REGISTER = "register"
SIGN_IN = "sign-in"


class PasskeyError(ValueError):
    """The browser's answer does not prove what it should; the message can be shown."""


@dataclass(frozen=True)
class RelyingParty:
    id: str
    origin: str


def relying_party() -> RelyingParty:
    base = urlsplit(current_app.config["PORTAL"]["BASE_URL"])
    if base.netloc and request.host == base.netloc:
        return RelyingParty(base.hostname or "", f"{base.scheme}://{base.netloc}")
    return RelyingParty(urlsplit(f"//{request.host}").hostname or "", request.host_url.rstrip("/"))


def unavailable_reason() -> str | None:
    """Why passkeys cannot work at the address the browser is on, or None when they can."""
    host = relying_party().id
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    port = urlsplit(f"//{request.host}").port
    by_name = f"http://localhost:{port}" if port else "http://localhost"
    return _("Browsers refuse passkeys on an IP address such as %(host)s: open the portal by name (for a trial "
             "on this computer, %(address)s).", host=host, address=by_name)


def _user_handle(user: User) -> bytes:
    """An opaque, stable id of the person for their authenticators (not their address or row id)."""
    return hmac.new(current_app.secret_key.encode(), f"passkey-user:{user.id}".encode(), hashlib.sha256).digest()


def _remember_challenge(purpose: str, challenge: bytes, user: User) -> None:
    session[CHALLENGE_KEY] = {"purpose": purpose, "challenge": bytes_to_base64url(challenge), "user": user.id,
                              "at": int(time.time())}


def _take_challenge(purpose: str, user: User) -> bytes:
    kept = session.pop(CHALLENGE_KEY, None)
    if (not isinstance(kept, dict) or kept.get("purpose") != purpose or kept.get("user") != user.id
            or not isinstance(kept.get("at"), int) or time.time() - kept["at"] > CHALLENGE_SECONDS):
        raise PasskeyError(_("The passkey request expired. Try again."))
    return base64url_to_bytes(kept["challenge"])


def _parsed(raw: str) -> dict:
    if not raw:
        raise PasskeyError(_("Using a passkey needs JavaScript in your browser. Turn it on, or use a code."))
    if len(raw) > MAX_CREDENTIAL_LENGTH:
        raise PasskeyError(_("That is not a passkey's answer."))
    try:
        credential = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise PasskeyError(_("That is not a passkey's answer.")) from None
    if not isinstance(credential, dict) or not isinstance(credential.get("rawId"), str):
        raise PasskeyError(_("That is not a passkey's answer."))
    return credential


def registration_options(user: User) -> str:
    """The JSON options of ``navigator.credentials.create()`` for a new passkey of ``user``."""
    party = relying_party()
    options = generate_registration_options(
        rp_id=party.id, rp_name=services.ISSUER, user_id=_user_handle(user), user_name=user.email,
        user_display_name=user.display_name,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=passkey.credential_id)
                             for passkey in services.passkeys_of(user)])
    _remember_challenge(REGISTER, options.challenge, user)
    return options_to_json(options)


def register(user: User, name: str, raw_credential: str) -> tuple[Passkey, list[str] | None]:
    """Check the browser's answer to ``registration_options`` and keep the new passkey."""
    credential = _parsed(raw_credential)
    challenge = _take_challenge(REGISTER, user)
    party = relying_party()
    try:
        verified = verify_registration_response(credential=credential, expected_challenge=challenge,
                                                expected_rp_id=party.id, expected_origin=party.origin)
    except (WebAuthnException, ValueError, TypeError, KeyError) as error:
        current_app.logger.info("passkey registration refused for user %s: %s", user.id, error)
        raise PasskeyError(_("Your browser's passkey answer could not be verified. Try again.")) from None
    if db.session.execute(db.select(Passkey.id).where(Passkey.credential_id == verified.credential_id)).first():
        raise PasskeyError(_("That passkey is already registered."))
    transports = credential.get("response", {}).get("transports")
    return services.add_passkey(
        user, name=name, credential_id=verified.credential_id, public_key=verified.credential_public_key,
        sign_count=verified.sign_count, rp_id=party.id,
        transports=[str(item) for item in transports] if isinstance(transports, list) else [])


def usable_passkeys(user: User) -> list[Passkey]:
    """The person's passkeys made for the host the browser is on."""
    party = relying_party().id
    return [passkey for passkey in services.passkeys_of(user) if passkey.rp_id == party]


def hosts_elsewhere(user: User) -> list[str]:
    """The other hosts the person's passkeys were made for (each works only there)."""
    party = relying_party().id
    return sorted({passkey.rp_id for passkey in services.passkeys_of(user) if passkey.rp_id != party})


def authentication_options(user: User) -> str:
    """The JSON options of ``navigator.credentials.get()`` for one of ``user``'s passkeys."""
    passkeys = usable_passkeys(user)
    if not passkeys:
        raise PasskeyError(_("You have no passkey for this address of the portal."))
    options = generate_authentication_options(
        rp_id=relying_party().id, user_verification=UserVerificationRequirement.PREFERRED,
        allow_credentials=[PublicKeyCredentialDescriptor(id=passkey.credential_id) for passkey in passkeys])
    _remember_challenge(SIGN_IN, options.challenge, user)
    return options_to_json(options)


def authenticate(user: User, raw_credential: str, stage: str) -> Passkey:
    """Check the browser's answer to ``authentication_options``: the passkey is one of ``user``'s,
    it signed this challenge for this host, and its signature count went forward."""
    credential = _parsed(raw_credential)
    challenge = _take_challenge(SIGN_IN, user)
    try:
        credential_id = base64url_to_bytes(credential["rawId"])
    except ValueError:
        raise PasskeyError(_("That is not a passkey's answer.")) from None
    passkey = next((item for item in usable_passkeys(user) if item.credential_id == credential_id), None)
    if passkey is None:
        services.record_failure(user, "passkey", stage)
        raise PasskeyError(_("That passkey is not one of yours here."))
    party = relying_party()
    try:
        verified = verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=party.id,
            expected_origin=party.origin, credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count)
    except (WebAuthnException, ValueError, TypeError, KeyError) as error:
        current_app.logger.info("passkey sign-in refused for user %s: %s", user.id, error)
        services.record_failure(user, "passkey", stage)
        raise PasskeyError(_("Your passkey's answer could not be verified. Try again.")) from None
    services.record_passkey_use(passkey, verified.new_sign_count)
    return passkey
