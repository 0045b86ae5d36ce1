"""The contract every adapter fulfils, run against each of them (dimail in
both the versions its emulator reproduces).

Network failures are tried on the adapters that have a network; the
capabilities the adapter discovered decide which operations must work and
which must refuse with ``Unsupported``.
"""

from __future__ import annotations

import logging

import pytest

from portal.backends.base import (
    PROTOCOL_LABELS,
    BackendError,
    BackendNotFound,
    DnsRecord,
    DomainCheck,
    DomainSetting,
    PermanentBackendError,
    TransientBackendError,
    UnexpectedResponse,
    Unsupported,
    validate_domain_settings,
)

from .conftest import GIB, MIB

SHORT_TIMEOUT = 0.5
SLOWER_THAN_TIMEOUT = SHORT_TIMEOUT + 0.3


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
        "mailbox_alias_remove": lambda: backend.remove_alias(address, f"alias@{harness.domain}"),
        "can_delete_mailbox": lambda: backend.delete_mailbox(address),
        "can_reset_password": lambda: backend.reset_password(address),
        "domain_settings": lambda: backend.get_domain_settings(harness.domain),
        "protocol_flags": lambda: backend.get_protocols(address),
    }


def _sample_value(setting: DomainSetting, domain: str):
    """A value every backend describing ``setting`` must accept and give back."""
    if setting.kind == "int":
        return 3 * MIB if setting.unit == "bytes" else max(setting.min_value or 0, 25)
    if setting.kind == "bool":
        return True
    if setting.kind == "choice":
        return setting.choice_values[-1]
    if setting.kind == "list":
        if setting.choices:
            return list(setting.choice_values[:2])
        return {"domain": ["alias-one.example.net", "alias-two.example.net"],
                "sender": ["*@spam.test", "boss@partner.test"]}.get(setting.value_format,
                                                                    [f"a@{domain}", f"b@{domain}"])
    return {"domain_address": f"contact@{domain}", "address": f"contact@{domain}",
            "header": "X-Spam: detected"}.get(setting.value_format, "Junk")


def _samples(harness) -> dict:
    return {setting.key: _sample_value(setting, harness.domain) for setting in harness.backend.domain_settings()}


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
    spec = harness.spec(local_part=harness.invalid_local_part)

    with pytest.raises(PermanentBackendError) as caught:
        harness.backend.create_mailbox(spec)

    assert harness.invalid_local_part_message in caught.value.message
    assert harness.creations(spec.address) == 0
    assert spec.address not in [m.address for m in harness.backend.list_mailboxes(harness.domain)]


def test_address_problem__explains_the_refused_name_without_a_call(harness):
    requests_before = len(harness.emulator.requests) if harness.emulator else 0
    backend_class = type(harness.backend)

    problem = backend_class.address_problem(harness.invalid_local_part, harness.domain)

    if harness.name in ("local", "opensrs", "odin"):
        assert problem is None  # these backends' rules are not declared: their own refusal is shown instead
    else:
        assert harness.invalid_local_part_message in problem
    assert backend_class.address_problem("jane.doe", harness.domain) is None
    assert (len(harness.emulator.requests) if harness.emulator else 0) == requests_before


# -- reading mailboxes ------------------------------------------------------------


def test_get_mailbox__unknown_address_is_none(harness):
    assert harness.backend.get_mailbox(f"nobody@{harness.domain}") is None


def test_list_mailboxes__shows_every_mailbox_of_the_domain(harness):
    for local_part in ("anna", "bob"):
        harness.backend.create_mailbox(harness.spec(local_part))

    listed = harness.backend.list_mailboxes(harness.domain)

    assert sorted(m.address for m in listed if not m.system) == [f"anna@{harness.domain}", f"bob@{harness.domain}"]


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
    if not harness.backend.capabilities.can_reset_password:
        with pytest.raises(Unsupported):
            harness.backend.reset_password(address)
        return

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

    harness.receive_mail(address)
    harness.backend.delete_mailbox(address)
    harness.backend.delete_mailbox(address)

    remaining = harness.backend.get_mailbox(address)
    if capabilities.mailbox_delete_archives:
        assert remaining is not None and not remaining.active and remaining.extra["archived"]
    else:
        assert remaining is None


def test_list_aliases__shows_what_add_alias_added(harness):
    address = harness.backend.create_mailbox(harness.spec()).address
    other = harness.backend.create_mailbox(harness.spec("john")).address
    harness.backend.add_alias(other, f"sales@{harness.domain}")

    assert harness.backend.list_aliases(address) == []
    harness.backend.add_alias(address, f"jd@{harness.domain}")
    harness.backend.add_alias(address, f"jane@{harness.domain}")

    assert sorted(harness.backend.list_aliases(address)) == [f"jane@{harness.domain}", f"jd@{harness.domain}"]
    assert harness.backend.list_aliases(other) == [f"sales@{harness.domain}"]


