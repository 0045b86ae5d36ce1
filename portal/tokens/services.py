"""API tokens: scoped, revocable, hashed at rest, never stronger than their creator.

A token acts as the member who made it, within its scopes: each scope stands for a set of
permissions, the token may only be made with scopes whose permissions its creator holds, and
it stops working (401, with no hint why) when it is revoked, expired, used from a network it
does not allow, or when its creator leaves the account or no longer holds what its scopes need.
Requests are counted per token in the database, so the limit holds across every process.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, g, has_request_context, request
from flask_babel import gettext as _
from sqlalchemy import case, update

from portal.accounts.models import Account, Membership
from portal.audit.services import record
from portal.auth.models import User
from portal.extensions import db
from portal.i18n import _l, labels
from portal.roles import catalogue
from portal.roles.services import account_permissions, account_permissions_of, outranked
from portal.timeutil import utcnow
from portal.tokens.models import ApiToken

TOKEN_PREFIX = "mpt_"
RATE_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class Area:
    key: str
    label: object  # a lazy text
    read: frozenset[str]
    write: frozenset[str]


def _codes(*codes: str) -> frozenset[str]:
    unknown = set(codes) - set(catalogue.BY_CODE)
    if unknown:
        raise ValueError(f"unknown permissions {sorted(unknown)}")
    return frozenset(codes)


# What each scope lets a token do, as permissions of its creator's.
AREAS = (
    Area("account", _l("Account settings"), _codes(), _codes("account.settings")),
    Area("domains", _l("Domains"), _codes("domains.view"), _codes("domains.view", "domains.manage")),
    Area("mailboxes", _l("Mailboxes"), _codes("mailboxes.view"),
         _codes("mailboxes.view", "mailboxes.create", "mailboxes.manage")),
    Area("users", _l("Users and their access"), _codes("members.view"),
         _codes("members.view", "members.remove", "access.grant", "users.create", "users.manage")),
    Area("roles", _l("Roles"), _codes("roles.view"), _codes("roles.view", "roles.manage")),
    Area("invitations", _l("Invitations"), _codes("users.invite"), _codes("users.invite")),
    Area("imports", _l("Imports"), _codes("users.create"), _codes("users.create")),
    Area("reports", _l("Users reports"), _codes("users.report"), _codes("users.report")),
    Area("audit", _l("Audit log"), _codes("audit.view"), frozenset()),
    Area("scim", _l("SCIM provisioning (identity providers)"), _codes("members.view", "roles.view"),
         _codes("members.view", "roles.view", "roles.manage", "access.grant", "users.create", "users.manage")),
)
AREAS_BY_KEY = {area.key: area for area in AREAS}
SCOPES: dict[str, frozenset[str]] = {}
for _area in AREAS:
    SCOPES[f"{_area.key}:read"] = _area.read
    if _area.write:
        SCOPES[f"{_area.key}:write"] = _area.write


def scope_label(scope: str) -> str:
    """A scope as people read it: its area, and whether it reads or changes."""
    key, _colon, kind = scope.partition(":")
    area = AREAS_BY_KEY.get(key)
    if area is None or kind not in ("read", "write"):
        return scope
    return _("%(area)s: read", area=area.label) if kind == "read" else _("%(area)s: change", area=area.label)


class TokenError(ValueError):
    """A token cannot be made as asked; ``field`` names the form field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def permissions_of(scopes, *, writing: bool = False) -> frozenset[str]:
    """The account permissions the scopes stand for; for a request that changes something
    (``writing``), only those of its ``:write`` scopes: a read scope never changes anything."""
    held: set[str] = set()
    for scope in scopes:
        if not writing or scope.endswith(":write"):
            held |= SCOPES.get(scope, frozenset())
    return frozenset(held)


def mailbox_permissions_of(scopes, *, writing: bool = False) -> frozenset[str]:
    """The mailbox permissions the scopes reach: every one through mailboxes:write, seeing through :read."""
    if "mailboxes:write" in scopes:
        return catalogue.codes(catalogue.MAILBOX)
    return frozenset({"mailbox.view"}) if "mailboxes:read" in scopes and not writing else frozenset()


SCIM_BLUEPRINT = "scim"


