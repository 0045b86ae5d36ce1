from pathlib import Path

import pytest

from portal import create_app
from portal.config import ConfigError, load_settings


def test_settings__defaults_apply_when_nothing_is_set():
    settings = load_settings({})
    assert settings["BASE_URL"] == "http://127.0.0.1:5000"
    assert settings["SMTP_URL"] == "file"
    assert settings["WORKER"] == "external"
    assert settings["DATABASE_URL"] is None


def test_settings__unknown_variable_stops_start_up_naming_it():
    with pytest.raises(ConfigError, match="PORTAL_DATABSE_URL is not a setting"):
        load_settings({"PORTAL_DATABSE_URL": "sqlite://"})


@pytest.mark.parametrize("name, value, message", [
    ("PORTAL_WORKER", "sometimes", "expected one of inprocess, external"),
    ("PORTAL_BASE_URL", "portal.example.org", "absolute http"),
    ("PORTAL_DATABASE_URL", "mysql://x", "sqlite"),
    ("PORTAL_WORKER_CONCURRENCY", "0", "above zero"),
    ("PORTAL_DNS_TIMEOUT", "nan", "finite number above zero"),
    ("PORTAL_WORKER_POLL_SECONDS", "inf", "finite number above zero"),
    ("PORTAL_SESSION_HOURS", "many", "invalid literal"),
    ("PORTAL_DNS_RESOLVERS", "8.8.8.8, not-an-ip", "does not appear to be an IPv4 or IPv6"),
    ("PORTAL_SECURE_COOKIES", "perhaps", "true/false"),
])
def test_settings__malformed_value_stops_start_up_with_the_reason(name, value, message):
    with pytest.raises(ConfigError) as caught:
        load_settings({name: value})
    assert name in str(caught.value) and message in str(caught.value)


def test_settings__secret_values_are_not_echoed_in_errors():
    with pytest.raises(ConfigError) as caught:
        load_settings({"PORTAL_SMTP_URL": "ftp://user:hunter2secret@host"})
    assert "hunter2secret" not in str(caught.value)


def test_settings__postgres_urls_use_psycopg_and_resolvers_parse():
    settings = load_settings({"PORTAL_DATABASE_URL": "postgresql://u@db/portal",
                              "PORTAL_DNS_RESOLVERS": "127.0.0.1:5353, ::1, [::1]:53"})
    assert settings["DATABASE_URL"] == "postgresql+psycopg://u@db/portal"
    assert settings["DNS_RESOLVERS"] == (("127.0.0.1", 5353), ("::1", 53), ("::1", 53))


def test_secret_key__generated_once_and_kept(tmp_path):
    environ = {"PORTAL_TEST_INSTANCE_PATH": str(tmp_path), "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite"}
    first = create_app({"TESTING": True}, environ=environ).secret_key
    second = create_app({"TESTING": True}, environ=environ).secret_key
    assert first == second and len(first) > 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert create_app({"TESTING": True}, environ={**environ, "PORTAL_SECRET_KEY": "given"}).secret_key == "given"


def test_app_module__exits_with_a_clear_message_on_bad_settings(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", "import app"], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PORTAL_WORKER": "bogus",
                                 "PORTAL_TEST_INSTANCE_PATH": str(tmp_path)})
    assert result.returncode == 1
    assert "The portal cannot start." in result.stderr and "PORTAL_WORKER" in result.stderr


def test_app_module__freezes_what_start_up_made(tmp_path):
    """The objects of start-up are out of the collector's reach: a full collection does not walk them."""
    import subprocess
    import sys

    probe = ("import gc, app\n"
             "print(gc.get_freeze_count(), len(gc.get_objects()))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parents[2],
                            env={"PATH": "/usr/bin:/bin", "PORTAL_WORKER": "external",
                                 "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path}/portal.sqlite3",
                                 "PORTAL_SECRET_KEY": "k" * 40, "PORTAL_TEST_INSTANCE_PATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    frozen, tracked = map(int, result.stdout.split())
    assert frozen > 50_000 and tracked < frozen / 20


def test_readme__documents_every_setting():
    from pathlib import Path

    from portal.config import SETTINGS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [f"PORTAL_{s.name}" for s in SETTINGS if f"`PORTAL_{s.name}`" not in readme]
    assert missing == []
