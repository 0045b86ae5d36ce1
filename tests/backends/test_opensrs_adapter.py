"""OpenSRS quirks: 200 failure envelopes, error numbers, session tokens."""

from __future__ import annotations

import dataclasses

import pytest
import requests

from portal.backends import opensrs as opensrs_module
from portal.backends.base import (
    PORTAL_DOMAIN_SETTING_KEYS,
    BackendNotFound,
    PermanentBackendError,
    TransientBackendError,
)
from portal.backends.opensrs import OpenSrsBackend


def _calls(emulator, method: str) -> list:
    return [request for request in emulator.requests if request.path == f"/api/{method}"]


@pytest.mark.parametrize("error_number", [7, 23])
def test_create_mailbox__already_exists_either_way_is_idempotent(opensrs, error_number):
    opensrs.emulator.duplicate_error_number = error_number
    opensrs.backend.create_mailbox(opensrs.spec())

    retry = opensrs.backend.create_mailbox(opensrs.spec())

    assert retry.created is False
    assert opensrs.emulator.creations[retry.address] == 1


def test_ensure_domain__sends_domain_with_create_only(opensrs):
    opensrs.backend.ensure_domain("second.test")

    body = _calls(opensrs.emulator, "change_domain")[-1].json()
    assert body["domain"] == "second.test"
    assert "domains" not in body
    assert body["create_only"] is True
    assert body["credentials"].keys() == {"user", "token"}


def test_expired_session_token__authenticates_again_once(opensrs):
    opensrs.backend.create_mailbox(opensrs.spec())
    opensrs.emulator.expire_tokens()

    assert opensrs.backend.get_mailbox(f"jane.doe@{opensrs.domain}") is not None
    assert len(_calls(opensrs.emulator, "authenticate")) == 2


def test_wrong_password__is_a_permanent_credentials_error(opensrs):
    backend = opensrs.open(password="wrong-opensrs-password")
    before = len(_calls(opensrs.emulator, "authenticate"))

    with pytest.raises(PermanentBackendError) as caught:
        backend.create_mailbox(opensrs.spec())

    assert caught.value.code == "auth"
    assert "Invalid credentials" in caught.value.message
    assert "wrong-opensrs-password" not in str(caught.value) + repr(caught.value) + repr(backend)
    assert len(_calls(opensrs.emulator, "authenticate")) == before + 1


def test_bad_attributes__carry_the_hints_without_the_password(opensrs):
    with pytest.raises(PermanentBackendError) as caught:
        opensrs.backend.create_mailbox(opensrs.spec(password="short1"))

    assert caught.value.code == "invalid_attributes"
    assert "password" in caught.value.hints
    assert "short1" not in caught.value.message
    assert "short1" not in caught.value.hints["password"]
    assert "Badly formatted attributes (error 6)" in caught.value.message


@pytest.mark.parametrize(("number", "error_class", "code"), [
    (0, TransientBackendError, "server_error"),
    (2, BackendNotFound, "not_found"),
    (3, PermanentBackendError, "is_alias"),
    (4, PermanentBackendError, "no_permission"),
    (5, PermanentBackendError, "invalid_request"),
    (99, PermanentBackendError, "error_99"),
])
def test_error_numbers__map_to_typed_errors(opensrs, number, error_class, code):
    opensrs.emulator.forced_errors.append((number, f"forced error {number}"))

    with pytest.raises(error_class) as caught:
        opensrs.backend.create_mailbox(opensrs.spec())

    assert caught.value.code == code
    assert f"forced error {number}" in caught.value.message


def test_unknown_method_path__is_a_permanent_error(opensrs):
    backend = opensrs.open(url=opensrs.emulator.url + "/v2")

    with pytest.raises(PermanentBackendError) as caught:
        backend.list_mailboxes(opensrs.domain)

    assert "HTTP 404" in caught.value.message


