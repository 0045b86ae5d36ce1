"""An OpenSRS Email (OMA) emulator, quirks included (see reference/BACKENDS.md).

``POST /api/<method>`` with one JSON object. Every well-formed call to a
known method answers HTTP 200, failures included, with the envelope
``{"success": false, "error_number": N, "error": "...", "hints": {...}}``.
Unknown methods answer 404, bodies that are not JSON 400.

``change_domain`` checks the attributes the way 001 describes them (types,
the 2,000 domain aliases, 1,000 allow or block entries, 128/30/512/4,096
character texts, spam levels, service states) and refuses a ``catchall`` on
a domain it is creating ("cannot be enabled for new domains"); every
refusal is error 6 with a hint per attribute. ``change_user`` refuses more
than 2,000 aliases per user, and more aliases than the domain's
``limit_aliases``.

State for tests: ``domains``, ``users`` (address -> attributes, password
included), ``creations`` (address -> times created), ``tokens`` (valid
session tokens), ``duplicate_error_number`` (7 by default; the reference's
own example uses 23), ``forced_errors`` (``(number, text)`` or
``(number, text, hints)`` answered, in order, to the next authenticated calls),
``forced_method_errors`` (method -> such failures, answered to that method's
next calls).
"""

from __future__ import annotations

import re
import secrets
from collections import Counter
from typing import Any

from .emu_common import Emulator, RecordedRequest, Reply

_LOCAL_PART = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SERVICES = ("service_imap4", "service_pop3", "service_smtpin", "service_smtprelay",
             "service_smtprelay_webmail", "service_webmail")
_USER_ATTRIBUTES = {"password", "name", "quota", "aliases", *_SERVICES}
_MAX_ALIASES = 2000
_DOMAIN_INTS = ("quota", "quota_maximum", "limit_users", "limit_aliases", "smtp_sent_limit")
_DOMAIN_LISTS = {"aliases": 2000, "allow": 1000, "block": 1000}
_DOMAIN_TEXTS = {"catchall": None, "spamfolder": 128, "spamheader": 512, "spamtag": 30, "notes_external": 4096}
_DOMAIN_CHOICES = {
    "spamlevel": ("Normal", "High", "Very High"),
    "filterdelivery": ("quarantine", "passthrough"),
    "password_strength": ("weak", "medium", "good", "strong"),
    **{service: ("enabled", "disabled", "suspended") for service in _SERVICES},
}
_DOMAIN_ATTRIBUTES = {*_DOMAIN_INTS, *_DOMAIN_LISTS, *_DOMAIN_TEXTS, *_DOMAIN_CHOICES}


def _failure(number: int, error: str, hints: dict[str, str] | None = None) -> Reply:
    body: dict[str, Any] = {"success": False, "error_number": number, "error": error,
                            "audit": secrets.token_hex(6)}
    if hints:
        body["hints"] = hints
    return Reply.json(body)


