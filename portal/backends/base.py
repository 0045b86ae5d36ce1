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

The portal's own words here (capabilities, domain settings, protocols, record
purposes, setting refusals) are marked with Flask-Babel's gettext, the one
thing of Flask this module uses: in the portal they are in the reader's
language; anywhere else, without an app, they are the English written here.
Record purposes are lazy texts, which the portal stores untranslated (a
domain's records are read later by people of several languages).
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
import re
import secrets
import string
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from babel.numbers import format_decimal
from flask_babel import gettext as _
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

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


class ChangeNotKept(PermanentBackendError):
    """The backend accepted a change but, read back, does not have it.

    ``active`` is the state the mailbox really has, so that the portal shows
    that state (with the message) rather than the one it asked for.
    """

    def __init__(self, message: str, *, active: bool, code: str = "not_kept") -> None:
        super().__init__(message, code=code)
        self.active = active


# --------------------------------------------------------------------------
# Capabilities

# (name, label, explanation when supported, explanation when not), in the
# order the UI lists them.
_CAPABILITY_TEXTS: tuple[tuple[str, Any, Any, Any], ...] = (
    ("domain_api", _l("Creates domains"),
     _l("The portal registers new domains on the backend."),
     _l("Domains are not created through the API; they exist once the backend serves them.")),
    ("domain_check", _l("Checks domains"),
     _l("The backend verifies the domain's DNS and its own set-up."),
     _l("The backend does not check domains; the portal relies on its own DNS checks.")),
    ("domain_fix", _l("Repairs domains"),
     _l("The backend can repair its own side of a domain's set-up."),
     _l("Problems on the backend's side must be repaired by its operator.")),
    ("dns_spec", _l("Tells the DNS records"),
     _l("The backend states the DNS records each domain must publish."),
     _l("The DNS records shown come from this connection's settings.")),
    ("domain_settings", _l("Domain settings"),
     _l("Domain-wide settings (quotas, limits, aliases, spam filtering) are managed from the portal."),
     _l("The backend has no domain-wide settings the portal can manage.")),
    ("needs_subscription", _l("Needs a subscription"),
     _l("Mailboxes are created inside the subscription set on this connection."),
     _l("No subscription or plan has to be chosen.")),
    ("mailbox_create", _l("Creates mailboxes"),
     _l("Mailboxes are provisioned on the backend."),
     _l("Mailboxes cannot be created through the API.")),
    ("mailbox_delete", _l("Deletes mailboxes"),
     _l("Deleting a mailbox removes it from the backend."),
     _l("Mailboxes cannot be removed for good through the API.")),
    ("mailbox_delete_archives", _l("Archives on delete"),
     _l("Deleting a mailbox archives it: its mail stays on the server and re-creating the address restores it."),
     _l("Deleting does not keep an archive.")),
    ("mailbox_disable", _l("Disables mailboxes"),
     _l("A mailbox can be disabled and enabled again."),
     _l("Mailboxes cannot be disabled; delete them instead.")),
    ("mailbox_password_reset", _l("Backend resets passwords"),
     _l("The backend generates new mailbox passwords."),
     _l("The backend does not generate passwords.")),
    ("mailbox_password_set", _l("Portal sets passwords"),
     _l("The portal generates a strong password and sets it on the backend."),
     _l("The portal cannot choose mailbox passwords.")),
    ("mailbox_quota", _l("Mailbox quotas"),
     _l("Each mailbox's storage quota can be set."),
     _l("Quotas are not managed through the API.")),
    ("mailbox_list", _l("Lists mailboxes"),
     _l("Existing mailboxes can be listed and imported."),
     _l("Existing mailboxes cannot be listed.")),
    ("mailbox_aliases", _l("Adds aliases"),
     _l("Extra addresses can be added to a mailbox and listed."),
     _l("Aliases are not managed through the API.")),
    ("mailbox_alias_remove", _l("Removes aliases"),
     _l("An alias can be taken off a mailbox again."),
     _l("Aliases cannot be removed through the API; remove them on the backend.")),
    ("mailbox_admin_privilege", _l("Mail admin privilege"),
     _l("A mailbox can be made an administrator of the mail system."),
     _l("The mail system has no per-mailbox administrator privilege.")),
    ("protocol_flags", _l("Protocol switches"),
     _l("Client protocols (webmail, Outlook, mobile, IMAP, POP, SMTP) can be switched on and off per mailbox."),
     _l("Client protocols are not switched per mailbox.")),
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
    domain_settings: bool
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
    mailbox_alias_remove: bool
    mailbox_admin_privilege: bool
    protocol_flags: bool
    notes: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        unknown = set(self.notes) - {name for name, *_ in _CAPABILITY_TEXTS}
        if unknown:
            raise ValueError(f"notes for unknown capabilities: {sorted(unknown)}")

    def supported(self) -> dict[str, bool]:
        """Every capability by name."""
        return {name: getattr(self, name) for name, *_ in _CAPABILITY_TEXTS}

    def without(self, reasons: Mapping[str, str]) -> Capabilities:
        """These capabilities, less those named in ``reasons`` (name -> why it is missing)."""
        return dataclasses.replace(self, **dict.fromkeys(reasons, False), notes={**self.notes, **reasons})

    def narrowed(self, supported: Mapping[str, Any], notes: Mapping[str, Any]) -> Capabilities:
        """These capabilities as far as ``supported`` confirms them, with ``notes`` over the declared ones.

        Names this class does not know are left out, so a record written by
        another version of the portal never breaks a page.
        """
        known = {name for name, *_ in _CAPABILITY_TEXTS}
        kept = {name: getattr(self, name) and bool(value) for name, value in supported.items() if name in known}
        return dataclasses.replace(self, **kept, notes={**self.notes, **{
            name: str(text) for name, text in notes.items() if name in known}})

    @property
    def can_delete_mailbox(self) -> bool:
        return self.mailbox_delete or self.mailbox_delete_archives

    @property
    def can_reset_password(self) -> bool:
        return self.mailbox_password_reset or self.mailbox_password_set

    def describe(self) -> list[tuple[str, bool, str]]:
        """(label, supported, explanation) for every capability, UI order."""
        return [(label, getattr(self, name), self.explanation(name)) for name, label, *_texts in _CAPABILITY_TEXTS]

    def explanation(self, name: str) -> str:
        """Why the capability ``name`` is there or not: this backend's note, else the generic words."""
        when_yes, when_no = next(texts for known, _label, *texts in _CAPABILITY_TEXTS if known == name)
        return self.notes.get(name, when_yes if getattr(self, name) else when_no)


# --------------------------------------------------------------------------
# Values exchanged with adapters


@dataclass(frozen=True)
class DnsRecord:
    name: str
    type: str
    value: str
    purpose: str | LazyString


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
    the backend has no default). ``protocols`` switches client protocols
    (names from ``Backend.protocols()``) at creation; ``None`` or a missing
    name means the backend's default. A backend without protocol switches
    refuses a spec that turns a protocol off.
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
    protocols: Mapping[str, bool] | None = None

    def __post_init__(self) -> None:
        if self.address != f"{self.local_part}@{self.domain}":
            raise ValueError("address must be local_part@domain")
        if self.quota_bytes is not None and self.quota_bytes <= 0:
            raise ValueError("quota_bytes must be positive; None means no quota")
        if self.protocols is not None:
            if not all(isinstance(key, str) and isinstance(on, bool) for key, on in self.protocols.items()):
                raise ValueError("protocols maps protocol names to True or False")
            object.__setattr__(self, "protocols", dict(self.protocols))

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
    """A mailbox as the backend reports it.

    ``system`` marks the backend's own account (dimail's Open-Xchange context
    administrator ``oxadmin@``): it is listed, but never the portal's to adopt.
    """

    address: str
    active: bool
    quota_bytes: int | None
    display_name: str = ""
    backend_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    system: bool = False


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
# Domain settings

SettingKind = Literal["int", "bool", "choice", "list", "text"]
# How a text value, or each item of a list, must look: an e-mail address;
# an address in the domain being set; a domain name other than it; a sender
# or a wildcard pattern (*@spam.example); a mail header "Name: value".
ValueFormat = Literal["address", "domain_address", "domain", "sender", "header"]

_KINDS = ("int", "bool", "choice", "list", "text")


@dataclass(frozen=True)
class DomainSetting:
    """One domain-wide setting a backend supports, with the backend's own limits.

    The portal builds its form from these and validates with
    ``validate_domain_settings`` before it queues a change. Values are
    ``int`` (``kind="int"``), ``bool``, ``str`` (``"choice"``: one of the
    ``choices`` values; ``"text"``) or ``list[str]`` (``"list"``; when
    ``choices`` is given, items come from it). ``None`` means "not set here":
    the backend's (or its company's) default applies. ``max_length`` limits
    a text or each list item; ``max_items`` a list; ``min_value`` and
    ``max_value`` a number, counted in ``unit``.
    """

    key: str
    label: str
    kind: SettingKind
    help: str = ""
    # A unit's code (bytes, mailboxes, aliases, messages per day); the portal words it for people.
    unit: str = ""
    min_value: int | None = None
    max_value: int | None = None
    max_length: int | None = None
    max_items: int | None = None
    choices: tuple[tuple[str, str], ...] = ()
    value_format: ValueFormat | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"setting {self.key}: kind must be one of {', '.join(_KINDS)}")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"setting {self.key}: a choice needs choices")

    @property
    def choice_values(self) -> tuple[str, ...]:
        return tuple(value for value, _ in self.choices)


