"""Mail-in-a-Box, through the mail user API of its control panel.

Wire facts this adapter is built on (see reference/BACKENDS.md and 003):

- ``{url}/admin/mail/users...`` with HTTP Basic of an administrator's
  ``email:password``. Bodies must be form-encoded: the box reads a JSON body
  as empty ("No email address provided.").
- Errors are HTTP 400 with a plain-text explanation, sent (like every text
  answer, success included) as ``text/html``: a body is judged by its
  content, and the box's words reach the administrator. Success bodies
  start with a known text ("mail user added", "OK", ...) and may carry more
  lines on a real box, so only the status and the prefix are checked.
- The box refuses addresses that are not lowercase a-z, 0-9, ``_ - .``,
  the six local parts used for domain control validation, and special-use
  domains such as ``.test`` ("Invalid email address."): ``address_problem``
  says so before any call, in the box's own words.
- There is no domain API: a domain exists once it has a user.
- "remove" archives a user: when it has a mail folder (it received mail),
  the folder stays, the user is listed with status ``inactive`` and adding
  the address again restores it; a user that never received mail is simply
  gone. Removing a user that is not there answers 400 "That's not a user
  (...)." and counts as done.
- A mailbox password is required at creation, so the adapter generates one.
- Aliases (``/admin/mail/aliases``, ``add`` and ``remove``, confirmed in the
  box's public source, management/daemon.py and mailconfig.py) take
  ``address``, ``forwards_to`` (comma-separated) and ``permitted_senders``;
  ``update_if_exists=1`` replaces an alias, otherwise a second add answers
  400 "Alias already exists (...)."; removing a missing one answers 400
  "That's not an alias (...).". ``?format=json`` lists
  ``[{"domain", "aliases": [{"address", "forwards_to": [...], "permitted_senders", "auto"}]}]``;
  ``auto`` marks the box's own aliases (``postmaster@``, ``admin@`` and
  ``abuse@`` of every mail domain), which forward to ``administrator@`` of
  the box and so never show among a mailbox's aliases.
  An alias ``@domain`` is the domain's catch-all; ``@other`` forwarding to
  ``@domain`` makes ``other`` a domain alias of ``domain``.

Quotas are strings matching ``^\\d+[GM]?$`` (``"0"`` is unlimited). Bytes are
written as whole gibibytes (``"5G"``) when they divide exactly, otherwise as
mebibytes rounded up (``"1536M"``; 1 byte more than 1 MiB becomes ``"2M"``),
because the box has no finer unit worth trusting and rounding up never
refuses mail the administrator meant to allow. Read back, ``G`` and ``M``
are 1024-based and a bare number is bytes (Dovecot's unit).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from .base import (
    Backend,
    BackendError,
    BackendNotFound,
    Capabilities,
    DnsRecord,
    MailboxSpec,
    PermanentBackendError,
    ProvisionResult,
    RemoteMailbox,
    UnexpectedResponse,
    domain_setting,
    expect_list,
    expect_mapping,
    expect_str,
    generate_password,
    mail_records,
    split_address,
    validate_quota,
)
from .http import HttpClient
from .registry import register_backend

MIB = 1024**2
GIB = 1024**3
_QUOTA = re.compile(r"^(\d+)([GM]?)$")
# The box's own words (management/mailconfig.py).
INVALID_ADDRESS = "Invalid email address."
NOT_LOWERCASE = ("User account email addresses may only use the lowercase ASCII letters a-z, the digits 0-9, "
                 "underscore (_), hyphen (-), and period (.).")
RESERVED = ("You may not make a user account for that address because it is frequently used for domain control "
            "validation. Use an alias instead if necessary.")
RESERVED_ALIAS = ("This alias can only have administrators of this system as destinations because the address is "
                  "frequently used for domain control validation.")
RESERVED_LOCAL_PARTS = ("admin", "administrator", "postmaster", "hostmaster", "webmaster", "abuse")
# Domains the box's address check (email_validator) refuses as special-use.
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_SYNTAX = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*$")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def _valid_address(local_part: str, domain: str, *, alias: bool = False) -> bool:
    """The box's syntax check of an address: a dot-atom local part (empty for a catch-all alias),
    a domain of valid labels that is not special-use."""
    if len(local_part) > 64 or not (_LOCAL_SYNTAX.match(local_part) or (alias and not local_part)):
        return False
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        return False
    return labels[-1].lower() not in SPECIAL_USE_DOMAINS


def _is_domain_control(local_part: str) -> bool:
    return local_part.lower().split("+", 1)[0] in RESERVED_LOCAL_PARTS


def quota_text(quota_bytes: int | None) -> str:
    """The box's quota string for a number of bytes (``None`` is unlimited)."""
    if quota_bytes is None:
        return "0"
    if quota_bytes % GIB == 0:
        return f"{quota_bytes // GIB}G"
    return f"{math.ceil(quota_bytes / MIB)}M"


