"""The portal's side of the backends: connections loaded once at start-up,
and an adapter for a domain chosen by data (the domain's connection).

Only the worker calls adapters at run time; web views read capabilities and
connection names, never make backend calls. What a connection can do is
what its adapter class declares, unless the worker learnt otherwise from the
server (an older dimail offers less): the worker records what the adapter
discovered (``discovered()``, ``remember_discovery()``) in ``backend_states``,
and ``capabilities()`` reads it back for pages.

A worker process keeps what it last found in ``backend_states`` for each
connection, so a job whose adapter learnt nothing new does not read it again;
that memory is dropped when the process writes the row (read back once the
write committed) and after ``RECORDED_STATE_SECONDS``, so a row another
process wrote is seen, and answered, within that time.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from flask import Flask, current_app, g, has_request_context

from portal.backends.base import Backend, Capabilities, ConfigurationError
from portal.backends.models import BackendState
from portal.backends.registry import Connection, backend_class, load_connections
from portal.config import ConfigError
from portal.extensions import db
from portal.timeutil import utcnow

_EXTENSION = "portal_backends"
RECORDED_STATE_SECONDS = 60.0


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
    app.extensions[_EXTENSION] = {"connections": connections, "adapters": threading.local(),
                                  "recorded": {}}


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
    """What the connection can do: as discovered on its server by the worker, else as its adapter declares.

    Cheap enough for every page: within a request, one query reads every
    connection's discovered state, once.
    """
    declared = backend_class(connection(name).backend).capabilities
    state = _discovered_states().get(name)
    return declared if state is None else declared.narrowed(*state)


def _discovered_states() -> dict[str, tuple[dict, dict]]:
    if not has_request_context():
        return _load_states()
    if "backend_states" not in g:
        g.backend_states = _load_states()
    return g.backend_states


def _load_states() -> dict[str, tuple[dict, dict]]:
    return {state.connection: (dict(state.capabilities), dict(state.notes))
            for state in db.session.execute(db.select(BackendState)).scalars()}


def discovered(domain) -> Backend:
    """Worker side: the domain's adapter, told what its server offers, that knowledge recorded for pages.

    Raises ``BackendError`` when the server cannot be asked.
    """
    backend = for_domain(domain)
    backend.discover()
    remember_discovery(domain.connection, backend)
    return backend


def remember_discovery(name: str, backend: Backend) -> None:
    """Worker side: record what ``backend`` now knows of its server, when that changed.

    Runs in the caller's transaction; an adapter that learns something while
    a call fails is recorded again by the caller after its rollback.
    """
    supported, notes = backend.capabilities.supported(), dict(backend.capabilities.notes)
    recorded = current_app.extensions[_EXTENSION]["recorded"]
    known = recorded.get(name)
    if known is not None and known[0] == supported and known[1] == notes and time.monotonic() < known[2]:
        return
    # A row this transaction wrote is not known to be in the database until it commits.
    written = db.session.info.setdefault("backend_states_written", {})
    state = db.session.get(BackendState, name)
    if state is None:
        if backend.capabilities == type(backend).capabilities and notes == dict(type(backend).capabilities.notes):
            # Nothing learnt beyond what the adapter declares.
            recorded[name] = (supported, notes, time.monotonic() + RECORDED_STATE_SECONDS)
            return
        state = BackendState(connection=name)
        db.session.add(state)
    elif state.capabilities == supported and state.notes == notes:
        if written.get(name) is not db.session().get_transaction():
            recorded[name] = (supported, notes, time.monotonic() + RECORDED_STATE_SECONDS)
        return
    recorded.pop(name, None)
    written[name] = db.session().get_transaction()
    state.capabilities, state.notes, state.checked_at = supported, notes, utcnow()


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
