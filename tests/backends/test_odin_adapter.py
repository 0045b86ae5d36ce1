"""Odin Operations quirks: XML-RPC envelopes, base64 faults, kilobytes, protocols."""

from __future__ import annotations

import base64
import xmlrpc.client

import pytest

from portal.backends.base import ConfigurationError, PermanentBackendError, UnexpectedResponse
from portal.backends.odin import PROTOCOLS, OdinBackend, decode_fault_string
from tests.servers.emu_common import Reply
from tests.servers.emu_odin import OdinEmulator, OperationsError

from .conftest import TIMEOUT


def _calls(emulator, method: str) -> list[dict]:
    calls = []
    for request in emulator.requests:
        params, name = xmlrpc.client.loads(request.body)
        if name == method:
            calls.append(params[0])
    return calls


@pytest.mark.parametrize(("text", "expected"), [
    (base64.b64encode("Quota exceeded for subscription #1001".encode()).decode(),
     "Quota exceeded for subscription #1001"),
    (base64.b64encode("Boîte déjà utilisée".encode()).decode(), "Boîte déjà utilisée"),
    ("Mailbox not found", "Mailbox not found"),
    ("Test", "Test"),
    (base64.b64encode(bytes(range(250, 256)) * 2).decode(), base64.b64encode(bytes(range(250, 256)) * 2).decode()),
])
def test_decode_fault_string__decodes_only_base64_text(text, expected):
    assert decode_fault_string(text) == expected


def test_base64_faults__are_decoded_into_the_error_message(odin):
    odin.emulator.faults_as_xmlrpc = True

    with pytest.raises(PermanentBackendError) as caught:
        odin.backend.create_mailbox(odin.spec("Not Valid!"))

    assert caught.value.code == "fault"
    assert "Invalid e-mail address: 'Not Valid!@example.test'" in caught.value.message


def test_base64_faults__still_let_a_retried_create_find_the_mailbox(odin):
    odin.emulator.faults_as_xmlrpc = True
    first = odin.backend.create_mailbox(odin.spec())

    second = odin.backend.create_mailbox(odin.spec())

    assert (first.created, second.created) == (True, False)


def test_add_mailbox__creates_a_new_user_never_with_user_id(odin):
    odin.backend.create_mailbox(odin.spec(display_name="Jane D."))

    (call,) = _calls(odin.emulator, "pem.exchange.addMailbox")
    assert "user_id" not in call
    assert call["new_user"]["subscription_id"] == odin.emulator.subscription_id
    assert call["new_user"]["login"] == f"jane.doe@{odin.domain}"
    assert call["new_user"]["display_name"] == "Jane D."
    assert call["new_user"]["password"]
    assert call["alias"] == "jane.doe"
    assert call["primary_email_address"] == f"jane.doe@{odin.domain}"


def test_add_mailbox__without_quota_uses_the_connection_default_in_kilobytes(odin):
    backend = odin.open(default_quota_mb="512")

    backend.create_mailbox(odin.spec())

    (call,) = _calls(odin.emulator, "pem.exchange.addMailbox")
    assert call["size_limit"] == 512 * 1024


def test_protocols__follow_the_setting_and_disable_turns_all_off(odin):
    backend = odin.open(protocols="owa,imap4")
    address = backend.create_mailbox(odin.spec()).address
    (call,) = _calls(odin.emulator, "pem.exchange.addMailbox")
    assert {p: call[p] for p in ("owa", "mapi", "active_sync", "imap4", "pop3")} == {
        "owa": True, "mapi": False, "active_sync": False, "imap4": True, "pop3": False}

    backend.set_mailbox_active(address, False)
    assert backend.get_mailbox(address).extra["protocols"] == dict.fromkeys(
        ("owa", "mapi", "active_sync", "imap4", "pop3"), False)
    backend.set_mailbox_active(address, True)
    assert backend.get_mailbox(address).extra["protocols"]["owa"] is True
    assert backend.get_mailbox(address).extra["protocols"]["mapi"] is False


def test_reset_password__changes_the_service_users_password(odin):
    address = odin.backend.create_mailbox(odin.spec()).address
    mailbox = odin.emulator.mailbox_by_address(address)

    password = odin.backend.reset_password(address)

    assert odin.emulator.users[mailbox["user_id"]]["password"] == password


def test_add_alias__refuses_an_address_of_another_mailbox(odin):
    jane = odin.backend.create_mailbox(odin.spec()).address
    john = odin.backend.create_mailbox(odin.spec("john")).address
    odin.backend.add_alias(jane, f"team@{odin.domain}")

    with pytest.raises(PermanentBackendError) as caught:
        odin.backend.add_alias(john, f"team@{odin.domain}")

    assert "already in use" in caught.value.message
    assert odin.backend.get_mailbox(jane).extra["aliases"] == [jane, f"team@{odin.domain}"]


def test_basic_auth__is_a_header_never_part_of_the_url(odin):
    odin.backend.health()

    request = odin.emulator.requests[-1]
    assert request.basic_auth() == ("portal", "odin-basic-secret")
    assert "odin-basic-secret" not in repr(odin.backend)


def test_unknown_status__is_an_unexpected_response(odin):
    class OddOperations(OdinEmulator):
        def handle(self, request):
            return Reply(200, xmlrpc.client.dumps(({"status": 7},), methodresponse=True).encode(), "text/xml")

    with OddOperations() as emulator:
        backend = OdinBackend({"url": emulator.url, "subscription_id": "1001"}, timeout=TIMEOUT)
        with pytest.raises(UnexpectedResponse) as caught:
            backend.list_mailboxes(odin.domain)

    assert "unknown status 7" in caught.value.message


