"""The contract every mail backend adapter fulfils.

An adapter translates the portal's intent (a domain, a mailbox) into one mail
system's wire protocol and translates every failure into a typed error. It
never touches the portal's database, never sends e-mail and never imports
Flask: the worker is its only caller at run time, and retries are the job
layer's business, which is why adapters make every call once and say, through
the error type, whether retrying can help.

Error taxonomy (the job layer decides on retries from the class alone):

- ``TransientBackendError``: retrying later may succeed. Timeouts, refused or
  reset connections, HTTP 5xx and 429, error envelopes that say "server
  error", and ``UnexpectedResponse`` (a body we cannot read, such as an HTML
  page from a proxy: usually a passing outage or a misrouted request).
- ``PermanentBackendError``: the same call will fail the same way until a
  person changes something. Validation errors, refused credentials, missing
  permissions, HTTP 4xx, "already exists" where it is a real conflict.
  ``BackendNotFound`` (the object does not exist) and ``Unsupported`` (the
  backend cannot do this at all) are permanent.

``message`` is always text an administrator may read: it comes from the
backend (scrubbed of any secret this adapter knows) or from the adapter, and
never quotes a password, token or API key.
"""

from __future__ import annotations

import abc
import inspect
import re
import secrets
import string
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

REDACTED = "••••• (set)"
_SCRUBBED = "•••••"


# --------------------------------------------------------------------------
# Errors


class ConfigurationError(Exception):
    """A connection is configured wrongly; raised at start-up, never retried."""