def test_quota__is_sent_in_bytes_and_none_returns_to_the_domain_default(opensrs):
    address = opensrs.backend.create_mailbox(opensrs.spec(quota_bytes=3 * 1024**3)).address
    assert opensrs.emulator.users[address]["quota"] == 3_221_225_472

    opensrs.backend.set_quota(address, None)

    assert "quota" not in opensrs.emulator.users[address]
    assert _calls(opensrs.emulator, "change_user")[-1].json()["attributes"] == {"quota": None}


def test_disable__suspends_every_service(opensrs):
    address = opensrs.backend.create_mailbox(opensrs.spec()).address

    opensrs.backend.set_mailbox_active(address, False)
    suspended = dict(opensrs.emulator.users[address])
    opensrs.backend.set_mailbox_active(address, True)

    services = [key for key in suspended if key.startswith("service_")]
    assert len(services) == 6
    assert {suspended[key] for key in services} == {"suspended"}
    assert {opensrs.emulator.users[address][key] for key in services} == {"enabled"}


def test_updates__never_create_a_missing_user(opensrs):
    address = f"ghost@{opensrs.domain}"

    for update in (lambda: opensrs.backend.set_mailbox_active(address, False),
                   lambda: opensrs.backend.set_quota(address, 1024**3),
                   lambda: opensrs.backend.reset_password(address),
                   lambda: opensrs.backend.add_alias(address, f"spirit@{opensrs.domain}"),
                   lambda: opensrs.backend.set_protocols(address, {"pop3": False})):
        with pytest.raises(BackendNotFound):
            update()

    assert address not in opensrs.emulator.users


def test_list_mailboxes__pages_through_search_results(opensrs, monkeypatch):
    monkeypatch.setattr(opensrs_module, "_SEARCH_PAGE", 2)
    for local_part in ("ann", "ben", "cat"):
        opensrs.backend.create_mailbox(opensrs.spec(local_part))

    listed = opensrs.backend.list_mailboxes(opensrs.domain)

    assert [m.address for m in listed] == [f"{n}@{opensrs.domain}" for n in ("ann", "ben", "cat")]
    assert len(_calls(opensrs.emulator, "search_users")) == 2


def test_add_alias__keeps_existing_aliases(opensrs):
    address = opensrs.backend.create_mailbox(opensrs.spec()).address

    opensrs.backend.add_alias(address, f"jd@{opensrs.domain}")
    opensrs.backend.add_alias(address, f"jane@{opensrs.domain}")

    assert opensrs.emulator.users[address]["aliases"] == [f"jd@{opensrs.domain}", f"jane@{opensrs.domain}"]
    assert opensrs.backend.get_mailbox(address).extra["aliases"] == opensrs.emulator.users[address]["aliases"]


# -- domain settings ------------------------------------------------------------------

_EVERY_SETTING = {
    "default_quota_bytes": 2 * 1024**3,
    "max_quota_bytes": 10 * 1024**3,
    "max_users": 50,
    "max_aliases": 200,
    "domain_aliases": ["example-corporation.test"],
    "allow_senders": ["*@partner.test", "boss@supplier.test"],
    "block_senders": ["*@spam.test"],
    "catch_all": "postmaster@example.test",
    "spam_level": "very_high",
    "spam_delivery": "quarantine",
    "spam_folder": "Junk",
    "spam_tag": "[SPAM]",
    "spam_header": "X-Spam: detected",
    "default_services": ["imap", "webmail"],
    "send_limit": 500,
    "password_strength": "strong",
    "notes": "Has not paid.\nDo NOT enable without consulting Finance.",
}


