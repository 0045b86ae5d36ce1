"""The contract every adapter fulfils, run against each of them.

Network failures are tried on the adapters that have a network; the
capabilities decide which operations must work and which must refuse with
``Unsupported``.
"""

from __future__ import annotations

import logging

import pytest

from portal.backends.base import (
    BackendError,
    BackendNotFound,
    DnsRecord,
    DomainCheck,
    PermanentBackendError,
    TransientBackendError,
    UnexpectedResponse,
    Unsupported,
)

from .conftest import GIB, TIMEOUT

SLOWER_THAN_TIMEOUT = TIMEOUT + 0.3


def _operations(harness, address):
    """Every optional operation, callable, keyed by the capability that declares it."""
    backend = harness.backend
    return {
        "domain_check": lambda: backend.check_domain(harness.domain),
        "domain_fix": lambda: backend.fix_domain(harness.domain),
        "mailbox_disable": lambda: backend.set_mailbox_active(address, False),
        "mailbox_quota": lambda: backend.set_quota(address, GIB),
        "mailbox_admin_privilege": lambda: backend.set_admin(address, True),
        "mailbox_aliases": lambda: backend.add_alias(address, f"alias@{harness.domain}"),
        "can_delete_mailbox": lambda: backend.delete_mailbox(address),
        "can_reset_password": lambda: backend.reset_password(address),
    }


# -- health and domains ------------------------------------------------------


def test_health__reports_a_reachable_backend_as_ok(harness):
    result = harness.backend.health()

    assert result.ok, result.message


def test_health__reports_refused_credentials_without_raising(network_harness):
    backend = network_harness.open(password="not-the-password")

    result = backend.health()

    assert not result.ok
    assert "not-the-password" not in result.message


def test_ensure_domain__twice_is_harmless(harness):
    harness.backend.ensure_domain(harness.domain)
    harness.backend.ensure_domain(harness.domain)

    expected = [harness.domain] if harness.backend.capabilities.domain_api else []
    assert harness.domains() == expected


def test_check_domain__follows_capabilities(harness):
    if harness.backend.capabilities.domain_check:
        check = harness.backend.check_domain(harness.domain)
        assert isinstance(check, DomainCheck)
        assert check.state == "ok"
    else:
        with pytest.raises(Unsupported):
            harness.backend.check_domain(harness.domain)


def test_required_records__include_an_mx_record(harness):
    records = harness.backend.required_records(harness.domain)

    assert all(isinstance(record, DnsRecord) for record in records)
    mx_records = [record for record in records if record.type == "MX" and record.name == harness.domain]
    assert len(mx_records) == 1
    assert mx_records[0].purpose


# -- creating mailboxes -----------------------------------------------------------


def test_create_mailbox__provisions_it_and_hands_back_the_password(harness):
    result = harness.backend.create_mailbox(harness.spec())

    assert result.created
    assert result.address == f"jane.doe@{harness.domain}"
    assert result.generated_password
    assert harness.creations(result.address) == 1
    mailbox = harness.backend.get_mailbox(result.address)
    assert mailbox is not None and mailbox.active


def test_create_mailbox__with_the_portals_password_reports_none_generated(harness):
    if not harness.backend.capabilities.mailbox_password_set:
        pytest.skip("the backend always generates the password")

    result = harness.backend.create_mailbox(harness.spec(password="Portal-chosen-Pw-42"))

    assert result.created
    assert result.generated_password is None


def test_create_mailbox__twice_creates_once(harness):
    first = harness.backend.create_mailbox(harness.spec())
    second = harness.backend.create_mailbox(harness.spec())

    assert first.created and not second.created
    assert second.generated_password is None
    assert harness.creations(first.address) == 1


def test_create_mailbox__retried_after_a_lost_answer_finds_the_mailbox(network_harness):
    harness = network_harness
    harness.emulator.faults.drop_after_acting(1, matching=harness.is_create_request)

    with pytest.raises(TransientBackendError):
        harness.backend.create_mailbox(harness.spec())
    retry = harness.backend.create_mailbox(harness.spec())

    assert retry.created is False
    assert harness.creations(retry.address) == 1


