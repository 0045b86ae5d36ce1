"""Single sign-on through OpenID Connect (authorization code with PKCE), with Authlib.

Users are matched on the provider's subject, then on a verified e-mail
address (which links the subject to that profile); otherwise a profile is
made, under the same rules as self-registration. A first log-in with an
address on an account's active domain joins that account as a corporate user.

Someone who uses two-factor sign-in is asked for their second factor after the
provider too: the provider vouches for an address, and whoever could prove that
address to it (a provider where people register themselves, one look at the
person's mail) would otherwise be them. A profile found by its address is linked
to the provider's subject only once that second step is passed.
"""

from __future__ import annotations

from typing import NamedTuple

from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.flask_client import OAuth
from joserfc.errors import JoseError
from flask import Flask, current_app
from flask_babel import gettext as _

from portal.audit.services import record
from portal.auth import sessions
from portal.auth.models import User
from portal.auth.services import (SUSPENDED_MESSAGE, AuthError, assign_if_corporate, find_user, normalize_email,
                                   prove_address, reset_withheld)
from portal.extensions import db
from portal.timeutil import utcnow

CLIENT = "portal_oidc"
_EXTENSION = "portal_oauth"


class SsoError(ValueError):
    """The provider or its answer did not let the person in; the message says why."""


class SignOn(NamedTuple):
    """Whom the provider's answer signs in, and the subject to link to them once their second
    factor is right (``None``: nothing left to link)."""

    user: User
    link: str | None = None


def init_app(app: Flask) -> None:
    settings = app.config["PORTAL"]
    if not settings["OIDC_ISSUER"]:
        return
    # One registry per app: Authlib caches clients, and each app has its own provider settings.
    oauth = OAuth(app)
    app.extensions[_EXTENSION] = oauth
    oauth.register(
        CLIENT,
        client_id=settings["OIDC_CLIENT_ID"],
        client_secret=settings["OIDC_CLIENT_SECRET"],
        server_metadata_url=settings["OIDC_ISSUER"].rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": settings["OIDC_SCOPES"], "code_challenge_method": "S256", "timeout": 10},
    )


def enabled() -> bool:
    return bool(current_app.config["PORTAL"]["OIDC_ISSUER"])


def client():
    return current_app.extensions[_EXTENSION].create_client(CLIENT)


def start(redirect_uri: str):
    try:
        return client().authorize_redirect(redirect_uri)
    except OSError as error:
        raise SsoError(_("The sign-on provider could not be reached (%(error)s).",
                         error=error.__class__.__name__)) from None


def finish() -> SignOn:
    """Complete the code exchange and return whom to log in."""
    try:
        token = client().authorize_access_token()
    except OAuthError as error:
        if error.error == "access_denied":
            raise SsoError(_("The sign-on provider did not let you in.")) from None
        raise SsoError(_("Single sign-on failed (%(error)s). Try again.", error=error.error)) from None
    except OSError as error:
        raise SsoError(_("The sign-on provider could not be reached (%(error)s).",
                         error=error.__class__.__name__)) from None
    except (JoseError, ValueError) as error:
        # A token whose signature, audience, nonce or expiry does not check out.
        raise SsoError(_("The sign-on answer could not be verified (%(error)s).",
                         error=error.__class__.__name__)) from None
    claims = token.get("userinfo") or client().userinfo(token=token)
    return sign_on(claims)


def address_verified(claim) -> bool:
    """Whether the provider's ``email_verified`` claim says yes: the JSON ``true`` of the standard, or
    the text "true" some providers send instead. Anything else is no (the text "false" among them,
    which a test of truth would have taken for yes)."""
    return claim is True or (isinstance(claim, str) and claim.strip().lower() == "true")


def reconcile(claims: dict) -> User:
    """Whom the claims sign in (see ``sign_on``)."""
    return sign_on(claims).user


def sign_on(claims: dict) -> SignOn:
    from portal.security.services import remove_every_factor, uses_two_factor

    subject = str(claims.get("sub") or "")
    if not subject:
        raise SsoError(_("The sign-on provider did not say who you are."))
    user = db.session.execute(db.select(User).where(User.oidc_subject == subject)).scalar_one_or_none()
    if user is not None:
        if user.suspended_at is not None:
            raise SsoError(str(SUSPENDED_MESSAGE))
        return SignOn(user)
    if not claims.get("email") or not address_verified(claims.get("email_verified")):
        raise SsoError(_("The sign-on provider did not give a verified e-mail address for you."))
    try:
        email = normalize_email(claims["email"])
    except AuthError as error:
        raise SsoError(_("The sign-on provider gave an address the portal cannot use: %(reason)s",
                         reason=str(error))) from None
    user = find_user(email)
    if user is not None:
        if user.suspended_at is not None:
            raise SsoError(str(SUSPENDED_MESSAGE))
        if user.oidc_subject is not None:
            raise SsoError(_("Another single sign-on identity is already linked to this address."))
        if reset_withheld(user) is not None:
            # Someone without this person's rights reads their mail, and so could have proven the
            # address to the provider (a review: a member whose mailbox received an Administrator's
            # address signed up there and was signed in as the Administrator).
            raise SsoError(_("Someone who does not hold every right of the profile at this address may read its "
                             "mail: the portal does not link a sign-on identity to it by its address. Ask an "
                             "administrator."))
        if user.address_proven and uses_two_factor(user):
            # Linked once the person's second factor is right (``link``): until then, the provider's
            # word for the address is not enough to make its subject this profile's.
            return SignOn(user, subject)
        if not user.address_proven:
            # Nobody had proven the address: its password may be a stranger's who registered it
            # first, waiting for the real person to confirm it, or the administrator's who set it
            # through an onboarding link shown to them. It goes, with any session of it, and so do
            # second factors set up with it (they would now stand between the person and the portal).
            confirming = not user.is_verified
            user.password_hash = None
            sessions.end_all(user, sessions.EXPIRED)
            remove_every_factor(user)
            prove_address(user)
            if confirming:
                assign_if_corporate(user)
        link(user, subject)
        return SignOn(user)
    from portal.users import corporate

    try:
        corporate.check_registration_allowed(email)
    except corporate.RegistrationRefused as refusal:
        raise SsoError(str(refusal)) from None
    from portal.mailboxes.services import received_by_a_mailbox

    if received_by_a_mailbox(email):
        raise SsoError(_("This address is received by a mailbox others may read: no profile is made at it. Ask an "
                         "administrator."))
    user = User(email=email, name=str(claims.get("name") or ""), oidc_subject=subject, email_verified_at=utcnow())
    db.session.add(user)
    db.session.flush()
    record("user.register", target=user, actor=user, via="sso")
    # The provider vouched for the address, as a link mailed there would: the account holding the
    # name's proven copy (its mail server may have delivered the provider's check) keeps it in its log.
    prove_address(user)
    assign_if_corporate(user)
    return SignOn(user)


def link(user: User, subject: str) -> bool:
    """Link the provider's ``subject`` to ``user``, unless either is linked already (to someone
    else, meanwhile); says whether it did."""
    taken = db.session.execute(db.select(User.id).where(User.oidc_subject == subject)).first()
    if user.oidc_subject is not None or taken is not None:
        return False
    user.oidc_subject = subject
    record("user.link_sso", target=user, actor=user)
    return True
