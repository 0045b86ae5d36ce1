"""The portal's side of the backends: connections loaded once at start-up,
and an adapter for a domain chosen by data (the domain's connection).

Only the worker calls adapters at run time; web views read capabilities and
connection names, never make backend calls.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from flask import Flask, current_app

from portal.backends.base import Backend, Capabilities, ConfigurationError
from portal.backends.registry import Connection, load_connections
from portal.config import ConfigError

_EXTENSION = "portal_backends"


def init_app(app: Flask, environ: dict) -> None:
    instance = Path(app.instance_path)
    configured = app.config["PORTAL"]["BACKENDS_FILE"]
    file_path = configured or str(instance / "backends.json")
    if configured and not os.path.exists(configured):
        raise ConfigError(f"PORTAL_BACKENDS_FILE={configured} does not exist")
    try:
        connections = load_connections(file_path, environ,
                                       local_state_path=str(instance / "local-backend.sqlite"))
    except ConfigurationError as error:
        raise ConfigError(f"Backend connections: {error}") from None
    app.extensions[_EXTENSION] = {"connections": connections, "adapters": threading.local()}


def connections() -> dict[str, Connection]:
    return current_app.extensions[_EXTENSION]["connections"]


def connection_names() -> list[str]:
    return list(connections())


def connection(name: str) -> Connection:
    try:
        return connections()[name]
    except KeyError:
        raise ConfigurationError(f"no backend connection named {name!r} is configured") from None


def capabilities(name: str) -> Capabilities:
    from portal.backends.registry import backend_class

    return backend_class(connection(name).backend).capabilities


def adapter(name: str) -> Backend:
    """The adapter of a connection, one per thread (adapters keep sessions and tokens)."""
    cache = current_app.extensions[_EXTENSION]["adapters"]
    opened = getattr(cache, "by_name", None)
    if opened is None:
        opened = cache.by_name = {}
    if name not in opened:
        opened[name] = connection(name).open()
    return opened[name]


def for_domain(domain) -> Backend:
    return adapter(domain.connection)