def test_list_aliases__of_a_missing_mailbox_is_not_found(harness):
    with pytest.raises(BackendNotFound):
        harness.backend.list_aliases(f"nobody@{harness.domain}")


def test_add_alias__refuses_an_alias_delivering_to_another_mailbox(harness):
    jane = harness.backend.create_mailbox(harness.spec()).address
    john = harness.backend.create_mailbox(harness.spec("john")).address
    harness.backend.add_alias(jane, f"team@{harness.domain}")

    with pytest.raises(PermanentBackendError):
        harness.backend.add_alias(john, f"team@{harness.domain}")

    assert harness.aliases(jane) == [f"team@{harness.domain}"]
    assert harness.aliases(john) == []


def test_remove_alias__removes_it_and_is_idempotent(harness):
    address = harness.backend.create_mailbox(harness.spec()).address
    harness.backend.add_alias(address, f"jd@{harness.domain}")
    harness.backend.add_alias(address, f"jane@{harness.domain}")

    harness.backend.remove_alias(address, f"jd@{harness.domain}")
    harness.backend.remove_alias(address, f"jd@{harness.domain}")
    harness.backend.remove_alias(address, f"never-added@{harness.domain}")

    assert harness.aliases(address) == [f"jane@{harness.domain}"]
    assert harness.backend.list_aliases(address) == [f"jane@{harness.domain}"]


def test_remove_alias__leaves_another_mailboxs_alias_alone(harness):
    jane = harness.backend.create_mailbox(harness.spec()).address
    john = harness.backend.create_mailbox(harness.spec("john")).address
    harness.backend.add_alias(jane, f"team@{harness.domain}")

    harness.backend.remove_alias(john, f"team@{harness.domain}")

    assert harness.aliases(jane) == [f"team@{harness.domain}"]


def test_remove_alias__of_a_missing_mailbox_succeeds(harness):
    harness.backend.remove_alias(f"nobody@{harness.domain}", f"jd@{harness.domain}")


# -- domain settings ----------------------------------------------------------------


def test_domain_settings__follow_capabilities(harness):
    backend = harness.backend
    settings = backend.domain_settings()

    assert bool(settings) == backend.capabilities.domain_settings
    assert all(isinstance(setting, DomainSetting) for setting in settings)
    assert type(backend).domain_settings() == settings
    if not settings:
        for call in (lambda: backend.get_domain_settings(harness.domain),
                     lambda: backend.set_domain_settings(harness.domain, {"catch_all": ""})):
            with pytest.raises(Unsupported) as caught:
                call()
            assert backend.capabilities.notes["domain_settings"] in caught.value.message


def test_domain_settings__round_trip_every_setting_twice(harness):
    if not harness.backend.capabilities.domain_settings:
        pytest.skip("no domain settings")
    harness.backend.create_mailbox(harness.spec("contact"))
    values = _samples(harness)
    assert validate_domain_settings(harness.backend.domain_settings(), values, domain=harness.domain) == {}

    harness.backend.set_domain_settings(harness.domain, values)
    harness.backend.set_domain_settings(harness.domain, values)

    assert harness.backend.get_domain_settings(harness.domain) == values


def test_domain_settings__change_only_the_keys_given_and_none_clears(harness):
    if not harness.backend.capabilities.domain_settings:
        pytest.skip("no domain settings")
    harness.backend.create_mailbox(harness.spec("contact"))
    values = _samples(harness)
    harness.backend.set_domain_settings(harness.domain, values)
    first, *rest = values

    harness.backend.set_domain_settings(harness.domain, {first: None})

    after = harness.backend.get_domain_settings(harness.domain)
    assert after[first] in (None, [])
    assert {key: after[key] for key in rest} == {key: values[key] for key in rest}


def test_domain_settings__invalid_values_are_refused_before_any_call(harness):
    if not harness.backend.capabilities.domain_settings:
        pytest.skip("no domain settings")
    bad = {"catch_all": "someone@elsewhere.test", "teleport": True}
    requests_before = len(harness.emulator.requests) if harness.emulator else 0

    with pytest.raises(PermanentBackendError) as caught:
        harness.backend.set_domain_settings(harness.domain, bad)

    assert caught.value.code == "invalid"
    assert caught.value.hints["catch_all"] == f"Enter an address in {harness.domain}."
    assert caught.value.hints["teleport"] == "This backend has no such setting."
    assert (len(harness.emulator.requests) if harness.emulator else 0) == requests_before


def test_domain_settings__of_a_domain_never_set_up_are_not_found(harness):
    if not (harness.backend.capabilities.domain_settings and harness.backend.capabilities.domain_api):
        pytest.skip("no domain settings, or domains need no set-up")

    for call in (lambda: harness.backend.get_domain_settings("elsewhere.test"),
                 lambda: harness.backend.set_domain_settings("elsewhere.test", {"spam_tag": "[SPAM]"})):
        with pytest.raises(BackendNotFound):
            call()

    assert harness.domains() == [harness.domain]


