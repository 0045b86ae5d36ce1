"""Backend adapters by name, and the connections configured for them.

A *connection* is one configured mail system: a name the portal's domains
refer to (``corp-dimail``), the kind of backend (``dimail``), its settings and
a timeout. Connections come from an optional JSON file::

    {"connections": {"corp-dimail": {"backend": "dimail", "url": "...",
                                     "user": "...", "password": "...",
                                     "timeout": 10}}}

and from environment variables ``PORTAL_BACKEND_<CONNECTION>_<KEY>``, the
connection name upper-cased with ``-`` written ``_``. A connection is
declared in the environment by its ``_BACKEND`` variable
(``PORTAL_BACKEND_CORP_DIMAIL_BACKEND=dimail``); other variables then set or
override its keys (``PORTAL_BACKEND_CORP_DIMAIL_URL=...``). The environment
wins over the file. A connection named ``local`` of kind ``local`` always
exists: it is the default.

Everything is validated when loaded, so a misconfigured instance refuses to
start with a message naming the connection and the key, never a secret.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from .base import Backend, ConfigurationError, Settings

ENV_PREFIX = "PORTAL_BACKEND_"
LOCAL_CONNECTION = "local"
DEFAULT_TIMEOUT = 10.0

_BACKENDS: dict[str, type[Backend]] = {}


class UnknownBackend(ConfigurationError):
    """No adapter is registered under the requested name."""


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Class decorator: make an adapter available under ``cls.name``."""
    registered = _BACKENDS.get(cls.name)
    if registered is not None and registered is not cls:
        raise ValueError(f"backend name {cls.name!r} is already taken by {registered.__name__}")
    _BACKENDS[cls.name] = cls
    return cls


def backend_class(name: str) -> type[Backend]:
    try:
        return _BACKENDS[name]
    except KeyError:
        raise UnknownBackend(
            f"unknown backend {name!r}; available: {', '.join(available_backends())}"
        ) from None


def available_backends() -> list[str]:
    return sorted(_BACKENDS)


@dataclass(frozen=True)
class Connection:
    name: str
    backend: str
    settings: Settings
    timeout: float

    def open(self) -> Backend:
        """A ready adapter for this connection (no network call is made)."""
        return backend_class(self.backend)(self.settings, timeout=self.timeout)

    @property
    def backend_label(self) -> str:
        """The backend's name as people read it: a product's own name as it is, a description (the
        built-in one's) in their language (``labels("backend", ...)`` in ``portal.domains``)."""
        from portal.i18n import label

        return label(backend_class(self.backend).label, "backend")

    def redacted(self) -> dict[str, str]:
        """The configuration to display, secrets replaced by ``base.REDACTED``."""
        return {"backend": self.backend, "timeout": f"{self.timeout:g}", **self.settings.redacted()}


def load_connections(
    file_path: str | None,
    environ: Mapping[str, str],
    *,
    local_state_path: str | None = None,
) -> dict[str, Connection]:
    """Every configured connection by name, validated.

    ``file_path`` may be ``None`` or name a file that does not exist (no
    file-based connections then). ``local_state_path`` is where the built-in
    ``local`` connection keeps its state unless configured otherwise.
    """
    raw: dict[str, dict[str, str]] = {}
    if file_path and os.path.exists(file_path):
        raw = _read_file(file_path)
    for name, values in _read_environ(environ, known=raw).items():
        raw.setdefault(name, {}).update(values)
    raw.setdefault(LOCAL_CONNECTION, {"backend": "local"})
    local = raw[LOCAL_CONNECTION]
    if local.get("backend", "local") != "local":
        raise ConfigurationError(
            f"connection {LOCAL_CONNECTION!r} is reserved for the built-in local backend"
        )
    local.setdefault("backend", "local")
    if local_state_path:
        local.setdefault("state_path", local_state_path)
    return {name: _build(name, values) for name, values in sorted(raw.items())}


def _read_file(file_path: str) -> dict[str, dict[str, str]]:
    try:
        with open(file_path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"cannot read backend connections from {file_path}: {error}") from None
    connections = document.get("connections") if isinstance(document, dict) else None
    if not isinstance(connections, dict):
        raise ConfigurationError(f"{file_path}: expected an object with a \"connections\" object")
    raw: dict[str, dict[str, str]] = {}
    for name, values in connections.items():
        if not isinstance(values, dict):
            raise ConfigurationError(f"{file_path}: connection {name!r} must be an object")
        raw[_check_name(name)] = {
            str(key): _scalar_text(name, str(key), value) for key, value in values.items()
        }
    return raw


def _scalar_text(connection: str, key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ConfigurationError(f"connection {connection!r}: {key} must be text or a number")


def _read_environ(environ: Mapping[str, str], *, known: Mapping[str, object]) -> dict[str, dict[str, str]]:
    variables = {key[len(ENV_PREFIX):]: value for key, value in environ.items() if key.startswith(ENV_PREFIX)}
    # Connection names may contain "_" as keys do, so a variable belongs to
    # the longest declared connection whose name prefixes it.
    prefixes = {name.upper().replace("-", "_"): name for name in (*known, LOCAL_CONNECTION)}
    for rest in variables:
        if rest.endswith("_BACKEND") and len(rest) > len("_BACKEND"):
            env_name = rest[: -len("_BACKEND")]
            prefixes[env_name] = _check_name(env_name.lower().replace("_", "-"))
    found: dict[str, dict[str, str]] = {}
    for rest, value in variables.items():
        owner = max((p for p in prefixes if rest.startswith(p + "_")), key=len, default=None)
        if owner is None:
            raise ConfigurationError(
                f"{ENV_PREFIX}{rest} names no connection; declare one with {ENV_PREFIX}<NAME>_BACKEND"
            )
        key = rest[len(owner) + 1:].lower()
        found.setdefault(prefixes[owner], {})[key] = value
    return found


def _check_name(name: str) -> str:
    if not name or not all(c.isalnum() or c == "-" for c in name) or name != name.lower():
        raise ConfigurationError(
            f"connection name {name!r}: use lower-case letters, digits and '-'"
        )
    return name


def _build(name: str, values: Mapping[str, str]) -> Connection:
    values = dict(values)
    kind = values.pop("backend", "")
    if not kind:
        raise ConfigurationError(f"connection {name!r}: missing setting 'backend'")
    try:
        cls = backend_class(kind)
    except UnknownBackend as error:
        raise UnknownBackend(f"connection {name!r}: {error}") from None
    timeout = _timeout(name, values.pop("timeout", ""))
    allowed = set(cls.required_settings) | set(cls.optional_settings)
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ConfigurationError(
            f"connection {name!r} ({kind}): unknown setting {', '.join(unknown)}; "
            f"known: {', '.join(sorted(allowed)) or 'none'}"
        )
    for key in cls.required_settings:
        if not values.get(key):
            env_name = f"{ENV_PREFIX}{name.upper().replace('-', '_')}_{key.upper()}"
            raise ConfigurationError(
                f"connection {name!r} ({kind}): missing setting {key!r} (set {env_name})"
            )
    return Connection(name, kind, Settings(values, cls.secret_settings), timeout)


def _timeout(name: str, text: str) -> float:
    if not text:
        return DEFAULT_TIMEOUT
    try:
        timeout = float(text)
    except ValueError:
        timeout = math.nan
    if not timeout > 0 or math.isinf(timeout):
        raise ConfigurationError(f"connection {name!r}: timeout must be a positive number of seconds")
    return timeout

