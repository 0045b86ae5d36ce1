"""An OpenSRS Email (OMA) emulator, quirks included (see reference/BACKENDS.md).

``POST /api/<method>`` with one JSON object. Every well-formed call to a
known method answers HTTP 200, failures included, with the envelope
``{"success": false, "error_number": N, "error": "...", "hints": {...}}``.
Unknown methods answer 404, bodies that are not JSON 400.

State for tests: ``domains``, ``users`` (address -> attributes, password
included), ``creations`` (address -> times created), ``tokens`` (valid
session tokens), ``duplicate_error_number`` (7 by default; the reference's
own example uses 23), ``forced_errors`` (``(number, text)`` pairs answered,
in order, to the next authenticated calls).
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
        self.forced_errors: list[tuple[int, str]] = []

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
        domain = body.get("domain")
        if not isinstance(domain, str) or not isinstance(body.get("attributes"), dict):
            return _failure(5, "Badly formatted request", {"domain": "A domain and attributes are required"})
        if domain in self.domains and body.get("create_only"):
            return _failure(23, "Object already exists")
        self.domains.setdefault(domain, {}).update(body["attributes"])
        return Reply.json({"success": True})

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

    def _get_user(self, body: dict[str, Any]) -> Reply:
        address = body.get("user")
        if address not in self.users:
            return _failure(2, "User does not exist")
        attributes = {key: value for key, value in self.users[address].items() if key != "password"}
        suspended = all(attributes.get(service) == "suspended" for service in _SERVICES)
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