# The portal-level settings, with the portal's words. Adapters pick the ones
# their backend supports through ``domain_setting(key, **limits)`` so that
# labels and value vocabularies (spam levels, services) are the same on
# every backend, and translate them to their wire names themselves.
_PORTAL_DOMAIN_SETTINGS: dict[str, DomainSetting] = {setting.key: setting for setting in (
    DomainSetting("default_quota_bytes", _l("Default mailbox quota"), "int",
                  _l("The quota of new mailboxes created without one."), unit="bytes", min_value=1),
    DomainSetting("max_quota_bytes", _l("Largest mailbox quota"), "int",
                  _l("No mailbox of the domain may be given a larger quota."), unit="bytes", min_value=1),
    DomainSetting("max_users", _l("Most mailboxes"), "int",
                  _l("How many mailboxes the domain may have."), unit="mailboxes", min_value=0),
    DomainSetting("max_aliases", _l("Most aliases"), "int",
                  _l("How many mailbox aliases the domain may have."), unit="aliases", min_value=0),
    DomainSetting("domain_aliases", _l("Domain aliases"), "list",
                  _l("Other domain names whose mail goes to the same mailboxes here: "
                     "joe@alias.example reaches joe@ this domain."), value_format="domain"),
    DomainSetting("allow_senders", _l("Allowed senders"), "list",
                  _l("Senders whose mail is never treated as spam; wildcards such as *@partner.example "
                     "are allowed."), value_format="sender"),
    DomainSetting("block_senders", _l("Blocked senders"), "list",
                  _l("Senders whose mail is always treated as spam; wildcards such as *@spam.example "
                     "are allowed."), value_format="sender"),
    DomainSetting("catch_all", _l("Catch-all address"), "text",
                  _l("The address of the domain that receives mail sent to addresses that do not exist; "
                     "empty for none."), value_format="domain_address"),
    DomainSetting("spam_level", _l("Spam filtering"), "choice", _l("How aggressively mail is filtered for spam."),
                  choices=(("normal", _l("Normal")), ("high", _l("High")), ("very_high", _l("Very high")))),
    DomainSetting("spam_delivery", _l("Spam handling"), "choice", _l("What happens to mail found to be spam."),
                  choices=(("quarantine", _l("Kept in the spam folder")),
                           ("passthrough", _l("Delivered with the spam tag and header")))),
    DomainSetting("spam_folder", _l("Spam folder"), "text", _l("The folder spam is delivered to.")),
    DomainSetting("spam_tag", _l("Spam tag"), "text", _l("Text added to the subject of spam.")),
    DomainSetting("spam_header", _l("Spam header"), "text",
                  _l("Header added to spam, written Name: value with a capital first letter "
                     "(for example X-Spam: detected)."), value_format="header"),
    DomainSetting("default_services", _l("Services of new mailboxes"), "list",
                  _l("What new mailboxes of the domain may use."),
                  choices=(("imap", "IMAP"), ("pop", "POP"), ("smtp", _l("Sending (SMTP)")),
                           ("webmail", _l("Webmail")))),
    DomainSetting("send_limit", _l("Daily sending limit"), "int",
                  _l("The most messages a mailbox may send in 24 hours."), unit="messages per day", min_value=0),
    DomainSetting("password_strength", _l("Password strength"), "choice",
                  _l("The strength mailbox passwords must have."),
                  choices=(("weak", _l("Weak")), ("medium", _l("Medium")), ("good", _l("Good")),
                           ("strong", _l("Strong")))),
    DomainSetting("notes", _l("Notes"), "text", _l("Notes kept with the domain on the backend.")),
)}

