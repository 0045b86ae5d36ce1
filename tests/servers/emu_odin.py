"""An Odin / Parallels Operations XML-RPC emulator (see reference/BACKENDS.md, 002).

``POST /RPC2`` with one struct parameter per call. Answers are
``{"status": 0, "result": ...}`` or ``{"status": -1, "error_message": ...}``;
with ``faults_as_xmlrpc`` set, failures are XML-RPC faults whose
``faultString`` is base64-encoded, as some deployments send them.

State for tests: ``subscriptions`` (id -> domains), ``mailboxes``
(mailbox id -> properties as getMailboxInfo returns them, the primary
address first in ``email_addresses``), ``users``
(service user id -> login, password, display name), ``creations``
(address -> times created). ``basic_auth`` (user, password) makes the
endpoint require HTTP Basic.
"""

from __future__ import annotations

import base64
import itertools
import re
import secrets
import xmlrpc.client
from collections import Counter
from typing import Any

from .emu_common import Emulator, RecordedRequest, Reply

_ADDRESS = re.compile(r"^[a-z0-9][a-z0-9._-]*@[a-z0-9.-]+$")
PROTOCOLS = ("owa", "mapi", "active_sync", "imap4", "pop3")
_MODIFIABLE = {"alias", "warning_limit", "prohibit_send_limit", "size_limit", "incoming_item_max_size",
               "outgoing_item_max_size", "recipient_list_max_size", "message_retention",
               "show_in_address_book", *PROTOCOLS}


class OperationsError(Exception):
    """A failure the emulated method reports."""


