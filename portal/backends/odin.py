"""Odin / Parallels Operations hosted Exchange, through its XML-RPC API.

Wire facts this adapter is built on (see reference/BACKENDS.md and 002):

- XML-RPC at ``http(s)://<management node>:8440/RPC2``; every method takes
  one struct. Access is by IP allow-list, optionally with HTTP Basic.
- Results are ``{"status": 0, "result": ...}`` or
  ``{"status": -1, "error_message": "..."}``; some deployments raise an
  XML-RPC fault instead, whose ``faultString`` may be base64-encoded.
- Mailboxes live in a subscription (setting ``subscription_id``);
  ``addMailbox`` takes ``new_user`` (login, password, display name) or an
  existing ``user_id``, never both; ``size_limit`` is required and in
  kilobytes (1024 bytes), rounded up from bytes so no quota shrinks.
- Domains belong to the subscription and are added in Operations itself, so
  ``ensure_domain`` only checks that the subscription answers.

Disabling a mailbox turns off its client protocols (``modifyMailbox`` has no
on/off switch of its own); enabling restores the protocols configured on the
connection (setting ``protocols``). A mailbox is therefore active exactly
when at least one protocol is on: ``set_protocols`` that turns one on
enables a disabled mailbox, and after enabling, a mailbox's own protocol
choices must be applied again with ``set_protocols``.

Alternate addresses (aliases) are added with ``addEmailAddresses`` and
removed with ``removeEmailAddresses``; the removal method is known from
public Operations API clients, its parameters are assumed to mirror the
adding method's (``mailbox_id``, ``email_addresses``).
"""

from __future__ import annotations

import base64
import binascii
import http.client
import math
import re
import xmlrpc.client
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit
from xml.parsers.expat import ExpatError

from .base import (
    Backend,
    BackendError,
    BackendNotFound,
    Capabilities,
    ConfigurationError,
    DnsRecord,
    MailboxSpec,
    PermanentBackendError,
    ProvisionResult,
    RemoteMailbox,
    TransientBackendError,
    UnexpectedResponse,
    expect_list,
    expect_mapping,
    generate_password,
    mail_records,
    split_address,
    validate_quota,
)
from .registry import register_backend

PROTOCOLS = ("owa", "mapi", "active_sync", "imap4", "pop3")
_XMLRPC_INT_MAX = 2**31 - 1
_NOT_FOUND = re.compile(r"not found|does not exist|no such", re.IGNORECASE)
_ALREADY = re.compile(r"already", re.IGNORECASE)
_NOT_ASSIGNED = re.compile(r"not assigned", re.IGNORECASE)
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def decode_fault_string(text: str) -> str:
    """The fault text, decoded when Operations sent it base64-encoded.

    Only a string that is entirely valid base64 and decodes to printable
    UTF-8 text is decoded; anything else is returned unchanged.
    """
    candidate = text.strip()
    if len(candidate) < 8 or len(candidate) % 4 or not _BASE64.fullmatch(candidate):
        return text
    try:
        decoded = base64.b64decode(candidate, validate=True).decode("utf-8").strip()
    except (binascii.Error, UnicodeDecodeError):
        return text
    if decoded and all(c.isprintable() or c.isspace() for c in decoded):
        return decoded
    return text


def _kilobytes(quota_bytes: int) -> int:
    """Bytes to Operations' kilobytes (1024 bytes), rounded up so no quota shrinks."""
    kilobytes = math.ceil(quota_bytes / 1024)
    if kilobytes > _XMLRPC_INT_MAX:
        raise PermanentBackendError("The quota is larger than Operations can store", code="invalid")
    return kilobytes


