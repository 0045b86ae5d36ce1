"""OpenSRS Email, through its mail API (OMA).

Wire facts this adapter is built on (see reference/BACKENDS.md and 001):

- ``POST {url}/{method}`` with one JSON object: ``credentials`` plus the
  method's fields. The adapter authenticates once with the password, asks
  for a session token, and sends the token afterwards; when OMA answers
  error 1 (invalid credentials) to a token, it authenticates again once.
- Any well-formed call answers HTTP 200, failures included:
  ``{"success": false, "error_number": N, "error": "...", "hints": {...}}``.
  HTTP 400 means bad JSON, 404 an unknown method, 500 a server error.
- ``change_user`` creates *or updates*; with ``create_only`` it refuses an
  existing user with error 7 (or 23, as the reference's example shows).
  Because a plain ``change_user`` would create a missing user, every update
  first checks that the user exists.
- User quotas are in bytes (``quota``); a service can be ``enabled``,
  ``disabled`` or ``suspended``, and suspending every service is how OpenSRS
  suspends a user.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
    TransientBackendError,
    UnexpectedResponse,
    expect_list,
    expect_mapping,
    expect_str,
    generate_password,
    mail_records,
    validate_quota,
)
from .http import HttpClient
from .registry import register_backend

_SERVICES = (
    "service_imap4",
    "service_pop3",
    "service_smtpin",
    "service_smtprelay",
    "service_smtprelay_webmail",
    "service_webmail",
)

# error_number -> (error class, code). 7 and 23 both mean "already exists".
_ERRORS: dict[int, tuple[type[BackendError], str]] = {
    0: (TransientBackendError, "server_error"),
    1: (PermanentBackendError, "auth"),
    2: (BackendNotFound, "not_found"),
    3: (PermanentBackendError, "is_alias"),
    4: (PermanentBackendError, "no_permission"),
    5: (PermanentBackendError, "invalid_request"),
    6: (PermanentBackendError, "invalid_attributes"),
    7: (PermanentBackendError, "already_exists"),
    23: (PermanentBackendError, "already_exists"),
}

_SEARCH_PAGE = 100


def _services(state: str) -> dict[str, str]:
    return {service: state for service in _SERVICES}


@register_backend
class OpenSrsBackend(Backend):
    name = "opensrs"
    label = "OpenSRS Email"
    required_settings = ("url", "user", "password")
    optional_settings = {
        "mx_host": "host the domains' MX record points at; default mail.hostedemail.com",
        "spf_include": "domain to include in the SPF record; default none (v=spf1 mx ~all)",
    }
    secret_settings = frozenset({"password"})
    capabilities = Capabilities(
        domain_api=True,
        domain_check=False,
        domain_fix=False,
        dns_spec=False,
        needs_subscription=False,
        mailbox_create=True,
        mailbox_delete=True,
        mailbox_delete_archives=False,
        mailbox_disable=True,
        mailbox_password_reset=False,
        mailbox_password_set=True,
        mailbox_quota=True,
        mailbox_list=True,
        mailbox_aliases=True,
        mailbox_admin_privilege=False,
        protocol_flags=False,
        notes={
            "domain_check": "OpenSRS Email does not check domains; the portal checks their DNS itself.",
            "domain_fix": "OpenSRS Email has nothing to repair on its side of a domain.",
            "dns_spec": "The records shown come from this connection's mx_host and spf_include settings.",
            "mailbox_delete": "OpenSRS keeps a deleted user restorable for a while from its control panel.",
            "mailbox_disable": "Disabling suspends every service of the mailbox (sending, receiving, "
                               "IMAP, POP and webmail).",
            "mailbox_admin_privilege": "OpenSRS administrator roles are managed in its control panel.",
        },
    )

    def __init__(self, settings: Mapping[str, str], *, timeout: float) -> None:
        super().__init__(settings, timeout=timeout)
        self._http = HttpClient(self.settings["url"], service="OpenSRS", timeout=self.timeout, scrub=self.scrub)
        self._token: str | None = None

    # -- transport ---------------------------------------------------------

    def _call(self, method: str, **fields: Any) -> Mapping[str, Any]:
        """One OMA call; success envelopes are returned, failures raised."""
        data = self._call_with_token(method, fields)
        if not data["success"] and data.get("error_number") == 1:
            # The session token expired or was revoked: authenticate again, once.
            self._token = None
            data = self._call_with_token(method, fields)
        if not data["success"]:
            raise self._envelope_error(method, data)
        return data

    def _call_with_token(self, method: str, fields: Mapping[str, Any]) -> Mapping[str, Any]:
        credentials = {"user": self.settings["user"], "token": self._session_token()}
        return self._post(method, {"credentials": credentials, **fields})

    def _session_token(self) -> str:
        if self._token is None:
            credentials = {"user": self.settings["user"], "password": self.settings["password"]}
            data = self._post("authenticate", {"credentials": credentials, "generate_session_token": True})
            if not data["success"]:
                raise self._envelope_error("authenticate", data)
            self._token = expect_str(data, "session_token", "OpenSRS authenticate")
            self.remember_secret(self._token)
        return self._token

    def _post(self, method: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        response = self._http.send("POST", f"/{method}", json=body)
        if response.status_code != 200:
            text = response.text.strip()
            raise self._http.error_for(response, text if text and not text.startswith("<") else None)
        data = expect_mapping(self._http.json(response), f"OpenSRS {method}")
        if not isinstance(data.get("success"), bool):
            raise UnexpectedResponse(f"OpenSRS {method}: the answer has no success flag", code="unexpected_response")
        return data

    def _envelope_error(self, method: str, data: Mapping[str, Any]) -> BackendError:
        number = data.get("error_number")
        if not isinstance(number, int) or isinstance(number, bool):
            return UnexpectedResponse(f"OpenSRS {method} failed without an error number", code="unexpected_response")
        raw_hints = data.get("hints")
        hints = (
            {str(key): self.scrub(str(value)) for key, value in raw_hints.items()}
            if isinstance(raw_hints, Mapping) else {}
        )
        text = data.get("error") if isinstance(data.get("error"), str) else f"error {number}"
        message = f"OpenSRS {method}: {self.scrub(text)} (error {number})"
        if hints:
            message += ": " + "; ".join(f"{key}: {value}" for key, value in hints.items())
        error_class, code = _ERRORS.get(number, (PermanentBackendError, f"error_{number}"))
        return error_class(message, hints=hints, code=code)

    # -- health and domains ------------------------------------------------

    def _probe(self) -> str:
        self._token = None
        self._session_token()
        return "OpenSRS accepted the credentials"

    def ensure_domain(self, domain: str) -> None:
        try:
            self._call("change_domain", domain=domain, attributes={}, create_only=True)
        except PermanentBackendError as error:
            if error.code != "already_exists":
                raise

    def required_records(self, domain: str) -> list[DnsRecord]:
        return mail_records(
            domain,
            self.settings.get("mx_host") or "mail.hostedemail.com",
            self.settings.get("spf_include", ""),
        )

    # -- mailboxes ---------------------------------------------------------

    def create_mailbox(self, spec: MailboxSpec) -> ProvisionResult:
        self.refuse_unsupported_spec(spec)
        password = spec.password or generate_password()
        self.remember_secret(password)
        attributes: dict[str, Any] = {"password": password}
        if spec.full_name:
            attributes["name"] = spec.full_name
        if spec.quota_bytes is not None:
            attributes["quota"] = spec.quota_bytes
        if not spec.active:
            attributes.update(_services("suspended"))
        try:
            self._call("change_user", user=spec.address, attributes=attributes, create_only=True)
        except PermanentBackendError as error:
            if error.code != "already_exists":
                raise
            existing = self.get_mailbox(spec.address)
            if existing is None:
                raise PermanentBackendError(
                    f"OpenSRS says {spec.address} exists but does not show it as a mailbox; "
                    "it may be a deleted user awaiting restore",
                    code="already_exists",
                ) from error
            if existing.active and not spec.active:
                self.set_mailbox_active(spec.address, False)
            return ProvisionResult(spec.address, None, generated_password=None, created=False)
        return ProvisionResult(
            spec.address, None, generated_password=None if spec.password else password, created=True
        )

    def _get_user(self, address: str) -> Mapping[str, Any] | None:
        try:
            data = self._call("get_user", user=address)
        except BackendNotFound:
            return None
        metadata = data.get("metadata")
        if isinstance(metadata, Mapping) and metadata.get("status") == "deleted":
            return None
        return data

    def _change_existing(self, address: str, attributes: Mapping[str, Any]) -> None:
        if self._get_user(address) is None:
            raise BackendNotFound(f"OpenSRS has no user {address}", code="not_found")
        self._call("change_user", user=address, attributes=dict(attributes))

    def get_mailbox(self, address: str) -> RemoteMailbox | None:
        data = self._get_user(address)
        return None if data is None else _remote_mailbox(address, data)

    def list_mailboxes(self, domain: str) -> list[RemoteMailbox]:
        """Every mailbox of ``domain``: one search page per 100 users, then one get_user each."""
        mailboxes: list[RemoteMailbox] = []
        first = 0
        while True:
            data = self._call(
                "search_users", criteria={"domain": domain}, range={"first": first, "limit": _SEARCH_PAGE}
            )
            users = expect_list(data.get("users"), "OpenSRS search_users")
            for entry in users:
                entry = expect_mapping(entry, "OpenSRS search_users entry")
                if entry.get("type", "mailbox") != "mailbox":
                    continue
                mailbox = self.get_mailbox(expect_str(entry, "user", "OpenSRS search_users entry"))
                if mailbox is not None:
                    mailboxes.append(mailbox)
            first += len(users)
            total = data.get("total_count")
            if len(users) < _SEARCH_PAGE or (isinstance(total, int) and first >= total):
                return mailboxes

    def set_mailbox_active(self, address: str, active: bool) -> None:
        self._change_existing(address, _services("enabled" if active else "suspended"))

    def delete_mailbox(self, address: str) -> None:
        try:
            self._call("delete_user", user=address)
        except BackendNotFound:
            pass

    def reset_password(self, address: str) -> str:
        password = generate_password()
        self.remember_secret(password)
        self._change_existing(address, {"password": password})
        return password

    def set_quota(self, address: str, quota_bytes: int | None) -> None:
        """Set the quota in bytes; ``None`` returns the user to the domain's default."""
        validate_quota(quota_bytes)
        self._change_existing(address, {"quota": quota_bytes})

    def add_alias(self, address: str, alias: str) -> None:
        data = self._get_user(address)
        if data is None:
            raise BackendNotFound(f"OpenSRS has no user {address}", code="not_found")
        aliases = list(_attributes(data).get("aliases") or [])
        if alias not in aliases:
            self._call("change_user", user=address, attributes={"aliases": [*aliases, alias]})


def _attributes(data: Mapping[str, Any]) -> Mapping[str, Any]:
    return expect_mapping(data.get("attributes", {}), "OpenSRS user attributes")


def _remote_mailbox(address: str, data: Mapping[str, Any]) -> RemoteMailbox:
    attributes = _attributes(data)
    metadata = data.get("metadata") if isinstance(data.get("metadata"), Mapping) else {}
    status = metadata.get("status")
    quota = attributes.get("quota")
    if quota is None and isinstance(metadata.get("quota"), Mapping):
        quota = metadata["quota"].get("bytes_max")
    suspended = status == "suspended" or any(attributes.get(service) == "suspended" for service in _SERVICES)
    return RemoteMailbox(
        address=address,
        active=not suspended,
        quota_bytes=quota if isinstance(quota, int) and not isinstance(quota, bool) and quota > 0 else None,
        display_name=str(attributes.get("name") or ""),
        backend_id=None,
        extra={"status": status, "type": data.get("type"), "aliases": list(attributes.get("aliases") or [])},
    )
