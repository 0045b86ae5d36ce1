"""The mail portal: ``create_app()`` builds the Flask application."""

from __future__ import annotations

import logging
import os
import threading
from functools import cached_property
from pathlib import Path

from flask import Flask, g

from portal.config import SETTINGS, ConfigError, flask_config, load_settings
from portal.extensions import csrf, db, login_manager, migrate

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# How many of a person's accounts the switcher at the top of every page names (by name).
SWITCHER_ACCOUNTS = 8
SETTING_NAMES = frozenset(setting.name for setting in SETTINGS)

# Feature blueprints, in navigation order. Each module exposes ``bp``.
BLUEPRINTS = (
    "portal.web.views",
    "portal.auth.views",
    "portal.security.views",
    "portal.accounts.views",
    "portal.roles.views",
    "portal.audit.views",
    "portal.domains.views",
    "portal.mailboxes.views",
    "portal.invitations.views",
    "portal.users.views",
    "portal.bulk.views",
    "portal.api.views",
    "portal.tokens.views",
    "portal.scim.views",
)

# Modules that register job handlers; imported so any process can run any job.
JOB_MODULES = ("portal.mail.services", "portal.domains.services", "portal.mailboxes.services",
               "portal.mailboxes.drift", "portal.users.services", "portal.users.imports",
               "portal.users.reports", "portal.bulk.services", "portal.bulk.exports", "portal.accounts.services")


def create_app(overrides: dict | None = None, environ: dict | None = None) -> Flask:
    """Build the app. ``overrides`` replace validated settings (tests use it)."""
    environ = dict(os.environ if environ is None else environ)
    instance_path = Path(environ.get("PORTAL_TEST_INSTANCE_PATH") or PROJECT_ROOT / "instance")
    app = Flask(__name__, instance_path=str(instance_path), instance_relative_config=False,
                template_folder=str(PROJECT_ROOT / "templates"), static_folder=str(PROJECT_ROOT / "static"))
    from portal.web.inputs import IdConverter

    # Before any route is added: every <int:...> in a path is an id the database can hold.
    app.url_map.converters["int"] = IdConverter
    settings = load_settings(environ, overrides)
    instance_path.mkdir(parents=True, exist_ok=True)
    app.config.update(flask_config(settings, instance_path))
    # Flask's own keys (TESTING...) among the overrides go to Flask; the portal's settings do not.
    app.config.update({key: value for key, value in (overrides or {}).items() if key.isupper()
                       and key not in SETTING_NAMES})
    logging.basicConfig(level=settings["LOG_LEVEL"],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from portal.web import logs

    logs.install(app.logger)

    db.init_app(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        with app.app_context():
            _tune_sqlite(db.engine)
    from portal import readonly

    readonly.init_app(app)
    from portal.web import pagecache

    pagecache.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    from portal import i18n

    i18n.init_app(app)
    from portal.web import htmx

    htmx.init_app(app)

    from portal.backends import service as backends

    backends.init_app(app, environ)
    _import_models()
    for module_name in JOB_MODULES:
        __import__(module_name)
    _register_blueprints(app)
    from portal.api.views import init_app as init_api

    init_api(app)
    from portal.scim.views import init_app as init_scim

    init_scim(app)
    from portal.auth import sso

    sso.init_app(app)
    _register_web_hooks(app)
    from portal.cli import portal_cli

    app.cli.add_command(portal_cli)

    if settings["TRUSTED_PROXIES"]:
        # The client's address is the one the nearest trusted proxy saw (the last ones of
        # X-Forwarded-For): what a client writes there itself is not taken.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings["TRUSTED_PROXIES"],
                                x_proto=settings["TRUSTED_PROXIES"])
    if settings["WORKER"] == "inprocess" and not app.config.get("TESTING"):
        _start_inprocess_worker(app)
    return app


def _tune_sqlite(engine) -> None:
    """Enforce foreign keys (and so cascades) and let readers run beside the writer."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def on_connect(connection, _record):
        cursor = connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def _import_models() -> None:
    from portal.accounts import models as _accounts  # noqa: F401
    from portal.backends import models as _backends  # noqa: F401
    from portal.audit import models as _audit  # noqa: F401
    from portal.bulk import models as _bulk  # noqa: F401
    from portal.tokens import models as _tokens  # noqa: F401
    from portal.auth import models as _auth  # noqa: F401
    from portal.domains import models as _domains  # noqa: F401
    from portal.invitations import models as _invitations  # noqa: F401
    from portal.users import models as _users  # noqa: F401
    from portal.mailboxes import models as _mailboxes  # noqa: F401
    from portal.jobs import models as _jobs  # noqa: F401
    from portal.web import models as _web  # noqa: F401
    from portal.roles import models as _roles  # noqa: F401
    from portal.scim import models as _scim  # noqa: F401
    from portal.security import models as _security  # noqa: F401


def _register_blueprints(app: Flask) -> None:
    import importlib

    for module_name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(module_name).bp)


def _register_web_hooks(app: Flask) -> None:
    from portal.auth import sessions
    from portal.i18n import _l
    from portal.web import access, badges, errors, inputs, security
    from portal.timeutil import utcnow
    from portal.web.urls import RowLinks, external_url

    login_manager.user_loader(sessions.load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please log in to see that page.")
    login_manager.localize_callback = str  # flashed in the visitor's language (the session keeps text)
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    app.view_functions["static"].access_rule = access.PUBLIC
    app.before_request(inputs.refuse_nul_bytes)
    app.before_request(sessions.load_early)
    app.before_request(access.enforce)
    app.after_request(security.add_security_headers)
    errors.register(app)

    app.jinja_env.globals["can"] = access.can
    app.jinja_env.globals["external_url"] = external_url
    app.jinja_env.globals["row_links"] = RowLinks
    app.jinja_env.globals["now"] = utcnow
    badges.register(app)
    app.jinja_env.globals["ui"] = app.jinja_env.get_template("_macros.html").module

    @app.context_processor
    def navigation():
        from flask import has_request_context
        from flask_login import current_user

        # Mail is rendered by workers too, where there is no request and no user.
        if not has_request_context() or not current_user.is_authenticated:
            return {"switcher": Switcher(None), "current_account": None}
        return {"switcher": Switcher(current_user), "current_account": g.get("account")}


class Switcher:
    """The accounts the top bar offers to switch to: a few, by name (the accounts page lists them
    all, in pages). Read when the layout first asks, so a fragment, which has no top bar, costs
    no statement for it."""

    def __init__(self, user):
        self.user = user

    @cached_property
    def _shown(self) -> list:
        from portal.accounts.services import accounts_of

        return [] if self.user is None else accounts_of(self.user, limit=SWITCHER_ACCOUNTS + 1)

    @property
    def accounts(self) -> list:
        return self._shown[:SWITCHER_ACCOUNTS]

    @property
    def more(self) -> bool:
        return len(self._shown) > SWITCHER_ACCOUNTS


def _start_inprocess_worker(app: Flask) -> None:
    import click

    # Only a serving process runs the worker: not `flask db upgrade` or the
    # reloader's watcher process. A WSGI server has no click context at all.
    command = click.get_current_context(silent=True)
    if command is not None and command.info_name != "run":
        return
    if app.debug and os.environ.get("WERKZEUG_RUN_MAIN") != "true":
        return
    from portal.jobs.worker import Worker

    worker = Worker(app, name=f"inprocess-{os.getpid()}")
    app.extensions["portal_worker"] = worker
    threading.Thread(target=worker.run_forever, name="inprocess-worker", daemon=True).start()


__all__ = ["create_app", "ConfigError"]
