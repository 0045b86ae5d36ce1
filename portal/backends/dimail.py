"""dimail, the provisioning API in front of Open-XChange (La Suite).

Deployed dimail versions differ (reference/OBSERVED.md): the newest public
dimail-api has no domain ``check``, ``fix/`` or ``spec/`` routes and no
``reset_password/``, and its ``PATCH`` of a mailbox ignores ``active``;
newer deployments have all of them. Every dimail serves ``/openapi.json``,
so the adapter reads it once per connection (``discover()``), and reads it
again when a route answers ``404 {"detail": "Not Found"}``. The connection's
capabilities follow what the server lists. A change whose answer does not
prove it (``active``) is read back, and a change the server did not keep
fails with ``ChangeNotKept``, never a false success.

Wire facts this adapter is built on (see reference/BACKENDS.md and OBSERVED.md):

- Admin routes (``/token/``, ``POST /domains/``, a domain's ``check``,
  ``fix/`` and ``spec/``) take HTTP Basic (a wrong password answers 403
  ``Permission denied``); mailbox, alias and single-domain routes take
  ``Authorization: Bearer`` with a token from ``GET /token/``. A bad or
  expired token answers 403: the adapter fetches a new token once, then
  gives up with a permanent error.
- A duplicate mailbox, a mailbox on an unknown domain, or a local part longer
  than 128 characters answers 500 text/plain, and uvicorn then drops the
  kept-alive connection without saying so (``HttpClient`` never reuses a
  connection after a 5xx). A create therefore looks the mailbox up before
  deciding anything. Local parts are otherwise taken as given (upper case
  and ``..`` included), so the adapter refuses up front what dimail cannot
  hold (``address_problem``).
- The mailbox list includes the Open-Xchange context administrator
  ``oxadmin@<domain>`` (status ``broken``), reported as a system mailbox;
  documents have no ``uuid`` and, on the public version, no ``active``.
  ``displayName`` is ignored on creation (the name is "givenName surName").
- Validation errors are 422 with ``detail`` a list of ``{loc, msg}``.
- Aliases are (name, destination) pairs under ``/domains/{d}/aliases/``:
  ``POST`` answers 200 (not 201), also on a domain dimail does not serve
  (so the adapter checks the domain first), and 409 when that very pair exists;
  ``GET`` lists the domain's pairs, ``?user_name=`` one name's;
  ``DELETE .../{user}/{destination}`` answers 204, or 404 "Not found" when
  the pair is gone (FastAPI's unknown route says "Not Found").
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from .base import (
    Backend,
    BackendError,
    BackendNotFound,
    Capabilities,
    ChangeNotKept,
    CheckResult,
    DnsRecord,
    DomainCheck,
    MailboxSpec,
    PermanentBackendError,
    ProvisionResult,
    RemoteMailbox,
    UnexpectedResponse,
    Unsupported,
    expect_list,
    expect_mapping,
    expect_str,
    mail_records,
    record_purpose,
    split_address,
)
from .http import HttpClient
from .registry import register_backend

log = logging.getLogger(__name__)

_FEATURES = ["webmail", "mailbox", "alias"]
# The Open-Xchange context administrator every dimail domain has.
CONTEXT_ADMIN = "oxadmin"
# dovecot's users table keeps at most this many characters of a name (and of a domain).
_NAME_LENGTH = 128
_MAILBOX_ROUTE = "/domains/{}/mailboxes/{}"
# Capability -> (method, route) that provides it, in OpenAPI path form with parameters as {}.
_OPTIONAL_ROUTES = {
    "domain_check": ("get", "/domains/{}/check"),
    "domain_fix": ("get", "/domains/{}/fix/"),
    "dns_spec": ("get", "/domains/{}/spec/"),
    "mailbox_password_reset": ("post", _MAILBOX_ROUTE + "/reset_password/"),
}
_WITHOUT = {
    "domain_check": "This dimail has no domain check (no /domains/{domain}/check route): the portal checks "
                    "the domain's DNS records itself.",
    "domain_fix": "This dimail cannot repair domains (no /domains/{domain}/fix/ route): problems on its side "
                  "must be repaired by its operator.",
    "dns_spec": "This dimail does not state the DNS records (no /domains/{domain}/spec/ route): the records "
                "shown come from the connection's mx_host and spf_include settings.",
    "mailbox_password_reset": "This dimail cannot reset passwords (no reset_password route): a new password "
                              "must be set in Open-Xchange by its operator.",
    "mailbox_disable": "This dimail ignores \"active\" when a mailbox is changed: mailboxes cannot be "
                       "disabled here; delete them instead.",
}
_PATH_PARAMETER = re.compile(r"\{[^}/]*\}")


def _segment(text: str) -> str:
    return quote(text, safe="")


@register_backend
class DimailBackend(Backend):
    name = "dimail"
    label = "dimail (Open-XChange)"
    required_settings = ("url", "user", "password")
    optional_settings = {
        "context_name": "Open-XChange context for new domains; default the domain name",
        "mx_host": "host the domains' MX record points at, where dimail does not state the records "
                   "(no spec route); default the host name of url",
        "spf_include": "domain the SPF record includes, where dimail does not state the records",
    }
    secret_settings = frozenset({"password"})
    capabilities = Capabilities(
        domain_api=True,
        domain_check=True,
        domain_fix=True,
        dns_spec=True,
        domain_settings=False,
        needs_subscription=False,
        mailbox_create=True,
        mailbox_delete=True,
        mailbox_delete_archives=False,
        mailbox_disable=True,
        mailbox_password_reset=True,
        mailbox_password_set=False,
        mailbox_quota=False,
        mailbox_list=True,
        mailbox_aliases=True,
        mailbox_alias_remove=True,
        mailbox_admin_privilege=False,
        protocol_flags=False,
        notes={
            "domain_settings": "A dimail domain has only its features and its Open-XChange context; "
                               "quotas, limits and spam filtering are set up in Open-XChange.",
            "mailbox_password_set": "dimail always generates mailbox passwords itself.",
            "mailbox_quota": "dimail has no quota API; quotas follow the Open-XChange context.",
            "mailbox_aliases": "Aliases are listed and managed in the mailbox's own domain.",
            "mailbox_admin_privilege": "Administrators are dimail API users, not mailboxes.",
            "protocol_flags": "Webmail, IMAP and SMTP come with the domain's features for every mailbox.",
        },
    )

    def __init__(self, settings: Mapping[str, str], *, timeout: float) -> None:
        super().__init__(settings, timeout=timeout)
        self._http = HttpClient(self.settings["url"], service="dimail", timeout=self.timeout, scrub=self.scrub)
        self._basic = (self.settings["user"], self.settings["password"])
        self._token: str | None = None
        self._offer: Capabilities | None = None
        # Set when a read-back showed the server ignoring "active" whatever its OpenAPI document says.
        self._ignores_active = False

    # -- what this dimail offers -------------------------------------------

    def discover(self) -> Capabilities:
        """The capabilities of the connected dimail, from its OpenAPI document (read once, then cached)."""
        if self._offer is None:
            self._offer = self._read_offer()
            self.capabilities = self._offer
        return self._offer

    def _rediscover(self) -> Capabilities:
        self._offer = None
        return self.discover()

    def _read_offer(self) -> Capabilities:
        response = self._http.send("GET", "/openapi.json")
        if response.status_code == 404:
            raise PermanentBackendError(
                f"dimail has no OpenAPI document at {self._http.base_url}/openapi.json (HTTP 404), which every "
                "dimail serves: check the connection's url",
                code="rejected",
            )
        if response.status_code != 200:
            raise self._http.error_for(response, self._read_error(response)[0])
        document = expect_mapping(self._http.json(response), "dimail OpenAPI document")
        paths = expect_mapping(document.get("paths"), "dimail OpenAPI paths")
        routes = {(method.lower(), _PATH_PARAMETER.sub("{}", path)): operation
                  for path, operations in paths.items() if isinstance(operations, Mapping)
                  for method, operation in operations.items()}
        missing = {name: _WITHOUT[name] for name, route in _OPTIONAL_ROUTES.items() if route not in routes}
        patch = routes.get(("patch", _MAILBOX_ROUTE))
        fields = _request_fields(document, patch) if isinstance(patch, Mapping) else set()
        if self._ignores_active or (fields is not None and "active" not in fields):
            missing["mailbox_disable"] = _WITHOUT["mailbox_disable"]
        return type(self).capabilities.without(missing)

    def _unsupported(self, method: str, capability: str) -> Unsupported:
        phrase = {"check_domain": "check domains", "fix_domain": "repair domains",
                  "reset_password": "reset mailbox passwords"}[method]
        note = self.capabilities.notes.get(capability, "")
        return Unsupported(f"{self.label} cannot {phrase}. {note}".strip(), code="unsupported")

    def _missing_route(self, response: requests.Response, method: str, capability: str) -> BackendError:
        """The error for a failed call to an optional route: Unsupported when the server no longer lists it."""
        if self._is_route_missing(response) and not getattr(self._rediscover(), capability):
            return self._unsupported(method, capability)
        return self._error(response)

    # -- address rules -------------------------------------------------------

    @classmethod
    def address_problem(cls, local_part: str, domain: str) -> str | None:
        """What dimail really refuses; it takes upper case, ``..`` and most characters as given."""
        if "/" in local_part:
            # An encoded "/" still splits the path: no route matches.
            return "dimail cannot address a mailbox whose name contains \"/\"."
        if len(local_part) > _NAME_LENGTH:
            return (f"dimail keeps at most {_NAME_LENGTH} characters before the @ (it fails on longer "
                    "names and leaves half a mailbox behind).")
        if len(domain) > _NAME_LENGTH:
            return f"dimail keeps domain names of at most {_NAME_LENGTH} characters."
        if local_part == CONTEXT_ADMIN:
            return f"{CONTEXT_ADMIN}@ is the Open-Xchange administrator dimail makes for every domain."
        return None

    @classmethod
    def alias_problem(cls, local_part: str, domain: str) -> str | None:
        if "/" in local_part:
            return "dimail cannot address an alias whose name contains \"/\"."
        if local_part == CONTEXT_ADMIN:
            return f"{CONTEXT_ADMIN}@ is the Open-Xchange administrator dimail makes for every domain."
        return None

    # -- transport ---------------------------------------------------------

    def _admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self._http.send(method, path, auth=self._basic, **kwargs)

    def _user(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A Bearer call, with one token refresh when the token is refused."""
        for _ in range(2):
            if self._token is None:
                self._token = self._fetch_token()
            response = self._http.send(
                method, path, headers={"Authorization": f"Bearer {self._token}"}, **kwargs
            )
            if response.status_code not in (401, 403):
                return response
            self._token = None
        raise PermanentBackendError(
            f"dimail refused a freshly issued token (HTTP {response.status_code}): {self._detail(response)}; "
            "check the API user's permissions on this domain",
            code="auth",
        )

    def _fetch_token(self) -> str:
        response = self._admin("GET", "/token/")
        if response.status_code != 200:
            raise self._http.error_for(response, self._read_error(response)[0])
        body = expect_mapping(self._http.json(response), "dimail token")
        token = expect_str(body, "access_token", "dimail token")
        self.remember_secret(token)
        return token

    def _detail(self, response: requests.Response) -> str:
        return self._read_error(response)[0] or self._http.describe_body(response)

    def _read_error(self, response: requests.Response) -> tuple[str | None, dict[str, str]]:
        """dimail's explanation of an error and, for 422, the message per field."""
        try:
            body = response.json()
        except ValueError:
            return self._http.message(response), {}
        detail = body.get("detail") if isinstance(body, Mapping) else None
        if isinstance(detail, str):
            return detail, {}
        if isinstance(detail, list):
            hints: dict[str, str] = {}
            for item in detail:
                if isinstance(item, Mapping):
                    location = ".".join(str(part) for part in item.get("loc", []) if part != "body")
                    hints[location or "request"] = str(item.get("msg", "invalid"))
            return "; ".join(f"{field}: {message}" for field, message in hints.items()) or None, hints
        return None, {}

    def _error(self, response: requests.Response) -> BackendError:
        detail, hints = self._read_error(response)
        if self._is_missing(response):
            return BackendNotFound(f"dimail: {self.scrub(detail or 'not found')}", code="not_found")
        return self._http.error_for(response, detail, hints=hints)

    def _is_missing(self, response: requests.Response) -> bool:
        """Whether a 404 says an object is missing, rather than the route.

        dimail names the missing object ("Mailbox not found"); FastAPI answers
        an unknown route, such as one under a wrong url, with "Not Found".
        """
        return response.status_code == 404 and self._read_error(response)[0] not in (None, "Not Found")

    def _is_route_missing(self, response: requests.Response) -> bool:
        return response.status_code == 404 and self._read_error(response)[0] == "Not Found"

    # -- health and domains ------------------------------------------------

    def _probe(self) -> str:
        self._token = self._fetch_token()
        return "dimail accepted the API credentials"

    def ensure_domain(self, domain: str) -> None:
        response = self._admin("POST", "/domains/", json={
            "name": domain,
            "context_name": self.settings.get("context_name") or domain,
            "features": _FEATURES,
            "delivery": "virtual",
        })
        if response.status_code in (200, 201):
            return
        if response.status_code == 409 and self._domain_exists(domain):
            return
        raise self._error(response)

    def _domain_exists(self, domain: str) -> bool:
        response = self._user("GET", f"/domains/{_segment(domain)}")
        if response.status_code == 200:
            return True
        if self._is_missing(response):
            return False
        raise self._error(response)

    def check_domain(self, domain: str) -> DomainCheck:
        return self._domain_check("check_domain", "domain_check", f"/domains/{_segment(domain)}/check")

    def fix_domain(self, domain: str) -> DomainCheck:
        return self._domain_check("fix_domain", "domain_fix", f"/domains/{_segment(domain)}/fix/")

    def _domain_check(self, method: str, capability: str, path: str) -> DomainCheck:
        if not getattr(self.discover(), capability):
            raise self._unsupported(method, capability)
        response = self._admin("GET", path)
        if response.status_code != 200:
            raise self._missing_route(response, method, capability)
        body = expect_mapping(self._http.json(response), "dimail domain check")
        state = body.get("state")
        if state not in ("ok", "broken"):
            raise UnexpectedResponse(f"dimail domain check: unknown state {state!r}", code="unexpected_response")
        checks = [
            CheckResult(
                name=name,
                ok=value["ok"] is True,
                internal=value["internal"] is True,
                messages=[
                    self.scrub(str(error.get("detail") or error.get("code")))
                    for error in value.get("errors") or []
                    if isinstance(error, Mapping)
                ],
            )
            for name, value in body.items()
            if isinstance(value, Mapping) and "ok" in value and "internal" in value
        ]
        return DomainCheck.from_checks(checks, backend_says_ok=state == "ok")

    def required_records(self, domain: str) -> list[DnsRecord]:
        """The records dimail states for the domain, or those of this connection's settings without a spec route."""
        if not self.discover().dns_spec:
            return self._configured_records(domain)
        response = self._admin("GET", f"/domains/{_segment(domain)}/spec/")
        if response.status_code != 200:
            if self._is_route_missing(response) and not self._rediscover().dns_spec:
                return self._configured_records(domain)
            raise self._error(response)
        records = []
        for item in expect_list(self._http.json(response), "dimail domain spec"):
            item = expect_mapping(item, "dimail domain spec record")
            target = str(item.get("target") or "").rstrip(".")
            record_type = expect_str(item, "type", "dimail domain spec record").upper()
            value = expect_str(item, "value", "dimail domain spec record")
            if target in ("", "@"):
                name = domain
            elif target == domain or target.endswith("." + domain):
                name = target
            else:
                name = f"{target}.{domain}"
            records.append(DnsRecord(name, record_type, value, record_purpose(name, record_type, value)))
        return records

    def _configured_records(self, domain: str) -> list[DnsRecord]:
        mx_host = self.settings.get("mx_host") or urlsplit(self.settings["url"]).hostname or ""
        try:
            ipaddress.ip_address(mx_host.strip("[]"))
        except ValueError:
            return mail_records(domain, mx_host, self.settings.get("spf_include") or "")
        # An MX names a host, never an address: a dimail reached at an IP (and stating no records
        # of its own) needs its mail host set.
        raise PermanentBackendError(
            "this dimail states no DNS records and is reached at an IP address, which cannot be an MX: set the "
            "connection's mx_host (and spf_include) to the mail host's name", code="config")

    # -- mailboxes ---------------------------------------------------------

    def _mailbox_path(self, address: str) -> str:
        local_part, domain = split_address(address)
        return f"/domains/{_segment(domain)}/mailboxes/{_segment(local_part)}"

    def create_mailbox(self, spec: MailboxSpec) -> ProvisionResult:
        """Create the mailbox; dimail generates its password (``spec.password`` is not used).

        dimail stores the name "givenName surName" whatever ``displayName`` says, but keeps the
        ``displayName`` a ``PATCH`` sends: the mailbox's own name (the sender's name in webmail)
        is sent that way when it differs ("contact", not "contact contact").
        """
        self.refuse_bad_address(spec)
        self.discover()
        self.refuse_unsupported_spec(spec)
        given_name, surname, display_name = _names(spec)
        response = self._user("POST", self._mailbox_path(spec.address), json={
            "givenName": given_name,
            "surName": surname,
            "displayName": display_name,
        })
        if response.status_code in (200, 201):
            body = expect_mapping(self._http.json(response), "dimail new mailbox")
            password = expect_str(body, "password", "dimail new mailbox")
            self.remember_secret(password)
            if display_name != f"{given_name} {surname}":
                self._name_after_creation(spec.address, display_name)
            if not spec.active:
                self.set_mailbox_active(spec.address, False)
            backend_id = body.get("uuid")
            return ProvisionResult(spec.address, str(backend_id) if backend_id else None, password, created=True)
        if response.status_code >= 500:
            # The answer dimail gives for a duplicate: see whether an earlier
            # attempt created the mailbox before calling it a failure.
            existing = self.get_mailbox(spec.address)
            if existing is not None and existing.extra.get("status") == "broken":
                raise PermanentBackendError(
                    f"dimail failed to create {spec.address} and now lists it as broken (only one of "
                    "Open-Xchange and dovecot has it): its operator must repair or remove it",
                    code="broken",
                )
            if existing is not None:
                if existing.active and not spec.active:
                    self.set_mailbox_active(spec.address, False)
                return ProvisionResult(spec.address, existing.backend_id, None, created=False)
            if not self._domain_exists(spec.domain):
                raise BackendNotFound(
                    f"dimail does not know the domain {spec.domain}; set the domain up first", code="not_found"
                )
        raise self._error(response)

    def get_mailbox(self, address: str) -> RemoteMailbox | None:
        response = self._user("GET", self._mailbox_path(address))
        if self._is_missing(response):
            return None
        if response.status_code != 200:
            raise self._error(response)
        return _remote_mailbox(expect_mapping(self._http.json(response), "dimail mailbox"))

    def list_mailboxes(self, domain: str) -> list[RemoteMailbox]:
        """Every mailbox of the domain, the Open-Xchange context administrator marked ``system``."""
        response = self._user("GET", f"/domains/{_segment(domain)}/mailboxes/")
        if response.status_code != 200:
            raise self._error(response)
        return [
            _remote_mailbox(item)
            for item in (
                expect_mapping(entry, "dimail mailbox")
                for entry in expect_list(self._http.json(response), "dimail mailboxes")
            )
            if item.get("type", "mailbox") == "mailbox"
        ]

    def set_mailbox_active(self, address: str, active: bool) -> None:
        """Enable or disable, then read the mailbox back: dimail's answer does not show whether it kept it."""
        if not self.discover().mailbox_disable:
            raise self.unsupported("set_mailbox_active")
        response = self._user("PATCH", self._mailbox_path(address), json={"active": "yes" if active else "no"})
        if response.status_code != 200:
            raise self._error(response)
        kept = self.get_mailbox(address)
        if kept is None:
            raise BackendNotFound(f"dimail has no mailbox {address}", code="not_found")
        if kept.extra.get("reports_active") and kept.active == active:
            return
        self._ignores_active = True
        self._offer = self.capabilities = self.capabilities.without({"mailbox_disable": _WITHOUT["mailbox_disable"]})
        raise ChangeNotKept(
            f"dimail answered the change with success but did not keep it: {address} is still "
            f"{'enabled' if kept.active else 'disabled'}. {_WITHOUT['mailbox_disable']}",
            active=kept.active,
        )

    def _name_after_creation(self, address: str, display_name: str) -> None:
        """The display name dimail ignored on creation. The mailbox exists and works whatever the
        answer: a refusal leaves it named "givenName surName", and is logged, not raised."""
        try:
            response = self._user("PATCH", self._mailbox_path(address), json={"displayName": display_name})
        except BackendError as error:
            log.warning("dimail kept the name of %s as given and surname: %s", address, error)
            return
        if response.status_code not in (200, 204):
            log.warning("dimail kept the name of %s as given and surname: HTTP %s", address, response.status_code)

    def delete_mailbox(self, address: str) -> bool:
        response = self._user("DELETE", self._mailbox_path(address))
        if response.status_code in (200, 204):
            return True
        if self._is_missing(response):
            # dimail answers 404 for a mailbox it lists as broken (only one of Open-Xchange and
            # dovecot has it), and keeps it: that is not "already gone".
            left = self.get_mailbox(address)
            if left is not None and left.extra.get("broken"):
                raise PermanentBackendError(
                    f"dimail cannot delete {address}: it lists it as broken (only one of Open-Xchange and "
                    "dovecot has it); its operator must repair or remove it", code="broken")
            return False
        raise self._error(response)

    def reset_password(self, address: str) -> str:
        if not self.discover().mailbox_password_reset:
            raise self._unsupported("reset_password", "mailbox_password_reset")
        response = self._user("POST", self._mailbox_path(address) + "/reset_password/")
        if response.status_code not in (200, 201):
            raise self._missing_route(response, "reset_password", "mailbox_password_reset")
        body = expect_mapping(self._http.json(response), "dimail password reset")
        password = expect_str(body, "password", "dimail password reset")
        self.remember_secret(password)
        return password

    def add_alias(self, address: str, alias: str) -> None:
        alias_local, alias_domain = split_address(alias)
        problem = self.alias_problem(alias_local, alias_domain)
        if problem:
            raise PermanentBackendError(f"{self.label}: {problem}", hints={"alias": problem}, code="invalid")
        if not self._domain_exists(alias_domain):
            # dimail would take it (200) and no mail would ever reach it.
            raise BackendNotFound(
                f"dimail does not serve {alias_domain}: an alias there would receive no mail; "
                "set the domain up on dimail first", code="not_found",
            )
        # dimail would add this destination beside the others (both would
        # get the mail); an alias here belongs to one mailbox.
        elsewhere = [pair["destination"] for pair in self._alias_pairs(alias_domain, user_name=alias_local)
                     if pair["destination"].lower() != address.lower()]
        if elsewhere:
            raise PermanentBackendError(
                f"dimail: {alias} already delivers to {', '.join(elsewhere)}", code="already_exists"
            )
        response = self._user("POST", f"/domains/{_segment(alias_domain)}/aliases/", json={
            "user_name": alias_local,
            "destination": address,
        })
        # dimail answers 200 (not 201) on creation and 409 when the pair exists.
        if response.status_code not in (200, 201, 409):
            raise self._error(response)

    def list_aliases(self, address: str) -> list[str]:
        """The aliases of the mailbox's own domain that deliver to it."""
        if self.get_mailbox(address) is None:
            raise BackendNotFound(f"dimail has no mailbox {address}", code="not_found")
        return sorted(
            f"{pair['username']}@{pair['domain']}"
            for pair in self._alias_pairs(split_address(address)[1])
            if pair["destination"].lower() == address.lower()
        )

    def remove_alias(self, address: str, alias: str) -> None:
        alias_local, alias_domain = split_address(alias)
        response = self._user(
            "DELETE", f"/domains/{_segment(alias_domain)}/aliases/{_segment(alias_local)}/{_segment(address)}"
        )
        if response.status_code not in (200, 204) and not self._is_missing(response):
            raise self._error(response)

    def _alias_pairs(self, domain: str, **query: str) -> list[dict[str, str]]:
        response = self._user("GET", f"/domains/{_segment(domain)}/aliases/", params=query or None)
        if response.status_code != 200:
            raise self._error(response)
        pairs = []
        for item in expect_list(self._http.json(response), "dimail aliases"):
            item = expect_mapping(item, "dimail alias")
            pairs.append({key: expect_str(item, key, "dimail alias") for key in ("username", "domain", "destination")})
        return pairs


