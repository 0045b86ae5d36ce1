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
- ``change_domain`` also creates a missing domain, and a catch-all "cannot be
  enabled for new domains" (001): settings are only ever sent to a domain
  ``get_domain`` shows, so that a catch-all never rides on a creation.

Client protocols and suspension share the service attributes, so they are
kept apart by state: a protocol switched off is ``disabled``, a disabled
mailbox has its other services ``suspended``. Enabling a mailbox turns
``suspended`` back into ``enabled`` and leaves ``disabled`` alone, so
protocol choices survive a disable and enable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .base import (
    Backend,
    BackendError,
    BackendNotFound,
    Capabilities,
    DnsRecord,
    DomainSetting,
    MailboxSpec,
    PermanentBackendError,
    ProvisionResult,
    RemoteMailbox,
    TransientBackendError,
    UnexpectedResponse,
    domain_setting,
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
MIB = 1024**2

# The portal's protocol switches and the user service each one sets. Receiving
# (service_smtpin) and sending from webmail (service_smtprelay_webmail) are
# not client protocols: only suspension touches them.
_PROTOCOL_SERVICES = {
    "imap4": "service_imap4",
    "pop3": "service_pop3",
    "smtp": "service_smtprelay",
    "webmail": "service_webmail",
}
# The same services as the domain's defaults for new users (default_services).
_DEFAULT_SERVICES = {
    "imap": "service_imap4",
    "pop": "service_pop3",
    "smtp": "service_smtprelay",
    "webmail": "service_webmail",
}


@dataclass(frozen=True)
class _Attribute:
    """How one portal domain setting is written to and read from ``change_domain`` attributes."""

    setting: DomainSetting
    attributes: tuple[str, ...]
    to_wire: Callable[[Any], dict[str, Any]]
    from_wire: Callable[[Mapping[str, Any]], Any]


def _plain(setting: DomainSetting, attribute: str, *, empty_is_none: bool = False) -> _Attribute:
    def to_wire(value: Any) -> dict[str, Any]:
        return {attribute: None if empty_is_none and value == "" else value}

    return _Attribute(setting, (attribute,), to_wire, lambda attributes: attributes.get(attribute))


def _translated(setting: DomainSetting, attribute: str, wire_values: Mapping[str, str]) -> _Attribute:
    portal_values = {wire: portal for portal, wire in wire_values.items()}

    def to_wire(value: Any) -> dict[str, Any]:
        return {attribute: None if value is None else wire_values[value]}

    return _Attribute(setting, (attribute,), to_wire,
                      lambda attributes: portal_values.get(attributes.get(attribute)))


def _megabytes(setting: DomainSetting, attribute: str) -> _Attribute:
    def to_wire(value: Any) -> dict[str, Any]:
        # Rounded up so that no mailbox quota the administrator allowed is refused.
        return {attribute: None if value is None else math.ceil(value / MIB)}

    def from_wire(attributes: Mapping[str, Any]) -> Any:
        megabytes = attributes.get(attribute)
        return megabytes * MIB if isinstance(megabytes, int) and not isinstance(megabytes, bool) else None

    return _Attribute(setting, (attribute,), to_wire, from_wire)


def _service_defaults(setting: DomainSetting) -> _Attribute:
    def to_wire(value: Any) -> dict[str, Any]:
        if value is None:
            return dict.fromkeys(_DEFAULT_SERVICES.values())
        return {service: "enabled" if name in value else "disabled" for name, service in _DEFAULT_SERVICES.items()}

    def from_wire(attributes: Mapping[str, Any]) -> Any:
        if not any(attributes.get(service) for service in _DEFAULT_SERVICES.values()):
            return None
        return [name for name, service in _DEFAULT_SERVICES.items()
                if attributes.get(service) not in ("disabled", "suspended")]

    return _Attribute(setting, tuple(_DEFAULT_SERVICES.values()), to_wire, from_wire)


# Portal setting -> change_domain attribute(s), with the maximums of 001.
_DOMAIN_ATTRIBUTES: tuple[_Attribute, ...] = (
    _plain(domain_setting("default_quota_bytes"), "quota"),
    _megabytes(domain_setting("max_quota_bytes", min_value=MIB,
                              help="No mailbox of the domain may be given a larger quota; "
                                   "OpenSRS counts it in whole megabytes (rounded up)."),
               "quota_maximum"),
    _plain(domain_setting("max_users"), "limit_users"),
    _plain(domain_setting("max_aliases"), "limit_aliases"),
    _plain(domain_setting("domain_aliases", max_items=2000), "aliases"),
    _plain(domain_setting("allow_senders", max_items=1000), "allow"),
    _plain(domain_setting("block_senders", max_items=1000), "block"),
    _plain(domain_setting("catch_all", help="The mailbox of the domain that receives mail sent to addresses "
                                            "that do not exist; empty for none. OpenSRS sets it only on a "
                                            "domain that already exists."),
           "catchall", empty_is_none=True),
    _translated(domain_setting("spam_level"), "spamlevel",
                {"normal": "Normal", "high": "High", "very_high": "Very High"}),
    _translated(domain_setting("spam_delivery"), "filterdelivery",
                {"quarantine": "quarantine", "passthrough": "passthrough"}),
    _plain(domain_setting("spam_folder", max_length=128), "spamfolder"),
    _plain(domain_setting("spam_tag", max_length=30), "spamtag"),
    _plain(domain_setting("spam_header", max_length=512), "spamheader"),
    _service_defaults(domain_setting("default_services")),
    _plain(domain_setting("send_limit", max_value=10_000), "smtp_sent_limit"),
    _translated(domain_setting("password_strength"), "password_strength",
                {"weak": "weak", "medium": "medium", "good": "good", "strong": "strong"}),
    _plain(domain_setting("notes", max_length=4096), "notes_external"),
)
_SETTING_OF_ATTRIBUTE = {attribute: mapped.setting.key
                         for mapped in _DOMAIN_ATTRIBUTES for attribute in mapped.attributes}
# User attributes named in change_user hints, and the portal's word for them.
_USER_HINT_NAMES = {"aliases": "aliases", **{service: "protocols" for service in _PROTOCOL_SERVICES.values()}}


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
    domain_setting_specs = tuple(mapped.setting for mapped in _DOMAIN_ATTRIBUTES)
    protocol_names = tuple(_PROTOCOL_SERVICES)
    capabilities = Capabilities(
        domain_api=True,
        domain_check=False,
        domain_fix=False,
        dns_spec=False,
        domain_settings=True,
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
        mailbox_alias_remove=True,
        mailbox_admin_privilege=False,
        protocol_flags=True,
        notes={
            "domain_settings": "Quotas, limits, domain aliases, allow and block lists, catch-all, spam "
                               "filtering, default services and notes are OpenSRS domain attributes; "
                               "a catch-all can only be set once the domain exists.",
            "protocol_flags": "IMAP, POP, SMTP sending and webmail are switched per mailbox; receiving "
                              "is not a protocol switch (disable the mailbox instead).",
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

    def _call(self, method: str, *, hint_names: Mapping[str, str] | None = None, **fields: Any) -> Mapping[str, Any]:
        """One OMA call; success envelopes are returned, failures raised.

        ``hint_names`` renames the attributes OMA names in its hints to the
        portal's names, so that a message can stand beside the right field.
        """
        data = self._call_with_token(method, fields)
        if not data["success"] and data.get("error_number") == 1:
            # The session token expired or was revoked: authenticate again, once.
            self._token = None
            data = self._call_with_token(method, fields)
        if not data["success"]:
            raise self._envelope_error(method, data, hint_names or {})
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
        # Every method is a POST; those that only read (and a new session token) are safe to send twice.
        response = self._http.send("POST", f"/{method}", json=body,
                                   idempotent=method.startswith(("get_", "search_")) or method == "authenticate")
        if response.status_code != 200:
            text = response.text.strip()
            raise self._http.error_for(response, text if text and not text.startswith("<") else None)
        data = expect_mapping(self._http.json(response), f"OpenSRS {method}")
        if not isinstance(data.get("success"), bool):
            raise UnexpectedResponse(f"OpenSRS {method}: the answer has no success flag", code="unexpected_response")
        return data

    def _envelope_error(
        self, method: str, data: Mapping[str, Any], hint_names: Mapping[str, str] | None = None
    ) -> BackendError:
        number = data.get("error_number")
        if not isinstance(number, int) or isinstance(number, bool):
            return UnexpectedResponse(f"OpenSRS {method} failed without an error number", code="unexpected_response")
        raw_hints = data.get("hints")
        hints: dict[str, str] = {}
        for attribute, text in (raw_hints.items() if isinstance(raw_hints, Mapping) else ()):
            key = (hint_names or {}).get(str(attribute), str(attribute))
            # Several attributes may stand for one setting (the default services).
            hints[key] = "; ".join(filter(None, (hints.get(key), self.scrub(str(text)))))
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

    # -- domain settings -----------------------------------------------------

    def _domain_attributes(self, domain: str) -> Mapping[str, Any]:
        try:
            data = self._call("get_domain", domain=domain)
        except BackendNotFound:
            raise BackendNotFound(
                f"OpenSRS has no domain {domain}; set the domain up first", code="not_found"
            ) from None
        return expect_mapping(data.get("attributes", {}), "OpenSRS domain attributes")

    def get_domain_settings(self, domain: str) -> dict[str, Any]:
        attributes = self._domain_attributes(domain)
        return {mapped.setting.key: mapped.from_wire(attributes) for mapped in _DOMAIN_ATTRIBUTES}

    def set_domain_settings(self, domain: str, values: Mapping[str, Any]) -> None:
        """Send the settings as ``change_domain`` attributes to a domain that exists.

        A missing domain is ``BackendNotFound`` rather than created here:
        ``change_domain`` would create it, and refuse a catch-all on it.
        """
        self.refuse_invalid_domain_settings(domain, values)
        self._domain_attributes(domain)
        attributes: dict[str, Any] = {}
        for mapped in _DOMAIN_ATTRIBUTES:
            if mapped.setting.key in values:
                value = values[mapped.setting.key]
                attributes.update(mapped.to_wire(list(value) if isinstance(value, tuple) else value))
        if attributes:
            self._call("change_domain", domain=domain, attributes=attributes, hint_names=_SETTING_OF_ATTRIBUTE)

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
        for protocol, on in (spec.protocols or {}).items():
            attributes[_PROTOCOL_SERVICES[protocol]] = "enabled" if on else "disabled"
        if not spec.active:
            attributes.update(_suspension(attributes))
        try:
            self._call("change_user", user=spec.address, attributes=attributes, create_only=True,
                       hint_names=_USER_HINT_NAMES)
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

    def _require_user(self, address: str) -> Mapping[str, Any]:
        data = self._get_user(address)
        if data is None:
            raise BackendNotFound(f"OpenSRS has no user {address}", code="not_found")
        return data

    def _change_existing(self, address: str, attributes: Mapping[str, Any]) -> None:
        self._require_user(address)
        self._change_user(address, attributes)

    def _change_user(self, address: str, attributes: Mapping[str, Any]) -> None:
        self._call("change_user", user=address, attributes=dict(attributes), hint_names=_USER_HINT_NAMES)

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
        """Suspend every service not switched off, or turn suspended ones back on."""
        attributes = _attributes(self._require_user(address))
        if active:
            changes = {service: "enabled" for service in _SERVICES if attributes.get(service) != "disabled"}
        else:
            changes = _suspension(attributes)
        self._change_user(address, changes)

    def delete_mailbox(self, address: str) -> bool:
        try:
            self._call("delete_user", user=address)
        except BackendNotFound:
            return False
        return True

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
        """Add ``alias`` to the user's ``aliases`` (OpenSRS allows 2,000 per user)."""
        aliases = _aliases(self._require_user(address))
        if alias.lower() not in (existing.lower() for existing in aliases):
            self._change_user(address, {"aliases": [*aliases, alias]})

    def list_aliases(self, address: str) -> list[str]:
        return _aliases(self._require_user(address))

    def remove_alias(self, address: str, alias: str) -> None:
        data = self._get_user(address)
        if data is None:
            return
        aliases = _aliases(data)
        remaining = [existing for existing in aliases if existing.lower() != alias.lower()]
        if remaining != aliases:
            self._change_user(address, {"aliases": remaining})

    # -- client protocols ----------------------------------------------------

    def get_protocols(self, address: str) -> dict[str, bool]:
        """A protocol is on unless its service is ``disabled``; suspension does not switch it off."""
        attributes = _attributes(self._require_user(address))
        return {protocol: attributes.get(service) != "disabled" for protocol, service in _PROTOCOL_SERVICES.items()}

    def set_protocols(self, address: str, values: Mapping[str, bool]) -> None:
        """Switch services on or off; a suspended one stays suspended until the mailbox is enabled."""
        values = self.refuse_unknown_protocols(values)
        attributes = _attributes(self._require_user(address))
        switched_on = "suspended" if attributes.get("service_smtpin") == "suspended" else "enabled"
        changes = {}
        for protocol, on in values.items():
            service = _PROTOCOL_SERVICES[protocol]
            state = switched_on if on else "disabled"
            if attributes.get(service) != state:
                changes[service] = state
        if changes:
            self._change_user(address, changes)


def _attributes(data: Mapping[str, Any]) -> Mapping[str, Any]:
    return expect_mapping(data.get("attributes", {}), "OpenSRS user attributes")


def _aliases(data: Mapping[str, Any]) -> list[str]:
    return [str(alias) for alias in _attributes(data).get("aliases") or []]


def _suspension(attributes: Mapping[str, Any]) -> dict[str, str]:
    """The services to suspend: all but those switched off, and receiving always.

    Receiving is never a protocol switch, so a mailbox whose protocols are
    all off is still told apart from a disabled one.
    """
    changes = {service: "suspended" for service in _SERVICES if attributes.get(service) != "disabled"}
    changes["service_smtpin"] = "suspended"
    return changes


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