def test_domain_settings__map_one_to_one_onto_the_change_domain_attributes(opensrs):
    opensrs.backend.set_domain_settings(opensrs.domain, _EVERY_SETTING)

    body = _calls(opensrs.emulator, "change_domain")[-1].json()
    assert body["domain"] == opensrs.domain and "create_only" not in body
    assert body["attributes"] == {
        "quota": 2_147_483_648,
        "quota_maximum": 10_240,
        "limit_users": 50,
        "limit_aliases": 200,
        "aliases": ["example-corporation.test"],
        "allow": ["*@partner.test", "boss@supplier.test"],
        "block": ["*@spam.test"],
        "catchall": "postmaster@example.test",
        "spamlevel": "Very High",
        "filterdelivery": "quarantine",
        "spamfolder": "Junk",
        "spamtag": "[SPAM]",
        "spamheader": "X-Spam: detected",
        "service_imap4": "enabled",
        "service_pop3": "disabled",
        "service_smtprelay": "disabled",
        "service_webmail": "enabled",
        "smtp_sent_limit": 500,
        "password_strength": "strong",
        "notes_external": "Has not paid.\nDo NOT enable without consulting Finance.",
    }
    assert opensrs.backend.get_domain_settings(opensrs.domain) == _EVERY_SETTING


def test_domain_settings__describe_the_maximums_of_the_reference():
    limits = {setting.key: setting for setting in OpenSrsBackend.domain_settings()}

    assert limits["domain_aliases"].max_items == 2000
    assert limits["allow_senders"].max_items == limits["block_senders"].max_items == 1000
    assert limits["notes"].max_length == 4096
    assert (limits["spam_folder"].max_length, limits["spam_tag"].max_length,
            limits["spam_header"].max_length) == (128, 30, 512)
    assert limits["send_limit"].max_value == 10_000
    assert set(limits) == set(PORTAL_DOMAIN_SETTING_KEYS)


def test_domain_settings__too_many_domain_aliases_are_refused_before_sending(opensrs):
    before = len(_calls(opensrs.emulator, "change_domain"))
    aliases = [f"alias{n}.test" for n in range(2001)]

    with pytest.raises(PermanentBackendError) as caught:
        opensrs.backend.set_domain_settings(opensrs.domain, {"domain_aliases": aliases})

    assert caught.value.hints == {"domain_aliases": "At most 2,000 entries; 2,001 given."}
    assert len(_calls(opensrs.emulator, "change_domain")) == before


def test_domain_settings__opensrs_hints_stand_beside_the_portals_setting(opensrs, monkeypatch):
    relaxed = tuple(dataclasses.replace(s, max_items=None) if s.key == "domain_aliases" else s
                    for s in OpenSrsBackend.domain_setting_specs)
    monkeypatch.setattr(OpenSrsBackend, "domain_setting_specs", relaxed)

    with pytest.raises(PermanentBackendError) as caught:
        opensrs.backend.set_domain_settings(opensrs.domain, {
            "domain_aliases": [f"alias{n}.test" for n in range(2001)]})

    assert caught.value.code == "invalid_attributes"
    assert caught.value.hints == {"domain_aliases": "The maximum number of aliases is 2000"}
    assert "domain_aliases: The maximum number of aliases is 2000" in caught.value.message
    assert "aliases" not in opensrs.emulator.domains[opensrs.domain]


def test_domain_settings__hints_for_grouped_and_unknown_attributes(opensrs):
    opensrs.emulator.forced_method_errors["change_domain"] = [(6, "Badly formatted attributes", {
        "spamtag": "Maximum 30 characters", "service_pop3": "Not allowed for this company",
        "service_webmail": "Not allowed either", "brand": "Unknown brand"})]

    with pytest.raises(PermanentBackendError) as caught:
        opensrs.backend.set_domain_settings(opensrs.domain, {"spam_tag": "[SPAM]", "default_services": ["imap"]})

    assert caught.value.hints == {
        "spam_tag": "Maximum 30 characters",
        "default_services": "Not allowed for this company; Not allowed either",
        "brand": "Unknown brand",
    }


