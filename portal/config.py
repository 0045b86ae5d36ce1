"""Settings read from the environment, validated once at start-up.

Every setting is a ``PORTAL_*`` environment variable. An unknown ``PORTAL_*``
variable or a malformed value stops start-up with a message naming it, so a
typo in a deployment never silently falls back to a default.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import urlsplit


# The most jobs one worker process runs at once (a thread and a database connection each).
MOST_WORKER_SLOTS = 256


class ConfigError(RuntimeError):
    """A setting is missing, unknown or malformed."""


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected one of true/false, yes/no, on/off, 1/0")


@dataclass(frozen=True)
class _Number:
    """A number above zero and at most ``most`` (whole, or seconds). Each setting has a ceiling
    that the portal works with: past some size a duration no longer fits a date (a session of
    10**9 hours ends after year 9999, so every log-in failed), a wait overflows (an idle worker's
    wait past threading.TIMEOUT_MAX killed its slot) and a count starts that many threads."""
    most: float
    whole: bool = True

    def __call__(self, value: str) -> float:
        number = int(value) if self.whole else float(value)
        if not 0 < number <= self.most:  # "nan" parses as a float, and compares false
            unit = "a whole number from 1 to" if self.whole else "a number of seconds above zero and at most"
            raise ValueError(f"expected {unit} {self.most:,}")
        return number


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return value

    return parse


def _database_url(value: str) -> str:
    scheme = value.split(":", 1)[0]
    if not (scheme.startswith("sqlite") or scheme.startswith("postgresql") or scheme == "postgres"):
        raise ValueError("expected an sqlite:///, postgresql+psycopg://, postgresql:// or postgres:// URL")
    if scheme == "postgresql" or scheme == "postgres":
        # SQLAlchemy would pick psycopg2, which we do not install.
        return "postgresql+psycopg:" + value.split(":", 1)[1]
    return value


def _without_password(value: str) -> str:
    """A setting's value as an error may show it: a password in a URL (scheme://user:password@host)
    hidden (a review: a misspelt database URL was printed at start-up with its password)."""
    return re.sub(r"^([^:/?#]+://[^:]*:).*@", r"\1(hidden)@", value)  # up to the last @ (a review)


def _language(value: str) -> str:
    """One of the languages the portal has catalogues for (``portal.i18n.LANGUAGES``)."""
    from portal.i18n import LANGUAGES

    if value not in LANGUAGES:
        raise ValueError(f"expected one of {', '.join(LANGUAGES)}")
    return value


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR (in any case)")
    return level


def _secret_key(value: str) -> str:
    if len(value.strip()) < 32:
        raise ValueError("too short: give at least 32 characters, such as the output of "
                         "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'")
    return value


def _base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("expected an absolute http(s) URL such as https://mail.example.org")
    return value.rstrip("/")


def _smtp_url(value: str) -> str:
    parts = urlsplit(value)
    if value != "file" and parts.scheme not in {"smtp", "smtps", "smtp+starttls", "file"}:
        raise ValueError("expected file, file:///path, smtp://, smtp+starttls:// or smtps://")
    if parts.scheme.startswith("smtp") and not parts.hostname:
        raise ValueError("names no mail server host")
    return value


def _resolvers(value: str) -> tuple[tuple[str, int], ...]:
    """Parse ``ip`` or ``ip:port`` (``[v6]:port`` for IPv6) items, comma-separated."""
    resolvers = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        host, port = item, 53
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = int(rest.lstrip(":") or 53)
        elif item.count(":") == 1:
            host, port_text = item.split(":")
            port = int(port_text)
        ipaddress.ip_address(host)
        if not 0 < port < 65536:
            raise ValueError(f"port {port} is out of range")
        resolvers.append((host, port))
    return tuple(resolvers)


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[str], object]
    default: object
    help: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", _database_url, None,
            "SQLAlchemy URL; default an SQLite file instance/portal.sqlite"),
    Setting("SECRET_KEY", _secret_key, None,
            "signs sessions and links; default generated once into instance/secret_key", secret=True),
    Setting("BASE_URL", _base_url, "http://127.0.0.1:5000",
            "public address used in e-mailed links"),
    Setting("SMTP_URL", _smtp_url, "file",
            "file (instance/mail/*.eml), file:///dir, smtp://user:pass@host:25, "
            "smtp+starttls://host:587, smtps://host:465", secret=True),
    Setting("MAIL_FROM", str, "Mail portal <portal@localhost>", "sender of the portal's e-mails"),
    Setting("WORKER", _choice("inprocess", "external"), "external",
            "inprocess runs a worker thread inside the web process (make run); "
            "external expects `flask --app app portal worker`"),
    Setting("WORKER_CONCURRENCY", _Number(MOST_WORKER_SLOTS), 4, "jobs a worker runs at once"),
    Setting("WORKER_POLL_SECONDS", _Number(3_600, whole=False), 1.0, "how often an idle worker looks for jobs"),
    Setting("JOB_LEASE_SECONDS", _Number(604_800), 300,
            "how long a claimed job is held before another worker may take it over"),
    Setting("SESSION_HOURS", _Number(8_760), 12, "a session ends after this many hours idle"),
    Setting("SESSION_MAX_HOURS", _Number(8_760), 72, "a session ends this many hours after log-in"),
    Setting("LOGIN_MAX_FAILURES", _Number(1_000_000), 5,
            "failed log-ins per address in the window before log-in is refused"),
    Setting("LOGIN_MAX_FAILURES_PER_IP", _Number(1_000_000), 30,
            "failed log-ins per IP address in the window before log-in is refused"),
    Setting("LOGIN_WINDOW_MINUTES", _Number(525_600), 15, "the window for failed log-ins"),
    Setting("TOKEN_HOURS", _Number(8_760), 24, "how long verification and reset links stay valid"),
    Setting("INVITATION_DAYS", _Number(365), 7, "how long an invitation link stays valid, in days"),
    Setting("PASSWORD_HASHING", _choice("strong", "fast"), "strong",
            "fast uses cheap argon2 parameters; only for test suites"),
    Setting("SECURE_COOKIES", _bool, None,
            "send cookies only over HTTPS; default on when BASE_URL is https"),
    Setting("REQUIRE_2FA_SUPERADMIN", _bool, None,
            "superadmins must use two-factor sign-in; default on when BASE_URL is https"),
    Setting("OPEN_REGISTRATION", _bool, True, "anyone may register a profile"),
    Setting("USER_PHONES", _bool, False, "corporate users have a phone number in their settings"),
    Setting("API_RATE_LIMIT", _Number(1_000_000), 600, "requests one API token may make in a minute (HTTP 429 beyond)"),
    Setting("IMPORT_MAX_ROWS", _Number(1_000_000), 50_000, "most users one workbook may create"),
    Setting("IMPORT_MAX_MB", _Number(1_024), 20, "largest workbook accepted, in megabytes"),
    Setting("PASSWORD_LOGIN", _bool, True, "log-in with a local password is offered (turn off to use single sign-on only)"),
    Setting("OIDC_ISSUER", _base_url, None, "OpenID Connect provider (its discovery document is read from "
            "<issuer>/.well-known/openid-configuration); unset: no single sign-on"),
    Setting("OIDC_CLIENT_ID", str, None, "the portal's client id at the provider"),
    Setting("OIDC_CLIENT_SECRET", str, None, "the portal's client secret at the provider", secret=True),
    Setting("OIDC_SCOPES", str, "openid email profile", "scopes asked for"),
    Setting("OIDC_LABEL", str, "Single sign-on", "the text of the single sign-on button"),
    Setting("DNS_RESOLVERS", _resolvers, (),
            "comma-separated resolver IPs (ip or ip:port) for domain checks; default the system's"),
    Setting("DNS_TIMEOUT", _Number(60, whole=False), 3.0, "seconds a DNS query may take"),
    Setting("BACKENDS_FILE", str, None,
            "JSON file of backend connections; default instance/backends.json when it exists"),
    Setting("DEFAULT_LOCALE", _language, "en",
            "language for whoever has not chosen one and whose browser asks for none the portal has"),
    Setting("PAGE_CACHE", _bool, True,
            "keep rendered list pages, the Overview and domain pages for the same session while the database is "
            "unchanged (see PAGE_CACHE_SECONDS)"),
    Setting("PAGE_CACHE_SECONDS", _Number(300), 10, "longest a kept page is answered again, in seconds"),
    Setting("PAGE_CACHE_MB", _Number(4_096), 32, "memory each web process may keep pages in, in megabytes"),
    Setting("LOG_LEVEL", _log_level, "INFO", "log level: DEBUG, INFO, WARNING or ERROR"),
    Setting("TRUSTED_PROXIES", _Number(10), None,
            "how many proxies in front of the portal each add X-Forwarded-For and X-Forwarded-Proto; "
            "unset: the headers are not read"),
)

# Variables that configure one backend connection each (see README) are read
# by the backend registry, not here.
_PASSTHROUGH_PREFIXES = ("PORTAL_BACKEND_",)


def load_settings(environ: Mapping[str, str], overrides: Mapping[str, object] | None = None) -> dict:
    """Read and validate every PORTAL_* setting; raise ConfigError naming the culprit."""
    known = {setting.name for setting in SETTINGS}
    problems: list[str] = []
    for key in sorted(environ):
        if not key.startswith("PORTAL_") or key.startswith(_PASSTHROUGH_PREFIXES):
            continue
        if key.removeprefix("PORTAL_") not in known and not key.startswith("PORTAL_TEST_"):
            problems.append(f"{key} is not a setting this portal knows (see README, Configuration)")
    values: dict[str, object] = {}
    for setting in SETTINGS:
        raw = environ.get(f"PORTAL_{setting.name}")
        if raw is None or raw == "":
            if raw == "" and setting.name == "SECRET_KEY":
                # An empty line in a settings file shared by several machines would give each its
                # own key from instance/secret_key: a session or link made on one fails on another.
                problems.append("PORTAL_SECRET_KEY is set but empty: give the key, or remove the line to use "
                                "the one made once in instance/secret_key (one machine only)")
            values[setting.name] = setting.default
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as error:
            shown = "(hidden)" if setting.secret else repr(_without_password(raw))
            problems.append(f"PORTAL_{setting.name}={shown} is malformed: {error}")
    if values.get("OIDC_ISSUER") and not (values.get("OIDC_CLIENT_ID") and values.get("OIDC_CLIENT_SECRET")):
        problems.append("PORTAL_OIDC_ISSUER is set: PORTAL_OIDC_CLIENT_ID and PORTAL_OIDC_CLIENT_SECRET are needed too")
    if values.get("PASSWORD_LOGIN") is False and not values.get("OIDC_ISSUER"):
        problems.append("PORTAL_PASSWORD_LOGIN=false needs single sign-on (PORTAL_OIDC_ISSUER), or nobody can log in")
    if problems:
        raise ConfigError("Configuration problems:\n  " + "\n  ".join(problems))
    if overrides:
        values.update(overrides)
    if values.get("REQUIRE_2FA_SUPERADMIN") is None:
        # As for secure cookies: on for a deployment served over https, off for a local trial.
        values["REQUIRE_2FA_SUPERADMIN"] = str(values["BASE_URL"]).startswith("https://")
    return values


def instance_secret_key(instance_path: Path) -> str:
    """Return the key kept under instance/, creating it once (mode 0600)."""
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


# A process's database connections: one per worker slot (PORTAL_WORKER_CONCURRENCY) and a few
# more for the worker's own bookkeeping and the requests of a web process, kept open; past them,
# POOL_OVERFLOW more are opened while needed.
POOL_SPARE, POOL_OVERFLOW = 5, 10


def most_worker_slots(settings: dict) -> int:
    """The slots a worker process may run with the connections its settings give it."""
    return settings["WORKER_CONCURRENCY"] + POOL_OVERFLOW


def flask_config(settings: dict, instance_path: Path) -> dict:
    """Translate portal settings into Flask/extension configuration keys."""
    from datetime import timedelta

    database_url = settings["DATABASE_URL"] or f"sqlite:///{instance_path / 'portal.sqlite'}"
    secure = settings["SECURE_COOKIES"]
    if secure is None:
        secure = str(settings["BASE_URL"]).startswith("https://")
    # Each worker slot holds a connection while it waits on a backend: room for all of them.
    pool = {"pool_size": settings["WORKER_CONCURRENCY"] + POOL_SPARE, "max_overflow": POOL_OVERFLOW}
    # A database error's log line names the statement, not its values (addresses, hashes, sealed secrets).
    engine_options: dict = {"pool_pre_ping": True, "hide_parameters": True, **pool}
    if database_url.startswith("postgresql"):
        # psycopg prepares a statement on the server once it has run five times, and PostgreSQL may
        # then plan it once for any values: one role's holders, planned for a role of ten, took 1.1 s
        # for a role held by 10,000. Each execution is planned for its own values instead; after the
        # options the operator gave in the address (or PGOPTIONS), which this would otherwise replace.
        from sqlalchemy.engine import make_url

        given = make_url(database_url).query.get("options") or os.environ.get("PGOPTIONS") or ""
        given = " ".join(given) if isinstance(given, tuple) else given
        # (Theirs after ours: the last setting of a name wins, so they may choose another mode.)
        engine_options["connect_args"] = {"options": f"-c plan_cache_mode=force_custom_plan {given}".strip()}
    if database_url.startswith("sqlite"):
        engine_options = {"connect_args": {"timeout": 30}, "hide_parameters": True, **pool}
    return {
        "PORTAL": settings,
        "SECRET_KEY": settings["SECRET_KEY"] or instance_secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure,
        "SESSION_COOKIE_NAME": "portal_session",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": secure,
        # The session's row on the server holds its idle and absolute limits (auth/sessions.py); the
        # cookie only has to outlive them, so it is signed when it changes, not again on every page.
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=settings["SESSION_MAX_HOURS"]),
        "SESSION_REFRESH_EACH_REQUEST": False,
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_CSRF_SSL_STRICT": secure,
        "PREFERRED_URL_SCHEME": "https" if secure else "http",
        # The upload limit, with room for the form around the workbook.
        "MAX_CONTENT_LENGTH": (settings["IMPORT_MAX_MB"] + 1) * 1024 * 1024,
    }