# -- client protocols -----------------------------------------------------------------


def test_protocols__follow_capabilities_and_have_labels(harness):
    protocols = harness.backend.protocols()

    assert bool(protocols) == harness.backend.capabilities.protocol_flags
    assert set(protocols) <= set(PROTOCOL_LABELS)
    if not protocols:
        address = harness.backend.create_mailbox(harness.spec()).address
        with pytest.raises(Unsupported):
            harness.backend.set_protocols(address, {"imap4": False})


def test_protocols__switch_one_off_and_on_again(harness):
    if not harness.backend.capabilities.protocol_flags:
        pytest.skip("no protocol switches")
    address = harness.backend.create_mailbox(harness.spec()).address
    first, *others = harness.backend.protocols()
    assert harness.backend.get_protocols(address) == dict.fromkeys(harness.backend.protocols(), True)

    harness.backend.set_protocols(address, {first: False})
    harness.backend.set_protocols(address, {first: False})
    switched = harness.backend.get_protocols(address)
    harness.backend.set_protocols(address, {first: True})

    assert switched == {first: False, **dict.fromkeys(others, True)}
    assert harness.backend.get_protocols(address) == dict.fromkeys(harness.backend.protocols(), True)
    assert harness.backend.get_mailbox(address).active


def test_create_mailbox__applies_the_specs_protocols(harness):
    protocols = harness.backend.protocols()
    if not protocols:
        spec = harness.spec(protocols={"imap4": False})
        with pytest.raises(Unsupported):
            harness.backend.create_mailbox(spec)
        assert harness.creations(spec.address) == 0
        assert harness.backend.create_mailbox(harness.spec(protocols={"imap4": True})).created
        return

    address = harness.backend.create_mailbox(harness.spec(protocols={protocols[-1]: False})).address

    assert harness.backend.get_protocols(address) == {**dict.fromkeys(protocols, True), protocols[-1]: False}


def test_protocols__unknown_names_are_refused(harness):
    if not harness.backend.capabilities.protocol_flags:
        pytest.skip("no protocol switches")
    address = harness.backend.create_mailbox(harness.spec()).address

    with pytest.raises(PermanentBackendError) as caught:
        harness.backend.set_protocols(address, {"gopher": True})
    with pytest.raises(PermanentBackendError):
        harness.backend.create_mailbox(harness.spec("john", protocols={"gopher": False}))

    assert caught.value.code == "invalid"
    assert harness.creations(f"john@{harness.domain}") == 0


def test_protocols__of_a_missing_mailbox_are_not_found(harness):
    if not harness.backend.capabilities.protocol_flags:
        pytest.skip("no protocol switches")
    address = f"nobody@{harness.domain}"

    for call in (lambda: harness.backend.get_protocols(address),
                 lambda: harness.backend.set_protocols(address, {harness.backend.protocols()[0]: False})):
        with pytest.raises(BackendNotFound):
            call()
    assert harness.creations(address) == 0


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

    assert len(rows) == 18
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


def test_refused_credentials__on_the_new_operations_never_show_a_secret(network_harness):
    wrong = "wrong-password-never-shown"
    backend = network_harness.open(password=wrong)
    address = f"jane.doe@{network_harness.domain}"
    calls = [lambda: backend.list_aliases(address)]
    if backend.capabilities.domain_settings:
        calls.append(lambda: backend.get_domain_settings(network_harness.domain))
    if backend.capabilities.protocol_flags:
        calls.append(lambda: backend.get_protocols(address))

    for call in calls:
        with pytest.raises(PermanentBackendError) as caught:
            call()
        shown = str(caught.value) + repr(caught.value) + " ".join(caught.value.hints.values())
        assert caught.value.code == "auth"
        assert wrong not in shown and network_harness.settings["password"] not in shown


def test_logs__never_contain_a_secret(harness, caplog):
    caplog.set_level(logging.DEBUG, logger="portal.backends")

    result = harness.backend.create_mailbox(harness.spec())
    can_reset = harness.backend.capabilities.can_reset_password
    new_password = harness.backend.reset_password(result.address) if can_reset else None

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
    backend = network_harness.open(timeout=SHORT_TIMEOUT)
    backend.discover()
    network_harness.emulator.faults.slow(SLOWER_THAN_TIMEOUT)

    with pytest.raises(TransientBackendError) as caught:
        backend.list_mailboxes(network_harness.domain)

    assert caught.value.code == "timeout"


def test_wrong_url__fails_rather_than_reporting_mailboxes_gone(network_harness):
    backend = network_harness.open(url=network_harness.emulator.url + "/wrong")
    address = f"jane.doe@{network_harness.domain}"
    calls = [lambda: backend.get_mailbox(address)]
    if backend.capabilities.can_delete_mailbox:
        calls.append(lambda: backend.delete_mailbox(address))
    if backend.capabilities.mailbox_alias_remove:
        calls.append(lambda: backend.remove_alias(address, f"jd@{network_harness.domain}"))

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