def test_create_mailbox__invalid_name_is_permanent_with_the_backends_words(harness):
    spec = harness.spec(local_part="Not Valid!")

    with pytest.raises(PermanentBackendError) as caught:
        harness.backend.create_mailbox(spec)

    assert harness.invalid_local_part_message in caught.value.message
    assert harness.creations(spec.address) == 0


# -- reading mailboxes ------------------------------------------------------------


def test_get_mailbox__unknown_address_is_none(harness):
    assert harness.backend.get_mailbox(f"nobody@{harness.domain}") is None


def test_list_mailboxes__shows_every_mailbox_of_the_domain(harness):
    for local_part in ("anna", "bob"):
        harness.backend.create_mailbox(harness.spec(local_part))

    addresses = sorted(mailbox.address for mailbox in harness.backend.list_mailboxes(harness.domain))

    assert addresses == [f"anna@{harness.domain}", f"bob@{harness.domain}"]


# -- changing mailboxes -------------------------------------------------------------


def test_set_mailbox_active__disables_and_enables(harness):
    address = harness.backend.create_mailbox(harness.spec()).address
    if not harness.backend.capabilities.mailbox_disable:
        with pytest.raises(Unsupported):
            harness.backend.set_mailbox_active(address, False)
        return

    harness.backend.set_mailbox_active(address, False)
    assert harness.backend.get_mailbox(address).active is False
    harness.backend.set_mailbox_active(address, True)
    assert harness.backend.get_mailbox(address).active is True


def test_create_mailbox__inactive_spec_creates_a_disabled_mailbox(harness):
    spec = harness.spec(active=False)
    if not harness.backend.capabilities.mailbox_disable:
        with pytest.raises(Unsupported):
            harness.backend.create_mailbox(spec)
        assert harness.creations(spec.address) == 0
        return

    harness.backend.create_mailbox(spec)

    assert harness.backend.get_mailbox(spec.address).active is False


def test_set_quota__converts_units_exactly_on_the_wire(harness):
    if not harness.backend.capabilities.mailbox_quota:
        pytest.skip("no quota API; the Unsupported path is tested below")
    address = harness.backend.create_mailbox(harness.spec()).address

    for asked, on_the_wire, read_back in harness.quota_cases:
        harness.backend.set_quota(address, asked)
        assert harness.wire_quota(address) == on_the_wire
        assert harness.backend.get_mailbox(address).quota_bytes == read_back


def test_create_mailbox__sends_the_quota_in_the_backends_unit(harness):
    if not harness.backend.capabilities.mailbox_quota:
        pytest.skip("no quota API")
    asked, on_the_wire, _ = harness.quota_cases[0]

    address = harness.backend.create_mailbox(harness.spec(quota_bytes=asked)).address

    assert harness.wire_quota(address) == on_the_wire


def test_set_quota__refuses_a_quota_that_is_not_positive(harness):
    if not harness.backend.capabilities.mailbox_quota:
        pytest.skip("no quota API")
    address = harness.backend.create_mailbox(harness.spec()).address

    with pytest.raises(PermanentBackendError):
        harness.backend.set_quota(address, 0)


def test_reset_password__returns_a_new_password(harness):
    address = harness.backend.create_mailbox(harness.spec()).address

    first = harness.backend.reset_password(address)
    second = harness.backend.reset_password(address)

    assert first and second and first != second


def test_add_alias__twice_is_harmless(harness):
    address = harness.backend.create_mailbox(harness.spec()).address

    harness.backend.add_alias(address, f"jd@{harness.domain}")
    harness.backend.add_alias(address, f"jd@{harness.domain}")

    assert harness.aliases(address) == [f"jd@{harness.domain}"]


def test_set_admin__follows_capabilities(harness):
    address = harness.backend.create_mailbox(harness.spec()).address
    if not harness.backend.capabilities.mailbox_admin_privilege:
        with pytest.raises(Unsupported):
            harness.backend.set_admin(address, True)
        return

    harness.backend.set_admin(address, True)
    assert harness.backend.get_mailbox(address).extra["admin"] is True
    harness.backend.set_admin(address, False)
    assert harness.backend.get_mailbox(address).extra["admin"] is False


