"""The interface's own guarantees: errors, values, secrets, passwords."""

from __future__ import annotations

import string

import pytest

from portal.backends.base import (
    REDACTED,
    BackendError,
    BackendNotFound,
    Capabilities,
    CheckResult,
    ConfigurationError,
    DomainCheck,
    MailboxSpec,
    PermanentBackendError,
    ProvisionResult,
    Settings,
    TransientBackendError,
    UnexpectedResponse,
    Unsupported,
    generate_password,
    record_purpose,
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
