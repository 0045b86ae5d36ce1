"""Who must use two-factor sign-in: the members who administer an account whose setting requires
it, and the instance's superadmins when ``PORTAL_REQUIRE_2FA_SUPERADMIN`` is on.

Such a person without a second factor can still sign in, but the access gate sends them from
the pages the policy covers to their Security page, which says why; their own profile pages,
log-out and the enrolment itself stay open. Sessions opened through single sign-on are not
asked: the identity provider's own rules apply to them.
"""

from __future__ import annotations

from flask import current_app, g, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.accounts.models import Account, Membership
from portal.audit.services import record
from portal.auth import sessions
from portal.auth.models import User
from portal.auth.services import WITH_SINGLE_SIGN_ON
from portal.extensions import db
from portal.i18n import later
from portal.roles.services import AccessError, account_permissions, is_owner
from portal.security.navigation import go_to
from portal.security.services import uses_two_factor
from portal.web.access import Rule, gates

# Account permissions that change members, roles, domains, mailboxes or tokens: holding any of
# them is administering the account.
ADMINISTERING = frozenset({
    "members.remove", "access.grant", "roles.manage", "domains.manage", "mailboxes.create", "mailboxes.manage",
    "users.invite", "users.create", "users.manage", "account.settings", "account.delete", "api_tokens.manage",
})

# The person's own profile pages, reachable whatever the policy (their Security pages are too).
OWN_PAGES = frozenset({
    "auth.logout", "auth.profile", "auth.change_password", "auth.end_session", "auth.end_other_sessions",
    "accounts.delete_profile", "invitations.mine", "invitations.accept", "invitations.decline",
})


def superadmins_must_enrol() -> bool:
    return bool(current_app.config["PORTAL"]["REQUIRE_2FA_SUPERADMIN"])


def administers(permissions: frozenset[str]) -> bool:
    return not permissions.isdisjoint(ADMINISTERING)


def applies_in(user: User, account: Account) -> bool:
    return account.require_two_factor and administers(account_permissions(user, account))


def gate(access: Rule, account: Account | None):
    """The access gate's condition (``portal.web.access.gates``): the enrolment page instead of a
    page the policy covers, for someone it applies to who has no second factor."""
    if account is None and (request.blueprint == "security" or request.endpoint in OWN_PAGES):
        return None
    session_row = sessions.current()
    # No browser session (an API token has its own rules), or one the identity provider vouched for.
    if session_row is None or session_row.signed_in_with == WITH_SINGLE_SIGN_ON:
        return None
    by_account = account is not None and account.require_two_factor and administers(g.access.permissions)
    if not by_account and not (current_user.is_superadmin and superadmins_must_enrol()):
        return None
    if uses_two_factor(current_user):
        return None
    return go_to(url_for("security.index", required_by=account.id if by_account else None,
                         next=request.full_path.rstrip("?") if request.method == "GET" else None))


gates.append(gate)


def reasons_to_enrol(user: User, required_by: int | None = None) -> list[str]:
    """Why ``user`` must use two-factor sign-in, in words; empty when nothing requires it."""
    reasons = []
    if user.is_superadmin and superadmins_must_enrol():
        reasons.append(_("This portal requires its superadmins to use two-factor sign-in."))
    accounts = list(db.session.execute(
        db.select(Account).join(Membership, Membership.account_id == Account.id)
        .where(Membership.user_id == user.id, Account.require_two_factor).order_by(Account.name)).scalars())
    if required_by is not None and required_by not in {account.id for account in accounts}:
        asking = db.session.get(Account, required_by)
        accounts += [asking] if asking is not None else []
    reasons += [_("%(account)s requires the members who administer it to use two-factor sign-in.", account=account.name)
                for account in accounts if applies_in(user, account)]
    return reasons


def may_stop_requiring(actor: User, account: Account) -> bool:
    """Only an owner stops the account requiring two-factor sign-in: it protects them too (a review:
    someone who may only change the account's settings turned it off for every administrator)."""
    return is_owner(actor, account.id)


def set_account_policy(actor: User, account: Account, required: bool) -> None:
    if account.require_two_factor and not required and not may_stop_requiring(actor, account):
        raise AccessError(later("Only an owner of the account may stop requiring two-factor sign-in."))
    if account.require_two_factor != required:
        account.require_two_factor = required
        record("account.two_factor_policy", account=account, target=account, actor=actor, required=required)
