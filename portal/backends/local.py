"""The built-in backend: mailboxes kept in a small SQLite file, no mail system.

It lets the portal run on a laptop with nothing else installed, and it
behaves like a real backend (domains must be set up before their mailboxes,
every operation is idempotent) so that flows tried locally hold elsewhere.
Several web and worker processes may share the file: writes take SQLite's
write lock up front (``BEGIN IMMEDIATE``), the file runs in WAL mode so
readers never wait for writers, and a busy timeout equal to the connection's
timeout turns lock contention into waiting rather than errors. Putting a new
file into WAL mode is the one step SQLite does not wait for: it reads the
file, then upgrades to writing, and a reader that must upgrade while another
process holds the write lock gets "database is locked" at once (waiting could
deadlock). So that step is retried until the same timeout runs out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from typing import Any

from .base import (
    Backend,
    BackendNotFound,
    Capabilities,
    CheckResult,
    DnsRecord,
    DomainCheck,
    MailboxSpec,
    PermanentBackendError,
    ProvisionResult,
    RemoteMailbox,
    TransientBackendError,
    domain_setting,
    generate_password,
    is_plain_local_part,
    mail_records,
    split_address,
    validate_quota,
)
from .registry import register_backend

_SCHEMA = """
CREATE TABLE IF NOT EXISTS domains (
    name TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS mailboxes (
    address TEXT PRIMARY KEY,
    domain TEXT NOT NULL REFERENCES domains(name),
    backend_id TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    quota_bytes INTEGER,
    active INTEGER NOT NULL,
    admin INTEGER NOT NULL,
    password_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mailboxes_by_domain ON mailboxes(domain);
CREATE TABLE IF NOT EXISTS aliases (
    alias TEXT PRIMARY KEY,
    address TEXT NOT NULL REFERENCES mailboxes(address) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS domain_settings (
    domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (domain, key)
);
CREATE TABLE IF NOT EXISTS protocols (
    address TEXT NOT NULL REFERENCES mailboxes(address) ON DELETE CASCADE,
    protocol TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    PRIMARY KEY (address, protocol)
);
"""

# Every portal-level setting, with the limits the largest hosted backend
# (OpenSRS) publishes, so that what an administrator sets up locally also
# fits there.
_DOMAIN_SETTINGS = (
    domain_setting("default_quota_bytes"),
    domain_setting("max_quota_bytes"),
    domain_setting("max_users"),
    domain_setting("max_aliases"),
    domain_setting("domain_aliases", max_items=2000),
    domain_setting("allow_senders", max_items=1000),
    domain_setting("block_senders", max_items=1000),
    domain_setting("catch_all"),
    domain_setting("spam_level"),
    domain_setting("spam_delivery"),
    domain_setting("spam_folder", max_length=128),
    domain_setting("spam_tag", max_length=30),
    domain_setting("spam_header", max_length=512),
    domain_setting("default_services"),
    domain_setting("send_limit", max_value=10_000),
    domain_setting("password_strength"),
    domain_setting("notes", max_length=4096),
)

_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$")

# scrypt with the parameters RFC 7914 recommends for interactive logins.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def _is_busy(error: BaseException | None) -> bool:
    """Whether SQLite refused because another connection holds a lock (SQLITE_BUSY or SQLITE_LOCKED)."""
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(error, sqlite3.OperationalError) and code is not None and code & 0xFF in (5, 6)


def _hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _password_matches(password: str, stored: str) -> bool:
    scheme, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return scheme == "scrypt" and hmac.compare_digest(candidate.hex(), digest)


@register_backend
class LocalBackend(Backend):
    name = "local"
    label = "built-in"
    required_settings = ("state_path",)
    optional_settings = {
        "mail_host": "host the MX record points at; default mail.<domain>",
    }
    domain_setting_specs = _DOMAIN_SETTINGS
    protocol_names = ("imap4", "pop3", "smtp", "webmail")
    capabilities = Capabilities(
        domain_api=True,
        domain_check=True,
        domain_fix=True,
        dns_spec=True,
        domain_settings=True,
        needs_subscription=False,
        mailbox_create=True,
        mailbox_delete=True,
        mailbox_delete_archives=False,
        mailbox_disable=True,
        mailbox_password_reset=False,
        mailbox_password_set=True,
        mailbox_quota=True,
        mailbox_list=True,
        mailbox_aliases=True,
        mailbox_alias_remove=True,
        mailbox_admin_privilege=True,
        protocol_flags=True,
        notes={
            "domain_check": "The local backend delivers no mail, so its domains always check out.",
            "domain_settings": "Every portal setting is kept in the local state; nothing enforces them.",
        },
    )

    def __init__(self, settings: Mapping[str, str], *, timeout: float) -> None:
        super().__init__(settings, timeout=timeout)
        self.state_path = self.settings["state_path"]
        directory = os.path.dirname(os.path.abspath(self.state_path))
        os.makedirs(directory, exist_ok=True)
        self._initialise()

    def _initialise(self) -> None:
        """Put the file in WAL mode and create the schema, however many processes start at once."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with self._connection() as db:
                    if db.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() == "wal":
                        db.executescript(_SCHEMA)
                        return
            except TransientBackendError as error:
                if not _is_busy(error.__cause__) or time.monotonic() >= deadline:
                    raise
            else:
                # SQLite answers with the mode it kept when it could not change it.
                if time.monotonic() >= deadline:
                    raise TransientBackendError(
                        "Local backend state is unavailable: its file could not be put in WAL mode",
                        code="storage",
                    )
            time.sleep(0.02)

    # -- storage -----------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            with closing(sqlite3.connect(self.state_path, timeout=self.timeout, isolation_level=None)) as db:
                db.execute("PRAGMA foreign_keys=ON")
                yield db
        except sqlite3.OperationalError as error:
            raise TransientBackendError(f"Local backend state is unavailable: {error}", code="storage") from error
        except sqlite3.DatabaseError as error:
            raise PermanentBackendError(f"Local backend state is damaged: {error}", code="storage") from error

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _update_mailbox(self, address: str, assignments: str, *values: object) -> None:
        with self._write() as db:
            changed = db.execute(
                f"UPDATE mailboxes SET {assignments} WHERE address = ?", (*values, address)
            ).rowcount
        if not changed:
            raise BackendNotFound(f"No mailbox {address} on the local backend", code="not_found")

    def _require_domain(self, db: sqlite3.Connection, domain: str) -> None:
        if db.execute("SELECT 1 FROM domains WHERE name = ?", (domain,)).fetchone() is None:
            raise BackendNotFound(
                f"The local backend does not serve {domain}; set the domain up first", code="not_found"
            )

    # -- health and domains ------------------------------------------------

    def _probe(self) -> str:
        with self._connection() as db:
            (count,) = db.execute("SELECT count(*) FROM mailboxes").fetchone()
        return f"Local state readable ({count} mailboxes)"

    def ensure_domain(self, domain: str) -> None:
        if not _DOMAIN.match(domain):
            raise PermanentBackendError(f"Invalid domain name: {domain!r}", code="invalid")
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO domains (name) VALUES (?)", (domain,))

    def check_domain(self, domain: str) -> DomainCheck:
        with self._connection() as db:
            self._require_domain(db, domain)
        return DomainCheck.from_checks([CheckResult("domain_exist", ok=True, internal=False)])

    def fix_domain(self, domain: str) -> DomainCheck:
        return self.check_domain(domain)

    def required_records(self, domain: str) -> list[DnsRecord]:
        return mail_records(domain, self.settings.get("mail_host") or f"mail.{domain}")

    def get_domain_settings(self, domain: str) -> dict[str, Any]:
        with self._connection() as db:
            self._require_domain(db, domain)
            stored = dict(db.execute("SELECT key, value FROM domain_settings WHERE domain = ?", (domain,)))
        return {setting.key: json.loads(stored[setting.key]) if setting.key in stored else None
                for setting in self.domain_setting_specs}

    def set_domain_settings(self, domain: str, values: Mapping[str, Any]) -> None:
        self.refuse_invalid_domain_settings(domain, values)
        with self._write() as db:
            self._require_domain(db, domain)
            for key, value in values.items():
                if value is None:
                    db.execute("DELETE FROM domain_settings WHERE domain = ? AND key = ?", (domain, key))
                else:
                    db.execute(
                        "INSERT INTO domain_settings (domain, key, value) VALUES (?, ?, ?)"
                        " ON CONFLICT (domain, key) DO UPDATE SET value = excluded.value",
                        (domain, key, json.dumps(list(value) if isinstance(value, tuple) else value)),
                    )

    # -- mailboxes ---------------------------------------------------------

    def create_mailbox(self, spec: MailboxSpec) -> ProvisionResult:
        self.refuse_unsupported_spec(spec)
        if not is_plain_local_part(spec.local_part):
            raise PermanentBackendError(
                f"Invalid local part {spec.local_part!r}: use lower-case letters, digits, '.', '_', '+' and '-'",
                code="invalid",
            )
        password = spec.password or generate_password()
        # Hashing is slow by design: do it before taking the write lock that
        # other processes are waiting for.
        password_hash = _hash_password(password)
        with self._write() as db:
            self._require_domain(db, spec.domain)
            row = db.execute("SELECT backend_id FROM mailboxes WHERE address = ?", (spec.address,)).fetchone()
            if row is not None:
                return ProvisionResult(spec.address, row[0], generated_password=None, created=False)
            backend_id = str(uuid.uuid4())
            db.execute(
                "INSERT INTO mailboxes (address, domain, backend_id, display_name, quota_bytes, active, admin,"
                " password_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (spec.address, spec.domain, backend_id, spec.full_name, spec.quota_bytes,
                 int(spec.active), int(spec.admin), password_hash),
            )
            self._store_protocols(db, spec.address, spec.protocols or {})
        return ProvisionResult(
            spec.address, backend_id, generated_password=None if spec.password else password, created=True
        )

    def get_mailbox(self, address: str) -> RemoteMailbox | None:
        with self._connection() as db:
            row = db.execute(_SELECT_MAILBOX + " WHERE address = ?", (address,)).fetchone()
            return _remote_mailbox(db, row) if row else None

    def list_mailboxes(self, domain: str) -> list[RemoteMailbox]:
        with self._connection() as db:
            rows = db.execute(_SELECT_MAILBOX + " WHERE domain = ? ORDER BY address", (domain,)).fetchall()
            return [_remote_mailbox(db, row) for row in rows]

    def set_mailbox_active(self, address: str, active: bool) -> None:
        self._update_mailbox(address, "active = ?", int(active))

    def delete_mailbox(self, address: str) -> bool:
        with self._write() as db:
            return db.execute("DELETE FROM mailboxes WHERE address = ?", (address,)).rowcount > 0

    def reset_password(self, address: str) -> str:
        password = generate_password()
        self._update_mailbox(address, "password_hash = ?", _hash_password(password))
        return password

    def set_quota(self, address: str, quota_bytes: int | None) -> None:
        validate_quota(quota_bytes)
        self._update_mailbox(address, "quota_bytes = ?", quota_bytes)

    def set_admin(self, address: str, admin: bool) -> None:
        self._update_mailbox(address, "admin = ?", int(admin))

    def add_alias(self, address: str, alias: str) -> None:
        alias_local, _ = split_address(alias)
        if not is_plain_local_part(alias_local):
            raise PermanentBackendError(f"Invalid alias {alias!r}", code="invalid")
        with self._write() as db:
            self._require_mailbox(db, address)
            if db.execute("SELECT 1 FROM mailboxes WHERE address = ?", (alias,)).fetchone():
                raise PermanentBackendError(f"{alias} is a mailbox, not a free address", code="already_exists")
            row = db.execute("SELECT address FROM aliases WHERE alias = ?", (alias,)).fetchone()
            if row is None:
                db.execute("INSERT INTO aliases (alias, address) VALUES (?, ?)", (alias, address))
            elif row[0] != address:
                raise PermanentBackendError(f"{alias} already delivers to {row[0]}", code="already_exists")

    def list_aliases(self, address: str) -> list[str]:
        with self._connection() as db:
            self._require_mailbox(db, address)
            return _aliases(db, address)

    def remove_alias(self, address: str, alias: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM aliases WHERE alias = ? AND address = ?", (alias, address))

    def get_protocols(self, address: str) -> dict[str, bool]:
        with self._connection() as db:
            self._require_mailbox(db, address)
            switched = dict(db.execute("SELECT protocol, enabled FROM protocols WHERE address = ?", (address,)))
        return {protocol: bool(switched.get(protocol, True)) for protocol in self.protocol_names}

    def set_protocols(self, address: str, values: Mapping[str, bool]) -> None:
        values = self.refuse_unknown_protocols(values)
        with self._write() as db:
            self._require_mailbox(db, address)
            self._store_protocols(db, address, values)

    def _store_protocols(self, db: sqlite3.Connection, address: str, values: Mapping[str, bool]) -> None:
        db.executemany(
            "INSERT INTO protocols (address, protocol, enabled) VALUES (?, ?, ?)"
            " ON CONFLICT (address, protocol) DO UPDATE SET enabled = excluded.enabled",
            [(address, protocol, int(on)) for protocol, on in values.items()],
        )

    def _require_mailbox(self, db: sqlite3.Connection, address: str) -> None:
        if db.execute("SELECT 1 FROM mailboxes WHERE address = ?", (address,)).fetchone() is None:
            raise BackendNotFound(f"No mailbox {address} on the local backend", code="not_found")

    def check_password(self, address: str, password: str) -> bool:
        """Whether ``password`` is the mailbox's current password."""
        with self._connection() as db:
            row = db.execute("SELECT password_hash FROM mailboxes WHERE address = ?", (address,)).fetchone()
        return row is not None and _password_matches(password, row[0])


_SELECT_MAILBOX = "SELECT address, backend_id, display_name, quota_bytes, active, admin FROM mailboxes"


def _aliases(db: sqlite3.Connection, address: str) -> list[str]:
    return [alias for (alias,) in db.execute("SELECT alias FROM aliases WHERE address = ? ORDER BY alias", (address,))]


def _remote_mailbox(db: sqlite3.Connection, row: tuple) -> RemoteMailbox:
    address, backend_id, display_name, quota_bytes, active, admin = row
    aliases = _aliases(db, address)
    return RemoteMailbox(
        address=address,
        active=bool(active),
        quota_bytes=quota_bytes,
        display_name=display_name,
        backend_id=backend_id,
        extra={"admin": bool(admin), "aliases": aliases},
    )