def scopes_here(scopes) -> list[str]:
    """The scopes a request may use where it is made: every one on the SCIM addresses; elsewhere
    (the JSON API) all but the ``scim:`` ones. A token made for an identity provider (whose
    ``scim:write`` lets it give any role its maker holds, as the provider decides) is no key to
    the JSON API, where it obtained onboarding links and granted the Owner role outside SCIM's rules."""
    if has_request_context() and request.blueprint == SCIM_BLUEPRINT:
        return list(scopes)
    return [scope for scope in scopes if not scope.startswith("scim:")]


def reach(actor_id: int, account_id: int, *, mailbox: bool = False) -> frozenset[str] | None:
    """What the API token this request is made with lets ``actor_id`` hand on in ``account_id``
    (grant, or obtain the means to act as someone holding it): the account permissions (or, with
    ``mailbox``, the mailbox permissions) of its write scopes. None when no token limits it: a
    request from the pages, or a token with the ``scim:write`` scope, through which an identity
    provider gives people the account's roles, the administrative ones included, as its creator could
    (on the SCIM addresses only: see ``scopes_here``)."""
    token = g.get("api_token") if has_request_context() else None
    if token is None or token.created_by_id != actor_id or token.account_id != account_id:
        return None
    scopes = scopes_here(token.scopes)
    if "scim:write" in scopes:
        return None
    if mailbox:
        return mailbox_permissions_of(scopes, writing=True)
    return permissions_of(scopes, writing=True)


def token_query(account: Account, text: str = ""):
    """The account's tokens, those not revoked first, the newest first; ``text``: those whose name
    or prefix holds it. Paged by the page (a scale review: the newest 200 were shown and the rest
    could be neither seen nor revoked)."""
    from portal.search import holding

    query = db.select(ApiToken).where(ApiToken.account_id == account.id)
    if text:
        query = query.where(holding(ApiToken.search_text, text))
    return query.order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())


def token_in_account(account: Account, token_id: int) -> ApiToken | None:
    token = db.session.get(ApiToken, token_id)
    return token if token is not None and token.account_id == account.id else None


def _networks(text: str) -> list[str]:
    networks = []
    for item in text.replace(",", "\n").split():
        try:
            networks.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError:
            raise TokenError(_("“%(value)s” is not an address or a network such as 192.0.2.0/24.", value=item[:60]),
                             "networks") from None
    if len(networks) > 50:
        raise TokenError(_("At most 50 networks."), "networks")
    return networks


def create(actor: User, account: Account, *, name: str, scopes: set[str], expires_at: datetime | None,
           networks: str = "") -> tuple[ApiToken, str]:
    """Make a token; return it and its secret, which is shown this once and never kept."""
    name = " ".join(name.split())
    if not name:
        raise TokenError(_("Give the token a name, such as the script or system that uses it."), "name")
    if len(name) > 80:
        raise TokenError(_("At most 80 characters."), "name")
    unknown = scopes - set(SCOPES)
    if unknown or not scopes:
        raise TokenError(_("Choose at least one scope.") if not scopes else _("Unknown scopes."), "scopes")
    missing = permissions_of(scopes) - account_permissions(actor, account)
    if missing:
        labels = ", ".join(sorted(catalogue.BY_CODE[code].label for code in missing))
        raise TokenError(_("A token cannot hold more than you do: you lack %(labels)s.", labels=labels), "scopes")
    if expires_at is not None and expires_at <= utcnow():
        raise TokenError(_("The expiry must be in the future."), "expires")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(account_id=account.id, created_by_id=actor.id, name=name, token_hash=digest(raw),
                     prefix=raw[:12], scopes=sorted(scopes), allowed_networks=_networks(networks),
                     expires_at=expires_at)
    db.session.add(token)
    db.session.flush()
    record("token.create", account=account, target=token, target_label=name, actor=actor, scopes=sorted(scopes),
           expires=expires_at, networks=token.allowed_networks)
    return token, raw


def usable_scopes(actor: User, account: Account) -> set[str]:
    """The scopes ``actor`` may give a token: those whose permissions they hold."""
    held = account_permissions(actor, account)
    return {scope for scope in SCOPES if permissions_of({scope}) <= held}


def revocable(actor: User, account: Account, tokens: list[ApiToken]) -> set[int]:
    """The ids of ``tokens`` that ``actor`` may revoke: their own, and those of makers whose every
    right in the account they hold (a review: someone who may only manage tokens revoked the
    Owner's identity-provider token, and with it every removal the provider would make). A maker
    gone from the account holds nothing there. Three statements at most, whatever the number."""
    makers = {token.created_by_id: token.created_by for token in tokens
              if token.created_by_id != actor.id and token.created_by is not None}
    ranked = outranked(actor, account, list(makers.values()), elsewhere=False) if makers else set()
    return {token.id for token in tokens
            if token.created_by_id == actor.id or token.created_by is None or token.created_by_id in ranked}


