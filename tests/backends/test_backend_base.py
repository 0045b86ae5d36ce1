"""The interface's own guarantees: errors, values, secrets, passwords."""

from __future__ import annotations

import string

import pytest

from portal.backends.base import (
    PORTAL_DOMAIN_SETTING_KEYS,
    PROTOCOL_LABELS,
    REDACTED,
    BackendError,
    BackendNotFound,
    Capabilities,
    CheckResult,
    ConfigurationError,
    DomainCheck,
    DomainSetting,
    MailboxSpec,
    PermanentBackendError,
    ProvisionResult,
    Settings,
    TransientBackendError,
    UnexpectedResponse,
    Unsupported,
    domain_setting,
    generate_password,
    record_purpose,
    validate_domain_settings,
)
from portal.backends.dimail import DimailBackend
from portal.backends.local import LocalBackend


def test_error_classes__say_whether_a_retry_can_help():
    assert issubclass(UnexpectedResponse, TransientBackendError)
    assert issubclass(BackendNotFound, PermanentBackendError)
    assert issubclass(Unsupported, PermanentBackendError)
    assert not issubclass(PermanentBackendError, TransientBackendError)


def test_backend_error__shows_its_message_and_keeps_hints():
    error = PermanentBackendError("Quota too large", hints={"quota": "at most 50 GB"}, code="invalid")

    assert str(error) == "Quota too large"
    assert repr(error) == "PermanentBackendError('Quota too large', code='invalid')"
    assert error.hints == {"quota": "at most 50 GB"}


def test_generate_password__is_long_mixed_and_safe_to_transport():
    passwords = {generate_password() for _ in range(200)}

    assert len(passwords) == 200
    for password in passwords:
        assert len(password) == 20
        assert any(c in string.ascii_lowercase for c in password)
        assert any(c in string.ascii_uppercase for c in password)
        assert any(c in string.digits for c in password)
        assert not set(password) & set(" \"'\\`&<>")


def test_generate_password__refuses_short_lengths():
    with pytest.raises(ValueError):
        generate_password(8)


def test_settings__repr_never_shows_secrets():
    settings = Settings({"url": "https://x", "password": "hunter22", "token": ""}, {"password", "token"})

    assert "hunter22" not in repr(settings)
    assert settings.redacted() == {"url": "https://x", "password": REDACTED, "token": ""}
    assert settings.secret_values() == ["hunter22"]
    assert settings["password"] == "hunter22"


def test_backend__scrubs_known_secrets_from_text(tmp_path):
    backend = DimailBackend({"url": "https://d.example", "user": "u", "password": "hunter22"}, timeout=1)
    backend.remember_secret("generated-Pw-1234")

    text = backend.scrub("bad password hunter22 and generated-Pw-1234 in body")

    assert text == "bad password ••••• and ••••• in body"
    assert "hunter22" not in repr(backend)


def test_backend__refuses_missing_settings_and_credentials_in_urls():
    with pytest.raises(ConfigurationError):
        DimailBackend({"url": "https://d.example", "user": "u"}, timeout=1)
    with pytest.raises(ConfigurationError) as caught:
        DimailBackend({"url": "https://u:hunter22@d.example", "user": "u", "password": "p"}, timeout=1)
    assert "hunter22" not in str(caught.value)


def test_adapter_declaring_a_capability_it_does_not_implement__is_refused_at_import():
    with pytest.raises(TypeError) as caught:
        class Boasting(LocalBackend):
            name = "boasting"
            capabilities = Capabilities(**{**vars(LocalBackend.capabilities), "mailbox_password_reset": True,
                                           "mailbox_password_set": True, "mailbox_delete": False})

    assert "delete_mailbox is implemented but capability can_delete_mailbox is False" in str(caught.value)


def test_capabilities__refuse_notes_for_unknown_capabilities():
    with pytest.raises(ValueError):
        Capabilities(**{**vars(LocalBackend.capabilities), "notes": {"teleport": "no"}})