class OdinEmulator(Emulator):
    url_path = "/RPC2"

    def __init__(self, subscription_id: int = 1001, domains: tuple[str, ...] = ("odin.test",)) -> None:
        super().__init__()
        self.subscription_id = subscription_id
        self.subscriptions: dict[int, set[str]] = {subscription_id: set(domains)}
        self.mailboxes: dict[int, dict[str, Any]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.creations: Counter[str] = Counter()
        self.faults_as_xmlrpc = False
        self.basic_auth: tuple[str, str] | None = None
        self._ids = itertools.count(501)

    def mailbox_by_address(self, address: str) -> dict[str, Any] | None:
        return next((m for m in self.mailboxes.values() if address in m["email_addresses"]), None)

    def handle(self, request: RecordedRequest) -> Reply:
        if request.path != "/RPC2" or request.method != "POST":
            return Reply.text("Not Found", 404)
        if self.basic_auth and request.basic_auth() != self.basic_auth:
            return Reply.text("Unauthorized", 401)
        try:
            params, method = xmlrpc.client.loads(request.body)
        except Exception:
            return self._xml(xmlrpc.client.Fault(-32700, "parse error: not well formed"))
        handler = getattr(self, "_" + (method or "").replace(".", "_"), None)
        if handler is None:
            return self._xml(xmlrpc.client.Fault(-32601, f"Method {method} is not supported"))
        if len(params) != 1 or not isinstance(params[0], dict):
            return self._xml(xmlrpc.client.Fault(-32602, "Expected exactly one struct parameter"))
        try:
            result = handler(params[0])
        except OperationsError as error:
            if self.faults_as_xmlrpc:
                encoded = base64.b64encode(str(error).encode()).decode()
                return self._xml(xmlrpc.client.Fault(1, encoded))
            return self._xml({"status": -1, "error_message": str(error), "module_id": "HostedExchange"})
        return self._xml({"status": 0, "result": result})

    def _xml(self, answer: Any) -> Reply:
        if isinstance(answer, xmlrpc.client.Fault):
            body = xmlrpc.client.dumps(answer, methodresponse=True)
        else:
            body = xmlrpc.client.dumps((answer,), methodresponse=True)
        return Reply(200, body.encode(), "text/xml")

    # -- helpers -----------------------------------------------------------------

    def _mailbox(self, params: dict[str, Any]) -> dict[str, Any]:
        mailbox = self.mailboxes.get(params.get("mailbox_id"))
        if mailbox is None:
            raise OperationsError(f"Mailbox #{params.get('mailbox_id')} does not exist")
        return mailbox

    def _subscription_domains(self, subscription_id: Any) -> set[str]:
        if subscription_id not in self.subscriptions:
            raise OperationsError(f"Subscription #{subscription_id} does not exist")
        return self.subscriptions[subscription_id]

    def _check_address(self, address: Any, subscription_id: int) -> str:
        if not isinstance(address, str) or not _ADDRESS.match(address):
            raise OperationsError(f"Invalid e-mail address: {address!r}")
        if address.split("@")[1] not in self._subscription_domains(subscription_id):
            raise OperationsError(f"Domain of {address} is not registered in subscription #{subscription_id}")
        return address

    # -- methods -------------------------------------------------------------------

    def _pem_exchange_getMailboxes(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        self._subscription_domains(params.get("subscription_id"))
        return [
            {key: m[key] for key in ("mailbox_id", "user_id", "display_name", "login", "alias", "size")}
            | {"email_address": m["email_addresses"][0]}
            for m in self.mailboxes.values() if m["subscription_id"] == params["subscription_id"]
        ]

    def _pem_exchange_getMailboxByEmailAddress(self, params: dict[str, Any]) -> dict[str, Any]:
        mailbox = self.mailbox_by_address(params.get("email_address"))
        if mailbox is None:
            raise OperationsError(f"Mailbox with e-mail address {params.get('email_address')} not found")
        return {"mailbox_id": mailbox["mailbox_id"], "user_id": mailbox["user_id"]}

    def _pem_exchange_getMailboxInfo(self, params: dict[str, Any]) -> dict[str, Any]:
        mailbox = self._mailbox(params)
        return {key: value for key, value in mailbox.items() if key != "subscription_id"}

    def _pem_exchange_addMailbox(self, params: dict[str, Any]) -> dict[str, Any]:
        if ("user_id" in params) == ("new_user" in params):
            raise OperationsError("Exactly one of the mutually exclusive parameters user_id and new_user is required")
        missing = [key for key in ("alias", "primary_email_address", "size_limit", *PROTOCOLS) if key not in params]
        if missing:
            raise OperationsError(f"Missing required parameter: {', '.join(missing)}")
        if not isinstance(params["size_limit"], int) or not all(isinstance(params[p], bool) for p in PROTOCOLS):
            raise OperationsError("size_limit must be an integer and protocol flags booleans")
        if "new_user" in params:
            new_user = params["new_user"]
            subscription_id = new_user.get("subscription_id")
            if not new_user.get("login"):
                raise OperationsError("Missing required parameter: new_user.login")
            user_id = next(self._ids)
            self.users[user_id] = {"login": new_user["login"],
                                   "password": new_user.get("password") or secrets.token_urlsafe(10),
                                   "display_name": new_user.get("display_name") or new_user["login"],
                                   "subscription_id": subscription_id}
        else:
            user_id = params["user_id"]
            if user_id not in self.users:
                raise OperationsError(f"Service user #{user_id} does not exist")
            subscription_id = self.users[user_id]["subscription_id"]
        address = self._check_address(params["primary_email_address"], subscription_id)
        if self.mailbox_by_address(address):
            raise OperationsError(f"E-mail address {address} is already in use")
        mailbox_id = next(self._ids)
        self.mailboxes[mailbox_id] = {
            "mailbox_id": mailbox_id, "user_id": user_id, "subscription_id": subscription_id,
            "login": self.users[user_id]["login"], "display_name": self.users[user_id]["display_name"],
            "alias": params["alias"], "size": 0, "size_limit": params["size_limit"], "status": 0,
            "email_addresses": [address, *params.get("alt_email_addresses", [])],
            **{protocol: params[protocol] for protocol in PROTOCOLS},
        }
        self.creations[address] += 1
        return {"mailbox_id": mailbox_id}

    def _pem_exchange_modifyMailbox(self, params: dict[str, Any]) -> dict[str, Any]:
        mailbox = self._mailbox(params)
        unknown = set(params) - _MODIFIABLE - {"mailbox_id"}
        if unknown:
            raise OperationsError(f"Unknown parameters: {', '.join(sorted(unknown))}")
        if "size_limit" in params and not isinstance(params["size_limit"], int):
            raise OperationsError("size_limit must be an integer")
        mailbox.update({key: value for key, value in params.items() if key != "mailbox_id"})
        return {}

    def _pem_exchange_addEmailAddresses(self, params: dict[str, Any]) -> dict[str, Any]:
        mailbox = self._mailbox(params)
        for address in params.get("email_addresses") or []:
            self._check_address(address, mailbox["subscription_id"])
            if address in mailbox["email_addresses"]:
                raise OperationsError(f"E-mail address {address} is already assigned to this mailbox")
            if self.mailbox_by_address(address):
                raise OperationsError(f"E-mail address {address} is already in use")
            mailbox["email_addresses"].append(address)
        return {}

    def _pem_exchange_removeEmailAddresses(self, params: dict[str, Any]) -> dict[str, Any]:
        mailbox = self._mailbox(params)
        addresses = params.get("email_addresses")
        if not isinstance(addresses, list) or not addresses:
            raise OperationsError("Missing required parameter: email_addresses")
        for address in addresses:
            if address == mailbox["email_addresses"][0]:
                raise OperationsError(f"E-mail address {address} is the primary address and cannot be removed")
            if address not in mailbox["email_addresses"]:
                raise OperationsError(f"E-mail address {address} is not assigned to this mailbox")
        mailbox["email_addresses"] = [a for a in mailbox["email_addresses"] if a not in addresses]
        return {}

    def _pem_changeUserPassword(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(params.get("user_id"))
        if user is None:
            raise OperationsError(f"Service user #{params.get('user_id')} does not exist")
        if len(params.get("password") or "") < 8:
            raise OperationsError("The password does not meet the quality requirements")
        user["password"] = params["password"]
        return {}
