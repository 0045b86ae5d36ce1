"""A dimail API emulator that behaves as the real dimail-api was seen doing
(reference/OBSERVED.md), in one of two modes.

``mode="public"`` is the newest public dimail-api: it has no
``/domains/{d}/check``, ``/fix/``, ``/spec/`` or ``.../reset_password/``
routes (``404 {"detail": "Not Found"}``), and ``PATCH`` of a mailbox takes
only names: ``active`` is ignored and the answer is still 200.
``mode="current"`` is the newer deployment La Suite People calls: it has
those routes, and it keeps ``active`` and reports it in mailbox documents.
Each mode serves ``/openapi.json`` listing exactly its routes, with the
``UpdateMailbox`` schema its ``PATCH`` takes.

What both modes do, as observed:

- ``GET /token/`` with HTTP Basic hands out Bearer tokens; no Basic header
  answers 401 ``Not authenticated``, a wrong password 403 ``Permission
  denied``. A missing Bearer header answers 403 ``Not authenticated``, an
  unknown token 403 ``Permission denied``.
- A duplicate mailbox, a mailbox on an unknown domain, or a local part
  longer than the 128 characters dovecot's table holds answers
  ``500 text/plain "Internal Server Error"``, and the kept-alive connection
  is then dropped without a ``Connection: close`` header. The too-long
  mailbox stays behind half made (Open-Xchange only, status ``broken``).
- The mailbox list includes the Open-Xchange context administrator
  ``oxadmin@<domain>`` (status ``broken``: it has no dovecot half); mailbox
  documents carry ``type``, ``status``, ``email`` and the three names, no
  ``uuid``, ``username`` or ``domain``.
- ``displayName`` is ignored on creation (the stored name is "givenName
  surName"); ``PATCH`` can change it. Local parts are taken as given,
  upper case and ``..`` included, and are case-sensitive; a ``/`` in one
  (``%2F``) matches no route.
- Aliases are (name, destination) pairs: creation answers 200, also on a
  domain dimail does not know, and 409 when that very pair exists; alias
  documents are ``{username, domain, destination}``. ``GET
  /domains/{d}/aliases/`` lists pairs (``?user_name=`` one name's, 412 for
  ``?destination=`` alone); ``DELETE .../{user}/{destination|all}``
  answers 204, or 404 ``{"detail": "Not found"}``.
- Deleting a mailbox that does not exist answers 404 ``Mailbox not found``.
- A path that only lacks (or has an extra) trailing slash answers 307 to
  the other spelling, before any authentication.
- Validation errors are 422 with ``detail`` a list of ``{type, loc, msg, input}``.

State for tests: ``domains``, ``mailboxes`` (address -> fields; ``active``
"yes"/"no", ``imap`` False for a mailbox without its dovecot half),
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

MODES = ("public", "current")
_FEATURES = {"webmail", "mailbox", "alias"}
_DOVECOT_USERNAME_LENGTH = 128
EXTERNAL_CHECKS = ("domain_exist", "mx", "cname_imap", "cname_smtp", "cname_webmail", "spf", "dkim")
INTERNAL_CHECKS = ("postfix", "ox", "cert")
CONTEXT_ADMIN = "oxadmin"

_D = "/domains/{domain_name}"
_ROUTES: tuple[tuple[str, str, str], ...] = (
    # (method, OpenAPI path, modes that have it)
    ("GET", "/token/", "public current"),
    ("GET", "/domains/", "public current"),
    ("POST", "/domains/", "public current"),
    ("GET", _D, "public current"),
    ("GET", _D + "/check", "current"),
    ("GET", _D + "/fix/", "current"),
    ("GET", _D + "/spec/", "current"),
    ("GET", _D + "/mailboxes/", "public current"),
    ("GET", _D + "/mailboxes/{user_name}", "public current"),
    ("POST", _D + "/mailboxes/{user_name}", "public current"),
    ("PATCH", _D + "/mailboxes/{user_name}", "public current"),
    ("DELETE", _D + "/mailboxes/{user_name}", "public current"),
    ("POST", _D + "/mailboxes/{user_name}/reset_password/", "current"),
    ("GET", _D + "/aliases/", "public current"),
    ("POST", _D + "/aliases/", "public current"),
    ("DELETE", _D + "/aliases/{user_name}/{destination}", "public current"),
)


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", "([^/]+)", re.escape(template)) + "$")


class DimailEmulator(Emulator):
    def __init__(self, user: str = "portal-api", password: str = "dimail-api-secret", *,
                 mode: str = "current") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        super().__init__()
        self.mode = mode
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
        self.routes = [(method, template, _pattern(template)) for method, template, modes in _ROUTES
                       if mode in modes.split()]

    def expire_tokens(self) -> None:
        """Every token issued so far now answers 403."""
        self.tokens.clear()

    def fail_check(self, domain: str, name: str, detail: str) -> None:
        self.checks[domain][name] = {"ok": False, "internal": name in INTERNAL_CHECKS,
                                     "errors": [{"code": f"bad_{name}", "detail": detail}]}

    def listed(self, domain: str) -> list[str]:
        """The addresses ``GET /domains/{domain}/mailboxes/`` lists, context administrator included."""
        return [document["email"] for document in self._mailbox_documents(domain)]

    # -- dispatch ------------------------------------------------------------

    def _route(self, method: str, path: str) -> tuple[str, list[str]] | None | str:
        """(template, parameters) of the route, "method" when only the method is wrong, None when none."""
        known_path = False
        for route_method, template, pattern in self.routes:
            match = pattern.match(path)
            if match:
                known_path = True
                if route_method == method:
                    return template, list(match.groups())
        return "method" if known_path else None

    def handle(self, request: RecordedRequest) -> Reply:
        if request.path == "/openapi.json" and request.method == "GET":
            return Reply.json(self.openapi())
        # Routes match the decoded path, so an encoded "/" (%2F) splits a segment.
        path = unquote(request.path)
        route = self._route(request.method, path)
        if route is None:
            # FastAPI redirects to the other spelling of a path that differs only by its trailing slash.
            other = path[:-1] if path.endswith("/") else path + "/"
            if self._route(request.method, other) is not None:
                raw = request.path[:-1] if request.path.endswith("/") else request.path + "/"
                return Reply(307, b"", None, {"location": self.url + raw})
            return Reply.json({"detail": "Not Found"}, 404)
        if route == "method":
            return Reply.json({"detail": "Method Not Allowed"}, 405)
        template, parameters = route
        admin_route = template in ("/token/", "/domains/") or template.endswith(("/check", "/fix/", "/spec/"))
        refusal = self._basic(request) if admin_route else self._bearer(request)
        if refusal:
            return refusal
        return self._dispatch(request, template, parameters)

    def _dispatch(self, request: RecordedRequest, template: str, parameters: list[str]) -> Reply:
        method = request.method
        if template == "/token/":
            return self._token()
        if template == "/domains/":
            return self._create_domain(request) if method == "POST" else Reply.json(list(self.domains.values()))
        domain, *rest = parameters
        if template == _D:
            return Reply.json(self.domains[domain]) if domain in self.domains else self._no_domain()
        if template.endswith(("/check", "/fix/", "/spec/")):
            return self._domain_admin(domain, template.rsplit("/", 2)[-2] if template.endswith("/") else "check")
        if template == _D + "/mailboxes/":
            return self._list_mailboxes(domain)
        if template == _D + "/aliases/":
            return self._create_alias(domain, request) if method == "POST" else self._list_aliases(domain, request)
        if template.startswith(_D + "/aliases/"):
            return self._delete_alias(domain, *rest)
        address = f"{rest[0]}@{domain}"
        if template.endswith("/reset_password/"):
            return self._reset_password(address)
        if method == "POST":
            return self._create_mailbox(domain, rest[0], request)
        if domain not in self.domains:
            return self._no_domain()
        if method == "GET":
            document = self._mailbox_document(address)
            return Reply.json(document) if document else Reply.json({"detail": "Mailbox not found"}, 404)
        if address not in self.mailboxes or not self.mailboxes[address].get("imap", True):
            return Reply.json({"detail": "Mailbox not found"}, 404)
        if method == "PATCH":
            return self._patch_mailbox(address, request)
        del self.mailboxes[address]
        return Reply(204)

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document of this mode: its routes, and what its PATCH takes."""
        paths: dict[str, dict[str, Any]] = {}
        for method, template, _ in self.routes:
            operation: dict[str, Any] = {"responses": {"200": {"description": "Successful Response"}}}
            if method == "PATCH":
                operation["requestBody"] = {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/UpdateMailbox"}}}}
            paths.setdefault(template, {})[method.lower()] = operation
        text = {"anyOf": [{"type": "string"}, {"type": "null"}]}
        update = {name: text for name in ("domain", "user_name", "givenName", "surName", "displayName")}
        if self.mode == "current":
            update["active"] = text
        return {"openapi": "3.1.0", "info": {"title": "dimail", "version": "0.1.0"}, "paths": paths,
                "components": {"schemas": {"UpdateMailbox": {"type": "object", "title": "UpdateMailbox",
                                                             "properties": update}}}}

    # -- authentication --------------------------------------------------------

    def _basic(self, request: RecordedRequest) -> Reply | None:
        credentials = request.basic_auth()
        if credentials is None:
            reply = Reply.json({"detail": "Not authenticated"}, 401)
            reply.headers["www-authenticate"] = "Basic"
            return reply
        if credentials != (self.user, self.password):
            return Reply.json({"detail": "Permission denied"}, 403)
        return None

    def _bearer(self, request: RecordedRequest) -> Reply | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return Reply.json({"detail": "Not authenticated"}, 403)
        if token not in self.tokens:
            return Reply.json({"detail": "Permission denied"}, 403)
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

    def _domain_admin(self, domain: str, action: str) -> Reply:
        if domain not in self.domains:
            return self._no_domain()
        if action == "spec":
            return Reply.json([
                {"target": "", "type": "mx", "value": "mx.dimail.test."},
                {"target": "", "type": "txt", "value": "v=spf1 include:_spf.dimail.test -all"},
                {"target": "imap", "type": "cname", "value": "imap.dimail.test."},
                {"target": "dimail._domainkey", "type": "txt", "value": "v=DKIM1; k=rsa; p=MIIBIjANBgkq"},
            ])
        if action == "fix" and self.fix_repairs:
            for check in INTERNAL_CHECKS:
                self.checks[domain][check] = {"ok": True, "internal": True, "errors": []}
        checks = self.checks.setdefault(domain, {})
        state = "ok" if all(check["ok"] for check in checks.values()) else "broken"
        return Reply.json({**self.domains[domain], "state": state, "valid": state == "ok", **checks})

    def _has_webmail(self, domain: str) -> bool:
        return "webmail" in self.domains.get(domain, {}).get("features", _FEATURES)

    # -- mailboxes ----------------------------------------------------------------

    def _mailbox_document(self, address: str) -> dict[str, Any] | None:
        local_part, domain = address.rsplit("@", 1)
        if local_part == CONTEXT_ADMIN and self._has_webmail(domain):
            return {"type": "mailbox", "status": "broken", "email": address,
                    "givenName": "Admin", "surName": "Context", "displayName": "Context Admin"}
        fields = self.mailboxes.get(address)
        if fields is None:
            return None
        document = {"type": "mailbox", "status": "ok" if fields.get("imap", True) else "broken", "email": address,
                    **{key: fields.get(key) for key in ("givenName", "surName", "displayName")}}
        if self.mode == "current":
            document["active"] = fields.get("active", "yes")
        return document

    def _mailbox_documents(self, domain: str) -> list[dict[str, Any]]:
        addresses = sorted(a for a in self.mailboxes if a.rsplit("@", 1)[1] == domain)
        if self._has_webmail(domain):
            addresses.insert(0, f"{CONTEXT_ADMIN}@{domain}")
        return [self._mailbox_document(address) for address in addresses]

    def _list_mailboxes(self, domain: str) -> Reply:
        if domain not in self.domains:
            return self._no_domain()
        return Reply.json(self._mailbox_documents(domain))

    def _server_error(self) -> Reply:
        # uvicorn then drops the kept-alive connection without saying so.
        return Reply(500, b"Internal Server Error", "text/plain; charset=utf-8", close_silently=True)

    def _create_mailbox(self, domain: str, local_part: str, request: RecordedRequest) -> Reply:
        body = request.json()
        missing = [key for key in ("givenName", "surName", "displayName") if not isinstance(body.get(key), str)]
        if missing:
            return Reply.json({"detail": [
                {"type": "missing", "loc": ["body", key], "msg": "Field required", "input": body} for key in missing
            ]}, 422)
        address = f"{local_part}@{domain}"
        if domain not in self.domains or address in self.mailboxes or local_part == CONTEXT_ADMIN:
            return self._server_error()
        fields = {"givenName": body["givenName"], "surName": body["surName"],
                  "displayName": f"{body['givenName']} {body['surName']}", "active": "yes"}
        if len(local_part) > _DOVECOT_USERNAME_LENGTH:
            # Open-Xchange took the user, dovecot's table refused the name: half a mailbox stays.
            self.mailboxes[address] = {**fields, "imap": False}
            return self._server_error()
        password = secrets.token_urlsafe(12)
        self.mailboxes[address] = {**fields, "password": password}
        self.creations[address] += 1
        return Reply.json({"email": address, "password": password, "uuid": str(uuid.uuid4())}, 201)

    def _patch_mailbox(self, address: str, request: RecordedRequest) -> Reply:
        body = request.json()
        if self.mode == "current" and "active" in body:
            if body["active"] not in ("yes", "no"):
                return Reply.json({"detail": [{"type": "enum", "loc": ["body", "active"],
                                               "msg": "Input should be 'yes' or 'no'", "input": body["active"]}]}, 422)
            self.mailboxes[address]["active"] = body["active"]
        for key in ("givenName", "surName", "displayName"):
            if isinstance(body.get(key), str):
                self.mailboxes[address][key] = body[key]
        return Reply.json(self._mailbox_document(address))

    def _reset_password(self, address: str) -> Reply:
        if address not in self.mailboxes:
            return Reply.json({"detail": "Mailbox not found"}, 404)
        self.mailboxes[address]["password"] = secrets.token_urlsafe(12)
        return Reply.json({"email": address, "password": self.mailboxes[address]["password"]})

    # -- aliases -----------------------------------------------------------------

    def _alias_document(self, alias: str, destination: str) -> dict[str, Any]:
        username, domain = alias.rsplit("@", 1)
        return {"username": username, "domain": domain, "destination": destination}

    def _create_alias(self, domain: str, request: RecordedRequest) -> Reply:
        body = request.json()
        missing = [key for key in ("user_name", "destination") if not isinstance(body.get(key), str)]
        if missing:
            return Reply.json({"detail": [
                {"type": "missing", "loc": ["body", key], "msg": "Field required", "input": body} for key in missing
            ]}, 422)
        alias = f"{body['user_name']}@{domain}"
        if body["destination"] in self.aliases.get(alias, []):
            return Reply.json({"detail": "Alias already exists"}, 409)
        self.aliases.setdefault(alias, []).append(body["destination"])
        return Reply.json(self._alias_document(alias, body["destination"]))

    def _list_aliases(self, domain: str, request: RecordedRequest) -> Reply:
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
        alias = f"{user_name}@{domain}"
        targets = self.aliases.get(alias, [])
        removed = list(targets) if destination == "all" else [t for t in targets if t == destination]
        if not removed:
            return Reply.json({"detail": "Not found"}, 404)
        remaining = [t for t in targets if t not in removed]
        if remaining:
            self.aliases[alias] = remaining
        else:
            del self.aliases[alias]
        return Reply(204)