class _TimeoutTransport(xmlrpc.client.Transport):
    """A transport whose connections time out, with optional HTTP Basic."""

    def __init__(self, timeout: float, authorization: str | None) -> None:
        super().__init__()
        self._timeout = timeout
        self._authorization = authorization

    def request(self, host, handler, request_body, verbose=False):
        # The stock transport sends a request a second time when the
        # connection drops; a resent addMailbox must not happen behind the
        # job layer's back, so every request is sent exactly once.
        return self.single_request(host, handler, request_body, verbose)

    def make_connection(self, host):
        connection = super().make_connection(host)
        connection.timeout = self._timeout
        return connection

    def send_headers(self, connection, headers):
        super().send_headers(connection, headers)
        # Sent as a header rather than user:password@host in the URL, which
        # xmlrpc.client would copy into ProtocolError texts.
        if self._authorization:
            connection.putheader("Authorization", self._authorization)


class _SafeTimeoutTransport(_TimeoutTransport, xmlrpc.client.SafeTransport):
    """The same over HTTPS."""


@register_backend
class OdinBackend(Backend):
    name = "odin"
    label = "Odin Operations (hosted Exchange)"
    required_settings = ("url", "subscription_id")
    optional_settings = {
        "user": "HTTP Basic user, when the API requires one",
        "password": "HTTP Basic password",
        "protocols": f"client protocols of new mailboxes, comma-separated; default {','.join(PROTOCOLS)}",
        "default_quota_mb": "mailbox size in MiB when the portal sets no quota (Operations requires one); "
                            "default 2048",
        "mx_host": "host the domains' MX record points at; no records are shown without it",
        "spf_include": "domain to include in the SPF record",
    }
    secret_settings = frozenset({"password"})
    protocol_names = PROTOCOLS
    capabilities = Capabilities(
        domain_api=False,
        domain_check=False,
        domain_fix=False,
        dns_spec=False,
        domain_settings=False,
        needs_subscription=True,
        mailbox_create=True,
        mailbox_delete=False,
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
            "domain_settings": "Limits and mail policies belong to the Operations subscription and the "
                               "Exchange organisation; the mailbox methods used here cannot change them.",
            "mailbox_aliases": "Aliases are the mailbox's alternate addresses, on domains of the subscription.",
            "protocol_flags": "OWA, Outlook (MAPI), ActiveSync, IMAP and POP are switched per mailbox; a "
                              "mailbox with every protocol off is disabled, and enabling it restores this "
                              "connection's protocols.",
            "domain_api": "Domains belong to the Operations subscription and are added in Operations; "
                          "the portal only checks that the subscription answers.",
            "domain_check": "Operations does not check domains; the portal checks their DNS itself.",
            "domain_fix": "Operations has nothing the portal can repair.",
            "dns_spec": "The records shown come from this connection's mx_host and spf_include settings.",
            "mailbox_delete": "The Operations API methods used here cannot remove a mailbox; "
                              "remove it in the Operations control panel.",
            "mailbox_disable": "Disabling turns off every client protocol (OWA, Outlook, ActiveSync, "
                               "IMAP, POP); mail is still delivered.",
            "mailbox_admin_privilege": "Exchange administrators are managed in Operations.",
        },
    )

    def __init__(self, settings: Mapping[str, str], *, timeout: float) -> None:
        super().__init__(settings, timeout=timeout)
        url = self.settings["url"]
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
            raise ConfigurationError("Odin: url must be an http(s) URL without credentials in it")
        try:
            self.subscription_id = int(self.settings["subscription_id"])
        except ValueError:
            raise ConfigurationError("Odin: subscription_id must be a number") from None
        self.default_protocols = tuple(
            p.strip() for p in self.settings.get("protocols", ",".join(PROTOCOLS)).split(",") if p.strip()
        )
        try:
            self.default_quota_bytes = int(self.settings.get("default_quota_mb", "2048")) * 1024 * 1024
        except ValueError:
            raise ConfigurationError("Odin: default_quota_mb must be a whole number of MiB") from None
        unknown = set(self.default_protocols) - set(PROTOCOLS)
        if unknown:
            raise ConfigurationError(f"Odin: unknown protocols {sorted(unknown)}; known: {', '.join(PROTOCOLS)}")
        authorization = None
        if self.settings.get("user"):
            pair = f"{self.settings['user']}:{self.settings.get('password', '')}".encode()
            authorization = "Basic " + base64.b64encode(pair).decode("ascii")
            self.remember_secret(authorization)
        transport_class = _SafeTimeoutTransport if parts.scheme == "https" else _TimeoutTransport
        self._host = parts.netloc
        self._proxy = xmlrpc.client.ServerProxy(url, transport=transport_class(self.timeout, authorization))

    # -- transport ---------------------------------------------------------

    def _call(self, method: str, params: Mapping[str, Any]) -> Any:
        """One XML-RPC call; the ``result`` of a status-0 answer is returned."""
        try:
            answer = getattr(self._proxy, method)(dict(params))
        except xmlrpc.client.Fault as fault:
            text = self.scrub(decode_fault_string(str(fault.faultString)))
            raise PermanentBackendError(f"Operations {method}: {text}", code="fault") from None
        except xmlrpc.client.ProtocolError as error:
            raise self._protocol_error(method, error.errcode) from None
        except TimeoutError:
            raise TransientBackendError(
                f"Operations did not answer within {self.timeout:g} s", code="timeout"
            ) from None
        except (OSError, http.client.HTTPException):
            raise TransientBackendError(
                f"Could not reach Operations at {self._host}: the connection failed or closed before an answer",
                code="connection",
            ) from None
        except (xmlrpc.client.ResponseError, ExpatError, ValueError, TypeError):
            raise UnexpectedResponse(
                f"Operations {method}: the answer is not XML-RPC (an HTML page or garbage)",
                code="unexpected_response",
            ) from None
        answer = expect_mapping(answer, f"Operations {method}")
        status = answer.get("status")
        if status == 0:
            return answer.get("result")
        if status == -1:
            text = self.scrub(str(answer.get("error_message") or "no error message"))
            raise PermanentBackendError(f"Operations {method}: {text}", code="rejected")
        raise UnexpectedResponse(f"Operations {method}: unknown status {status!r}", code="unexpected_response")

    def _protocol_error(self, method: str, status: int) -> BackendError:
        if status == 429 or status >= 500:
            return TransientBackendError(f"Operations {method} failed with HTTP {status}", code="server_error")
        if status in (401, 403):
            return PermanentBackendError(
                f"Operations refused the request (HTTP {status}); check the API user and the IP allow-list",
                code="auth",
            )
        return PermanentBackendError(
            f"Operations {method} failed with HTTP {status}; check the endpoint url", code="rejected"
        )

    # -- lookups -----------------------------------------------------------

    def _find(self, address: str) -> Mapping[str, Any] | None:
        """The mailbox's properties (getMailboxInfo), or None when there is none."""
        try:
            found = self._call("pem.exchange.getMailboxByEmailAddress", {"email_address": address})
        except PermanentBackendError as error:
            if _NOT_FOUND.search(error.message):
                return None
            raise
        mailbox_id = expect_mapping(found, "Operations getMailboxByEmailAddress").get("mailbox_id")
        if not isinstance(mailbox_id, int):
            raise UnexpectedResponse("Operations getMailboxByEmailAddress: no mailbox_id", code="unexpected_response")
        return self._info(mailbox_id, address)

    def _info(self, mailbox_id: int, address: str) -> Mapping[str, Any]:
        info = expect_mapping(
            self._call("pem.exchange.getMailboxInfo", {"mailbox_id": mailbox_id}), "Operations getMailboxInfo"
        )
        return {"email_address": address, **info, "mailbox_id": mailbox_id}

    def _require(self, address: str) -> Mapping[str, Any]:
        info = self._find(address)
        if info is None:
            raise BackendNotFound(f"Operations has no mailbox {address}", code="not_found")
        return info

    def _protocol_flags(self, active: bool, chosen: Mapping[str, bool] | None = None) -> dict[str, bool]:
        """The flags to send: the connection's protocols, overridden by ``chosen``, all off when inactive."""
        wanted = {protocol: protocol in self.default_protocols for protocol in PROTOCOLS} | dict(chosen or {})
        return {protocol: active and wanted[protocol] for protocol in PROTOCOLS}

    # -- health and domains ------------------------------------------------

    def _probe(self) -> str:
        expect_list(
            self._call("pem.exchange.getMailboxes", {"subscription_id": self.subscription_id}),
            "Operations getMailboxes",
        )
        return f"Operations answered for subscription {self.subscription_id}"

    def ensure_domain(self, domain: str) -> None:
        self._probe()

    def required_records(self, domain: str) -> list[DnsRecord]:
        mx_host = self.settings.get("mx_host")
        return mail_records(domain, mx_host, self.settings.get("spf_include", "")) if mx_host else []

    # -- mailboxes ---------------------------------------------------------

    def create_mailbox(self, spec: MailboxSpec) -> ProvisionResult:
        self.refuse_unsupported_spec(spec)
        existing = self._find(spec.address)
        if existing is None:
            try:
                return self._add_mailbox(spec)
            except PermanentBackendError:
                # A concurrent attempt may have created it in the meantime.
                existing = self._find(spec.address)
                if existing is None:
                    raise
        if not spec.active and _is_active(existing):
            self.set_mailbox_active(spec.address, False)
        return ProvisionResult(spec.address, str(existing["mailbox_id"]), generated_password=None, created=False)

    def _add_mailbox(self, spec: MailboxSpec) -> ProvisionResult:
        password = spec.password or generate_password()
        self.remember_secret(password)
        created = expect_mapping(self._call("pem.exchange.addMailbox", {
            "new_user": {
                "subscription_id": self.subscription_id,
                "login": spec.address,
                "password": password,
                "display_name": spec.full_name or spec.address,
            },
            "alias": spec.local_part,
            "primary_email_address": spec.address,
            "size_limit": _kilobytes(spec.quota_bytes or self.default_quota_bytes),
            **self._protocol_flags(spec.active, spec.protocols),
        }), "Operations addMailbox")
        mailbox_id = created.get("mailbox_id")
        return ProvisionResult(
            spec.address,
            str(mailbox_id) if mailbox_id is not None else None,
            generated_password=None if spec.password else password,
            created=True,
        )

    def get_mailbox(self, address: str) -> RemoteMailbox | None:
        info = self._find(address)
        return None if info is None else _remote_mailbox(info)

    def list_mailboxes(self, domain: str) -> list[RemoteMailbox]:
        """Every mailbox of ``domain`` in the subscription: one list call, then one info call each."""
        entries = expect_list(
            self._call("pem.exchange.getMailboxes", {"subscription_id": self.subscription_id}),
            "Operations getMailboxes",
        )
        mailboxes = []
        for entry in entries:
            entry = expect_mapping(entry, "Operations getMailboxes entry")
            address = str(entry.get("email_address") or "")
            mailbox_id = entry.get("mailbox_id")
            if "@" in address and split_address(address)[1] == domain.lower() and isinstance(mailbox_id, int):
                mailboxes.append(_remote_mailbox(self._info(mailbox_id, address)))
        return mailboxes

    def set_mailbox_active(self, address: str, active: bool) -> None:
        info = self._require(address)
        self._call("pem.exchange.modifyMailbox", {"mailbox_id": info["mailbox_id"], **self._protocol_flags(active)})

    def reset_password(self, address: str) -> str:
        info = self._require(address)
        user_id = info.get("user_id")
        if not isinstance(user_id, int):
            raise UnexpectedResponse("Operations getMailboxInfo: no user_id", code="unexpected_response")
        password = generate_password()
        self.remember_secret(password)
        self._call("pem.changeUserPassword", {"user_id": user_id, "password": password})
        return password

    def set_quota(self, address: str, quota_bytes: int | None) -> None:
        """Set the size limit, in kilobytes on the wire (rounded up).

        Operations has no unlimited size: ``None`` sets the connection's
        ``default_quota_mb``.
        """
        validate_quota(quota_bytes)
        info = self._require(address)
        self._call("pem.exchange.modifyMailbox", {
            "mailbox_id": info["mailbox_id"],
            "size_limit": _kilobytes(quota_bytes or self.default_quota_bytes),
        })

    def add_alias(self, address: str, alias: str) -> None:
        info = self._require(address)
        try:
            self._call("pem.exchange.addEmailAddresses", {
                "mailbox_id": info["mailbox_id"],
                "email_addresses": [alias],
            })
        except PermanentBackendError as error:
            # Operations refuses an address the mailbox already has; anything
            # else (such as an address used by another mailbox) is a failure.
            if not (_ALREADY.search(error.message) and alias in _addresses(self._require(address))):
                raise

    def list_aliases(self, address: str) -> list[str]:
        """The mailbox's alternate addresses (every address but its own)."""
        return _alternate_addresses(self._require(address), address)

    def remove_alias(self, address: str, alias: str) -> None:
        if alias.lower() == address.lower():
            raise PermanentBackendError(
                f"{alias} is the mailbox's own address, not an alias", code="invalid"
            )
        info = self._find(address)
        if info is None or alias.lower() not in (a.lower() for a in _alternate_addresses(info, address)):
            return
        try:
            self._call("pem.exchange.removeEmailAddresses", {
                "mailbox_id": info["mailbox_id"],
                "email_addresses": [alias],
            })
        except PermanentBackendError as error:
            # Removed meanwhile (a lost answer to an earlier attempt): done.
            if not (_NOT_FOUND.search(error.message) or _NOT_ASSIGNED.search(error.message)):
                raise
            if alias.lower() in (a.lower() for a in _alternate_addresses(self._require(address), address)):
                raise

    # -- client protocols ----------------------------------------------------

    def get_protocols(self, address: str) -> dict[str, bool]:
        info = self._require(address)
        return {protocol: info.get(protocol) is True for protocol in PROTOCOLS}

    def set_protocols(self, address: str, values: Mapping[str, bool]) -> None:
        """Switch the flags with ``modifyMailbox``; every flag off leaves the mailbox disabled."""
        values = self.refuse_unknown_protocols(values)
        info = self._require(address)
        changes = {protocol: on for protocol, on in values.items() if info.get(protocol) is not on}
        if changes:
            self._call("pem.exchange.modifyMailbox", {"mailbox_id": info["mailbox_id"], **changes})


def _is_active(info: Mapping[str, Any]) -> bool:
    return any(info.get(protocol) is True for protocol in PROTOCOLS)


def _addresses(info: Mapping[str, Any]) -> list[str]:
    addresses = info.get("email_addresses")
    return [str(a) for a in addresses] if isinstance(addresses, list) else []


def _alternate_addresses(info: Mapping[str, Any], address: str) -> list[str]:
    return [a for a in _addresses(info) if a.lower() != address.lower()]


def _remote_mailbox(info: Mapping[str, Any]) -> RemoteMailbox:
    size_limit = info.get("size_limit")
    return RemoteMailbox(
        address=str(info["email_address"]),
        active=_is_active(info),
        quota_bytes=size_limit * 1024 if isinstance(size_limit, int) and size_limit > 0 else None,
        display_name=str(info.get("display_name") or ""),
        backend_id=str(info["mailbox_id"]),
        extra={
            "user_id": info.get("user_id"),
            "login": info.get("login"),
            "protocols": {protocol: info.get(protocol) is True for protocol in PROTOCOLS},
            "aliases": _addresses(info),
        },
    )
