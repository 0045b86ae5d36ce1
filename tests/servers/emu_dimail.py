"""A dimail API emulator, quirks included (see reference/BACKENDS.md).

- ``GET /token/`` with HTTP Basic hands out Bearer tokens; a missing Bearer
  header answers 401, an unknown token 403.
- A duplicate mailbox, or a mailbox on an unknown domain, answers
  500 text/plain "Internal Server Error".
- Validation errors are 422 with ``detail`` a list of ``{type, loc, msg, input}``.
- Aliases are (name, destination) pairs: creation answers 200, and 409
  when that very pair exists; a name may have several destinations.
  ``GET /domains/{d}/aliases/`` lists pairs (``?user_name=`` one name's,
  412 for ``?destination=`` alone); ``DELETE .../{user}/{destination|all}``
  answers 204, or 404 ``{"detail": "Not found"}``.

State for tests: ``domains``, ``mailboxes`` (address -> fields),
``aliases`` (alias address -> destinations), ``checks`` (domain -> check
name -> ``{ok, internal, errors}``), ``creations`` (address -> how many
times it was really created), ``tokens`` (the valid ones).
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections import Counter
from typing import Any
from urllib.parse import unquote

from .emu_common import Emulator, RecordedRequest, Reply

_LOCAL_PART = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_FEATURES = {"webmail", "mailbox", "alias"}
EXTERNAL_CHECKS = ("domain_exist", "mx", "cname_imap", "cname_smtp", "cname_webmail", "spf", "dkim")
INTERNAL_CHECKS = ("postfix", "ox", "cert")


class DimailEmulator(Emulator):
    def __init__(self, user: str = "portal-api", password: str = "dimail-api-secret") -> None:
        super().__init__()
        self.user = user
        self.password = password
        self.tokens: set[str] = set()
        self.issue_valid_tokens = True
        self.domains: dict[str, dict[str, Any]] = {}
        self.mailboxes: dict[str, dict[str, Any]] = {}
        self.aliases: dict[str, list[str]] = {}
        self.checks: dict[str, dict[str, dict[str, Any]]] = {}
        self.creations: Counter[str] = Counter()
        # False: /fix/ answers but repairs nothing (a broken internal service).
        self.fix_repairs = True

    def expire_tokens(self) -> None:
        """Every token issued so far now answers 403."""
        self.tokens.clear()

    def fail_check(self, domain: str, name: str, detail: str) -> None:
        self.checks[domain][name] = {"ok": False, "internal": name in INTERNAL_CHECKS,
                                     "errors": [{"code": f"bad_{name}", "detail": detail}]}

    # -- dispatch ------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> Reply:
        path, method = request.path, request.method
        if path == "/token/" and method == "GET":
            return self._basic(request) or self._token()
        if path == "/domains/" and method == "POST":
            return self._basic(request) or self._create_domain(request)
        match = re.fullmatch(r"/domains/([^/]+)(/.*)?", path)
        if match is None:
            return Reply.json({"detail": "Not Found"}, 404)
        domain, rest = match.group(1), match.group(2) or ""
        if rest in ("/check", "/fix/", "/spec/") and method == "GET":
            return self._basic(request) or self._domain_admin(domain, rest)
        refusal = self._bearer(request)
        if refusal:
            return refusal
        if rest == "" and method == "GET":
            return Reply.json(self.domains[domain]) if domain in self.domains else self._no_domain()
        if rest == "/mailboxes/" and method == "GET":
            return self._list_mailboxes(domain)
        if rest == "/aliases/" and method == "POST":
            return self._create_alias(domain, request)
        if rest == "/aliases/" and method == "GET":
            return self._list_aliases(domain, request)
        match = re.fullmatch(r"/aliases/([^/]+)/([^/]+)", rest)
        if match and method == "DELETE":
            return self._delete_alias(domain, *match.groups())
        match = re.fullmatch(r"/mailboxes/([^/]+)(/reset_password/)?", rest)
        if match is None:
            return Reply.json({"detail": "Not Found"}, 404)
        local_part, reset = match.groups()
        address = f"{local_part}@{domain}"
        if reset and method == "POST":
            return self._reset_password(address)
        if method == "POST":
            return self._create_mailbox(domain, local_part, request)
        if address not in self.mailboxes:
            return Reply.json({"detail": "Mailbox not found"}, 404)
        if method == "GET":
            return Reply.json(self._mailbox_document(address))
        if method == "PATCH":
            return self._patch_mailbox(address, request)
        if method == "DELETE":
            del self.mailboxes[address]
            return Reply(204)
        return Reply.json({"detail": "Method Not Allowed"}, 405)

    # -- authentication --------------------------------------------------------

    def _basic(self, request: RecordedRequest) -> Reply | None:
        if request.basic_auth() != (self.user, self.password):
            return Reply.json({"detail": "Not authenticated"}, 401)
        return None

    def _bearer(self, request: RecordedRequest) -> Reply | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return Reply.json({"detail": "Not authenticated"}, 401)
        if token not in self.tokens:
            return Reply.json({"detail": "Could not validate credentials"}, 403)
        return None

    def _token(self) -> Reply:
        token = secrets.token_urlsafe(24)
        if self.issue_valid_tokens:
            self.tokens.add(token)
        return Reply.json({"access_token": token, "token_type": "bearer"})

    # -- domains -----------------------------------------------------------------

    def _no_domain(self) -> Reply:
        return Reply.json({"detail": "Domain not found"}, 404)

    def _create_domain(self, request: RecordedRequest) -> Reply:
        body = request.json()
        missing = [key for key in ("name", "features") if key not in body]
        if missing:
            return Reply.json({"detail": [
                {"type": "missing", "loc": ["body", key], "msg": "Field required", "input": body} for key in missing
            ]}, 422)
        unknown = set(body["features"]) - _FEATURES
        if unknown:
            return Reply.json({"detail": [{"type": "enum", "loc": ["body", "features", 0],
                                           "msg": "Input should be 'webmail', 'mailbox' or 'alias'",
                                           "input": sorted(unknown)[0]}]}, 422)
        if "webmail" in body["features"] and not body.get("context_name"):
            return Reply.json({"detail": "OX context name is mandatory for mailbox feature"}, 409)
        name = body["name"]
        if name in self.domains:
            return Reply.json({"detail": "Domain already exists"}, 409)
        self.domains[name] = {"name": name, "features": body["features"], "delivery": body.get("delivery"),
                              "context_name": body.get("context_name")}
        self.checks[name] = {
            **{check: {"ok": True, "internal": False, "errors": []} for check in EXTERNAL_CHECKS},
            **{check: {"ok": True, "internal": True, "errors": []} for check in INTERNAL_CHECKS},
        }
        return Reply.json(self.domains[name], 201)

    def _domain_admin(self, domain: str, rest: str) -> Reply:
        if domain not in self.domains:
            return self._no_domain()
        if rest == "/spec/":
            return Reply.json([
                {"target": "", "type": "mx", "value": "mx.dimail.test."},
                {"target": "", "type": "txt", "value": "v=spf1 include:_spf.dimail.test -all"},
                {"target": "imap", "type": "cname", "value": "imap.dimail.test."},
                {"target": "dimail._domainkey", "type": "txt", "value": "v=DKIM1; k=rsa; p=MIIBIjANBgkq"},
            ])
        if rest == "/fix/" and self.fix_repairs:
            for check in INTERNAL_CHECKS:
                self.checks[domain][check] = {"ok": True, "internal": True, "errors": []}
        checks = self.checks[domain]
        state = "ok" if all(check["ok"] for check in checks.values()) else "broken"
        return Reply.json({**self.domains[domain], "state": state, "valid": state == "ok", **checks})

    # -- mailboxes ----------------------------------------------------------------

    def _mailbox_document(self, address: str) -> dict[str, Any]:
        local_part, domain = address.split("@")
        return {"type": "mailbox", "status": "ok", "email": address, "username": local_part,
                "domain": domain, **{k: v for k, v in self.mailboxes[address].items() if k != "password"}}

    def _list_mailboxes(self, domain: str) -> Reply:
        if domain not in self.domains:
            return self._no_domain()
        documents = [self._mailbox_document(a) for a in sorted(self.mailboxes) if a.endswith("@" + domain)]
        documents += [{"type": "alias", "status": "ok", "email": alias, "uuid": str(uuid.uuid4())}
                      for alias in sorted(self.aliases) if alias.endswith("@" + domain)]
        return Reply.json(documents)

    def _create_mailbox(self, domain: str, local_part: str, request: RecordedRequest) -> Reply:
        body = request.json()
        missing = [key for key in ("givenName", "surName", "displayName") if not isinstance(body.get(key), str)]
        if missing:
            return Reply.json({"detail": [
                {"type": "missing", "loc": ["body", key], "msg": "Field required", "input": body} for key in missing
            ]}, 422)
        if not _LOCAL_PART.match(local_part):
            return Reply.json({"detail": [{"type": "value_error", "loc": ["path", "user_name"],
                                           "msg": "Value error, invalid mailbox name", "input": local_part}]}, 422)
        address = f"{local_part}@{domain}"
        if domain not in self.domains or address in self.mailboxes:
            return Reply.text("Internal Server Error", 500)
        password = secrets.token_urlsafe(12)
        self.mailboxes[address] = {"givenName": body["givenName"], "surName": body["surName"],
                                   "displayName": body["displayName"], "active": "yes",
                                   "uuid": str(uuid.uuid4()), "password": password}
        self.creations[address] += 1
        return Reply.json({"email": address, "password": password, "uuid": self.mailboxes[address]["uuid"]}, 201)

    def _patch_mailbox(self, address: str, request: RecordedRequest) -> Reply:
        body = request.json()
        if "active" in body:
            if body["active"] not in ("yes", "no"):
                return Reply.json({"detail": [{"type": "enum", "loc": ["body", "active"],
                                               "msg": "Input should be 'yes' or 'no'", "input": body["active"]}]}, 422)
            self.mailboxes[address]["active"] = body["active"]
        for key in ("givenName", "surName", "displayName"):
            if key in body:
                self.mailboxes[address][key] = body[key]
        return Reply.json(self._mailbox_document(address))

    def _reset_password(self, address: str) -> Reply:
        if address not in self.mailboxes:
            return Reply.json({"detail": "Mailbox not found"}, 404)
        self.mailboxes[address]["password"] = secrets.token_urlsafe(12)
        return Reply.json({"email": address, "password": self.mailboxes[address]["password"]})

    def _alias_document(self, alias: str, destination: str) -> dict[str, Any]:
        username, domain = alias.split("@")
        return {"username": username, "domain": domain, "destination": destination, "allow_to_send": False}

    def _create_alias(self, domain: str, request: RecordedRequest) -> Reply:
        body = request.json()
        missing = [key for key in ("user_name", "destination") if not isinstance(body.get(key), str)]
        if missing:
            return Reply.json({"detail": [
                {"type": "missing", "loc": ["body", key], "msg": "Field required", "input": body} for key in missing
            ]}, 422)
        if domain not in self.domains:
            return Reply.json({"detail": "Permission denied"}, 403)
        alias = f"{body['user_name']}@{domain}"
        if body["destination"] in self.aliases.get(alias, []):
            return Reply.json({"detail": "Alias already exists"}, 409)
        self.aliases.setdefault(alias, []).append(body["destination"])
        return Reply.json(self._alias_document(alias, body["destination"]))

    def _list_aliases(self, domain: str, request: RecordedRequest) -> Reply:
        if domain not in self.domains:
            return Reply.json({"detail": "Permission denied"}, 403)
        user_name = (request.query.get("user_name") or [""])[0]
        destination = (request.query.get("destination") or [""])[0]
        if destination and not user_name:
            return Reply.json({"detail": "It is forbiden to only provide the destination in a request"}, 412)
        pairs = [(alias, target) for alias, targets in sorted(self.aliases.items()) for target in targets
                 if alias.endswith("@" + domain)
                 and (not user_name or alias == f"{user_name}@{domain}")
                 and (not destination or target == destination)]
        if user_name and destination and not pairs:
            return Reply.json({"detail": "Alias not found"}, 404)
        return Reply.json([self._alias_document(alias, target) for alias, target in pairs])

    def _delete_alias(self, domain: str, user_name: str, destination: str) -> Reply:
        if domain not in self.domains:
            return Reply.json({"detail": "Permission denied"}, 403)
        alias = f"{unquote(user_name)}@{domain}"
        targets = self.aliases.get(alias, [])
        destination = unquote(destination)
        removed = list(targets) if destination == "all" else [t for t in targets if t == destination]
        if not removed:
            return Reply.json({"detail": "Not found"}, 404)
        remaining = [t for t in targets if t not in removed]
        if remaining:
            self.aliases[alias] = remaining
        else:
            del self.aliases[alias]
        return Reply(204)
