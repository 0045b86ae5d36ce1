"""Listening to every SQL statement the app sends, for tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import event

from portal.extensions import db


@contextmanager
def on_each_statement(callback: Callable[[str], None]) -> Iterator[None]:
    """Call ``callback(statement)`` before each statement the engine sends, while inside."""
    def listener(_connection, _cursor, statement, *_args) -> None:
        callback(statement)

    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