PORTAL_DOMAIN_SETTING_KEYS: tuple[str, ...] = tuple(_PORTAL_DOMAIN_SETTINGS)


def domain_setting(key: str, **overrides: Any) -> DomainSetting:
    """The portal-level setting ``key`` with one backend's limits (and, if need be, help)."""
    return dataclasses.replace(_PORTAL_DOMAIN_SETTINGS[key], **overrides)


_ADDRESS = re.compile(r"^[^@\s]+@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]*$", re.IGNORECASE)
_DOMAIN_NAME = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$")
_SENDER = re.compile(
    r"^[^@\s]+@(?:\*|(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]*)$", re.IGNORECASE
)
_HEADER = re.compile(r"^[A-Z][!-9;-~]*:\s*\S.*$")


def validate_domain_settings(
    settings_spec: Sequence[DomainSetting],
    values: Mapping[str, Any],
    *,
    domain: str | None = None,
) -> dict[str, str]:
    """What is wrong with ``values`` for a backend described by ``settings_spec``.

    Returns a message per key that is refused (empty when all is well); a
    pure function, so the portal validates before it queues a change and
    adapters validate again before they call the backend. ``domain`` is the
    domain being set, needed to check that a catch-all belongs to it and
    that it is not its own alias.
    """
    by_key = {setting.key: setting for setting in settings_spec}
    problems: dict[str, str] = {}
    for key, value in values.items():
        setting = by_key.get(key)
        if setting is None:
            problems[key] = _("This backend has no such setting.")
        elif value is not None:
            problem = _setting_problem(setting, value, domain)
            if problem:
                problems[key] = problem
    return problems


