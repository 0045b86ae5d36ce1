from datetime import timedelta
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
    ("PORTAL_WORKER_CONCURRENCY", "0", "from 1 to 256"),
    ("PORTAL_WORKER_CONCURRENCY", "257", "from 1 to 256"),
    ("PORTAL_DNS_TIMEOUT", "nan", "above zero and at most 60"),
    ("PORTAL_WORKER_POLL_SECONDS", "inf", "above zero and at most 3,600"),
    # Finite but past what a wait takes (threading.TIMEOUT_MAX): an idle worker slot died on it.
    ("PORTAL_WORKER_POLL_SECONDS", "1e10", "above zero and at most 3,600"),
    ("PORTAL_DNS_TIMEOUT", "9999999999", "above zero and at most 60"),
    # Past the dates a session, a log-in window or an invitation can end on (year 9999).
    ("PORTAL_SESSION_HOURS", "1000000000", "from 1 to 8,760"),
    ("PORTAL_LOGIN_WINDOW_MINUTES", "10000000000", "from 1 to 525,600"),
    ("PORTAL_INVITATION_DAYS", "3000000", "from 1 to 365"),
    ("PORTAL_IMPORT_MAX_MB", "1025", "from 1 to 1,024"),
    ("PORTAL_SESSION_HOURS", "many", "invalid literal"),
    ("PORTAL_DNS_RESOLVERS", "8.8.8.8, not-an-ip", "does not appear to be an IPv4 or IPv6"),
    ("PORTAL_SECURE_COOKIES", "perhaps", "true/false"),
    ("PORTAL_DEFAULT_LOCALE", "xx", "expected one of en, fr"),
    ("PORTAL_LOG_LEVEL", "verbose", "expected one of DEBUG, INFO, WARNING, ERROR"),
    # A key anyone could guess signs every session and link.
    ("PORTAL_SECRET_KEY", "short-key", "at least 32 characters"),
    # Empty counts as unset elsewhere; here each machine would make its own key (an operator's review).
    ("PORTAL_SECRET_KEY", "", "set but empty"),
])
def test_settings__malformed_value_stops_start_up_with_the_reason(name, value, message):
    with pytest.raises(ConfigError) as caught:
        load_settings({name: value})
    assert name in str(caught.value) and message in str(caught.value)


def test_settings__a_malformed_url_is_shown_without_its_password():
    """A review: a misspelt database URL was printed at start-up with its password."""
    with pytest.raises(ConfigError) as caught:
        load_settings({"PORTAL_DATABASE_URL": "postgress://admin:S3cret@Passw0rd@db/portal"})
    assert "S3cret" not in str(caught.value) and "Passw0rd" not in str(caught.value)
    assert "postgress://admin:(hidden)@db/portal" in str(caught.value)
    # A user name holding an @ (as some clouds give), a / in the password.
    for url, secret in (("postgresq://app@myserver:s3cret@host/db", "s3cret"),
                        ("postgress://app:s3/cret@host/db", "cret")):
        with pytest.raises(ConfigError) as caught:
            load_settings({"PORTAL_DATABASE_URL": url})
        assert secret not in str(caught.value) and "(hidden)@host/db" in str(caught.value)


def test_settings__every_number_has_a_ceiling_and_the_ceiling_itself_is_accepted():
    import threading

    from portal.config import SETTINGS

    numbers = [setting for setting in SETTINGS if isinstance(setting.default, (int, float))
               and not isinstance(setting.default, bool)]
    assert len(numbers) == 16 and all(hasattr(setting.parse, "most") for setting in numbers)
    for setting in numbers:
        most = setting.parse.most
        assert load_settings({f"PORTAL_{setting.name}": str(most)})[setting.name] == most
        assert setting.default <= most
        with pytest.raises(ConfigError, match=f"PORTAL_{setting.name}"):
            load_settings({f"PORTAL_{setting.name}": str(most * 2)})
        if isinstance(setting.default, float):
            assert most < threading.TIMEOUT_MAX
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text().splitlines()
    for setting in numbers:  # the configuration table says each range
        [row] = [line for line in readme if line.startswith(f"| `PORTAL_{setting.name}` |")]
        assert f" {int(setting.parse.most)} |" in row or f" {int(setting.parse.most)} (" in row, row


