"""Job kinds and the functions that carry them out."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable


class PermanentJobError(Exception):
    """Retrying cannot help: the job fails now, keeping this message."""


@dataclass(frozen=True)
class Handler:
    kind: str
    run: Callable
    max_attempts: int
    backoff_seconds: float
    backoff_cap_seconds: float
    on_failure: Callable | None = None

    def delay_after(self, attempt: int) -> float:
        """Exponential backoff with jitter, so failed jobs do not retry in step;
        never longer than the cap."""
        base = min(self.backoff_seconds * (2 ** max(attempt - 1, 0)), self.backoff_cap_seconds)
        jittered = base * random.uniform(0.5, 1.0) + random.uniform(0, self.backoff_seconds / 2)
        return min(jittered, self.backoff_cap_seconds)


_handlers: dict[str, Handler] = {}
_permanent_errors: list[type[BaseException]] = [PermanentJobError]


def handler(kind: str, *, max_attempts: int = 8, backoff_seconds: float = 10.0,
            backoff_cap_seconds: float = 3600.0, on_failure: Callable | None = None) -> Callable:
    """Register ``func(job)`` as the handler for ``kind``; ``on_failure(job, message)``
    runs in the transaction that marks the job failed for good. ``message`` is a stored text
    (it may be a ``portal.i18n.later`` text): keep it as it is, read it through ``shown``."""

    def register(func: Callable) -> Callable:
        if kind in _handlers and _handlers[kind].run is not func:
            raise RuntimeError(f"job kind {kind!r} already has a handler")
        _handlers[kind] = Handler(kind, func, max_attempts, backoff_seconds, backoff_cap_seconds, on_failure)
        return func

    return register


def get_handler(kind: str) -> Handler:
    try:
        return _handlers[kind]
    except KeyError:
        raise LookupError(f"no handler is registered for job kind {kind!r}") from None


def treat_as_permanent(*error_types: type[BaseException]) -> None:
    """Errors of these types fail a job at once instead of being retried."""
    for error_type in error_types:
        if error_type not in _permanent_errors:
            _permanent_errors.append(error_type)


def is_permanent(error: BaseException) -> bool:
    return isinstance(error, tuple(_permanent_errors))


def marks_failed(model, key: str) -> Callable:
    """An ``on_failure`` for a job that works on one row of ``model`` (named by ``payload[key]``)
    with ``status``, ``error`` and ``finished_at``: the row is marked failed, with the message."""

    def mark(job, message: str) -> None:
        from portal.extensions import db
        from portal.timeutil import utcnow

        row = db.session.get(model, job.payload.get(key))
        if row is not None:
            row.status, row.error, row.finished_at = "failed", message, utcnow()

    return mark