@pytest.mark.parametrize(("settings", "message"), [
    ({"subscription_id": "one"}, "subscription_id must be a number"),
    ({"url": "http://user:pw@127.0.0.1:8440/RPC2"}, "without credentials"),
    ({"protocols": "owa,smtp"}, "unknown protocols ['smtp']"),
    ({"default_quota_mb": "lots"}, "default_quota_mb"),
])
def test_configuration__is_checked_when_the_adapter_is_built(settings, message):
    with pytest.raises(ConfigurationError) as caught:
        OdinBackend({"url": "http://127.0.0.1:8440/RPC2", "subscription_id": "1001", **settings}, timeout=1)

    assert message in str(caught.value)
    assert "pw@" not in str(caught.value)


# -- client protocols -------------------------------------------------------------------


def test_create_mailbox__sends_the_specs_flags_over_the_connections(odin):
    backend = odin.open(protocols="owa,imap4")

    backend.create_mailbox(odin.spec(protocols={"mapi": True, "imap4": False}))

    (call,) = _calls(odin.emulator, "pem.exchange.addMailbox")
    assert {p: call[p] for p in PROTOCOLS} == {
        "owa": True, "mapi": True, "active_sync": False, "imap4": False, "pop3": False}


def test_set_protocols__modifies_only_the_flags_that_change(odin):
    address = odin.backend.create_mailbox(odin.spec()).address

    odin.backend.set_protocols(address, {"owa": True, "pop3": False})
    odin.backend.set_protocols(address, {"pop3": False})

    (call,) = _calls(odin.emulator, "pem.exchange.modifyMailbox")
    assert call == {"mailbox_id": odin.emulator.mailbox_by_address(address)["mailbox_id"], "pop3": False}
    assert odin.backend.get_protocols(address) == {
        "owa": True, "mapi": True, "active_sync": True, "imap4": True, "pop3": False}


def test_protocols__all_off_is_a_disabled_mailbox_and_enabling_restores_the_connections(odin):
    backend = odin.open(protocols="owa,mapi")
    address = backend.create_mailbox(odin.spec(protocols={"mapi": False})).address

    backend.set_protocols(address, {"owa": False})
    off = backend.get_mailbox(address).active
    backend.set_mailbox_active(address, True)

    assert off is False
    assert backend.get_protocols(address) == {
        "owa": True, "mapi": True, "active_sync": False, "imap4": False, "pop3": False}


def test_protocols__are_the_five_flags_of_the_reference():
    assert OdinBackend.protocols() == ["owa", "mapi", "active_sync", "imap4", "pop3"]


# -- aliases -----------------------------------------------------------------------------


def test_list_aliases__leaves_out_the_mailboxs_own_address(odin):
    address = odin.backend.create_mailbox(odin.spec()).address
    odin.backend.add_alias(address, f"jd@{odin.domain}")

    assert odin.backend.list_aliases(address) == [f"jd@{odin.domain}"]
    assert odin.emulator.mailbox_by_address(address)["email_addresses"] == [address, f"jd@{odin.domain}"]


def test_remove_alias__calls_remove_email_addresses_once(odin):
    address = odin.backend.create_mailbox(odin.spec()).address
    odin.backend.add_alias(address, f"jd@{odin.domain}")

    odin.backend.remove_alias(address, f"jd@{odin.domain}")
    odin.backend.remove_alias(address, f"jd@{odin.domain}")

    (call,) = _calls(odin.emulator, "pem.exchange.removeEmailAddresses")
    assert call == {"mailbox_id": odin.emulator.mailbox_by_address(address)["mailbox_id"],
                    "email_addresses": [f"jd@{odin.domain}"]}
    assert odin.backend.list_aliases(address) == []


def test_remove_alias__refuses_the_mailboxs_own_address(odin):
    address = odin.backend.create_mailbox(odin.spec()).address

    with pytest.raises(PermanentBackendError) as caught:
        odin.backend.remove_alias(address, address)

    assert caught.value.code == "invalid"
    assert _calls(odin.emulator, "pem.exchange.removeEmailAddresses") == []


def test_add_alias__on_a_domain_outside_the_subscription_is_a_decoded_fault(odin):
    odin.emulator.faults_as_xmlrpc = True
    address = odin.backend.create_mailbox(odin.spec()).address

    with pytest.raises(PermanentBackendError) as caught:
        odin.backend.add_alias(address, "jd@elsewhere.test")

    assert caught.value.code == "fault"
    assert "Domain of jd@elsewhere.test is not registered in subscription #1001" in caught.value.message


def test_remove_alias__a_refusal_is_permanent_with_the_operations_words(odin, monkeypatch):
    address = odin.backend.create_mailbox(odin.spec()).address
    odin.backend.add_alias(address, f"jd@{odin.domain}")
    odin.emulator.faults_as_xmlrpc = True

    def locked(params):
        raise OperationsError("Mailbox is locked by task #88 (odin-basic-secret)")

    monkeypatch.setattr(odin.emulator, "_pem_exchange_removeEmailAddresses", locked)

    with pytest.raises(PermanentBackendError) as caught:
        odin.backend.remove_alias(address, f"jd@{odin.domain}")

    assert "Mailbox is locked by task #88" in caught.value.message
    assert "odin-basic-secret" not in caught.value.message
