"""Fixtures: the app on a real database (SQLite by default, PostgreSQL when
``PORTAL_TEST_DATABASE_URL`` names a server), a real SMTP sink, a client that
sends CSRF tokens like a browser, factories, and a live server for Chromium.

The schema is built once per run by the real migrations; each test starts
from empty tables (system roles re-seeded).
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from jinja2 import BytecodeCache
from sqlalchemy import create_engine, text
from werkzeug.routing import Rule
from werkzeug.serving import make_server

from portal import create_app
from portal.extensions import db
from tests.servers.dns import DnsServer
from tests.servers.smtp import SmtpSink

PASSWORD = "correct horse battery"


class _TemplateCodeCache(BytecodeCache):
    """Compiled templates kept for the whole run: each test builds its own app, whose Jinja
    environment would otherwise parse and compile every template it renders again (an app and
    the log-in page's templates: 0.25 s without this cache, 0.04 s with it). A template whose
    source changed is compiled afresh."""

    def __init__(self):
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self._code:
            bucket.bytecode_from_string(self._code[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


Flask.jinja_options = {**Flask.jinja_options, "bytecode_cache": _TemplateCodeCache()}


def _remember_url_builders() -> None:
    """Each new app compiles a URL builder function for each of its 229 routes (0.13 s of the
    0.21 s an app took to build). A builder depends only on its rule, its defaults and whether it appends unknown
    arguments, so the run compiles each once; werkzeug binds it to each app's rule as before."""
    compile_builder = getattr(Rule, "_compile_builder", None)
    if compile_builder is None:  # another werkzeug: compile as it does
        return
    built: dict = {}

    def remembered(rule, append_unknown: bool = True):
        key = (rule.rule, rule.subdomain, rule.host, tuple(rule._trace),
               repr(sorted((rule.defaults or {}).items())), append_unknown)
        if key not in built:
            built[key] = compile_builder(rule, append_unknown)
        return built[key]

    Rule._compile_builder = remembered


_remember_url_builders()


# -- database -------------------------------------------------------------------

def _server_url(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path="/postgres").geturl()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """A database of this run's own: an SQLite file, or a fresh PostgreSQL database."""
    configured = os.environ.get("PORTAL_TEST_DATABASE_URL", "")
    if not configured.startswith("postgresql"):
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'portal.sqlite'}"
        return
    name = f"portal_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(_server_url(configured), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield urlsplit(configured)._replace(path=f"/{name}").geturl()
    with admin.connect() as connection:
        connection.execute(text(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def is_postgres(database_url) -> bool:
    return database_url.startswith("postgresql")


@pytest.fixture(scope="session")
def smtp_sink():
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def dns_server():
    """A real DNS server on loopback; the app resolves through it."""
    server = DnsServer().start()
    yield server
    server.stop()


@pytest.fixture
def dns_zone(dns_server):
    dns_server.zone.clear()
    yield dns_server.zone
    dns_server.zone.clear()


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("instance")


def make_settings(database_url: str, smtp_url: str, dns_port: int | None = None, **extra) -> dict:
    settings = {
        "DNS_RESOLVERS": (("127.0.0.1", dns_port),) if dns_port else (("127.0.0.1", 9),),
        "DNS_TIMEOUT": 0.5,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "SMTP_URL": smtp_url,
        "BASE_URL": "http://localhost",
        "PASSWORD_HASHING": "fast",
        "WORKER": "external",
        "TESTING": True,
        # Kept pages would answer the statement-counting tests from memory; tests/web/test_page_cache.py
        # turns the cache on.
        "PAGE_CACHE": False,
    }
    settings.update(extra)
    return settings


@pytest.fixture(scope="session")
def migrated(database_url, smtp_sink, instance_dir):
    """Run the real migrations once for the whole run."""
    import flask_migrate

    app = create_app(make_settings(database_url, smtp_sink.url),
                     environ={"PORTAL_TEST_INSTANCE_PATH": str(instance_dir)})
    with app.app_context():
        flask_migrate.upgrade()
        seeded = set(db.session.execute(text("SELECT system_key FROM roles")).scalars())
        db.session.remove()
        db.engine.dispose()
    return {"system_roles": seeded}


def _empty_tables() -> None:
    """Delete every row, children first, and start ids again from 1. On PostgreSQL this is
    DELETE and setval, not TRUNCATE: truncating the 36 tables made new files for each of them
    and took about 0.25 s before every test (DELETE of a test's few rows, 15 ms)."""
    from portal.roles.services import ensure_system_roles

    for table in reversed(db.metadata.sorted_tables):
        if table.name not in ("alembic_version", "data_generation"):  # the migration's one row stays
            db.session.execute(table.delete())
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SELECT setval(oid::regclass, 1, false) FROM pg_class"
                                " WHERE relkind = 'S' AND relnamespace = current_schema()::regnamespace"))
    db.session.commit()
    ensure_system_roles()
    db.session.commit()


@pytest.fixture
def app_settings() -> dict:
    """Override in a test module to change settings for its app."""
    return {}


@pytest.fixture
def app_environ() -> dict:
    """Override to add environment variables (backend connections) for the app."""
    return {}


