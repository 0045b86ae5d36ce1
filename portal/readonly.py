"""On PostgreSQL, a request that only read ends its transaction with COMMIT instead of ROLLBACK.

psycopg prepares a statement on the server once a connection has run it five times, so that
PostgreSQL stops planning it on every run (planning the access check every request makes took
longer than running it). But psycopg forgets its prepared statements whenever a transaction is
rolled back, and every request ended with one (closing the session rolls back): nothing was ever
prepared, and every statement of every page was planned anew.

To the database, COMMIT and ROLLBACK of a transaction that wrote nothing are the same. Each
connection notes whether its transaction ran anything but a plain ``SELECT`` or ``SHOW`` (an
insert, update or delete, a ``WITH`` that may hide one, a ``SELECT ... FOR UPDATE``, any other
command), and counts as a write any statement it cannot be sure of: several statements in one,
``SELECT ... INTO``, a comment, or a call of a function that changes something (``set_config``,
``pg_notify``, ``nextval``, advisory locks, large objects...). At the end of a request that raised
nothing, answered below 400, holds no unflushed change and ran only reads, the session commits.
Anything else is rolled back as before: a view that catches an error and answers 4xx itself may
have done part of something.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from flask import Flask, g
from sqlalchemy import event

from portal.extensions import db

log = logging.getLogger(__name__)

WROTE = "portal_wrote"
READ = re.compile(r"\s*(SELECT|SHOW)\b", re.IGNORECASE)
LOCKS = re.compile(r"\bFOR\s+(UPDATE|SHARE|NO\s+KEY\s+UPDATE|KEY\s+SHARE)\b", re.IGNORECASE)
# What a plain read may not hold: a second statement, SELECT ... INTO, a comment (which could hide
# a lock clause from LOCKS), a function that changes something.
DOUBTFUL = re.compile(r";|--|/\*|\bINTO\b|\b(set_config|pg_notify|nextval|setval|lo_\w+|pg_advisory\w*|"
                      r"pg_try_advisory\w*|dblink\w*|pg_terminate_backend|pg_cancel_backend|pg_reload_conf|"
                      r"pg_current_xact_id|txid_current|pg_logical_emit_message)\s*\(", re.IGNORECASE)
FAILED_ANSWER = "portal_failed_answer"


def wrote(statement: str, context) -> bool:
    """Whether ``statement`` may have written or locked anything (when in doubt, it may)."""
    if context is not None and (context.isinsert or context.isupdate or context.isdelete):
        return True
    return _text_may_write(statement)


@lru_cache(maxsize=4096)
def _text_may_write(statement: str) -> bool:
    # Every statement of every request is tested (here and by the kept pages' count of writes):
    # the regular expressions took about 50 us on a statement of 700 characters, and the portal's
    # statements are a few hundred texts, built once.
    return not READ.match(statement) or LOCKS.search(statement) is not None or DOUBTFUL.search(statement) is not None


def init_app(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "before_cursor_execute")
    def note(connection, _cursor, statement, _parameters, context, _executemany):
        if not connection.info.get(WROTE) and wrote(statement, context):
            connection.info[WROTE] = True

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def ended(connection):
        connection.info.pop(WROTE, None)

    @event.listens_for(engine, "checkin")
    def returned(_dbapi_connection, record):
        record.info.pop(WROTE, None)

    @app.after_request
    def note_answer(response):
        setattr(g, FAILED_ANSWER, response.status_code >= 400)
        return response

    # Teardown functions run in the reverse order of their registration: this one runs before
    # Flask-SQLAlchemy's, which closes the session (rolling back what is left).
    @app.teardown_appcontext
    def commit_reads(error):
        session = db.session()
        if error is not None or g.get(FAILED_ANSWER) or not session.in_transaction() or session.new \
                or session.dirty or session.deleted:
            return
        try:
            if not session.connection().info.get(WROTE):
                session.commit()
        except Exception:  # the connection went away: Flask-SQLAlchemy's teardown cleans up
            log.debug("could not end a read-only transaction with COMMIT", exc_info=True)