def _number(value: int) -> str:
    """A count written the reader's way (1,000 / 1 000)."""
    return format_decimal(value, locale=get_locale() or "en")


def _choices(setting: DomainSetting) -> str:
    return ", ".join(str(label) for _value, label in setting.choices)


def _setting_problem(setting: DomainSetting, value: Any, domain: str | None) -> str | None:
    if setting.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return _("Enter a whole number.")
        if setting.min_value is not None and value < setting.min_value:
            return _("At least %(number)s.", number=_number(setting.min_value))
        if setting.max_value is not None and value > setting.max_value:
            return _("At most %(number)s.", number=_number(setting.max_value))
        return None
    if setting.kind == "bool":
        return None if isinstance(value, bool) else _("Choose yes or no.")
    if setting.kind == "choice":
        if value not in setting.choice_values:
            return _("Choose one of: %(choices)s.", choices=_choices(setting))
        return None
    if setting.kind == "text":
        if not isinstance(value, str):
            return _("Enter text.")
        return _text_problem(setting, value, domain) if value else None
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        return _("Enter a list of entries.")
    if setting.max_items is not None and len(value) > setting.max_items:
        return _("At most %(most)s entries; %(given)s given.", most=_number(setting.max_items),
                 given=_number(len(value)))
    seen: set[str] = set()
    for item in value:
        if not item.strip():
            return _("Leave out empty entries.")
        if item.lower() in seen:
            return _("%(entry)s is listed twice.", entry=item)
        seen.add(item.lower())
        if setting.choices and item not in setting.choice_values:
            return _("%(entry)s is not one of: %(choices)s.", entry=item, choices=_choices(setting))
        problem = _text_problem(setting, item, domain)
        if problem:
            return _("%(entry)s: %(problem)s", entry=item, problem=problem)
    return None


def _text_problem(setting: DomainSetting, text: str, domain: str | None) -> str | None:
    if setting.max_length is not None and len(text) > setting.max_length:
        return _("At most %(number)s characters.", number=_number(setting.max_length))
    value_format = setting.value_format
    if value_format in ("address", "domain_address") and not _ADDRESS.match(text):
        return _("Enter an e-mail address.")
    if value_format == "domain_address" and domain and split_address(text)[1] != domain.lower():
        return _("Enter an address in %(domain)s.", domain=domain)
    if value_format == "domain":
        if not _DOMAIN_NAME.match(text.lower()):
            return _("Enter a domain name.")
        if domain and text.lower() == domain.lower():
            return _("A domain cannot be its own alias.")
    if value_format == "sender" and not _SENDER.match(text):
        return _("Enter an address or a pattern such as *@example.com.")
    if value_format == "header" and not _HEADER.match(text):
        return _("Write it as Name: value, the name starting with a capital letter.")
    return None


# --------------------------------------------------------------------------
# Client protocols

