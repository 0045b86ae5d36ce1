"""The permission catalogue and the system roles: fixed in code, never in the database.

A permission is granted at one scope: ``account`` (over the whole account) or
``mailbox`` (over one mailbox). Roles are named sets of permissions of one
scope. System roles are defined here; accounts add custom ones.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache

from flask_babel import force_locale

from portal.i18n import _l, labels

ACCOUNT = "account"
MAILBOX = "mailbox"
SCOPES = (ACCOUNT, MAILBOX)


# Scopes as people read them.
labels("scope", {ACCOUNT: _l("Account"), MAILBOX: _l("Mailbox")})


@dataclass(frozen=True)
class Permission:
    """One permission. Its label and description are read in the person's language (``text``
    and ``about`` are lazy texts); ``group`` is a key of ``GROUPS`` that links and the API use."""

    code: str
    text: object
    about: object
    scope: str
    group: str

    @property
    def label(self) -> str:
        return str(self.text)

    @property
    def description(self) -> str:
        return str(self.about)

    @property
    def group_label(self) -> str:
        return str(GROUPS[self.group])


# The catalogue's groups: the key (kept in links and given by the API) and how it reads.
GROUPS = {"Account": _l("Account"), "Members": _l("Members"), "Roles": _l("Roles"), "Audit": _l("Audit"),
          "Domains": _l("Domains"), "Mailboxes": _l("Mailboxes"), "Users": _l("Users"), "Mailbox": _l("Mailbox"),
          "Mail": _l("Mail")}
labels("permission.group", GROUPS)


PERMISSIONS: tuple[Permission, ...] = (
    Permission("account.settings", _l("Edit account settings"),
               _l("Rename the account and change its registration and mailbox defaults."), ACCOUNT, "Account"),
    Permission("account.delete", _l("Delete the account"),
               _l("Delete the account; every member loses access to it."), ACCOUNT, "Account"),
    Permission("api_tokens.manage", _l("Manage API tokens"),
               _l("Create and revoke the account's API tokens; a token never holds more than its creator."),
               ACCOUNT, "Account"),
    Permission("members.view", _l("See members"),
               _l("List the account's members and their access."), ACCOUNT, "Members"),
    Permission("members.remove", _l("Remove members"),
               _l("Take a member out of the account, with all their access."), ACCOUNT, "Members"),
    Permission("access.grant", _l("Grant access"),
               _l("Give members roles and single permissions, and take them away. "
                  "Nobody grants a permission they do not hold."), ACCOUNT, "Members"),
    Permission("roles.view", _l("See roles"),
               _l("List the account's roles and what each grants."), ACCOUNT, "Roles"),
    Permission("roles.manage", _l("Manage custom roles"),
               _l("Create, copy, edit and delete custom roles."), ACCOUNT, "Roles"),
    Permission("audit.view", _l("Read the audit log"),
               _l("See who did what in the account, when and from where."), ACCOUNT, "Audit"),
    Permission("domains.view", _l("See domains"),
               _l("List the account's domains, their records and status."), ACCOUNT, "Domains"),
    Permission("domains.manage", _l("Manage domains"),
               _l("Add, check, enable, disable and remove domains."), ACCOUNT, "Domains"),
    Permission("mailboxes.view", _l("See all mailboxes"),
               _l("List every mailbox of the account and its provisioning state."), ACCOUNT, "Mailboxes"),
    Permission("mailboxes.create", _l("Create mailboxes"),
               _l("Create personal and shared mailboxes on the account's domains."), ACCOUNT, "Mailboxes"),
    Permission("mailboxes.manage", _l("Manage all mailboxes"),
               _l("Enable, disable, delete and reset the password of any mailbox of the account."),
               ACCOUNT, "Mailboxes"),
    Permission("users.invite", _l("Invite users"),
               _l("Invite people by e-mail with account and mailbox access."), ACCOUNT, "Users"),
    Permission("users.create", _l("Create corporate users"),
               _l("Create corporate users one by one or from a workbook."), ACCOUNT, "Users"),
    Permission("users.manage", _l("Manage corporate users"),
               _l("Edit corporate users' settings and remove them."), ACCOUNT, "Users"),
    Permission("users.report", _l("Users report"),
               _l("Generate and download the report of the account's users: every member, their roles and "
                  "permissions, and the addresses of the mailboxes they have access to."), ACCOUNT, "Users"),
    Permission("mailbox.view", _l("See the mailbox"),
               _l("See the mailbox's details and status."), MAILBOX, "Mailbox"),
    Permission("mailbox.read", _l("Read mail"),
               _l("Open the mailbox and read its mail."), MAILBOX, "Mail"),
    Permission("mailbox.send_as", _l("Send as"),
               _l("Send mail with the mailbox's address as sender."), MAILBOX, "Mail"),
    Permission("mailbox.settings", _l("Edit mailbox settings"),
               _l("Change the display name, quota and addresses, enable or disable the mailbox."),
               MAILBOX, "Mailbox"),
    Permission("mailbox.password", _l("Reset the password"),
               _l("Reset the mailbox's password through the mail backend."), MAILBOX, "Mailbox"),
    Permission("mailbox.access", _l("Grant mailbox access"),
               _l("Give others roles and permissions on this mailbox."), MAILBOX, "Mailbox"),
)

BY_CODE: dict[str, Permission] = {permission.code: permission for permission in PERMISSIONS}
labels("permission", {permission.code: permission.text for permission in PERMISSIONS})


@cache
def codes(scope: str) -> frozenset[str]:
    return frozenset(p.code for p in PERMISSIONS if p.scope == scope)


def groups(scope: str | None = None) -> list[str]:
    seen: list[str] = []
    for permission in PERMISSIONS:
        if (scope is None or permission.scope == scope) and permission.group not in seen:
            seen.append(permission.group)
    return seen


def _folded(text: str) -> str:
    """Lower case without accents: "boite" finds « boîte »."""
    return "".join(char for char in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(char))


def search(query: str = "", scope: str | None = None, group: str | None = None) -> list[Permission]:
    """The permissions whose code, label, description or group (in the person's language) hold
    every word of ``query``."""
    words = _folded(query).split()
    found = []
    for permission in PERMISSIONS:
        if scope and permission.scope != scope:
            continue
        if group and permission.group != group:
            continue
        haystack = _folded(f"{permission.code} {permission.label} {permission.description} "
                           f"{permission.group} {permission.group_label}")
        if all(word in haystack for word in words):
            found.append(permission)
    return found


@dataclass(frozen=True)
class SystemRole:
    """A role of the portal. ``name`` and ``description`` are lazy texts, read in the person's
    language; the database keeps them in English (``roles.services.ensure_system_roles``)."""

    key: str
    name: object
    scope: str
    description: object
    permissions: frozenset[str]


OWNER = "owner"
ADMINISTRATOR = "administrator"
MAILBOX_OWNER = "mailbox_owner"
MAILBOX_DELEGATE = "mailbox_delegate"

SYSTEM_ROLES: tuple[SystemRole, ...] = (
    SystemRole(OWNER, _l("Account Owner"), ACCOUNT,
               _l("Everything in the account, including deleting it. An account always keeps one."),
               codes(ACCOUNT)),
    SystemRole(ADMINISTRATOR, _l("Account Administrator"), ACCOUNT,
               _l("Everything in the account except deleting it."),
               codes(ACCOUNT) - {"account.delete"}),
    SystemRole(MAILBOX_OWNER, _l("Mailbox Owner"), MAILBOX,
               _l("Everything on the mailbox."), codes(MAILBOX)),
    SystemRole(MAILBOX_DELEGATE, _l("Mailbox Delegate"), MAILBOX,
               _l("Reads the mailbox and sends as it, on its owner's behalf."),
               frozenset({"mailbox.view", "mailbox.read", "mailbox.send_as"})),
)

SYSTEM_BY_KEY: dict[str, SystemRole] = {role.key: role for role in SYSTEM_ROLES}


def english(text) -> str:
    """A lazy text as the code writes it, whatever the language of the moment."""
    with force_locale("en"):
        return str(text)


# A role's stored name as people read it: the system roles' (kept in English) in their language,
# a custom role's as it is (``{{ role.name|label("role") }}`` where only the name is at hand).
labels("role", {english(role.name): role.name for role in SYSTEM_ROLES})
