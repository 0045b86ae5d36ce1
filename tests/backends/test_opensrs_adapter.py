"""OpenSRS quirks: 200 failure envelopes, error numbers, session tokens."""

from __future__ import annotations

import pytest

from portal.backends import opensrs as opensrs_module
from portal.backends.base import (
    BackendNotFound,
    PermanentBackendError,
    TransientBackendError,
)


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
                   lambda: opensrs.backend.add_alias(address, f"spirit@{opensrs.domain}")):
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