def test_domain_settings__a_catch_all_never_rides_on_a_domain_creation(opensrs):
    with pytest.raises(BackendNotFound) as caught:
        opensrs.backend.set_domain_settings("new.test", {"catch_all": "postmaster@new.test"})
    assert "set the domain up first" in caught.value.message
    assert "new.test" not in opensrs.emulator.domains

    opensrs.backend.ensure_domain("new.test")
    opensrs.backend.set_domain_settings("new.test", {"catch_all": "postmaster@new.test"})

    assert opensrs.emulator.domains["new.test"]["catchall"] == "postmaster@new.test"


def test_emulator__refuses_a_catch_all_on_a_domain_it_creates(opensrs):
    """The quirk the adapter steers around, shown on the wire (reference 001)."""
    token = opensrs.backend._session_token()
    answer = requests.post(f"{opensrs.emulator.url}/change_domain", timeout=1, json={
        "credentials": {"user": opensrs.emulator.user, "token": token},
        "domain": "brand-new.test", "attributes": {"catchall": "postmaster@brand-new.test"}}).json()

    assert answer["success"] is False and answer["error_number"] == 6
    assert answer["hints"] == {"catchall": "This feature cannot be enabled for new domains"}


def test_domain_settings__empty_catch_all_and_none_clear_the_attributes(opensrs):
    opensrs.backend.set_domain_settings(opensrs.domain, {"catch_all": "postmaster@example.test",
                                                         "spam_level": "high", "default_services": ["pop"]})

    opensrs.backend.set_domain_settings(opensrs.domain, {"catch_all": "", "spam_level": None,
                                                         "default_services": None})

    assert _calls(opensrs.emulator, "change_domain")[-1].json()["attributes"] == {
        "catchall": None, "spamlevel": None, "service_imap4": None, "service_pop3": None,
        "service_smtprelay": None, "service_webmail": None}
    settings = opensrs.backend.get_domain_settings(opensrs.domain)
    assert (settings["catch_all"], settings["spam_level"], settings["default_services"]) == (None, None, None)


def test_errors__never_quote_the_password_or_the_session_token(opensrs):
    token = opensrs.backend._session_token()
    password = opensrs.settings["password"]
    opensrs.emulator.forced_method_errors["change_domain"] = [
        (6, f"Rejected {password}", {"notes_external": f"token {token} and {password} are not notes"})]

    with pytest.raises(PermanentBackendError) as caught:
        opensrs.backend.set_domain_settings(opensrs.domain, {"notes": "hello"})

    shown = caught.value.message + " ".join(caught.value.hints.values())
    assert password not in shown and token not in shown
    assert caught.value.hints["notes"] == "token ••••• and ••••• are not notes"


# -- mailbox aliases ----------------------------------------------------------------------


def test_remove_alias__keeps_the_other_aliases(opensrs):
    address = opensrs.backend.create_mailbox(opensrs.spec()).address
    for alias in ("jd", "jane", "doe"):
        opensrs.backend.add_alias(address, f"{alias}@{opensrs.domain}")

    opensrs.backend.remove_alias(address, f"jane@{opensrs.domain}")

    assert opensrs.emulator.users[address]["aliases"] == [f"jd@{opensrs.domain}", f"doe@{opensrs.domain}"]
    assert _calls(opensrs.emulator, "change_user")[-1].json()["attributes"] == {
        "aliases": [f"jd@{opensrs.domain}", f"doe@{opensrs.domain}"]}


def test_add_alias__the_2001st_is_refused_with_opensrs_hint(opensrs):
    address = opensrs.backend.create_mailbox(opensrs.spec()).address
    opensrs.emulator.users[address]["aliases"] = [f"a{n}@{opensrs.domain}" for n in range(2000)]

    with pytest.raises(PermanentBackendError) as caught:
        opensrs.backend.add_alias(address, f"one-more@{opensrs.domain}")

    assert caught.value.code == "invalid_attributes"
    assert caught.value.hints == {"aliases": "The maximum number of aliases is 2000"}
    assert len(opensrs.emulator.users[address]["aliases"]) == 2000