def require_revocable(actor: User, account: Account, token: ApiToken) -> None:
    if token.id not in revocable(actor, account, [token]):
        raise TokenError(_("Only its maker, or someone who holds every right its maker holds in the account, may "
                           "revoke this token."))


def revoke(actor: User, account: Account, token: ApiToken) -> None:
    require_revocable(actor, account, token)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record("token.revoke", account=token.account_id, target=token, target_label=token.name, actor=actor)


labels("token.status", {"active": _l("Active"), "expired": _l("Expired"), "revoked": _l("Revoked"),
                         "ended": _l("Not working")})
ENDED_WHY = {
    "left": _l("its maker is no longer a member of the account (or joined again after making it)"),
    "suspended": _l("its maker is suspended"),
    "rights": _l("its maker no longer holds what its scopes need"),
}


def ended(tokens: list[ApiToken]) -> dict[int, str]:
    """Why each token that is neither revoked nor expired does not work, by id: its maker must have
    been a member since before it was made (leaving ends it for good), not be suspended, and hold
    what its scopes need. Two statements, plus one per account whose tokens are looked at (and one
    for their makers, unless already read)."""
    live = [token for token in tokens if status(token) == "active"]
    if not live:
        return {}
    since = {(account_id, user_id): created_at for account_id, user_id, created_at in db.session.execute(
        db.select(Membership.account_id, Membership.user_id, Membership.created_at).where(
            Membership.account_id.in_({t.account_id for t in live}),
            Membership.user_id.in_({t.created_by_id for t in live if t.created_by_id is not None})))}
    makers = {user.id: user for user in db.session.execute(db.select(User).where(
        User.id.in_({t.created_by_id for t in live if t.created_by_id is not None}))).scalars()}
    held: dict[tuple[int, int], frozenset[str]] = {}
    for account_id in {t.account_id for t in live}:
        present = {makers[t.created_by_id] for t in live
                   if t.account_id == account_id and (account_id, t.created_by_id) in since}
        held.update(((account_id, user_id), permissions) for user_id, permissions
                    in account_permissions_of(account_id, present).items())
    why = {}
    for token in live:
        creator = makers.get(token.created_by_id)
        joined = since.get((token.account_id, token.created_by_id))
        if creator is None or joined is None or joined > token.created_at:
            why[token.id] = "left"
        elif creator.suspended_at is not None:
            why[token.id] = "suspended"
        elif permissions_of(token.scopes) - held[(token.account_id, creator.id)]:
            why[token.id] = "rights"
    return why


def status(token: ApiToken, now: datetime | None = None) -> str:
    now = now or utcnow()
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


def _from_allowed_network(token: ApiToken, ip: str) -> bool:
    if not token.allowed_networks:
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network) for network in token.allowed_networks)


def authenticate(raw: str, ip: str) -> ApiToken | None:
    """The live token ``raw`` is, counted against its rate limit; None for any reason it is not.
    Raises RateLimited when the token made too many requests in the current window."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 100:
        return None
    token = db.session.execute(db.select(ApiToken).where(ApiToken.token_hash == digest(raw))).scalar_one_or_none()
    now = utcnow()
    if token is None or status(token, now) != "active" or not _from_allowed_network(token, ip):
        return None
    if ended([token]):
        return None  # its maker left (or came back after making it), is suspended or lost what it needs
    _count(token, now, ip)
    return token


def _count(token: ApiToken, now: datetime, ip: str) -> None:
    """One request more in the token's window, in one guarded statement every process shares."""
    limit = current_app.config["PORTAL"]["API_RATE_LIMIT"]
    window_over = (ApiToken.window_started_at.is_(None)) | (ApiToken.window_started_at <= now - RATE_WINDOW)
    started, count = db.session.execute(update(ApiToken).where(ApiToken.id == token.id).values(
        window_started_at=case((window_over, now), else_=ApiToken.window_started_at),
        window_count=case((window_over, 1), else_=ApiToken.window_count + 1),
        last_used_at=now, last_used_ip=ip[:64],
    ).returning(ApiToken.window_started_at, ApiToken.window_count)).one()
    db.session.commit()
    db.session.refresh(token)
    if count > limit:
        raise RateLimited(max(int((started + RATE_WINDOW - now).total_seconds()), 1))
