"""Connections from a JSON file and the environment, validated at start-up."""

from __future__ import annotations

import json

import pytest

from portal.backends import registry
from portal.backends.base import REDACTED, Backend, ConfigurationError
from portal.backends.dimail import DimailBackend
from portal.backends.local import LocalBackend
from portal.backends.registry import UnknownBackend, backend_class, load_connections, register_backend

SECRET = "s3cret-never-shown"


@pytest.fixture
def backends_file(tmp_path):
    def write(connections) -> str:
        path = tmp_path / "backends.json"
        path.write_text(json.dumps({"connections": connections}))
        return str(path)
    return write


def _load(file_path=None, environ=None):
    return load_connections(file_path, environ or {}, local_state_path="/var/lib/portal/local.sqlite3")


def test_local_connection__always_exists(tmp_path):
    connections = _load(str(tmp_path / "missing.json"))

    assert list(connections) == ["local"]
    assert connections["local"].backend == "local"
    assert connections["local"].settings["state_path"] == "/var/lib/portal/local.sqlite3"
    assert connections["local"].timeout == registry.DEFAULT_TIMEOUT


def test_file_and_environment__merge_with_the_environment_winning(backends_file):
    path = backends_file({"corp-dimail": {"backend": "dimail", "url": "https://old.example", "user": "portal",
                                          "password": SECRET, "timeout": 4}})
    environ = {"PORTAL_BACKEND_CORP_DIMAIL_URL": "https://dimail.example", "HOME": "/root"}

    connection = _load(path, environ)["corp-dimail"]

    assert connection.backend == "dimail"
    assert connection.settings["url"] == "https://dimail.example"
    assert connection.settings["user"] == "portal"
    assert connection.timeout == 4.0


def test_environment_alone__declares_a_connection_by_its_backend_variable():
    environ = {
        "PORTAL_BACKEND_MY_ODIN_BACKEND": "odin",
        "PORTAL_BACKEND_MY_ODIN_URL": "https://odin.example:8440/RPC2",
        "PORTAL_BACKEND_MY_ODIN_SUBSCRIPTION_ID": "1001",
        "PORTAL_BACKEND_MY_ODIN_TIMEOUT": "2.5",
        "PORTAL_BACKEND_LOCAL_MAIL_HOST": "mx.example.org",
    }

    connections = _load(environ=environ)

    assert connections["my-odin"].settings == {"url": "https://odin.example:8440/RPC2", "subscription_id": "1001"}
    assert connections["my-odin"].timeout == 2.5
    assert connections["local"].settings["mail_host"] == "mx.example.org"


def test_json_numbers_and_booleans__become_text(backends_file):
    path = backends_file({"odin": {"backend": "odin", "url": "https://odin.example/RPC2", "subscription_id": 1001}})

    assert _load(path)["odin"].settings["subscription_id"] == "1001"


@pytest.mark.parametrize(("connections", "environ", "message"), [
    ({"x": {"backend": "exchange2003"}}, {}, "connection 'x': unknown backend 'exchange2003'"),
    ({"x": {"url": "https://x"}}, {}, "connection 'x': missing setting 'backend'"),
    ({"corp": {"backend": "dimail", "user": "u", "password": SECRET}}, {},
     "connection 'corp' (dimail): missing setting 'url' (set PORTAL_BACKEND_CORP_URL)"),
    ({"corp": {"backend": "dimail", "url": "https://d", "user": "u", "password": SECRET, "pasword": "typo"}}, {},
     "connection 'corp' (dimail): unknown setting pasword"),
    ({"corp": {"backend": "dimail", "url": "https://d", "user": "u", "password": SECRET, "timeout": "soon"}}, {},
     "connection 'corp': timeout must be a positive number"),
    ({"local": {"backend": "dimail"}}, {}, "reserved for the built-in local backend"),
    ({"Corp": {"backend": "local"}}, {}, "connection name 'Corp'"),
    ({"corp": {"backend": "dimail", "url": "https://d", "user": "u", "password": {"nested": SECRET}}}, {},
     "connection 'corp': password must be text or a number"),
    ({}, {"PORTAL_BACKEND_GHOST_URL": "https://ghost"}, "PORTAL_BACKEND_GHOST_URL names no connection"),
])
def test_bad_configuration__names_the_connection_and_key_never_a_secret(backends_file, connections, environ, message):
    with pytest.raises(ConfigurationError) as caught:
        _load(backends_file(connections), environ)

    assert message in str(caught.value)
    assert SECRET not in str(caught.value)


def test_unreadable_file__is_a_configuration_error(tmp_path):
    path = tmp_path / "backends.json"
    path.write_text("{not json")

    with pytest.raises(ConfigurationError) as caught:
        _load(str(path))

    assert str(path) in str(caught.value)


def test_redacted__hides_secrets_for_display(backends_file):
    path = backends_file({"corp": {"backend": "dimail", "url": "https://d", "user": "u", "password": SECRET}})
    connection = _load(path)["corp"]

    assert connection.redacted() == {"backend": "dimail", "timeout": "10", "url": "https://d", "user": "u",
                                     "password": REDACTED}
    assert SECRET not in repr(connection)
    assert SECRET not in repr(connection.open())


def test_open__builds_the_adapter_with_the_connections_timeout(backends_file, tmp_path):
    path = backends_file({"corp": {"backend": "dimail", "url": "https://d", "user": "u", "password": SECRET,
                                   "timeout": 3}})
    connections = load_connections(path, {}, local_state_path=str(tmp_path / "local.sqlite3"))

    corp, local = connections["corp"].open(), connections["local"].open()

    assert isinstance(corp, DimailBackend) and corp.timeout == 3.0
    assert isinstance(local, LocalBackend)
    assert connections["corp"].backend_label == "dimail (Open-XChange)"


def test_backend_class__unknown_name_lists_the_available_ones():
    with pytest.raises(UnknownBackend) as caught:
        backend_class("sendmail")

    assert "dimail, local, mailinabox, odin, opensrs" in str(caught.value)


def test_register_backend__refuses_a_name_taken_by_another_adapter():
    class Impostor(DimailBackend):
        pass

    with pytest.raises(ValueError):
        register_backend(Impostor)
    assert backend_class("dimail") is DimailBackend
    assert issubclass(backend_class("local"), Backend)
