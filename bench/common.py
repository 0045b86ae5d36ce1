"""What the bench scripts share: the portal on a fresh database of the run's own, and an account in it.

A script imports this module first: it puts the checkout on the path.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import create_engine, text

# Run as a script, the checkout is not on the path; the emulators live in tests/.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402

DATABASE_URL_HELP = "a postgresql+psycopg:// server URL to make a throwaway database on (default: a fresh SQLite file)"


@contextmanager
def fresh_database(server_url: str):
    """The URL of an empty database of this run's own, removed afterwards."""
    if not server_url:
        with tempfile.TemporaryDirectory(prefix="bench-database-") as folder:
            yield f"sqlite:///{Path(folder) / 'portal.sqlite'}"
        return
    if not server_url.startswith("postgresql"):
        raise SystemExit("--database-url must be a postgresql+psycopg:// URL (SQLite is the default)")
    name = f"portal_bench_{secrets.token_hex(4)}"
    admin = create_engine(urlsplit(server_url)._replace(path="/postgres").geturl(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield urlsplit(server_url)._replace(path=f"/{name}").geturl()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@contextmanager
def migrated_app(server_url: str, settings: dict | None = None, environ: dict[str, str] | None = None):
    """The portal on a fresh database (see ``fresh_database``) built by the real migrations.

    ``settings`` and ``environ`` add to the bench's own: no real mail (a file sink in a temporary
    instance folder), fast password hashing, no worker started with the app.
    """
    import flask_migrate

    with fresh_database(server_url) as database_url, \
            tempfile.TemporaryDirectory(prefix="bench-instance-") as instance_path:
        settings = {"DATABASE_URL": database_url, "SECRET_KEY": "bench-secret-key-not-for-production-use",
                    "PASSWORD_HASHING": "fast", "WORKER": "external", "LOG_LEVEL": "WARNING",
                    "SMTP_URL": f"file://{instance_path}/mail",
                    **(settings or {})}
        environ = {"PORTAL_TEST_INSTANCE_PATH": instance_path, **(environ or {})}
        app = create_app(settings, environ=environ)
        # What another process needs to build the same app (``create_app(**app.extensions["bench"])``).
        app.extensions["bench"] = {"overrides": settings, "environ": environ}
        with app.app_context():
            flask_migrate.upgrade()
        try:
            yield app
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def account_with_domain(owner_email: str, account_name: str, domain_name: str, connection: str = "local"):
    """An owner, an account and a domain on ``connection``, committed; returns all three.

    The domain is declared enabled: its ownership check would only take a worker slot, so it is not queued.
    """
    from portal.accounts.services import create_account
    from portal.auth.models import User
    from portal.domains.models import ENABLED
    from portal.domains.services import CHECK_KIND, add_domain
    from portal.jobs.models import Job
    from portal.timeutil import utcnow

    owner = User(email=owner_email, name="Bench owner", email_verified_at=utcnow())
    db.session.add(owner)
    db.session.flush()
    account = create_account(owner, account_name)
    domain = add_domain(owner, account, domain_name, connection)
    domain.status, domain.verified_at = ENABLED, domain.created_at
    db.session.execute(db.delete(Job).where(Job.kind == CHECK_KIND))
    db.session.commit()
    return owner, account, domain