def test_settings__a_portal_at_every_ceiling_still_signs_in_limits_and_sends_links(app, client, make, owner,
                                                                                    account, run_jobs, smtp_sink):
    """The ceilings are values the portal works with: each duration still ends on a date, and the
    pages that use them answer (a session of 10**9 hours made every log-in fail past year 9999)."""
    from portal.config import SETTINGS
    from portal.extensions import db
    from portal.invitations import services as invitations
    from portal.timeutil import utcnow
    from tests.conftest import PASSWORD, first_link

    app.config["PORTAL"] = {**app.config["PORTAL"], **{
        setting.name: setting.parse.most for setting in SETTINGS if hasattr(setting.parse, "most")}}
    make.user("ada@example.org")
    assert client.post("/login", data={"email": "ada@example.org", "password": "wrong password!"}).status_code == 422
    assert client.post("/login", data={"email": "ada@example.org", "password": PASSWORD}).status_code == 302
    assert client.get("/profile").status_code == 200
    assert client.post("/password/forgot", data={"email": "ada@example.org"}).status_code == 200
    invitation = invitations.start(owner, account, "new@example.net")
    invitations.send_invitation(owner, invitation)
    db.session.commit()
    run_jobs()
    lifetime = invitation.expires_at - utcnow()
    assert timedelta(days=364, hours=23) < lifetime <= timedelta(days=365)  # the ceiling, 365 days
    for address, path in (("ada@example.org", "/password/reset/"), ("new@example.net", "/invitations/")):
        link = first_link(smtp_sink.text(smtp_sink.wait_for(address)[-1]), path).removeprefix("http://localhost")
        assert client.get(link).status_code in (200, 302)


def test_settings__secret_values_are_not_echoed_in_errors():
    with pytest.raises(ConfigError) as caught:
        load_settings({"PORTAL_SMTP_URL": "ftp://user:hunter2secret@host"})
    assert "hunter2secret" not in str(caught.value)


def test_settings__postgres_urls_use_psycopg_and_resolvers_parse():
    settings = load_settings({"PORTAL_DATABASE_URL": "postgresql://u@db/portal",
                              "PORTAL_DNS_RESOLVERS": "127.0.0.1:5353, ::1, [::1]:53"})
    assert settings["DATABASE_URL"] == "postgresql+psycopg://u@db/portal"
    # The form many hosting services give (an operator's review found it refused).
    assert load_settings({"PORTAL_DATABASE_URL": "postgres://u:p@db:5432/portal"})["DATABASE_URL"] == \
        "postgresql+psycopg://u:p@db:5432/portal"
    assert settings["DNS_RESOLVERS"] == (("127.0.0.1", 5353), ("::1", 53), ("::1", 53))


def test_secret_key__generated_once_and_kept(tmp_path):
    environ = {"PORTAL_TEST_INSTANCE_PATH": str(tmp_path), "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite"}
    first = create_app({"TESTING": True}, environ=environ).secret_key
    second = create_app({"TESTING": True}, environ=environ).secret_key
    assert first == second and len(first) > 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    given = "given-by-the-operator-0123456789abcdef"
    assert create_app({"TESTING": True}, environ={**environ, "PORTAL_SECRET_KEY": given}).secret_key == given


def test_settings__an_empty_value_counts_as_unset_a_level_in_any_case_and_a_language_of_languages(monkeypatch):
    """An operator's review: ``PORTAL_LOG_LEVEL=info`` was refused, and a language added as the
    README says could not be the default (the choices were written out in the settings)."""
    from portal import i18n

    settings = load_settings({"PORTAL_BASE_URL": "", "PORTAL_LOG_LEVEL": "info", "PORTAL_DEFAULT_LOCALE": "fr"})
    assert settings["BASE_URL"] == "http://127.0.0.1:5000" and settings["LOG_LEVEL"] == "INFO"
    assert settings["DEFAULT_LOCALE"] == "fr"
    with pytest.raises(ConfigError):
        load_settings({"PORTAL_DEFAULT_LOCALE": "de"})
    monkeypatch.setattr(i18n, "LANGUAGES", {**i18n.LANGUAGES, "de": "Deutsch"})
    assert load_settings({"PORTAL_DEFAULT_LOCALE": "de"})["DEFAULT_LOCALE"] == "de"


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