class OpenSrsEmulator(Emulator):
    url_path = "/api"

    def __init__(self, user: str = "admin@reseller.test", password: str = "opensrs-admin-secret") -> None:
        super().__init__()
        self.user = user
        self.password = password
        self.tokens: set[str] = set()
        self.domains: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.creations: Counter[str] = Counter()
        self.duplicate_error_number = 7
        self.forced_errors: list[tuple] = []
        self.forced_method_errors: dict[str, list[tuple]] = {}

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def handle(self, request: RecordedRequest) -> Reply:
        if request.method != "POST" or not request.path.startswith("/api/"):
            return Reply.text("Not Found", 404)
        method = getattr(self, "_" + request.path[len("/api/"):], None)
        if method is None or request.path.count("/") != 2:
            return Reply.text("Unknown method", 404)
        try:
            body = request.json()
        except ValueError:
            return Reply.text("Malformed JSON request", 400)
        if not isinstance(body, dict):
            return Reply.text("Malformed JSON request", 400)
        credentials = body.get("credentials") or {}
        if credentials.get("user") != self.user or not (
            credentials.get("password") == self.password or credentials.get("token") in self.tokens
        ):
            return _failure(1, "Invalid credentials supplied in request")
        if self.forced_errors and method != self._authenticate:
            return _failure(*self.forced_errors.pop(0))
        for_method = self.forced_method_errors.get(request.path[len("/api/"):])
        if for_method:
            return _failure(*for_method.pop(0))
        return method(body)

    # -- methods -------------------------------------------------------------------

    def _authenticate(self, body: dict[str, Any]) -> Reply:
        answer: dict[str, Any] = {"success": True}
        if body.get("generate_session_token"):
            token = secrets.token_hex(16)
            self.tokens.add(token)
            answer.update(session_token=token, session_token_duration=10800)
        return Reply.json(answer)

    def _change_domain(self, body: dict[str, Any]) -> Reply:
        domain, attributes = body.get("domain"), body.get("attributes")
        if not isinstance(domain, str) or not isinstance(attributes, dict):
            return _failure(5, "Badly formatted request", {"domain": "A domain and attributes are required"})
        if domain in self.domains and body.get("create_only"):
            return _failure(23, "Object already exists")
        hints = self._domain_hints(attributes, creating=domain not in self.domains)
        if hints:
            return _failure(6, "Badly formatted attributes", hints)
        stored = self.domains.setdefault(domain, {})
        for key, value in attributes.items():
            if value is None:
                stored.pop(key, None)
            else:
                stored[key] = value
        return Reply.json({"success": True})

    def _domain_hints(self, attributes: dict[str, Any], *, creating: bool) -> dict[str, str]:
        hints = {key: "Unknown attribute" for key in attributes if key not in _DOMAIN_ATTRIBUTES}
        present = {key: value for key, value in attributes.items() if value is not None}
        for key in _DOMAIN_INTS:
            if key in present and (not isinstance(present[key], int) or isinstance(present[key], bool)
                                   or present[key] < 0):
                hints[key] = "Must be a positive whole number"
        if present.get("smtp_sent_limit", 0) > 10_000:
            hints["smtp_sent_limit"] = "Maximum number is 10000"
        for key, maximum in _DOMAIN_LISTS.items():
            if key in present:
                if not isinstance(present[key], list):
                    hints[key] = "Must be a list"
                elif len(present[key]) > maximum:
                    hints[key] = f"The maximum number of {'aliases' if key == 'aliases' else 'addresses'} is {maximum}"
        for key, maximum in _DOMAIN_TEXTS.items():
            if key in present and not isinstance(present[key], str):
                hints[key] = "Must be a string"
            elif key in present and maximum and len(present[key]) > maximum:
                hints[key] = f"Maximum {maximum} characters"
        if "spamheader" in present and not re.match(r"^[A-Z][^:]*:\s*\S", str(present["spamheader"])):
            hints["spamheader"] = "The format for the header must be [Capital letter]anything[:] anything"
        for key, allowed in _DOMAIN_CHOICES.items():
            if key in present and present[key] not in allowed:
                hints[key] = "Allowed values are: " + ", ".join(allowed)
        if creating and present.get("catchall"):
            hints["catchall"] = "This feature cannot be enabled for new domains"
        return hints

    def _get_domain(self, body: dict[str, Any]) -> Reply:
        domain = body.get("domain")
        if domain not in self.domains:
            return _failure(2, "Domain does not exist")
        return Reply.json({"success": True, "attributes": self.domains[domain]})

    def _change_user(self, body: dict[str, Any]) -> Reply:
        address, attributes = body.get("user"), body.get("attributes")
        if not isinstance(address, str) or "@" not in address or not isinstance(attributes, dict):
            return _failure(5, "Badly formatted request", {"user": "A user and attributes are required"})
        local_part, domain = address.split("@", 1)
        if not _LOCAL_PART.match(local_part):
            return _failure(5, "Invalid user name",
                            {"user": "Mailbox names may only contain a-z, 0-9, '.', '_' and '-'"})
        if domain not in self.domains:
            return _failure(2, f"Domain {domain} does not exist")
        hints = self._attribute_hints(attributes, creating=address not in self.users)
        hints.update(self._alias_hints(address, attributes.get("aliases")))
        if hints:
            return _failure(6, "Badly formatted attributes", hints)
        if address in self.users:
            if body.get("create_only"):
                return _failure(self.duplicate_error_number, "Object already exists")
        else:
            self.users[address] = {}
            self.creations[address] += 1
        for key, value in attributes.items():
            if value is None:
                self.users[address].pop(key, None)
            else:
                self.users[address][key] = value
        return Reply.json({"success": True})

    def _attribute_hints(self, attributes: dict[str, Any], *, creating: bool) -> dict[str, str]:
        hints = {key: "Unknown attribute" for key in attributes if key not in _USER_ATTRIBUTES}
        quota = attributes.get("quota")
        if quota is not None and (not isinstance(quota, int) or isinstance(quota, bool) or quota < 0):
            hints["quota"] = "Must be a number of bytes"
        password = attributes.get("password")
        if creating and not password:
            hints["password"] = "A password is required for a new user"
        elif password is not None and len(password) < 8:
            # OMA explains a weak password by quoting it back.
            hints["password"] = f"'{password}' is too short"
        for service in _SERVICES:
            if service in attributes and attributes[service] not in ("enabled", "disabled", "suspended"):
                hints[service] = "Must be enabled, disabled or suspended"
        return hints

    def _alias_hints(self, address: str, aliases: Any) -> dict[str, str]:
        if aliases is None:
            return {}
        if not isinstance(aliases, list) or not all(isinstance(alias, str) for alias in aliases):
            return {"aliases": "Must be a list of addresses"}
        if len(aliases) > _MAX_ALIASES:
            return {"aliases": f"The maximum number of aliases is {_MAX_ALIASES}"}
        taken = [alias for alias in aliases if alias != address and (alias in self.users or any(
            alias in attributes.get("aliases", []) for user, attributes in self.users.items() if user != address))]
        if taken:
            return {"aliases": f"{', '.join(taken)} already in use"}
        domain = address.split("@", 1)[1]
        limit = self.domains.get(domain, {}).get("limit_aliases")
        others = sum(len(attributes.get("aliases", [])) for user, attributes in self.users.items()
                     if user != address and user.endswith("@" + domain))
        if limit is not None and others + len(aliases) > limit:
            return {"aliases": f"The domain allows at most {limit} aliases"}
        return {}

    def _get_user(self, body: dict[str, Any]) -> Reply:
        address = body.get("user")
        if address not in self.users:
            return _failure(2, "User does not exist")
        attributes = {key: value for key, value in self.users[address].items() if key != "password"}
        suspended = any(attributes.get(service) == "suspended" for service in _SERVICES)
        return Reply.json({
            "success": True,
            "type": "mailbox",
            "attributes": attributes,
            "settable_attributes": sorted(_USER_ATTRIBUTES),
            "metadata": {
                "status": "suspended" if suspended else "active",
                "quota": {"bytes_max": attributes.get("quota", 0), "bytes_used": 0,
                          "messages_max": 0, "messages_used": 0},
            },
        })

    def _delete_user(self, body: dict[str, Any]) -> Reply:
        if body.get("user") not in self.users:
            return _failure(2, "User does not exist")
        del self.users[body["user"]]
        return Reply.json({"success": True})

    def _search_users(self, body: dict[str, Any]) -> Reply:
        domain = (body.get("criteria") or {}).get("domain")
        window = body.get("range") or {}
        first, limit = window.get("first", 0), window.get("limit", 50)
        matches = sorted(address for address in self.users if address.endswith("@" + str(domain)))
        page = matches[first:first + limit]
        return Reply.json({"success": True, "count": len(page), "total_count": len(matches),
                           "users": [{"user": address, "type": "mailbox"} for address in page]})