def test_capabilities__describe_uses_the_backends_own_explanation():
    rows = {label: (supported, text) for label, supported, text in DimailBackend.capabilities.describe()}

    assert rows["Mailbox quotas"] == (False, "dimail has no quota API; quotas follow the Open-XChange context.")
    assert rows["Deletes mailboxes"] == (True, "Deleting a mailbox removes it from the backend.")


def test_mailbox_spec__checks_its_address_and_hides_the_password():
    spec = MailboxSpec.for_address("Jane.Doe@Example.TEST", password="hunter22", quota_bytes=1)

    assert (spec.local_part, spec.domain, spec.address) == ("Jane.Doe", "example.test", "Jane.Doe@example.test")
    assert "hunter22" not in repr(spec)
    with pytest.raises(ValueError):
        MailboxSpec(address="a@b.test", local_part="c", domain="b.test")
    with pytest.raises(ValueError):
        MailboxSpec.for_address("a@b.test", quota_bytes=0)


def test_provision_result__repr_hides_the_password():
    result = ProvisionResult("a@b.test", None, generated_password="hunter22", created=True)

    assert "hunter22" not in repr(result)


@pytest.mark.parametrize(("checks", "backend_says_ok", "state"), [
    ([CheckResult("mx", True, False), CheckResult("ox", True, True)], True, "ok"),
    ([CheckResult("mx", False, False), CheckResult("ox", False, True)], False, "external_failed"),
    ([CheckResult("mx", True, False), CheckResult("ox", False, True)], False, "internal_failed"),
    ([CheckResult("mx", True, False)], False, "internal_failed"),
])
def test_domain_check__external_failures_come_first(checks, backend_says_ok, state):
    assert DomainCheck.from_checks(checks, backend_says_ok=backend_says_ok).state == state


@pytest.mark.parametrize(("name", "record_type", "value", "purpose"), [
    ("example.test", "MX", "10 mx.example.test.", "Delivers"),
    ("example.test", "TXT", "v=spf1 mx ~all", "SPF"),
    ("ox._domainkey.example.test", "TXT", "v=DKIM1; p=abc", "DKIM"),
    ("_dmarc.example.test", "TXT", "v=DMARC1; p=none", "DMARC"),
    ("imap.example.test", "CNAME", "imap.ox.test.", "Points imap"),
])
def test_record_purpose__explains_each_record(name, record_type, value, purpose):
    assert record_purpose(name, record_type, value).startswith(purpose)


def test_every_error_is_a_backend_error():
    for error_class in (TransientBackendError, PermanentBackendError, BackendNotFound, Unsupported,
                        UnexpectedResponse):
        assert issubclass(error_class, BackendError)


# -- domain settings ------------------------------------------------------------------

_SPEC = (
    domain_setting("default_quota_bytes"),
    domain_setting("max_users"),
    domain_setting("domain_aliases", max_items=2),
    domain_setting("allow_senders", max_items=3),
    domain_setting("catch_all"),
    domain_setting("spam_level"),
    domain_setting("spam_tag", max_length=5),
    domain_setting("spam_header"),
    domain_setting("default_services"),
    DomainSetting("autoreply", "Auto-reply", "bool"),
)


def test_validate_domain_settings__accepts_good_values_and_none():
    values = {
        "default_quota_bytes": 1024, "max_users": 0, "domain_aliases": ["other.test"],
        "allow_senders": ["*@partner.test", "boss@*.partner.test", "ann@partner.test"],
        "catch_all": "postmaster@example.test", "spam_level": "very_high", "spam_tag": "[S]",
        "spam_header": "X-Spam: yes", "default_services": ["imap", "webmail"], "autoreply": False,
    }

    assert validate_domain_settings(_SPEC, values, domain="example.test") == {}
    assert validate_domain_settings(_SPEC, dict.fromkeys(values), domain="example.test") == {}
    assert validate_domain_settings(_SPEC, {"catch_all": ""}, domain="example.test") == {}