class BackendError(Exception):
    """A backend call failed.

    ``message`` is safe to show an administrator; ``hints`` maps a field name
    to what the backend said about it; ``code`` is a short machine-readable
    reason such as ``"timeout"``, ``"auth"`` or ``"already_exists"``.
    """

    def __init__(
        self,
        message: str,
        *,
        hints: Mapping[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hints: dict[str, str] = dict(hints or {})
        self.code = code

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"


class TransientBackendError(BackendError):
    """Retrying later may succeed."""


class PermanentBackendError(BackendError):
    """Retrying the same call will fail the same way."""


class BackendNotFound(PermanentBackendError):
    """The object the call is about does not exist on the backend."""


class Unsupported(PermanentBackendError):
    """The backend cannot do this; its capabilities already say so."""


class UnexpectedResponse(TransientBackendError):
    """The backend answered with a body this adapter cannot read."""


# --------------------------------------------------------------------------
# Capabilities

# (name, label, explanation when supported, explanation when not), in the
# order the UI lists them.
_CAPABILITY_TEXTS: tuple[tuple[str, str, str, str], ...] = (
    ("domain_api", "Creates domains",
     "The portal registers new domains on the backend.",
     "Domains are not created through the API; they exist once the backend serves them."),
    ("domain_check", "Checks domains",
     "The backend verifies the domain's DNS and its own set-up.",
     "The backend does not check domains; the portal relies on its own DNS checks."),
    ("domain_fix", "Repairs domains",
     "The backend can repair its own side of a domain's set-up.",
     "Problems on the backend's side must be repaired by its operator."),
    ("dns_spec", "Tells the DNS records",
     "The backend states the DNS records each domain must publish.",
     "The DNS records shown come from this connection's settings."),
    ("needs_subscription", "Needs a subscription",
     "Mailboxes are created inside the subscription set on this connection.",
     "No subscription or plan has to be chosen."),
    ("mailbox_create", "Creates mailboxes",
     "Mailboxes are provisioned on the backend.",
     "Mailboxes cannot be created through the API."),
    ("mailbox_delete", "Deletes mailboxes",
     "Deleting a mailbox removes it from the backend.",
     "Mailboxes cannot be removed for good through the API."),
    ("mailbox_delete_archives", "Archives on delete",
     "Deleting a mailbox archives it: its mail stays on the server and re-creating the address restores it.",
     "Deleting does not keep an archive."),
    ("mailbox_disable", "Disables mailboxes",
     "A mailbox can be disabled and enabled again.",
     "Mailboxes cannot be disabled; delete them instead."),
    ("mailbox_password_reset", "Backend resets passwords",
     "The backend generates new mailbox passwords.",
     "The backend does not generate passwords."),
    ("mailbox_password_set", "Portal sets passwords",
     "The portal generates a strong password and sets it on the backend.",
     "The portal cannot choose mailbox passwords."),
    ("mailbox_quota", "Mailbox quotas",
     "Each mailbox's storage quota can be set.",
     "Quotas are not managed through the API."),
    ("mailbox_list", "Lists mailboxes",
     "Existing mailboxes can be listed and imported.",
     "Existing mailboxes cannot be listed."),
    ("mailbox_aliases", "Adds aliases",
     "Extra addresses can be added to a mailbox.",
     "Aliases are not managed through the API."),
    ("mailbox_admin_privilege", "Mail admin privilege",
     "A mailbox can be made an administrator of the mail system.",
     "The mail system has no per-mailbox administrator privilege."),
    ("protocol_flags", "Protocol switches",
     "Client protocols (web, Outlook, mobile, IMAP, POP) follow this connection's settings.",
     "Client protocols are not switched per mailbox."),
)


@dataclass(frozen=True)
class Capabilities:
    """What one backend can do; the UI hides or explains what it cannot.

    ``notes`` replaces the generic explanation of a capability with one that
    is specific to the backend (for example why it cannot do something).
    """

    domain_api: bool
    domain_check: bool
    domain_fix: bool
    dns_spec: bool
    needs_subscription: bool
    mailbox_create: bool
    mailbox_delete: bool
    mailbox_delete_archives: bool
    mailbox_disable: bool
    mailbox_password_reset: bool
    mailbox_password_set: bool
    mailbox_quota: bool
    mailbox_list: bool
    mailbox_aliases: bool
    mailbox_admin_privilege: bool
    protocol_flags: bool
    notes: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        unknown = set(self.notes) - {name for name, *_ in _CAPABILITY_TEXTS}
        if unknown:
            raise ValueError(f"notes for unknown capabilities: {sorted(unknown)}")

    @property
    def can_delete_mailbox(self) -> bool:
        return self.mailbox_delete or self.mailbox_delete_archives

    @property
    def can_reset_password(self) -> bool:
        return self.mailbox_password_reset or self.mailbox_password_set

    def describe(self) -> list[tuple[str, bool, str]]:
        """(label, supported, explanation) for every capability, UI order."""
        rows = []
        for name, label, when_yes, when_no in _CAPABILITY_TEXTS:
            supported = getattr(self, name)
            rows.append((label, supported, self.notes.get(name, when_yes if supported else when_no)))
        return rows


# --------------------------------------------------------------------------
# Values exchanged with adapters


@dataclass(frozen=True)
class DnsRecord:
    name: str
    type: str
    value: str
    purpose: str


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    internal: bool
    messages: list[str] = field(default_factory=list)


DomainState = Literal["ok", "external_failed", "internal_failed"]


@dataclass(frozen=True)
class DomainCheck:
    """Outcome of a backend-side domain check.

    ``external_failed``: something the domain owner must change (DNS);
    ``internal_failed``: only the backend's own set-up is wrong, which
    ``fix_domain`` may repair.
    """

    state: DomainState
    checks: list[CheckResult] = field(default_factory=list)

    @classmethod
    def from_checks(cls, checks: Sequence[CheckResult], *, backend_says_ok: bool = True) -> DomainCheck:
        if any(not check.ok and not check.internal for check in checks):
            return cls("external_failed", list(checks))
        if any(not check.ok for check in checks) or not backend_says_ok:
            return cls("internal_failed", list(checks))
        return cls("ok", list(checks))


@dataclass(frozen=True)
class MailboxSpec:
    """The mailbox the portal wants to exist.

    ``password`` is used where the portal sets passwords; backends that
    generate their own ignore it and report the generated one instead.
    ``quota_bytes`` of ``None`` means the backend's default (unlimited where
    the backend has no default).
    """

    address: str
    local_part: str
    domain: str
    first_name: str = ""
    last_name: str = ""
    display_name: str = ""
    quota_bytes: int | None = None
    active: bool = True
    password: str | None = field(default=None, repr=False)
    admin: bool = False

    def __post_init__(self) -> None:
        if self.address != f"{self.local_part}@{self.domain}":
            raise ValueError("address must be local_part@domain")
        if self.quota_bytes is not None and self.quota_bytes <= 0:
            raise ValueError("quota_bytes must be positive; None means no quota")

    @classmethod
    def for_address(cls, address: str, **fields: Any) -> MailboxSpec:
        local_part, domain = split_address(address)
        return cls(address=f"{local_part}@{domain}", local_part=local_part, domain=domain, **fields)

    @property
    def full_name(self) -> str:
        """The name to show: display name, else first and last name."""
        return self.display_name or " ".join(p for p in (self.first_name, self.last_name) if p)


@dataclass(frozen=True)
class RemoteMailbox:
    """A mailbox as the backend reports it."""

    address: str
    active: bool
    quota_bytes: int | None
    display_name: str = ""
    backend_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProvisionResult:
    """Outcome of ``create_mailbox``.

    ``generated_password`` is set when a password was generated (by the
    backend or the adapter) and must reach the mailbox owner; it is ``None``
    when the portal's own password was used, and when the mailbox already
    existed (``created=False``): call ``reset_password`` if one is needed.
    """

    address: str
    backend_id: str | None
    generated_password: str | None = field(repr=False)
    created: bool


@dataclass(frozen=True)
class HealthResult:
    ok: bool
    message: str


# --------------------------------------------------------------------------
# Settings


class Settings(Mapping[str, str]):
    """A connection's settings; secret values never appear in its repr."""

    def __init__(self, values: Mapping[str, str], secret_keys: Iterable[str] = ()) -> None:
        self._values = {str(key): str(value) for key, value in values.items()}
        self.secret_keys = frozenset(secret_keys)

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def secret_values(self) -> list[str]:
        return [value for key, value in self._values.items() if key in self.secret_keys and value]

    def redacted(self) -> dict[str, str]:
        return {
            key: (REDACTED if key in self.secret_keys and value else value)
            for key, value in self._values.items()
        }

    def __repr__(self) -> str:
        return f"Settings({self.redacted()!r})"


# --------------------------------------------------------------------------
# The adapter interface

# Optional operations, the capability that declares each, and how the
# Unsupported message phrases it. Backend.__init_subclass__ checks that an
# adapter implements exactly the operations its capabilities declare.
_OPTIONAL_OPERATIONS: dict[str, tuple[str, str]] = {
    "check_domain": ("domain_check", "check domains"),
    "fix_domain": ("domain_fix", "repair domains"),
    "set_mailbox_active": ("mailbox_disable", "disable or enable mailboxes"),
    "delete_mailbox": ("can_delete_mailbox", "delete mailboxes"),
    "reset_password": ("can_reset_password", "reset mailbox passwords"),
    "set_quota": ("mailbox_quota", "set mailbox quotas"),
    "set_admin": ("mailbox_admin_privilege", "grant the mail administrator privilege"),
    "add_alias": ("mailbox_aliases", "add aliases"),
}


class Backend(abc.ABC):
    """One connection to one mail system.

    Adapters declare ``name`` (the registry key), ``label``,
    ``capabilities``, and their settings: ``required_settings``,
    ``optional_settings`` (key -> meaning) and ``secret_settings``.

    Every mutating method is idempotent: calling it again after a lost
    answer reaches the same end state without error.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    required_settings: ClassVar[tuple[str, ...]] = ()
    optional_settings: ClassVar[Mapping[str, str]] = {}
    secret_settings: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if inspect.isabstract(cls):
            return
        for method, (capability, _) in _OPTIONAL_OPERATIONS.items():
            implemented = getattr(cls, method) is not getattr(Backend, method)
            declared = getattr(cls.capabilities, capability)
            if implemented != declared:
                raise TypeError(
                    f"{cls.__name__}.{method} is {'implemented' if implemented else 'missing'} "
                    f"but capability {capability} is {declared}"
                )

    def __init__(self, settings: Mapping[str, str], *, timeout: float) -> None:
        missing = [key for key in self.required_settings if not settings.get(key)]
        if missing:
            raise ConfigurationError(f"{self.label}: missing setting {', '.join(missing)}")
        self.settings = Settings(settings, self.secret_settings)
        self.timeout = float(timeout)
        self._secrets: set[str] = set(self.settings.secret_values())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.settings!r}>"

    # -- secrets ---------------------------------------------------------

    def remember_secret(self, value: str) -> None:
        """Keep ``value`` (a token, a generated password) out of messages."""
        if value:
            self._secrets.add(value)

    def scrub(self, text: str) -> str:
        """``text`` with every secret this adapter knows masked."""
        for value in sorted(self._secrets, key=len, reverse=True):
            if len(value) >= 4:
                text = text.replace(value, _SCRUBBED)
        return text

    # -- health ----------------------------------------------------------

    def health(self) -> HealthResult:
        """Whether the backend answers and accepts the credentials."""
        try:
            return HealthResult(True, self._probe())
        except BackendError as error:
            return HealthResult(False, error.message)

    @abc.abstractmethod
    def _probe(self) -> str:
        """Make one cheap authenticated call; return what it proved."""

    # -- domains ---------------------------------------------------------

    @abc.abstractmethod
    def ensure_domain(self, domain: str) -> None:
        """Make sure the backend serves ``domain`` (a no-op where domains need no set-up)."""

    def check_domain(self, domain: str) -> DomainCheck:
        raise self.unsupported("check_domain")

    def fix_domain(self, domain: str) -> DomainCheck:
        """Repair the backend's side of ``domain``; return the state after the repair."""
        raise self.unsupported("fix_domain")

    @abc.abstractmethod
    def required_records(self, domain: str) -> list[DnsRecord]:
        """The DNS records ``domain`` must publish for this backend."""

    # -- mailboxes -------------------------------------------------------

    @abc.abstractmethod
    def create_mailbox(self, spec: MailboxSpec) -> ProvisionResult:
        """Create the mailbox, or find it when an earlier attempt already did."""

    @abc.abstractmethod
    def get_mailbox(self, address: str) -> RemoteMailbox | None:
        """The mailbox, or ``None`` when the backend does not have it."""

    @abc.abstractmethod
    def list_mailboxes(self, domain: str) -> list[RemoteMailbox]:
        """Every mailbox of ``domain``."""

    def set_mailbox_active(self, address: str, active: bool) -> None:
        raise self.unsupported("set_mailbox_active")

    def delete_mailbox(self, address: str) -> None:
        """Remove the mailbox; succeeds when it is already gone."""
        raise self.unsupported("delete_mailbox")

    def reset_password(self, address: str) -> str:
        """Give the mailbox a new password and return it."""
        raise self.unsupported("reset_password")

    def set_quota(self, address: str, quota_bytes: int | None) -> None:
        raise self.unsupported("set_quota")

    def set_admin(self, address: str, admin: bool) -> None:
        raise self.unsupported("set_admin")

    def add_alias(self, address: str, alias: str) -> None:
        """Deliver mail for ``alias`` to the mailbox ``address``; succeeds when it already does."""
        raise self.unsupported("add_alias")

    # -- helpers for adapters ---------------------------------------------

    def unsupported(self, method: str) -> Unsupported:
        capability, phrase = _OPTIONAL_OPERATIONS[method]
        note = self.capabilities.notes.get(capability, "")
        return Unsupported(f"{self.label} cannot {phrase}. {note}".strip(), code="unsupported")

    def refuse_unsupported_spec(self, spec: MailboxSpec) -> None:
        """Refuse, before creating anything, a spec this backend cannot honour."""
        if spec.admin and not self.capabilities.mailbox_admin_privilege:
            raise self.unsupported("set_admin")
        if not spec.active and not self.capabilities.mailbox_disable:
            raise self.unsupported("set_mailbox_active")
        if spec.quota_bytes is not None and not self.capabilities.mailbox_quota:
            raise self.unsupported("set_quota")


# --------------------------------------------------------------------------
# Helpers shared by adapters

_PASSWORD_SYMBOLS = "-_.!@#%+=:?"
_PASSWORD_ALPHABET = string.ascii_letters + string.digits + _PASSWORD_SYMBOLS


def generate_password(length: int = 20) -> str:
    """A strong random password that every supported backend accepts.

    It mixes lower and upper case, digits and symbols, and avoids spaces,
    quotes and backslashes, which some backends or shells reject.
    """
    if length < 12:
        raise ValueError("passwords shorter than 12 characters are not strong")
    while True:
        password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))
        if (
            any(c.islower() for c in password)
            and any(c.isupper() for c in password)
            and any(c.isdigit() for c in password)
            and any(c in _PASSWORD_SYMBOLS for c in password)
        ):
            return password


