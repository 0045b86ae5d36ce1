"""Mail-in-a-Box, through the mail user API of its control panel.

Wire facts this adapter is built on (see reference/BACKENDS.md and 003):

- ``{url}/admin/mail/users...`` with HTTP Basic of an administrator's
  ``email:password``. Bodies must be form-encoded: the box reads a JSON body
  as empty ("No email address provided.").
- Errors are HTTP 400 with a plain-text explanation. Success bodies start
  with a known text ("mail user added", "OK", ...) and may carry more lines
  on a real box, so only the status and the prefix are checked.
- There is no domain API: a domain exists once it has a user.
- "remove" archives a user: the mail folder stays, the user is listed with
  status ``inactive`` and adding the address again restores it.
- A mailbox password is required at creation, so the adapter generates one.

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
    capabilities = Capabilities(
        domain_api=False,
        domain_check=False,
        domain_fix=False,
        dns_spec=False,
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
        mailbox_admin_privilege=True,
        protocol_flags=False,
        notes={
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

    # -- transport ---------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, str]) -> requests.Response:
        return self._http.send("GET", f"/admin/mail/{path}", params=params, auth=self._auth)

    def _post(self, path: str, form: Mapping[str, str]) -> requests.Response:
        """POST a form: the box reads nothing else."""
        return self._http.send("POST", f"/admin/mail/{path}", data=form, auth=self._auth)

    def _expect_text(self, response: requests.Response, prefix: str) -> None:
        if response.status_code != 200:
            raise self._error(response)
        if not response.text.lstrip().startswith(prefix):
            raise UnexpectedResponse(
                f"Mail-in-a-Box answered {self._http.describe_body(response)} where {prefix!r} was expected",
                code="unexpected_response",
            )

    def _error(self, response: requests.Response) -> BackendError:
        text = response.text.strip()
        if "html" in response.headers.get("Content-Type", "") or text.startswith("<"):
            return self._http.error_for(response)
        if response.status_code == 400 and text.startswith("That's not a user"):
            return BackendNotFound(f"Mail-in-a-Box: {self.scrub(text)}", code="not_found")
        return self._http.error_for(response, text or None)

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
        """Add the user, or restore it when it was archived."""
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
        """Every mailbox of ``domain``, archived ones included (inactive)."""
        wanted = domain.lower()
        return [
            _remote_mailbox(user)
            for user in self._users()
            if "@" in str(user.get("email", "")) and split_address(str(user["email"]))[1] == wanted
        ]

    def delete_mailbox(self, address: str) -> None:
        """Archive the mailbox (the box keeps its mail); succeeds when already archived."""
        try:
            self._expect_text(self._post("users/remove", {"email": address}), "mail user removed")
        except BackendNotFound:
            pass

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
        response = self._post("aliases/add", {"address": alias, "forwards_to": address, "permitted_senders": ""})
        if response.status_code == 400 and response.text.strip().startswith("Alias already exists"):
            if address.lower() in self._alias_targets(alias):
                return
            raise PermanentBackendError(
                f"Mail-in-a-Box: {alias} already exists and forwards elsewhere", code="already_exists"
            )
        self._expect_text(response, "alias added")

    def _alias_targets(self, alias: str) -> list[str]:
        response = self._get("aliases", {"format": "json"})
        if response.status_code != 200:
            raise self._error(response)
        for group in expect_list(self._http.json(response), "Mail-in-a-Box aliases"):
            group = expect_mapping(group, "Mail-in-a-Box alias domain")
            for entry in expect_list(group.get("aliases"), "Mail-in-a-Box domain aliases"):
                entry = expect_mapping(entry, "Mail-in-a-Box alias")
                if str(entry.get("address", "")).lower() == alias.lower():
                    return [str(target).lower() for target in entry.get("forwards_to") or []]
        return []


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
