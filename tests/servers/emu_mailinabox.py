"""A Mail-in-a-Box control panel emulator that behaves as the real v75
management daemon was seen doing (reference/OBSERVED.md), behind the
``/admin`` path of the box's nginx.

- ``/admin/mail/users...`` with HTTP Basic of an administrator's
  ``email:password``. A refusal is 401 with realm ``Mail-in-a-Box
  Management Server`` and an ``X-Reason`` header (403 without them for
  ``X-Requested-With: XMLHttpRequest``); its body is the reason, ``Incorrect
  email address or password.`` or ``Authorization header invalid.`` (no
  credentials), as plain text, or as JSON ``{"status": "error", "reason"}``
  when the request asks for something other than ``*/*``.
- Every text answer, success or error, is sent as Flask sends a ``str``:
  ``text/html; charset=utf-8`` with a plain-text body. JSON answers are
  ``application/json``. A path the daemon has no route for (a trailing
  slash on an API path, too) is Flask's HTML 404 page.
- Only form-encoded bodies are read: a JSON body reads as empty, so adding a
  user with one answers "No email address provided.".
- Adding a user checks, in the box's order: an address at all; its syntax
  ("Invalid email address.", which a special-use domain such as ``.test``
  fails too); lowercase a-z, 0-9, ``_ - .`` only; the six local parts used
  for domain control validation; the password; the quota ("Quotas cannot
  contain spaces, commas, or decimal points.", "Invalid quota."); then
  "User already exists.".
- Success bodies start with a fixed text; "updated DNS: ..." and "web
  updated" lines follow only when the set of mail domains changed.
- "remove" deletes the user; its mail folder stays when it has one, and the
  user is then listed with status ``inactive``; a user without a folder
  disappears from the list. On a real box the folder is made when the user
  is added (the daemon runs ``doveadm quota recalc`` for it), so
  ``folders_on_creation`` is on; a box where it is not (the OBSERVED row: a
  user that never received mail is gone) sets it off, and ``deliver()``
  then gives a user its folder. Adding the address again restores the
  folder. Removing a user that does not exist answers 400 ``That's not a
  user (<address>).``.
- Aliases as in the box's management/mailconfig.py: ``address`` may be
  ``@domain`` (a catch-all, or with ``forwards_to=@other`` a domain alias);
  ``update_if_exists=1`` replaces ("alias updated"); a second add otherwise
  answers "Alias already exists (...)."; removing a missing alias answers
  "That's not an alias (...).". An alias for a domain-control address may
  only forward to the box's administrators. The JSON list has the key
  ``auto`` and shows the box's automatic ``postmaster@``, ``admin@`` and
  ``abuse@`` aliases of every mail domain (and ``hostmaster@`` of the box),
  forwarding to ``administrator@<box>``.

State for tests: ``users`` (address -> password, privileges, quota, status),
``folders`` (address -> messages in its mail folder; an address is there
once it has a folder, which outlives removal), ``aliases``
(address -> {"forwards_to": [...], "permitted_senders": [...] or None}),
``creations`` (address -> times added or restored).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from .emu_common import Emulator, RecordedRequest, Reply

REALM = "Mail-in-a-Box Management Server"
RESERVED_LOCAL_PARTS = ("admin", "administrator", "postmaster", "hostmaster", "webmaster", "abuse")
AUTO_ALIAS_LOCAL_PARTS = ("postmaster", "admin", "abuse")
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")
NOT_LOWERCASE = ("User account email addresses may only use the lowercase ASCII letters a-z, the digits 0-9, "
                 "underscore (_), hyphen (-), and period (.).")
RESERVED = ("You may not make a user account for that address because it is frequently used for domain control "
            "validation. Use an alias instead if necessary.")
DCV_ALIAS = ("This alias can only have administrators of this system as destinations because the address is "
             "frequently used for domain control validation.")
NOT_FOUND_PAGE = (b"<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
                  b"<p>The requested URL was not found on the server. If you entered the URL manually please "
                  b"check your spelling and try again.</p>\n")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"^{_ATOM}(\.{_ATOM})*$")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def valid_address(address: str, *, alias: bool = False) -> bool:
    """The syntax check the box makes with email_validator (no SMTPUTF8, no special-use domains)."""
    local_part, at, domain = address.rpartition("@")
    if not at or len(local_part) > 64 or not (_LOCAL.match(local_part) or (alias and local_part == "")):
        return False
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        return False
    return labels[-1].lower() not in SPECIAL_USE_DOMAINS


def is_domain_control(address: str) -> bool:
    return address.lower().startswith(tuple(f"{local}{sep}" for local in RESERVED_LOCAL_PARTS for sep in "@+"))


def _text(text: str, status: int = 200) -> Reply:
    # What Flask sends for a view that returns a str.
    return Reply(status, text.encode(), "text/html; charset=utf-8")


class MailInABoxEmulator(Emulator):
    def __init__(self, admin: str = "admin@box.test", password: str = "miab-admin-secret",
                 hostname: str = "box.test") -> None:
        super().__init__()
        self.hostname = hostname
        self.users: dict[str, dict[str, Any]] = {
            admin: {"password": password, "privileges": ["admin"], "quota": "0", "status": "active"},
        }
        # Set up by the box's installer: the administrator alias goes to the first admin.
        self.aliases: dict[str, dict[str, Any]] = {
            f"administrator@{hostname}": {"forwards_to": [admin], "permitted_senders": None},
        }
        self.folders: Counter[str] = Counter()
        self.creations: Counter[str] = Counter()
        self.folders_on_creation = True

    def deliver(self, address: str, messages: int = 1) -> None:
        """Put mail in a user's folder, as incoming mail would: the folder now outlives removal."""
        self.folders[address] += messages

    def forwards_to(self, alias: str) -> list[str]:
        return list(self.aliases.get(alias, {}).get("forwards_to", []))

    def handle(self, request: RecordedRequest) -> Reply:
        form = request.form()
        handlers = {
            ("GET", "/admin/mail/users"): lambda: self._list(request),
            ("POST", "/admin/mail/users/add"): lambda: self._add(form),
            ("POST", "/admin/mail/users/remove"): lambda: self._remove(form),
            ("POST", "/admin/mail/users/password"): lambda: self._password(form),
            ("POST", "/admin/mail/users/privileges/add"): lambda: self._privilege(form, add=True),
            ("POST", "/admin/mail/users/privileges/remove"): lambda: self._privilege(form, add=False),
            ("GET", "/admin/mail/users/quota"): lambda: self._get_quota(request),
            ("POST", "/admin/mail/users/quota"): lambda: self._set_quota(form),
            ("GET", "/admin/mail/aliases"): lambda: self._list_aliases(request),
            ("POST", "/admin/mail/aliases/add"): lambda: self._add_alias(form),
            ("POST", "/admin/mail/aliases/remove"): lambda: self._remove_alias(form),
        }
        handler = handlers.get((request.method, request.path))
        if handler is None:
            # Flask routes before it authenticates.
            return Reply(404, NOT_FOUND_PAGE, "text/html; charset=utf-8")
        refusal = self._authorize(request)
        return refusal or handler()

    def _authorize(self, request: RecordedRequest) -> Reply | None:
        credentials = request.basic_auth()
        if not credentials or not credentials[0]:
            reason = "Authorization header invalid."
        else:
            user = self._active(credentials[0])
            if user is None or user["password"] != credentials[1]:
                reason = "Incorrect email address or password."
            elif "admin" not in user["privileges"]:
                reason = "You are not an administrator."
            else:
                return None
        status, headers = 401, {"WWW-Authenticate": f'Basic realm="{REALM}"', "X-Reason": reason}
        if request.headers.get("x-requested-with") == "XMLHttpRequest":
            status, headers = 403, {}
        if request.headers.get("accept", "") in ("", "*/*"):
            return Reply(status, f"{reason}\n".encode(), "text/plain; charset=utf-8", headers)
        reply = Reply.json({"status": "error", "reason": reason}, status)
        reply.headers.update(headers)
        return reply

    def _active(self, address: str) -> dict[str, Any] | None:
        user = self.users.get(address)
        return user if user and user["status"] == "active" else None

    def _not_a_user(self, address: str) -> Reply:
        return _text(f"That's not a user ({address}).", 400)

    def _mail_domains(self) -> set[str]:
        return ({a.split("@")[1] for a in self.users if self._active(a)}
                | {a.split("@")[1] for a in self.aliases
                   if not a.startswith("@") and not a.startswith(tuple(f"{p}@" for p in AUTO_ALIAS_LOCAL_PARTS))})

    def _kicked(self, result: str, domains_before: set[str]) -> Reply:
        """The answer of an operation that may add or remove a mail domain."""
        changed = sorted(self._mail_domains() ^ domains_before)
        extra = f"updated DNS: {', '.join(changed)}\nweb updated\n" if changed else ""
        return _text(f"{result}\n{extra}")

    # -- users -------------------------------------------------------------------

    def _list(self, request: RecordedRequest) -> Reply:
        if request.query.get("format") != ["json"]:
            return _text("".join(f"{a}\n" for a in sorted(self.users) if self._active(a)))
        domains: dict[str, list[dict[str, Any]]] = {}
        for address in sorted(self.users, key=lambda a: (self.users[a]["status"] != "active", a)):
            user = self.users[address]
            local_part, domain = address.split("@")
            if user["status"] == "active":
                entry = {"email": address, "privileges": user["privileges"], "quota": user["quota"],
                         "box_quota": "?", "box_size": "?", "percent": "?", "status": "active"}
            else:
                entry = {"email": address, "privileges": [], "status": "inactive",
                         "mailbox": f"/home/user-data/mail/mailboxes/{domain}/{local_part}",
                         "box_size": "?", "box_quota": "?", "percent": "?"}
            domains.setdefault(domain, []).append(entry)
        return Reply.json([{"domain": domain, "users": users} for domain, users in sorted(domains.items())])

    def _add(self, form: dict[str, str]) -> Reply:
        address, password = form.get("email", ""), form.get("password", "")
        privileges = [p for p in form.get("privileges", "").split("\n") if p.strip()]
        quota = form.get("quota", "0").strip().upper()
        if not address.strip():
            return _text("No email address provided.", 400)
        if not valid_address(address):
            return _text("Invalid email address.", 400)
        if len(address) > 255 or re.search(r"[^@.a-z0-9_-]", address):
            return _text(NOT_LOWERCASE, 400)
        if is_domain_control(address):
            return _text(RESERVED, 400)
        problem = _password_problem(password)
        if problem:
            return _text(problem, 400)
        for privilege in privileges:
            if privilege != "admin":
                return _text(f"That's not a valid privilege ({privilege}).", 400)
        problem = _quota_problem(quota)
        if problem:
            return _text(problem, 400)
        if self._active(address):
            return _text("User already exists.", 400)
        before = self._mail_domains()
        # A restored user finds its folder (self.folders) as the removal left it.
        self.users[address] = {"password": password, "privileges": privileges, "quota": quota, "status": "active"}
        self.creations[address] += 1
        if self.folders_on_creation:
            self.folders[address] += 0  # the folder exists, empty
        return self._kicked("mail user added", before)

    def _remove(self, form: dict[str, str]) -> Reply:
        address = form.get("email", "")
        if self._active(address) is None:
            return self._not_a_user(address)
        before = self._mail_domains()
        if address in self.folders:
            self.users[address].update(status="inactive", privileges=[])
        else:
            del self.users[address]
        return self._kicked("mail user removed", before)

    def _password(self, form: dict[str, str]) -> Reply:
        address = form.get("email", "")
        problem = _password_problem(form.get("password", ""))
        if problem:
            return _text(problem, 400)
        user = self._active(address)
        if user is None:
            return self._not_a_user(address)
        user["password"] = form["password"]
        return _text("OK")

    def _privilege(self, form: dict[str, str], *, add: bool) -> Reply:
        address, privilege = form.get("email", ""), form.get("privilege", "")
        if not privilege.strip() or "\n" in privilege:
            return _text(f"That's not a valid privilege ({privilege}).", 400)
        user = self._active(address)
        if user is None:
            return self._not_a_user(address)
        user["privileges"] = [p for p in user["privileges"] if p != privilege] + ([privilege] if add else [])
        return _text("OK")

    def _get_quota(self, request: RecordedRequest) -> Reply:
        address = (request.query.get("email") or [""])[0]
        user = self._active(address)
        return Reply.json({"email": address, "quota": user["quota"]}) if user else self._not_a_user(address)

    def _set_quota(self, form: dict[str, str]) -> Reply:
        address, quota = form.get("email", ""), form.get("quota", "").strip().upper()
        problem = _quota_problem(quota)
        if problem:
            return _text(problem, 400)
        user = self._active(address)
        if user is None:
            return self._not_a_user(address)
        user["quota"] = quota
        return _text("OK")

    # -- aliases -----------------------------------------------------------------

    def _automatic_aliases(self) -> dict[str, str]:
        administrator = f"administrator@{self.hostname}"
        automatic = {f"hostmaster@{self.hostname}": administrator}
        for domain in self._mail_domains():
            automatic.update({f"{local}@{domain}": administrator for local in AUTO_ALIAS_LOCAL_PARTS})
        return automatic

    def _list_aliases(self, request: RecordedRequest) -> Reply:
        rows = {address: (alias["forwards_to"], alias["permitted_senders"], False)
                for address, alias in self.aliases.items()}
        rows.update({address: ([target], None, True) for address, target in self._automatic_aliases().items()})
        if request.query.get("format") != ["json"]:
            return _text("".join(f"{address}\t{','.join(targets)}\t{','.join(senders or [])}\n"
                                 for address, (targets, senders, _) in sorted(rows.items())))
        domains: dict[str, list[dict[str, Any]]] = {}
        for address, (targets, senders, auto) in sorted(rows.items(), key=lambda row: (row[1][2], row[0])):
            domains.setdefault(address.split("@")[1], []).append(
                {"address": address, "address_display": address, "forwards_to": targets,
                 "permitted_senders": senders, "auto": auto})
        return Reply.json([{"domain": domain, "aliases": aliases} for domain, aliases in sorted(domains.items())])

    def _add_alias(self, form: dict[str, str]) -> Reply:
        address = form.get("address", "").strip().lower()
        forwards_to = form.get("forwards_to", "").strip()
        if not address:
            return _text("No email address provided.", 400)
        if not valid_address(address, alias=True):
            return _text(f"Invalid email address ({address}).", 400)
        domain_control = is_domain_control(address)
        if valid_address(forwards_to, alias=True) and not domain_control:
            targets = [forwards_to]
        else:
            targets = [t.strip() for t in forwards_to.replace("\n", ",").split(",") if t.strip()]
            for target in targets:
                if not valid_address(target):
                    return _text(f"Invalid receiver email address ({target}).", 400)
                user = self._active(target)
                if domain_control and not is_domain_control(target) and "admin" not in (user or {}).get(
                        "privileges", []):
                    return _text(DCV_ALIAS, 400)
        senders = [s.strip() for s in form.get("permitted_senders", "").replace("\n", ",").split(",") if s.strip()]
        for sender in senders:
            if self._active(sender) is None:
                return _text(f"Invalid permitted sender: {sender} is not a user on this system.", 400)
        if not targets and not senders:
            return _text("The alias must either forward to an address or have a permitted sender.", 400)
        status = "alias added"
        if address in self.aliases:
            if form.get("update_if_exists", "") != "1":
                return _text(f"Alias already exists ({address}).", 400)
            status = "alias updated"
        before = self._mail_domains()
        self.aliases[address] = {"forwards_to": targets, "permitted_senders": senders or None}
        return self._kicked(status, before)

    def _remove_alias(self, form: dict[str, str]) -> Reply:
        address = form.get("address", "").strip().lower()
        if address not in self.aliases:
            return _text(f"That's not an alias ({address}).", 400)
        before = self._mail_domains()
        del self.aliases[address]
        return self._kicked("alias removed", before)


def _password_problem(password: str) -> str | None:
    if not password.strip():
        return "No password provided."
    if len(password) < 8:
        return "Passwords must be at least eight characters."
    return None


def _quota_problem(quota: str) -> str | None:
    if not quota:
        return "No quota provided."
    if re.search(r"[\s,.]", quota):
        return "Quotas cannot contain spaces, commas, or decimal points."
    if not re.match(r"^\d+[GM]?$", quota):
        return "Invalid quota."
    return None