# What the UI calls each protocol name an adapter may list in ``protocols()``.
PROTOCOL_LABELS: dict[str, Any] = {
    "owa": _l("Outlook on the web (OWA)"),
    "mapi": "Outlook (MAPI)",
    "active_sync": _l("Mobile devices (ActiveSync)"),
    "imap4": "IMAP",
    "pop3": "POP3",
    "smtp": _l("Sending with a mail client (SMTP)"),
    "webmail": _l("Webmail"),
}


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
    "list_aliases": ("mailbox_aliases", "list aliases"),
    "remove_alias": ("mailbox_alias_remove", "remove aliases"),
    "get_domain_settings": ("domain_settings", "manage domain settings"),
    "set_domain_settings": ("domain_settings", "manage domain settings"),
    "get_protocols": ("protocol_flags", "switch client protocols per mailbox"),
    "set_protocols": ("protocol_flags", "switch client protocols per mailbox"),
}


class Backend(abc.ABC):
    """One connection to one mail system.

    Adapters declare ``name`` (the registry key), ``label``,
    ``capabilities``, and their settings: ``required_settings``,
    ``optional_settings`` (key -> meaning) and ``secret_settings``. Those
    with domain settings list them in ``domain_setting_specs``, those with
    protocol switches their protocol names in ``protocol_names``.

    Every mutating method is idempotent: calling it again after a lost
    answer reaches the same end state without error.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    required_settings: ClassVar[tuple[str, ...]] = ()
    optional_settings: ClassVar[Mapping[str, str]] = {}
    secret_settings: ClassVar[frozenset[str]] = frozenset()
    domain_setting_specs: ClassVar[tuple[DomainSetting, ...]] = ()
    protocol_names: ClassVar[tuple[str, ...]] = ()

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
        for described, capability in (("domain_setting_specs", "domain_settings"),
                                      ("protocol_names", "protocol_flags")):
            if bool(getattr(cls, described)) != getattr(cls.capabilities, capability):
                raise TypeError(
                    f"{cls.__name__}.{described} is {'set' if getattr(cls, described) else 'empty'} "
                    f"but capability {capability} is {getattr(cls.capabilities, capability)}"
                )
        keys = [setting.key for setting in cls.domain_setting_specs]
        if len(set(keys)) != len(keys):
            raise TypeError(f"{cls.__name__} describes a domain setting twice")
        unknown = set(cls.protocol_names) - set(PROTOCOL_LABELS)
        if unknown:
            raise TypeError(f"{cls.__name__} lists protocols without a label: {sorted(unknown)}")

    def __init__(self, settings: Mapping[str, str], *, timeout: float) -> None:
        missing = [key for key in self.required_settings if not settings.get(key)]
        if missing:
            raise ConfigurationError(f"{self.label}: missing setting {', '.join(missing)}")
        self.settings = Settings(settings, self.secret_settings)
        self.timeout = float(timeout)
        self._secrets: set[str] = set(self.settings.secret_values())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.settings!r}>"

    # -- what the connected server offers -----------------------------------

    def discover(self) -> Capabilities:
        """What this connection's server can do, learnt from it where the adapter can tell.

        The class declares the most an adapter can do; a server may offer
        less (an older version). After this call, ``self.capabilities`` is
        the server's. The default learns nothing and makes no call.
        """
        return self.capabilities

    # -- address rules (no network) -------------------------------------------

    @classmethod
    def address_problem(cls, local_part: str, domain: str) -> str | None:
        """The backend's own reason it would refuse a mailbox ``local_part@domain``; None when it takes it."""
        return None

    @classmethod
    def alias_problem(cls, local_part: str, domain: str) -> str | None:
        """The backend's own reason it would refuse the alias ``local_part@domain``; None when it takes it."""
        return None

    def refuse_bad_address(self, spec: MailboxSpec) -> None:
        """Refuse, before any call, an address the backend would refuse (or mishandle)."""
        problem = self.address_problem(spec.local_part, spec.domain)
        if problem:
            raise PermanentBackendError(f"{self.label}: {problem}", hints={"address": problem}, code="invalid")

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

    # -- domain settings ---------------------------------------------------

    @classmethod
    def domain_settings(cls) -> list[DomainSetting]:
        """The domain-wide settings this backend supports (empty when none)."""
        return list(cls.domain_setting_specs)

    def get_domain_settings(self, domain: str) -> dict[str, Any]:
        """Every supported setting of ``domain``, ``None`` where the backend's default applies."""
        raise self.unsupported("get_domain_settings")

    def set_domain_settings(self, domain: str, values: Mapping[str, Any]) -> None:
        """Change the settings named in ``values`` (others stay); ``None`` returns one to the default.

        The values are validated first (``validate_domain_settings``): a
        refusal is a ``PermanentBackendError`` with code ``"invalid"`` and a
        message per setting in ``hints``. When the backend itself refuses a
        setting, its hints are keyed by the portal's setting names too.
        """
        raise self.unsupported("set_domain_settings")

    def refuse_invalid_domain_settings(self, domain: str, values: Mapping[str, Any]) -> None:
        problems = validate_domain_settings(self.domain_setting_specs, values, domain=domain)
        if problems:
            raise PermanentBackendError(
                f"{self.label} cannot take these settings for {domain}: "
                + "; ".join(f"{key}: {message}" for key, message in problems.items()),
                hints=problems,
                code="invalid",
            )

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

    def delete_mailbox(self, address: str) -> bool:
        """Remove the mailbox; succeeds when it is already gone, and then returns False."""
        raise self.unsupported("delete_mailbox")

    def reset_password(self, address: str) -> str:
        """Give the mailbox a new password and return it."""
        raise self.unsupported("reset_password")

    def set_quota(self, address: str, quota_bytes: int | None) -> None:
        raise self.unsupported("set_quota")

    def set_admin(self, address: str, admin: bool) -> None:
        raise self.unsupported("set_admin")

    def add_alias(self, address: str, alias: str) -> None:
        """Deliver mail for ``alias`` to the mailbox ``address``; succeeds when it already does.

        An alias that already delivers to another mailbox is refused.
        """
        raise self.unsupported("add_alias")

    def list_aliases(self, address: str) -> list[str]:
        """The aliases that deliver to the mailbox; ``BackendNotFound`` when it does not exist."""
        raise self.unsupported("list_aliases")

    def remove_alias(self, address: str, alias: str) -> None:
        """Stop delivering ``alias`` to ``address``; succeeds when it does not (any more)."""
        raise self.unsupported("remove_alias")

    # -- client protocols ----------------------------------------------------

    @classmethod
    def protocols(cls) -> list[str]:
        """The client protocols switched per mailbox (names from ``PROTOCOL_LABELS``)."""
        return list(cls.protocol_names)

    def get_protocols(self, address: str) -> dict[str, bool]:
        """Whether each protocol of ``protocols()`` is switched on for the mailbox."""
        raise self.unsupported("get_protocols")

    def set_protocols(self, address: str, values: Mapping[str, bool]) -> None:
        """Switch the protocols named in ``values`` on or off; the others stay as they are."""
        raise self.unsupported("set_protocols")

    def refuse_unknown_protocols(self, values: Mapping[str, bool]) -> dict[str, bool]:
        unknown = sorted(set(values) - set(self.protocol_names))
        if unknown:
            raise PermanentBackendError(
                f"{self.label} has no protocol {', '.join(unknown)}; "
                f"it switches {', '.join(self.protocol_names) or 'none'}",
                code="invalid",
            )
        if not all(isinstance(on, bool) for on in values.values()):
            raise PermanentBackendError("Protocols are switched on or off with True or False", code="invalid")
        return dict(values)

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
        if spec.protocols:
            if self.capabilities.protocol_flags:
                self.refuse_unknown_protocols(spec.protocols)
            elif not all(spec.protocols.values()):
                # Every protocol is on where there are no switches; only
                # turning one off is a wish this backend cannot grant.
                raise self.unsupported("set_protocols")


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
        DnsRecord(domain, "MX", f"10 {mx_host}.", _l("Delivers the domain's mail to the mail system")),
        DnsRecord(domain, "TXT", spf, _l("SPF: allows the mail system to send for the domain")),
    ]


def record_purpose(name: str, record_type: str, value: str) -> LazyString:
    """A short explanation of a DNS record for the domain page: a lazy text, which the portal
    stores untranslated and shows in each reader's language."""
    record_type = record_type.upper()
    label = name.split(".", 1)[0].lower()
    if record_type == "MX":
        return _l("Delivers the domain's mail to the mail system")
    if record_type == "TXT" and value.lower().startswith("v=spf1"):
        return _l("SPF: allows the mail system to send for the domain")
    if "_domainkey" in name.lower():
        return _l("DKIM: lets receivers verify the domain's signatures")
    if label == "_dmarc":
        return _l("DMARC: tells receivers what to do with unauthenticated mail")
    if record_type == "CNAME":
        return _l("Points %(name)s at the mail system (client set-up)", name=label)
    return _l("%(type)s record required by the mail system", type=record_type)


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
