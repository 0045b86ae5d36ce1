"""A Mail-in-a-Box control panel emulator (see reference/BACKENDS.md and 003).

- ``/admin/mail/users...`` with HTTP Basic of an administrator; failures
  answer 401 (403 for ``X-Requested-With: XMLHttpRequest``).
- Only form-encoded bodies are read: a JSON body reads as empty, so adding a
  user with one answers "No email address provided.".
- Errors are HTTP 400 with a plain-text explanation; success bodies start
  with a fixed text followed by extra lines, as on a real box.
- "remove" archives: the user stays listed with status ``inactive`` and
  its mail folder is kept; adding the address again restores it (the folder
  with its mail, under the new password).
- Quotas must match ``^\\d+[GM]?$``.
- Aliases as in the box's management/mailconfig.py: ``address`` may be
  ``@domain`` (a catch-all, or with ``forwards_to=@other`` a domain alias);
  ``update_if_exists=1`` replaces ("alias updated"); a second add otherwise
  answers "Alias already exists (...)."; removing a missing alias answers
  "That's not an alias (...).".

State for tests: ``users`` (address -> password, privileges, quota, status),
``folders`` (address -> messages in its mail folder, which outlives removal),
``aliases`` (address -> {"forwards_to": [...], "permitted_senders": [...] or
None}), ``creations`` (address -> times added or restored).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from .emu_common import Emulator, RecordedRequest, Reply

_ADDRESS = re.compile(r"^[a-z0-9_.-]+@[a-z0-9-]+(\.[a-z0-9-]+)+$")
_ALIAS = re.compile(r"^[a-z0-9_.+-]*@[a-z0-9-]+(\.[a-z0-9-]+)+$")
_QUOTA = re.compile(r"^\d+[GM]?$")
# A real box appends the output of its DNS and web configuration updates.
_KICK_LINES = "updated DNS: box.test\nweb updated\n"


class MailInABoxEmulator(Emulator):
    def __init__(self, admin: str = "admin@box.test", password: str = "miab-admin-secret") -> None:
        super().__init__()
        self.users: dict[str, dict[str, Any]] = {
            admin: {"password": password, "privileges": ["admin"], "quota": "0", "status": "active"},
        }
        self.aliases: dict[str, dict[str, Any]] = {}
        self.folders: Counter[str] = Counter()
        self.creations: Counter[str] = Counter()

    def deliver(self, address: str, messages: int = 1) -> None:
        """Put mail in a user's folder, as incoming mail would."""
        self.folders[address] += messages

    def forwards_to(self, alias: str) -> list[str]:
        return list(self.aliases.get(alias, {}).get("forwards_to", []))

    def handle(self, request: RecordedRequest) -> Reply:
        refusal = self._authorize(request)
        if refusal:
            return refusal
        route = (request.method, request.path)
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
            ("GET", "/admin/mail/aliases"): self._list_aliases,
            ("POST", "/admin/mail/aliases/add"): lambda: self._add_alias(form),
            ("POST", "/admin/mail/aliases/remove"): lambda: self._remove_alias(form),
        }
        handler = handlers.get(route)
        return handler() if handler else Reply.text("Not Found", 404)

    def _authorize(self, request: RecordedRequest) -> Reply | None:
        credentials = request.basic_auth()
        user = self.users.get(credentials[0]) if credentials else None
        if user and user["status"] == "active" and user["password"] == credentials[1] \
                and "admin" in user["privileges"]:
            return None
        status = 403 if request.headers.get("x-requested-with") == "XMLHttpRequest" else 401
        reply = Reply.text("Incorrect username or password\n", status)
        if status == 401:
            reply.headers["WWW-Authenticate"] = 'Basic realm="mail-in-a-box"'
        return reply

    def _active(self, address: str) -> dict[str, Any] | None:
        user = self.users.get(address)
        return user if user and user["status"] == "active" else None

    def _not_a_user(self, address: str) -> Reply:
        return Reply.text(f"That's not a user ({address}).", 400)

    # -- users -------------------------------------------------------------------

    def _list(self, request: RecordedRequest) -> Reply:
        if request.query.get("format") != ["json"]:
            return Reply.text("".join(f"{a}\n" for a in sorted(self.users) if self._active(a)))
        domains: dict[str, list[dict[str, Any]]] = {}
        for address in sorted(self.users, key=lambda a: (self.users[a]["status"] != "active", a)):
            user = self.users[address]
            entry = {"email": address, "privileges": user["privileges"], "status": user["status"]}
            if user["status"] == "active":
                entry["quota"] = user["quota"]
            else:
                entry["mailbox"] = f"/home/user-data/mail/mailboxes/{address.split('@')[1]}/{address.split('@')[0]}"
            domains.setdefault(address.split("@")[1], []).append(entry)
        return Reply.json([{"domain": domain, "users": users} for domain, users in sorted(domains.items())])

    def _add(self, form: dict[str, str]) -> Reply:
        address, password = form.get("email", ""), form.get("password", "")
        privileges = [p for p in form.get("privileges", "").split("\n") if p.strip()]
        quota = form.get("quota", "0").strip().upper()
        if not address.strip():
            return Reply.text("No email address provided.", 400)
        if not _ADDRESS.match(address):
            return Reply.text("Invalid email address.", 400)
        problem = _password_problem(password)
        if problem:
            return Reply.text(problem, 400)
        for privilege in privileges:
            if privilege != "admin":
                return Reply.text(f"That's not a valid privilege ({privilege}).", 400)
        if not _QUOTA.match(quota):
            return Reply.text("Invalid quota.", 400)
        if self._active(address):
            return Reply.text("User already exists.", 400)
        # A restored user finds its folder (self.folders) as the removal left it.
        self.users[address] = {"password": password, "privileges": privileges, "quota": quota, "status": "active"}
        self.creations[address] += 1
        return Reply.text("mail user added\n" + _KICK_LINES)

    def _remove(self, form: dict[str, str]) -> Reply:
        address = form.get("email", "")
        user = self._active(address)
        if user is None:
            return self._not_a_user(address)
        user.update(status="inactive", privileges=[])
        return Reply.text("mail user removed\n" + _KICK_LINES)

    def _password(self, form: dict[str, str]) -> Reply:
        address = form.get("email", "")
        problem = _password_problem(form.get("password", ""))
        if problem:
            return Reply.text(problem, 400)
        user = self._active(address)
        if user is None:
            return self._not_a_user(address)
        user["password"] = form["password"]
        return Reply.text("OK")

    def _privilege(self, form: dict[str, str], *, add: bool) -> Reply:
        address, privilege = form.get("email", ""), form.get("privilege", "")
        if privilege != "admin":
            return Reply.text(f"That's not a valid privilege ({privilege}).", 400)
        user = self._active(address)
        if user is None:
            return self._not_a_user(address)
        user["privileges"] = [p for p in user["privileges"] if p != privilege] + ([privilege] if add else [])
        return Reply.text("OK")

    def _get_quota(self, request: RecordedRequest) -> Reply:
        address = (request.query.get("email") or [""])[0]
        user = self._active(address)
        return Reply.json({"email": address, "quota": user["quota"]}) if user else self._not_a_user(address)

    def _set_quota(self, form: dict[str, str]) -> Reply:
        address, quota = form.get("email", ""), form.get("quota", "").strip().upper()
        if not quota:
            return Reply.text("No quota provided.", 400)
        if not _QUOTA.match(quota):
            return Reply.text("Invalid quota.", 400)
        user = self._active(address)
        if user is None:
            return self._not_a_user(address)
        user["quota"] = quota
        return Reply.text("OK")

    # -- aliases -----------------------------------------------------------------

    def _list_aliases(self) -> Reply:
        domains: dict[str, list[dict[str, Any]]] = {}
        for address, alias in sorted(self.aliases.items()):
            domains.setdefault(address.split("@")[1], []).append(
                {"address": address, "address_display": address, "forwards_to": alias["forwards_to"],
                 "permitted_senders": alias["permitted_senders"], "required": False})
        return Reply.json([{"domain": domain, "aliases": aliases} for domain, aliases in sorted(domains.items())])

    def _add_alias(self, form: dict[str, str]) -> Reply:
        address = form.get("address", "").strip().lower()
        forwards_to = form.get("forwards_to", "").strip()
        if not address:
            return Reply.text("No email address provided.", 400)
        if not _ALIAS.match(address):
            return Reply.text(f"Invalid email address ({address}).", 400)
        if _ALIAS.match(forwards_to) and forwards_to.startswith("@"):
            targets = [forwards_to]
        else:
            targets = [t.strip() for t in forwards_to.replace("\n", ",").split(",") if t.strip()]
            for target in targets:
                if not _ADDRESS.match(target.lower()):
                    return Reply.text(f"Invalid receiver email address ({target}).", 400)
        senders = [s.strip() for s in form.get("permitted_senders", "").replace("\n", ",").split(",") if s.strip()]
        for sender in senders:
            if self._active(sender) is None:
                return Reply.text(f"Invalid permitted sender: {sender} is not a user on this system.", 400)
        if not targets and not senders:
            return Reply.text("The alias must either forward to an address or have a permitted sender.", 400)
        status = "alias added"
        if address in self.aliases:
            if form.get("update_if_exists", "") != "1":
                return Reply.text(f"Alias already exists ({address}).", 400)
            status = "alias updated"
        self.aliases[address] = {"forwards_to": targets, "permitted_senders": senders or None}
        return Reply.text(f"{status}\n" + _KICK_LINES)

    def _remove_alias(self, form: dict[str, str]) -> Reply:
        address = form.get("address", "").strip().lower()
        if address not in self.aliases:
            return Reply.text(f"That's not an alias ({address}).", 400)
        del self.aliases[address]
        return Reply.text("alias removed\n" + _KICK_LINES)


def _password_problem(password: str) -> str | None:
    if not password.strip():
        return "No password provided."
    if len(password) < 8:
        return "Passwords must be at least eight characters."
    return None