def quota_bytes_from_text(text: str) -> int | None:
    """Bytes for a quota string; ``None`` for unlimited (``"0"``)."""
    match = _QUOTA.match(text.strip().upper())
    if match is None:
        raise ValueError(f"not a Mail-in-a-Box quota: {text!r}")
    number, unit = int(match.group(1)), match.group(2)
    if number == 0:
        return None
    return number * {"G": GIB, "M": MIB, "": 1}[unit]


@register_backend
class MailInABoxBackend(Backend):
    name = "mailinabox"
    label = "Mail-in-a-Box"
    required_settings = ("url", "user", "password")
    optional_settings = {
        "mx_host": "host the domains' MX record points at; default the box's host name from url",
    }
    secret_settings = frozenset({"password"})
    domain_setting_specs = (
        domain_setting("catch_all", help="The address that receives mail sent to addresses of the domain "
                                         "that do not exist (a Mail-in-a-Box catch-all alias); empty for none."),
        domain_setting("domain_aliases", help="Other domain names whose mail goes to the same addresses here "
                                              "(Mail-in-a-Box domain aliases); the box serves them too."),
    )
    capabilities = Capabilities(
        domain_api=False,
        domain_check=False,
        domain_fix=False,
        dns_spec=False,
        domain_settings=True,
        needs_subscription=False,
        mailbox_create=True,
        mailbox_delete=False,
        mailbox_delete_archives=True,
        mailbox_disable=False,
        mailbox_password_reset=False,
        mailbox_password_set=True,
        mailbox_quota=True,
        mailbox_list=True,
        mailbox_aliases=True,
        mailbox_alias_remove=True,
        mailbox_admin_privilege=True,
        protocol_flags=False,
        notes={
            "domain_settings": "A catch-all and domain aliases are Mail-in-a-Box aliases; quotas, limits and "
                               "spam filtering are box-wide and have no API.",
            "mailbox_delete_archives": "Deleting archives the mailbox: its mail folder stays on the box, and "
                                       "creating the address again restores that mail under a new password.",
            "protocol_flags": "Every Mail-in-a-Box user may use IMAP, POP, SMTP and webmail.",
            "domain_api": "Mail-in-a-Box serves a domain as soon as it has a mailbox.",
            "domain_check": "Mail-in-a-Box reports domain problems on its own status page; "
                            "the portal checks DNS itself.",
            "domain_fix": "Mail-in-a-Box repairs its own configuration; there is nothing to call.",
            "dns_spec": "The MX record points at the box (setting mx_host, default the box's host name).",
            "mailbox_delete": "Deleting archives the mailbox; remove its folder on the box to erase it.",
            "mailbox_disable": "Mail-in-a-Box cannot suspend a user; delete (archive) the mailbox instead.",
        },
    )

    def __init__(self, settings: Mapping[str, str], *, timeout: float) -> None:
        super().__init__(settings, timeout=timeout)
        self._http = HttpClient(
            self.settings["url"], service="Mail-in-a-Box", timeout=self.timeout, scrub=self.scrub
        )
        self._auth = (self.settings["user"], self.settings["password"])

    # -- address rules -------------------------------------------------------

    @classmethod
    def address_problem(cls, local_part: str, domain: str) -> str | None:
        """Why the box would refuse the mailbox, in its words and in the order it checks."""
        if not _valid_address(local_part, domain):
            return INVALID_ADDRESS
        address = f"{local_part}@{domain}"
        if len(address) > 255 or re.search(r"[^@.a-z0-9_-]", address):
            return NOT_LOWERCASE
        if _is_domain_control(local_part):
            return RESERVED
        return None

    @classmethod
    def alias_problem(cls, local_part: str, domain: str) -> str | None:
        """Why the box would refuse the alias: it lower-cases aliases itself, and only its own
        administrators may receive the domain-control addresses."""
        if not _valid_address(local_part, domain, alias=True):
            return f"Invalid email address ({f'{local_part}@{domain}'.lower()})."
        if _is_domain_control(local_part):
            return RESERVED_ALIAS
        return None

    # -- transport ---------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, str]) -> requests.Response:
        return self._http.send("GET", f"/admin/mail/{path}", params=params, auth=self._auth)

    def _post(self, path: str, form: Mapping[str, str]) -> requests.Response:
        """POST a form: the box reads nothing else."""
        return self._http.send("POST", f"/admin/mail/{path}", data=form, auth=self._auth)

    def _expect_text(self, response: requests.Response, *prefixes: str) -> None:
        if response.status_code != 200:
            raise self._error(response)
        if not response.text.lstrip().startswith(prefixes):
            raise UnexpectedResponse(
                f"Mail-in-a-Box answered {self._http.describe_body(response)} where "
                f"{' or '.join(map(repr, prefixes))} was expected",
                code="unexpected_response",
            )

    def _error(self, response: requests.Response) -> BackendError:
        """The box's own message, whatever the Content-Type (it sends plain text as text/html)."""
        text = self._http.message(response)
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping) and isinstance(body.get("reason"), str):
            text = body["reason"]  # a refusal asked for as JSON
        if response.status_code == 400 and text and text.startswith("That's not a user"):
            return BackendNotFound(f"Mail-in-a-Box: {self.scrub(text)}", code="not_found")
        return self._http.error_for(response, text)

    def _users(self) -> list[Mapping[str, Any]]:
        response = self._get("users", {"format": "json"})
        if response.status_code != 200:
            raise self._error(response)
        users = []
        for group in expect_list(self._http.json(response), "Mail-in-a-Box users"):
            group = expect_mapping(group, "Mail-in-a-Box domain entry")
            for user in expect_list(group.get("users"), "Mail-in-a-Box domain users"):
                users.append(expect_mapping(user, "Mail-in-a-Box user"))
        return users

    def _user(self, address: str) -> Mapping[str, Any] | None:
        wanted = address.lower()
        return next((user for user in self._users() if str(user.get("email", "")).lower() == wanted), None)

    # -- health and domains ------------------------------------------------

    def _probe(self) -> str:
        return f"Mail-in-a-Box accepted the credentials ({len(self._users())} users)"

    def ensure_domain(self, domain: str) -> None:
        """Nothing to create: check that the box answers and accepts the credentials."""
        self._users()

    def required_records(self, domain: str) -> list[DnsRecord]:
        mx_host = self.settings.get("mx_host") or urlsplit(self.settings["url"]).hostname or ""
        return mail_records(domain, mx_host)

    # -- mailboxes ---------------------------------------------------------

    def create_mailbox(self, spec: MailboxSpec) -> ProvisionResult:
        """Add the user, or restore it when it was archived.

        Restoring an archived address is a creation on the box (the user was
        removed, only its mail folder stayed): it reports ``created=True``
        with the new password, and the mail kept in the folder is there again.
        """
        self.refuse_bad_address(spec)
        self.refuse_unsupported_spec(spec)
        password = spec.password or generate_password()
        self.remember_secret(password)
        form = {"email": spec.address, "password": password}
        if spec.quota_bytes is not None:
            form["quota"] = quota_text(spec.quota_bytes)
        if spec.admin:
            form["privileges"] = "admin"
        response = self._post("users/add", form)
        if response.status_code == 400 and response.text.strip().startswith("User already exists."):
            return ProvisionResult(spec.address, None, generated_password=None, created=False)
        self._expect_text(response, "mail user added")
        return ProvisionResult(
            spec.address, None, generated_password=None if spec.password else password, created=True
        )

    def get_mailbox(self, address: str) -> RemoteMailbox | None:
        user = self._user(address)
        return None if user is None else _remote_mailbox(user)

    def list_mailboxes(self, domain: str) -> list[RemoteMailbox]:
        """Every mailbox of ``domain``, archived ones (those with a mail folder) included, inactive."""
        wanted = domain.lower()
        return [
            _remote_mailbox(user)
            for user in self._users()
            if "@" in str(user.get("email", "")) and split_address(str(user["email"]))[1] == wanted
        ]

    def delete_mailbox(self, address: str) -> bool:
        """Remove the user; the box archives its mail folder, where it has one. Succeeds, returning False,
        when the box no longer has the user (its "That's not a user": already removed, or never made)."""
        try:
            self._expect_text(self._post("users/remove", {"email": address}), "mail user removed")
        except BackendNotFound:
            return False
        return True

    def reset_password(self, address: str) -> str:
        password = generate_password()
        self.remember_secret(password)
        self._expect_text(self._post("users/password", {"email": address, "password": password}), "OK")
        return password

    def set_quota(self, address: str, quota_bytes: int | None) -> None:
        """Set the quota (``None`` is unlimited); see the module notes for the units."""
        validate_quota(quota_bytes)
        self._expect_text(self._post("users/quota", {"email": address, "quota": quota_text(quota_bytes)}), "OK")

    def set_admin(self, address: str, admin: bool) -> None:
        action = "add" if admin else "remove"
        self._expect_text(self._post(f"users/privileges/{action}", {"email": address, "privilege": "admin"}), "OK")

    def add_alias(self, address: str, alias: str) -> None:
        problem = self.alias_problem(*split_address(alias))
        if problem:
            raise PermanentBackendError(f"Mail-in-a-Box: {problem}", hints={"alias": problem}, code="invalid")
        response = self._post("aliases/add", {"address": alias, "forwards_to": address, "permitted_senders": ""})
        if response.status_code == 400 and response.text.strip().startswith("Alias already exists"):
            if address.lower() in _targets(self._aliases().get(alias.lower())):
                return
            raise PermanentBackendError(
                f"Mail-in-a-Box: {alias} already exists and forwards elsewhere", code="already_exists"
            )
        self._expect_text(response, "alias added")

    def list_aliases(self, address: str) -> list[str]:
        """The aliases forwarding to the mailbox, among other targets or alone (catch-alls left out)."""
        if self._user(address) is None:
            raise BackendNotFound(f"Mail-in-a-Box has no user {address}", code="not_found")
        return sorted(alias for alias, entry in self._aliases().items()
                      if not alias.startswith("@") and address.lower() in _targets(entry))

    def remove_alias(self, address: str, alias: str) -> None:
        """Remove the alias, or only this mailbox from an alias that also forwards elsewhere."""
        entry = self._aliases().get(alias.lower())
        targets = _targets(entry)
        if address.lower() not in targets:
            return
        remaining = [target for target in targets if target != address.lower()]
        if remaining:
            self._put_alias(alias, remaining, entry, replace=True)
        else:
            self._remove_alias(alias)

    def _put_alias(self, alias: str, targets: list[str], entry: Mapping[str, Any] | None, *, replace: bool) -> None:
        senders = entry.get("permitted_senders") if entry else None
        form = {"address": alias, "forwards_to": ",".join(targets),
                "permitted_senders": ",".join(senders) if isinstance(senders, list) else ""}
        if replace:
            form["update_if_exists"] = "1"
        # With update_if_exists the box says "alias updated", or "alias added"
        # when the alias went away in the meantime.
        self._expect_text(self._post("aliases/add", form), "alias added", "alias updated")

    def _remove_alias(self, alias: str) -> None:
        response = self._post("aliases/remove", {"address": alias})
        if response.status_code == 400 and response.text.strip().startswith("That's not an alias"):
            return
        self._expect_text(response, "alias removed")

    def _aliases(self) -> dict[str, Mapping[str, Any]]:
        """Every alias on the box by lower-cased address (its automatic ones forward to its administrator)."""
        response = self._get("aliases", {"format": "json"})
        if response.status_code != 200:
            raise self._error(response)
        aliases = {}
        for group in expect_list(self._http.json(response), "Mail-in-a-Box aliases"):
            group = expect_mapping(group, "Mail-in-a-Box alias domain")
            for entry in expect_list(group.get("aliases"), "Mail-in-a-Box domain aliases"):
                entry = expect_mapping(entry, "Mail-in-a-Box alias")
                aliases[expect_str(entry, "address", "Mail-in-a-Box alias").lower()] = entry
        return aliases

    # -- domain settings -----------------------------------------------------

    def get_domain_settings(self, domain: str) -> dict[str, Any]:
        aliases = self._aliases()
        domain = domain.lower()
        catch_all = _targets(aliases.get("@" + domain))
        return {
            "catch_all": None if not catch_all or catch_all[0].startswith("@") else ", ".join(catch_all),
            "domain_aliases": sorted(alias[1:] for alias, entry in aliases.items()
                                     if alias.startswith("@") and _targets(entry) == ["@" + domain]),
        }

    def set_domain_settings(self, domain: str, values: Mapping[str, Any]) -> None:
        """Write the catch-all (alias ``@domain``) and domain aliases (``@other`` -> ``@domain``)."""
        self.refuse_invalid_domain_settings(domain, values)
        domain = domain.lower()
        aliases = self._aliases()
        if "catch_all" in values:
            self._set_catch_all(domain, values["catch_all"] or "", aliases.get("@" + domain))
        if "domain_aliases" in values:
            self._set_domain_aliases(domain, [name.lower() for name in values["domain_aliases"] or []], aliases)

    def _set_catch_all(self, domain: str, target: str, entry: Mapping[str, Any] | None) -> None:
        current = _targets(entry)
        if current and current[0].startswith("@"):
            raise PermanentBackendError(
                f"Mail-in-a-Box: @{domain} forwards the whole domain to {current[0]}; "
                "remove that domain alias first",
                hints={"catch_all": f"{domain} is a domain alias of {current[0][1:]}"},
                code="already_exists",
            )
        if not target:
            if entry is not None:
                self._remove_alias("@" + domain)
        elif current != [target.lower()]:
            self._put_alias("@" + domain, [target], entry, replace=entry is not None)

    def _set_domain_aliases(self, domain: str, wanted: list[str], aliases: Mapping[str, Mapping[str, Any]]) -> None:
        forward = ["@" + domain]
        current = {alias[1:] for alias, entry in aliases.items()
                   if alias.startswith("@") and _targets(entry) == forward}
        taken = {name: _targets(aliases["@" + name]) for name in wanted
                 if "@" + name in aliases and name not in current}
        if taken:
            raise PermanentBackendError(
                "Mail-in-a-Box: " + "; ".join(f"@{name} already forwards to {', '.join(targets)}"
                                              for name, targets in taken.items()),
                hints={"domain_aliases": ", ".join(sorted(taken)) + " already forward elsewhere"},
                code="already_exists",
            )
        for name in wanted:
            if name not in current:
                self._put_alias("@" + name, forward, None, replace=False)
        for name in sorted(current - set(wanted)):
            self._remove_alias("@" + name)


def _targets(entry: Mapping[str, Any] | None) -> list[str]:
    """An alias's forwarding addresses, lower-cased (none for a missing alias)."""
    return [str(target).lower() for target in (entry or {}).get("forwards_to") or []]


def _remote_mailbox(user: Mapping[str, Any]) -> RemoteMailbox:
    address = expect_str(user, "email", "Mail-in-a-Box user")
    raw_quota = str(user.get("quota", "0") or "0")
    try:
        quota = quota_bytes_from_text(raw_quota)
    except ValueError:
        quota = None
    privileges = user.get("privileges")
    archived = user.get("status") == "inactive"
    return RemoteMailbox(
        address=address,
        active=not archived,
        quota_bytes=quota,
        display_name="",
        backend_id=None,
        extra={
            "archived": archived,
            "admin": isinstance(privileges, list) and "admin" in privileges,
            "quota": raw_quota,
        },
    )