def test_delete_mailbox__removes_or_archives_and_is_idempotent(harness):
    address = harness.backend.create_mailbox(harness.spec()).address
    capabilities = harness.backend.capabilities
    if not capabilities.can_delete_mailbox:
        with pytest.raises(Unsupported):
            harness.backend.delete_mailbox(address)
        return

    harness.backend.delete_mailbox(address)
    harness.backend.delete_mailbox(address)

    remaining = harness.backend.get_mailbox(address)
    if capabilities.mailbox_delete_archives:
        assert remaining is not None and not remaining.active and remaining.extra["archived"]
    else:
        assert remaining is None


# -- capabilities -------------------------------------------------------------------


def test_unsupported_operations__raise_unsupported_and_are_declared(harness):
    address = harness.backend.create_mailbox(harness.spec()).address
    capabilities = harness.backend.capabilities

    for capability, operation in _operations(harness, address).items():
        if not getattr(capabilities, capability):
            with pytest.raises(Unsupported) as caught:
                operation()
            assert caught.value.message.startswith(harness.backend.label)


def test_capabilities__describe_every_capability_for_the_ui(harness):
    rows = harness.backend.capabilities.describe()

    assert len(rows) == 16
    assert all(label and explanation for label, _, explanation in rows)
    assert ("Creates mailboxes", True) in [(label, supported) for label, supported, _ in rows]


# -- secrets -----------------------------------------------------------------------


def test_refused_credentials__never_show_a_secret(network_harness):
    wrong = "wrong-password-never-shown"
    backend = network_harness.open(password=wrong)

    with pytest.raises(PermanentBackendError) as caught:
        backend.list_mailboxes(network_harness.domain)

    shown = str(caught.value) + repr(caught.value) + repr(backend) + repr(backend.settings)
    assert caught.value.code == "auth"
    assert wrong not in shown
    assert network_harness.settings["password"] not in shown


def test_logs__never_contain_a_secret(harness, caplog):
    caplog.set_level(logging.DEBUG, logger="portal.backends")

    result = harness.backend.create_mailbox(harness.spec())
    new_password = harness.backend.reset_password(result.address)

    for secret in (result.generated_password, new_password, harness.settings.get("password")):
        if secret:
            assert secret not in caplog.text


# -- network failures --------------------------------------------------------------


def test_server_errors__are_transient(network_harness):
    network_harness.emulator.faults.fail_5xx()

    with pytest.raises(TransientBackendError) as caught:
        network_harness.backend.get_mailbox(f"jane.doe@{network_harness.domain}")

    assert "503" in caught.value.message


def test_refused_connection__is_transient(network_harness):
    network_harness.emulator.faults.refuse()
    try:
        with pytest.raises(TransientBackendError) as caught:
            network_harness.backend.create_mailbox(network_harness.spec())
    finally:
        network_harness.emulator.faults.restore()

    assert caught.value.code == "connection"
    assert network_harness.backend.get_mailbox(f"jane.doe@{network_harness.domain}") is None


def test_slow_answer__times_out_as_transient(network_harness):
    network_harness.emulator.faults.slow(SLOWER_THAN_TIMEOUT)

    with pytest.raises(TransientBackendError) as caught:
        network_harness.backend.list_mailboxes(network_harness.domain)

    assert caught.value.code == "timeout"


def test_wrong_url__fails_rather_than_reporting_mailboxes_gone(network_harness):
    backend = network_harness.open(url=network_harness.emulator.url + "/wrong")
    address = f"jane.doe@{network_harness.domain}"
    calls = [lambda: backend.get_mailbox(address)]
    if backend.capabilities.can_delete_mailbox:
        calls.append(lambda: backend.delete_mailbox(address))

    for call in calls:
        with pytest.raises(PermanentBackendError) as caught:
            call()
        assert not isinstance(caught.value, BackendNotFound)


@pytest.mark.parametrize("operation", ["create", "get", "list"])
def test_garbage_answer__is_an_unexpected_response(network_harness, operation):
    backend = network_harness.backend
    network_harness.emulator.faults.garbage()
    calls = {
        "create": lambda: backend.create_mailbox(network_harness.spec()),
        "get": lambda: backend.get_mailbox(f"jane.doe@{network_harness.domain}"),
        "list": lambda: backend.list_mailboxes(network_harness.domain),
    }

    with pytest.raises(UnexpectedResponse) as caught:
        calls[operation]()

    assert isinstance(caught.value, BackendError)
    assert caught.value.message