def test_add_alias__beyond_the_domains_limit_is_refused(opensrs):
    address = opensrs.backend.create_mailbox(opensrs.spec()).address
    opensrs.backend.set_domain_settings(opensrs.domain, {"max_aliases": 1})
    opensrs.backend.add_alias(address, f"jd@{opensrs.domain}")

    with pytest.raises(PermanentBackendError) as caught:
        opensrs.backend.add_alias(address, f"jane@{opensrs.domain}")

    assert caught.value.hints == {"aliases": "The domain allows at most 1 aliases"}


# -- client protocols -----------------------------------------------------------------------


def test_protocols__are_the_user_services(opensrs):
    address = opensrs.backend.create_mailbox(opensrs.spec(protocols={"pop3": False})).address
    assert _calls(opensrs.emulator, "change_user")[0].json()["attributes"]["service_pop3"] == "disabled"

    opensrs.backend.set_protocols(address, {"smtp": False, "webmail": False, "imap4": True})

    user = opensrs.emulator.users[address]
    assert (user["service_pop3"], user["service_smtprelay"], user["service_webmail"]) == ("disabled",) * 3
    # Unset, the domain's default would apply: switching on says so explicitly.
    assert user["service_imap4"] == "enabled"
    assert opensrs.backend.get_protocols(address) == {"imap4": True, "pop3": False, "smtp": False,
                                                      "webmail": False}


def test_protocols__survive_disabling_and_enabling(opensrs):
    address = opensrs.backend.create_mailbox(opensrs.spec()).address
    opensrs.backend.set_protocols(address, {"pop3": False})

    opensrs.backend.set_mailbox_active(address, False)
    disabled = dict(opensrs.emulator.users[address])
    opensrs.backend.set_protocols(address, {"imap4": False, "pop3": True})
    while_disabled = dict(opensrs.emulator.users[address])
    opensrs.backend.set_mailbox_active(address, True)

    assert disabled["service_pop3"] == "disabled"
    assert {disabled[s] for s in disabled if s.startswith("service_") and s != "service_pop3"} == {"suspended"}
    assert (while_disabled["service_imap4"], while_disabled["service_pop3"]) == ("disabled", "suspended")
    assert opensrs.backend.get_mailbox(address).active
    assert opensrs.backend.get_protocols(address) == {"imap4": False, "pop3": True, "smtp": True, "webmail": True}


def test_create_mailbox__inactive_with_protocols_keeps_both_apart(opensrs):
    address = opensrs.backend.create_mailbox(opensrs.spec(active=False, protocols={"imap4": False})).address

    user = opensrs.emulator.users[address]
    assert user["service_imap4"] == "disabled"
    assert user["service_smtpin"] == user["service_pop3"] == "suspended"
    assert opensrs.backend.get_mailbox(address).active is False


def _drop_connection_after(emulator, method: str) -> None:
    """The server closes its kept-alive connection after answering ``method`` (a keep-alive timeout, say)."""
    handle = emulator.handle

    def handle_then_close(request):
        reply = handle(request)
        reply.close_silently = request.path.endswith(f"/{method}")
        return reply

    emulator.handle = handle_then_close


def test_closed_connection__a_read_is_sent_again_a_change_is_not(opensrs):
    address = opensrs.backend.create_mailbox(opensrs.spec()).address
    _drop_connection_after(opensrs.emulator, "get_user")
    opensrs.backend.get_mailbox(address)

    assert opensrs.backend.get_mailbox(address) is not None  # its first try met the closed connection
    with pytest.raises(TransientBackendError) as caught:
        opensrs.backend.set_quota(address, 2 * 1024**3)

    assert caught.value.code == "connection"
    assert [r.path.rsplit("/", 1)[1] for r in opensrs.emulator.requests][-2:] == ["get_user", "get_user"]