@pytest.fixture
def app(migrated, database_url, smtp_sink, dns_server, instance_dir, app_settings, app_environ):
    app = create_app(make_settings(database_url, smtp_sink.url, dns_server.port, **app_settings),
                     environ={"PORTAL_TEST_INSTANCE_PATH": str(instance_dir), **app_environ})
    app.test_client_class = CsrfClient
    (instance_dir / "local-backend.sqlite").unlink(missing_ok=True)
    with app.app_context():
        _empty_tables()
    smtp_sink.clear()
    ctx = app.app_context()
    ctx.push()
    yield app
    db.session.remove()
    ctx.pop()
    with app.app_context():
        db.engine.dispose()


# -- client -----------------------------------------------------------------------

class CsrfClient(FlaskClient):
    """Sends the session's CSRF token with every POST, as the portal's forms do.

    ``csrf=False`` leaves it out (to test the refusal); ``csrf="bad"`` sends a wrong one.
    """

    def csrf_token(self) -> str:
        with self.session_transaction() as session:
            raw = session.get("csrf_token")
            if raw is None:
                raw = session["csrf_token"] = secrets.token_hex(20)
        return URLSafeTimedSerializer(self.application.secret_key, salt="wtf-csrf-token").dumps(raw)

    def open(self, *args, **kwargs):
        # Test bodies hold the app context open, and requests reuse it; give
        # each request a clean ``g`` as it would have in production.
        from flask import g, has_app_context

        if has_app_context():
            g.__dict__.clear()
        return super().open(*args, **kwargs)

    def post(self, *args, csrf=True, **kwargs):
        # A JSON or raw body (the API's) has no form to carry the token.
        if csrf and "json" not in kwargs and not isinstance(kwargs.get("data"), (str, bytes)):
            data = dict(kwargs.pop("data", None) or {})
            data.setdefault("csrf_token", "bad" if csrf == "bad" else self.csrf_token())
            kwargs["data"] = data
        return super().post(*args, **kwargs)


# -- factories ----------------------------------------------------------------------

class Factory:
    def __init__(self, app):
        self.app = app

    def user(self, email: str | None = None, *, password: str = PASSWORD, name: str = "",
             verified: bool = True, superadmin: bool = False):
        from portal.auth.models import User
        from portal.auth.passwords import hash_password
        from portal.timeutil import utcnow

        user = User(email=(email or f"user-{secrets.token_hex(4)}@example.org").lower(), name=name,
                    password_hash=hash_password(password), is_superadmin=superadmin,
                    email_verified_at=utcnow() if verified else None,
                    address_proven_at=utcnow() if verified else None)  # confirmed through the mailed link
        db.session.add(user)
        db.session.commit()
        return user

    def account(self, owner=None, name: str | None = None):
        from portal.accounts.services import create_account

        owner = owner or self.user()
        account = create_account(owner, name or f"Account {secrets.token_hex(3)}")
        db.session.commit()
        return account

    def member(self, account, user=None, *, roles: tuple[str, ...] = (), permissions: tuple[str, ...] = ()):
        """Add ``user`` to ``account`` with system roles (by key) and single permissions, no checks."""
        from portal.accounts.services import add_member
        from portal.roles.models import Grant
        from portal.roles.services import system_role

        user = user or self.user()
        membership = add_member(account, user)
        for key in roles:
            db.session.add(Grant(membership_id=membership.id, account_id=membership.account_id,
                                 role_id=system_role(key).id))
        for code in permissions:
            db.session.add(Grant(membership_id=membership.id, account_id=membership.account_id, permission=code))
        db.session.commit()
        return membership


@pytest.fixture
def make(app) -> Factory:
    return Factory(app)


@pytest.fixture
def owner(make):
    """The usual account owner; a module may override it."""
    return make.user("owner@example.org", name="Olga Owner")


@pytest.fixture
def account(make, owner):
    return make.account(owner, "Acme")


class Auth:
    def __init__(self, client):
        self.client = client

    def login(self, email: str, password: str = PASSWORD):
        response = self.client.post("/login", data={"email": email, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
        return response

    def logout(self):
        return self.client.post("/logout")


@pytest.fixture
def auth(client) -> Auth:
    return Auth(client)


@pytest.fixture
def run_jobs(app):
    """Run every job that is due now, in this thread; returns how many ran."""
    from portal.jobs.worker import Worker

    def run(now=None) -> int:
        ran = Worker(app, name="test-worker").run_due(now)
        db.session.expire_all()  # the worker committed in its own session
        return ran

    return run


# -- live server for the browser ------------------------------------------------------

class LiveServer:
    def __init__(self, app):
        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()


@pytest.fixture
def live_server(app):
    """The app served on loopback from a thread, with a background worker."""
    from portal.jobs.worker import Worker

    app.config["PORTAL"] = {**app.config["PORTAL"], "BASE_URL": ""}
    server = LiveServer(app).start()
    app.config["PORTAL"]["BASE_URL"] = server.url()
    worker = Worker(app, concurrency=2, poll_seconds=0.2, name="live-worker")
    worker.start()
    yield server
    worker.stop()
    server.stop()


@pytest.fixture(scope="session")
def browser_type_launch_args():
    return {
        "executable_path": "/usr/bin/chromium",
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"],
    }


def first_link(text_body: str, path_fragment: str) -> str:
    for link in re.findall(r"https?://\S+", text_body):
        if path_fragment in link:
            return link
    raise AssertionError(f"no link containing {path_fragment!r} in:\n{text_body}")