def _names(spec: MailboxSpec) -> tuple[str, str, str]:
    """givenName, surName and displayName, all of which dimail requires.

    Missing parts come from the display name, then from the local part, so
    that a shared mailbox such as ``contact@`` is named "contact".
    """
    display_name = spec.full_name or spec.local_part
    words = display_name.split()
    given_name = spec.first_name or words[0]
    surname = spec.last_name or " ".join(words[1:]) or given_name
    return given_name, surname, display_name


def _request_fields(document: Mapping[str, Any], operation: Mapping[str, Any]) -> set[str] | None:
    """The JSON fields an operation's body takes, from its schema; None when the document does not say."""
    try:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        reference = schema.get("$ref", "")
        if reference.startswith("#/components/schemas/"):
            schema = document["components"]["schemas"][reference.rsplit("/", 1)[1]]
        properties = schema["properties"]
    except (KeyError, TypeError, AttributeError):
        return None
    return set(properties) if isinstance(properties, Mapping) else None


def _remote_mailbox(body: Mapping[str, Any]) -> RemoteMailbox:
    address = expect_str(body, "email", "dimail mailbox")
    display_name = body.get("displayName") or " ".join(
        str(part) for part in (body.get("givenName"), body.get("surName")) if part
    )
    status = body.get("status")
    return RemoteMailbox(
        address=address,
        # dimail versions without enable/disable omit the field: such a
        # mailbox cannot be anything but active.
        active=body.get("active", "yes") in ("yes", True),
        quota_bytes=None,
        display_name=str(display_name),
        backend_id=str(body["uuid"]) if body.get("uuid") else None,
        # "broken": half made (only one of Open-Xchange and dovecot has it), but for the context
        # administrator, which dimail always lists so.
        extra={"status": status, "reports_active": "active" in body,
               "broken": status == "broken" and address.rpartition("@")[0] != CONTEXT_ADMIN},
        system=address.rpartition("@")[0] == CONTEXT_ADMIN and status == "broken",
    )