@pytest.mark.parametrize(("key", "value", "message"), [
    ("default_quota_bytes", 0, "At least 1."),
    ("default_quota_bytes", "5G", "Enter a whole number."),
    ("max_users", True, "Enter a whole number."),
    ("domain_aliases", ["a.test", "b.test", "c.test"], "At most 2 entries; 3 given."),
    ("domain_aliases", ["example.test"], "example.test: A domain cannot be its own alias."),
    ("domain_aliases", ["not a domain"], "not a domain: Enter a domain name."),
    ("domain_aliases", "other.test", "Enter a list of entries."),
    ("allow_senders", ["spam"], "spam: Enter an address or a pattern such as *@example.com."),
    ("allow_senders", ["a@b.test", "A@b.test"], "A@b.test is listed twice."),
    ("allow_senders", ["a@b.test", " "], "Leave out empty entries."),
    ("catch_all", "postmaster@elsewhere.test", "Enter an address in example.test."),
    ("catch_all", "postmaster", "Enter an e-mail address."),
    ("spam_level", "Very High", "Choose one of: Normal, High, Very high."),
    ("spam_tag", "[SPAM]", "At most 5 characters."),
    ("spam_header", "x-spam yes", "Write it as Name: value, the name starting with a capital letter."),
    ("default_services", ["imap", "gopher"], "gopher is not one of: IMAP, POP, Sending (SMTP), Webmail."),
    ("autoreply", "yes", "Choose yes or no."),
    ("teleport", 1, "This backend has no such setting."),
])
def test_validate_domain_settings__explains_each_refusal(key, value, message):
    assert validate_domain_settings(_SPEC, {key: value}, domain="example.test") == {key: message}


def test_validate_domain_settings__reports_every_refused_key_at_once():
    problems = validate_domain_settings(_SPEC, {"max_users": -1, "spam_tag": "x" * 6, "max_users_typo": 3})

    assert set(problems) == {"max_users", "spam_tag", "max_users_typo"}


def test_domain_setting__keeps_the_portals_words_with_the_backends_limits():
    setting = domain_setting("allow_senders", max_items=1000)

    assert (setting.key, setting.kind, setting.max_items, setting.value_format) == (
        "allow_senders", "list", 1000, "sender")
    assert set(PORTAL_DOMAIN_SETTING_KEYS) >= {
        "default_quota_bytes", "max_users", "max_aliases", "domain_aliases", "allow_senders", "block_senders",
        "catch_all", "spam_level", "spam_folder", "spam_tag", "default_services"}
    with pytest.raises(ValueError):
        DomainSetting("level", "Level", "choice")


def test_adapter_with_settings_but_no_capability__is_refused_at_import():
    with pytest.raises(TypeError) as caught:
        class Chatty(DimailBackend):
            name = "chatty"
            domain_setting_specs = (domain_setting("spam_tag"),)

    assert "domain_setting_specs is set but capability domain_settings is False" in str(caught.value)


def test_adapter_declaring_protocol_switches_without_the_methods__is_refused_at_import():
    with pytest.raises(TypeError) as caught:
        class Switchy(DimailBackend):
            name = "switchy"
            protocol_names = ("imap4",)
            capabilities = Capabilities(**{**vars(DimailBackend.capabilities), "protocol_flags": True})

    assert "get_protocols is missing but capability protocol_flags is True" in str(caught.value)


def test_adapter_listing_protocols_without_a_label__is_refused_at_import():
    with pytest.raises(TypeError) as caught:
        class Gopher(LocalBackend):
            name = "gopher"
            protocol_names = ("imap4", "gopher")

    assert "gopher" in str(caught.value)


def test_mailbox_spec__copies_protocols_and_refuses_other_values():
    asked = {"imap4": False}
    spec = MailboxSpec.for_address("a@b.test", protocols=asked)
    asked["imap4"] = True

    assert spec.protocols == {"imap4": False}
    with pytest.raises(ValueError):
        MailboxSpec.for_address("a@b.test", protocols={"imap4": "off"})


def test_protocol_labels__name_every_protocol_any_adapter_switches():
    from portal.backends import registry

    for name in registry.available_backends():
        assert set(registry.backend_class(name).protocols()) <= set(PROTOCOL_LABELS)
