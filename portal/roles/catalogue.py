"""The permission catalogue and the system roles: fixed in code, never in the database.

A permission is granted at one scope: ``account`` (over the whole account) or
``mailbox`` (over one mailbox). Roles are named sets of permissions of one
scope. System roles are defined here; accounts add custom ones.
"""

from __future__ import annotations

from dataclasses import dataclass

ACCOUNT = "account"
MAILBOX = "mailbox"
SCOPES = (ACCOUNT, MAILBOX)


@dataclass(frozen=True)
class Permission:
    code: str
    label: str
    description: str
    scope: str
    group: str


PERMISSIONS: tuple[Permission, ...] = (
    Permission("account.settings", "Edit account settings",
               "Rename the account and change its registration and mailbox defaults.", ACCOUNT, "Account"),
    Permission("account.delete", "Delete the account",
               "Delete the account; every member loses access to it.", ACCOUNT, "Account"),
    Permission("api_tokens.manage", "Manage API tokens",
               "Create and revoke the account's API tokens; a token never holds more than its creator.",
               ACCOUNT, "Account"),
    Permission("members.view", "See members",
               "List the account's members and their access.", ACCOUNT, "Members"),
    Permission("members.remove", "Remove members",
               "Take a member out of the account, with all their access.", ACCOUNT, "Members"),
    Permission("access.grant", "Grant access",
               "Give members roles and single permissions, and take them away. "
               "Nobody grants a permission they do not hold.", ACCOUNT, "Members"),
    Permission("roles.view", "See roles",
               "List the account's roles and what each grants.", ACCOUNT, "Roles"),
    Permission("roles.manage", "Manage custom roles",
               "Create, copy, edit and delete custom roles.", ACCOUNT, "Roles"),
    Permission("audit.view", "Read the audit log",
               "See who did what in the account, when and from where.", ACCOUNT, "Audit"),
    Permission("domains.view", "See domains",
               "List the account's domains, their records and status.", ACCOUNT, "Domains"),
    Permission("domains.manage", "Manage domains",
               "Add, check, enable, disable and remove domains.", ACCOUNT, "Domains"),
    Permission("mailboxes.view", "See all mailboxes",
               "List every mailbox of the account and its provisioning state.", ACCOUNT, "Mailboxes"),
    Permission("mailboxes.create", "Create mailboxes",
               "Create personal and shared mailboxes on the account's domains.", ACCOUNT, "Mailboxes"),
    Permission("mailboxes.manage", "Manage all mailboxes",
               "Enable, disable, delete and reset the password of any mailbox of the account.",
               ACCOUNT, "Mailboxes"),
    Permission("users.invite", "Invite users",
               "Invite people by e-mail with account and mailbox access.", ACCOUNT, "Users"),
    Permission("users.create", "Create corporate users",
               "Create corporate users one by one or from a workbook.", ACCOUNT, "Users"),
    Permission("users.manage", "Manage corporate users",
               "Edit corporate users' settings and remove them.", ACCOUNT, "Users"),
    Permission("users.report", "Users report",
               "Generate and download the report of the account's users.", ACCOUNT, "Users"),
    Permission("mailbox.view", "See the mailbox",
               "See the mailbox's details and status.", MAILBOX, "Mailbox"),
    Permission("mailbox.read", "Read mail",
               "Open the mailbox and read its mail.", MAILBOX, "Mail"),
    Permission("mailbox.send_as", "Send as",
               "Send mail with the mailbox's address as sender.", MAILBOX, "Mail"),
    Permission("mailbox.settings", "Edit mailbox settings",
               "Change the display name, quota and addresses, enable or disable the mailbox.",
               MAILBOX, "Mailbox"),
    Permission("mailbox.password", "Reset the password",
               "Reset the mailbox's password through the mail backend.", MAILBOX, "Mailbox"),
    Permission("mailbox.access", "Grant mailbox access",
               "Give others roles and permissions on this mailbox.", MAILBOX, "Mailbox"),
)

BY_CODE: dict[str, Permission] = {permission.code: permission for permission in PERMISSIONS}


def codes(scope: str) -> frozenset[str]:
    return frozenset(p.code for p in PERMISSIONS if p.scope == scope)


def groups(scope: str | None = None) -> list[str]:
    seen: list[str] = []
    for permission in PERMISSIONS:
        if (scope is None or permission.scope == scope) and permission.group not in seen:
            seen.append(permission.group)
    return seen


def search(query: str = "", scope: str | None = None, group: str | None = None) -> list[Permission]:
    words = query.lower().split()
    found = []
    for permission in PERMISSIONS:
        if scope and permission.scope != scope:
            continue
        if group and permission.group != group:
            continue
        haystack = f"{permission.code} {permission.label} {permission.description} {permission.group}".lower()
        if all(word in haystack for word in words):
            found.append(permission)
    return found


@dataclass(frozen=True)
class SystemRole:
    key: str
    name: str
    scope: str
    description: str
    permissions: frozenset[str]


OWNER = "owner"
ADMINISTRATOR = "administrator"
MAILBOX_OWNER = "mailbox_owner"
MAILBOX_DELEGATE = "mailbox_delegate"

SYSTEM_ROLES: tuple[SystemRole, ...] = (
    SystemRole(OWNER, "Account Owner", ACCOUNT,
               "Everything in the account, including deleting it. An account always keeps one.",
               codes(ACCOUNT)),
    SystemRole(ADMINISTRATOR, "Account Administrator", ACCOUNT,
               "Everything in the account except deleting it.",
               codes(ACCOUNT) - {"account.delete"}),
    SystemRole(MAILBOX_OWNER, "Mailbox Owner", MAILBOX,
               "Everything on the mailbox.", codes(MAILBOX)),
    SystemRole(MAILBOX_DELEGATE, "Mailbox Delegate", MAILBOX,
               "Reads the mailbox and sends as it, on its owner's behalf.",
               frozenset({"mailbox.view", "mailbox.read", "mailbox.send_as"})),
)

SYSTEM_BY_KEY: dict[str, SystemRole] = {role.key: role for role in SYSTEM_ROLES}
