"""Access control in one place.

Every view declares a rule with ``@rule(...)``. One ``before_request`` hook
looks the rule up and enforces it, so a view body never repeats a check; a
view without a rule is refused (and the route-walking test fails), so a new
route cannot be left open by forgetting.

Account pages live under ``/accounts/<account_id>/``. Someone who is not a
member gets 404 there, never 403, so account ids reveal nothing; a member
without the permission gets 403.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from flask import abort, current_app, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.accounts.models import Account
from portal.roles import catalogue
from portal.api.auth import uses_token
from portal.roles.services import access_to, granted_on_mailboxes, mailbox_powers
from portal.tokens.services import mailbox_permissions_of as token_mailbox_permissions
from portal.tokens.services import permissions_of as token_permissions
from portal.tokens.services import SCIM_BLUEPRINT, SCOPES, scopes_here


@dataclass(frozen=True)
class Rule:
    kind: str  # public | signed_in | account | mailbox | superadmin
    permission: str | None = None
    also: str | None = None  # an account permission the rule needs as well, to see what the page shows

    def describe(self) -> str:
        described = f"{self.kind}:{self.permission}" if self.permission else self.kind
        return f"{described}+{self.also}" if self.also else described


PUBLIC = Rule("public")
SIGNED_IN = Rule("signed_in")
SUPERADMIN = Rule("superadmin")


def member(permission: str | None = None, also: str | None = None) -> Rule:
    """A member of the account in the URL, holding ``permission`` when given, and ``also`` (to see
    what the page shows: changing someone's access shows who they are and what they hold)."""
    for code in (permission, also):
        if code is not None and code not in catalogue.BY_CODE:
            raise ValueError(f"unknown permission {code!r}")
    return Rule("account", permission, also)


def on_mailbox(permission: str, also: str | None = None) -> Rule:
    """A member holding ``permission`` on the mailbox in the URL (``mailbox_id``), and the account
    permission ``also`` when given (a page about another member needs seeing the members)."""
    if catalogue.BY_CODE.get(permission, None) is None or catalogue.BY_CODE[permission].scope != catalogue.MAILBOX:
        raise ValueError(f"{permission!r} is not a mailbox permission")
    if also is not None and (also not in catalogue.BY_CODE or catalogue.BY_CODE[also].scope != catalogue.ACCOUNT):
        raise ValueError(f"{also!r} is not an account permission")
    return Rule("mailbox", permission, also)


# Further conditions on signed-in requests, registered by the features that need them (a policy
# that requires two-factor sign-in, say): ``gate(rule, account) -> response | None``; the first
# response returned is answered instead of the page. They run after the rule is satisfied.
gates: list[Callable[[Rule, Account | None], object | None]] = []


def rule(access: Rule):
    def attach(view):
        view.access_rule = access
        return view

    return attach


def rule_for(endpoint: str | None) -> Rule | None:
    if endpoint is None:
        return None
    view = current_app.view_functions.get(endpoint)
    return getattr(view, "access_rule", None)


class Context:
    """What the current request may do in the account it concerns.

    The membership and what its grants hold are read once, by ``enforce``; views, templates and
    services of the same request ask this object instead of the database.
    """

    def __init__(self, account: Account | None, membership_id: int | None = None,
                 held: frozenset[str] = frozenset()):
        self.account = account
        self.membership_id = membership_id
        self._held = held
        self._mailbox_permissions: dict[int, frozenset[str]] = {}

    @cached_property
    def held(self) -> frozenset[str]:
        """The account permissions the signed-in person holds, before any API token's scopes."""
        if self.account is None or not current_user.is_authenticated:
            return frozenset()
        if current_user.is_superadmin:
            return catalogue.codes(catalogue.ACCOUNT)
        return self._held & catalogue.codes(catalogue.ACCOUNT)

    @cached_property
    def permissions(self) -> frozenset[str]:
        token = g.get("api_token")
        # A token acts as its creator, within its scopes.
        return self.held & token_permissions(scopes_here(token.scopes), writing=_writing()) if token is not None \
            else self.held

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def can_read(self, permission: str) -> bool:
        """May the request see what ``permission`` shows, also in a request that changes something
        (where an API token's read scopes count, as they would to read it)?"""
        token = g.get("api_token")
        held = self.held & token_permissions(scopes_here(token.scopes)) if token is not None else self.held
        return permission in held

    def reaches_mailboxes(self, permission: str = "mailbox.view") -> bool:
        """Whether this request's API token, if any, lets ``permission`` on a mailbox through (its
        scopes), whatever the person holds on each mailbox."""
        token = g.get("api_token")
        return token is None or permission in token_mailbox_permissions(scopes_here(token.scopes), writing=_writing())

    def load_mailboxes(self, mailbox_ids) -> None:
        """Read what the person may do on each of these mailboxes at once (for a list that asks ``can``)."""
        if self.account is None or not current_user.is_authenticated:
            return
        wanted = [mailbox_id for mailbox_id in mailbox_ids if mailbox_id not in self._mailbox_permissions]
        powers = mailbox_powers(self.held)
        every = catalogue.codes(catalogue.MAILBOX)
        granted = granted_on_mailboxes(self.membership_id, wanted) if wanted and powers != every else {}
        token = g.get("api_token")
        for mailbox_id in wanted:
            held = (powers | granted.get(mailbox_id, frozenset())) & every
            self._mailbox_permissions[mailbox_id] = (
                held & token_mailbox_permissions(scopes_here(token.scopes), writing=_writing()) if token is not None
                else held)

    def can_on_mailbox(self, mailbox_id: int, permission: str) -> bool:
        if self.account is None or not current_user.is_authenticated:
            return False
        if mailbox_id not in self._mailbox_permissions:
            self.load_mailboxes([mailbox_id])
        return permission in self._mailbox_permissions[mailbox_id]


# POSTs that only read: SCIM's searches (RFC 7644, 3.4.3), which a read scope may make.
READING_POSTS = frozenset({"scim.users_search", "scim.groups_search"})


def _writing() -> bool:
    """Whether this request may change something (any method but GET and HEAD, and the POSTs that search)."""
    return request.method not in ("GET", "HEAD", "OPTIONS") and request.endpoint not in READING_POSTS


def enforce() -> object | None:
    """``before_request`` hook: the single gate every request passes."""
    if request.endpoint is None:
        return None  # routing failed; Flask answers 404/405
    access = rule_for(request.endpoint)
    if access is None:
        current_app.logger.error("route %s declares no access rule; refusing", request.endpoint)
        abort(403)
    g.access = Context(None)
    if access.kind == "public":
        return None
    if not current_user.is_authenticated:
        if request.method == "GET" and not uses_token():
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(401)
    if access.kind == "signed_in":
        return _gated(access, None)
    if access.kind == "superadmin" and not current_user.is_superadmin:
        abort(403)
    token = g.get("api_token")
    # Routes without an account in their path (SCIM) concern the account of the token used.
    account_id = (request.view_args or {}).get("account_id")
    if account_id is None and token is not None:
        account_id = token.account_id
    if access.kind == "superadmin" and account_id is None:
        return _gated(access, None)
    account, membership_id, held = access_to(current_user, account_id) if account_id else (None, None, frozenset())
    if token is not None and account is not None and account.id != token.account_id:
        abort(404)  # a token works on its own account only; another's looks like nothing
    if account is None or not (current_user.is_superadmin or membership_id is not None):
        abort(404)
    g.access = Context(account, membership_id, held)
    g.account = account
    if access.kind == "mailbox":
        from portal.mailboxes.services import mailbox_in_account

        mailbox = mailbox_in_account(account, (request.view_args or {}).get("mailbox_id") or 0)
        if mailbox is None:
            abort(404)
        g.mailbox = mailbox
        if not g.access.can_on_mailbox(mailbox.id, access.permission):
            abort(403)
        if access.also and not g.access.can_read(access.also):  # to see, as a read scope would
            _refuse(access.also, reading=True)
        return _gated(access, account)
    if access.permission and not g.access.can(access.permission):
        _refuse(access.permission)
    if access.also and not g.access.can_read(access.also):
        _refuse(access.also, reading=True)
    return _gated(access, account)


def _refuse(permission: str, *, reading: bool = False):
    """403; when the API token used does not reach ``permission``, saying which scopes would (its
    maker may add one, if they hold it: the answer does not depend on that, so that it does not
    tell a token what its maker holds beyond its scopes)."""
    token = g.get("api_token")
    writing = _writing() and not reading
    if token is not None and permission not in token_permissions(scopes_here(token.scopes), writing=writing):
        scim = request.blueprint == SCIM_BLUEPRINT  # there, the scim: scopes count (and are the ones to name)
        scopes = sorted(scope for scope, held in SCOPES.items() if permission in held
                        and scope.startswith("scim:") == scim and (scope.endswith(":write") or not writing))
        if scopes:
            abort(403, description=_("This token's scopes do not reach this; it needs one of these: %(scopes)s.",
                                     scopes=", ".join(scopes)))
    abort(403)


def _gated(access: Rule, account: Account | None):
    for gate in gates:
        response = gate(access, account)
        if response is not None:
            return response
    return None


def can(permission: str, mailbox=None) -> bool:
    """For templates: may the current user do this in the current account (or on ``mailbox``)?"""
    context = g.get("access")
    if not context:
        return False
    if mailbox is not None:
        return context.can_on_mailbox(getattr(mailbox, "id", mailbox), permission)
    return context.can(permission)


def findable_people():
    """Whom the current user may look up among the account's people (an owner picker): ``None``, anyone,
    for someone who may see its users; else only themself, since a picker shows addresses and names."""
    context = g.get("access")
    return None if context and context.can_read("members.view") else current_user._get_current_object()