@pytest.mark.parametrize("given", ["0", "-3", "257"])
def test_worker_command__a_slot_count_out_of_range_is_refused_before_it_starts(app, given, monkeypatch):
    # 0 used to fall back to the setting without a word; a huge count started that many threads.
    from portal.jobs.worker import Worker

    monkeypatch.setattr(Worker, "run_forever", lambda self: print("Worker ran"))
    result = app.test_cli_runner().invoke(args=["portal", "worker", "--concurrency", given])
    assert result.exit_code == 2 and "1<=x<=256" in result.output and "Worker" not in result.output


def test_worker_command__more_slots_than_its_connection_pool_holds_are_refused_with_the_way(app, monkeypatch):
    """An operator's review: ``--concurrency 64`` started 64 slots on a pool of 9 (+10) connections
    sized from PORTAL_WORKER_CONCURRENCY=4; under load its slots would wait for a connection and
    fail their jobs past the pool's timeout."""
    from portal.jobs.worker import Worker

    monkeypatch.setattr(Worker, "run_forever", lambda self: print(f"Worker ran {self.concurrency} slots"))
    most = app.config["PORTAL"]["WORKER_CONCURRENCY"] + 10
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["pool_size"] + options["max_overflow"] >= most + 5
    refused = app.test_cli_runner().invoke(args=["portal", "worker", "--concurrency", str(most + 1)])
    assert refused.exit_code == 2 and "Worker ran" not in refused.output
    assert f"Set PORTAL_WORKER_CONCURRENCY={most + 1} instead" in refused.output
    started = app.test_cli_runner().invoke(args=["portal", "worker", "--concurrency", str(most)])
    assert started.exit_code == 0 and f"Worker ran {most} slots" in started.output


def test_postgresql__each_statement_is_planned_for_its_own_values(app, tmp_path):
    """psycopg prepares a statement on the server after five runs, and PostgreSQL may then plan it
    once for every value: the holders of a role of 10,000 people, planned as for a role of ten, took
    1.1 s instead of 23 ms. The portal's connections ask for a plan per execution."""
    from portal.config import flask_config
    from portal.extensions import db

    settings = load_settings({"PORTAL_DATABASE_URL": "postgresql+psycopg://portal@db.example/portal"})
    options = flask_config(settings, tmp_path)["SQLALCHEMY_ENGINE_OPTIONS"]
    assert "plan_cache_mode=force_custom_plan" in options["connect_args"]["options"]
    if db.engine.dialect.name == "postgresql":
        assert db.session.execute(db.text("SHOW plan_cache_mode")).scalar_one() == "force_custom_plan"


def test_postgresql__the_options_the_operator_gave_in_the_address_are_kept(app, tmp_path, monkeypatch):
    """A review: the portal's own option replaced those of the address (a schema path, a statement
    timeout), silently."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from portal.config import flask_config
    from portal.extensions import db

    monkeypatch.delenv("PGOPTIONS", raising=False)
    given = "postgresql+psycopg://portal@db.example/portal?options=-c%20statement_timeout%3D4321"
    options = flask_config(load_settings({"PORTAL_DATABASE_URL": given}), tmp_path)["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["connect_args"]["options"] == "-c plan_cache_mode=force_custom_plan -c statement_timeout=4321"
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=1234")
    options = flask_config(load_settings({"PORTAL_DATABASE_URL": given.split("?")[0]}), tmp_path)[
        "SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["connect_args"]["options"] == "-c plan_cache_mode=force_custom_plan -c lock_timeout=1234"
    if db.engine.dialect.name != "postgresql":
        return
    monkeypatch.delenv("PGOPTIONS")
    real = make_url(str(db.engine.url.render_as_string(hide_password=False))).update_query_dict(
        {"options": "-c statement_timeout=4321"})
    engine_options = flask_config(load_settings({"PORTAL_DATABASE_URL": real.render_as_string(hide_password=False)}),
                                  tmp_path)["SQLALCHEMY_ENGINE_OPTIONS"]
    engine = create_engine(real, connect_args=engine_options["connect_args"])
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SHOW statement_timeout")).scalar_one() == "4321ms"
            assert connection.execute(text("SHOW plan_cache_mode")).scalar_one() == "force_custom_plan"
    finally:
        engine.dispose()