def validate_quota(quota_bytes: int | None) -> None:
    """Refuse a quota that is not a positive number of bytes (``None`` is no quota)."""
    if quota_bytes is not None and (isinstance(quota_bytes, bool) or quota_bytes <= 0):
        raise PermanentBackendError(
            "A quota must be a positive number of bytes; give no quota for no limit", code="invalid"
        )


def split_address(address: str) -> tuple[str, str]:
    """(local part, lower-cased domain) of an e-mail address."""
    local_part, at, domain = address.strip().rpartition("@")
    if not at or not local_part or not domain:
        raise ValueError(f"not an e-mail address: {address!r}")
    return local_part, domain.lower()


_LOCAL_PART = re.compile(r"^[a-z0-9](?:[a-z0-9._+-]{0,62}[a-z0-9])?$")


def is_plain_local_part(local_part: str) -> bool:
    """Whether a local part uses only the characters every backend accepts."""
    return bool(_LOCAL_PART.match(local_part)) and ".." not in local_part


def mail_records(domain: str, mx_host: str, spf_include: str = "") -> list[DnsRecord]:
    """The MX and SPF records of a domain whose mail goes to ``mx_host``."""
    mx_host = mx_host.rstrip(".")
    spf = f"v=spf1 include:{spf_include} ~all" if spf_include else "v=spf1 mx ~all"
    return [
        DnsRecord(domain, "MX", f"10 {mx_host}.", "Delivers the domain's mail to the mail system"),
        DnsRecord(domain, "TXT", spf, "SPF: allows the mail system to send for the domain"),
    ]


def record_purpose(name: str, record_type: str, value: str) -> str:
    """A short explanation of a DNS record for the domain page."""
    record_type = record_type.upper()
    label = name.split(".", 1)[0].lower()
    if record_type == "MX":
        return "Delivers the domain's mail to the mail system"
    if record_type == "TXT" and value.lower().startswith("v=spf1"):
        return "SPF: allows the mail system to send for the domain"
    if "_domainkey" in name.lower():
        return "DKIM: lets receivers verify the domain's signatures"
    if label == "_dmarc":
        return "DMARC: tells receivers what to do with unauthenticated mail"
    if record_type == "CNAME":
        return f"Points {label} at the mail system (client set-up)"
    return f"{record_type} record required by the mail system"


def expect_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UnexpectedResponse(f"{what}: expected an object, got {type(value).__name__}")
    return value


def expect_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise UnexpectedResponse(f"{what}: expected a list, got {type(value).__name__}")
    return value


def expect_str(mapping: Mapping[str, Any], key: str, what: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value:
        raise UnexpectedResponse(f"{what}: missing text field {key!r}")
    return value
