"""Writing and reading the audit log.

``record`` adds the event to the current transaction, so an action and its
audit entry are committed (or rolled back) together.
"""

from __future__ import annotations

import weakref
from datetime import date, datetime, time

from flask import g, has_request_context, request
from flask_login import current_user

from sqlalchemy import bindparam, func, insert, literal_column, table

from portal.audit.models import SEARCH_TABLE, SYSTEM_ACTOR, AuditEvent, family_of
from portal.extensions import db
from portal.i18n import _l
from portal.timeutil import utcnow

SOURCE_WEB = "web"
SOURCE_API = "api"
SOURCE_WORKER = "worker"
SOURCE_CLI = "cli"


LABEL_LIMIT = 254  # characters of a target's label the log keeps (an address's, a file's name)


def record(action: str, *, account=None, target=None, target_label: str | None = None,
           actor=None, source: str | None = None, actor_label: str | None = None, **details) -> AuditEvent:
    """``actor_label`` names an actor without a profile (whoever opened a link mailed to an
    address): nobody signed in is taken for them."""
    if actor is None and actor_label is None and has_request_context() and current_user.is_authenticated:
        actor = current_user._get_current_object()
    event = AuditEvent(
        action=action,
        account_id=getattr(account, "id", account),
        actor_id=getattr(actor, "id", None),
        actor_label=actor.email if actor is not None else (actor_label or SYSTEM_ACTOR),
        details=_jsonable(details),
    )
    if target is not None:
        event.target_type = target.__class__.__name__.lower()
        event.target_id = str(getattr(target, "id", ""))
        event.target_label = (target_label or _label(target))[:LABEL_LIMIT]
    elif target_label:
        event.target_label = target_label[:LABEL_LIMIT]
    if has_request_context():
        token = g.get("api_token")
        event.source = source or (SOURCE_API if token is not None else SOURCE_WEB)
        if token is not None:
            event.details = {**event.details, "token": token.name}
        event.ip = request.remote_addr or ""
        event.user_agent = (request.user_agent.string or "")[:300]
    else:
        event.source = source or SOURCE_WORKER
    db.session.add(event)
    return event


def record_each(action: str, targets: list, *, account=None, actor=None, **details) -> None:
    """``record`` for each of many targets (thousands of people given a role by a directory's group):
    the same entries, written in one statement rather than one each."""
    rows = []
    for target in targets:
        event = record(action, account=account, target=target, actor=actor, **details)
        db.session.expunge(event)
        rows.append({column: getattr(event, column) for column in (
            "actor_id", "actor_label", "account_id", "action", "target_type", "target_id", "target_label", "source",
            "ip", "user_agent", "details")} | {"at": utcnow(), "family": family_of(action)})
    if rows:
        db.session.execute(insert(AuditEvent.__table__), rows)


def _label(target) -> str:
    for attribute in ("email", "address", "name"):
        value = getattr(target, attribute, None)
        if value:
            return str(value)
    return str(getattr(target, "id", ""))


def _jsonable(details: dict) -> dict:
    clean = {}
    for key, value in details.items():
        if isinstance(value, (set, frozenset, tuple)):
            value = sorted(value)
        elif isinstance(value, (datetime, date)):
            value = value.isoformat()
        clean[key] = value
    return clean


# The kinds of actions, by the prefix of their names, for the log's filter.
FAMILIES = (("account", _l("Account")), ("member", _l("Members")), ("access", _l("Access")), ("role", _l("Roles")),
            ("domain", _l("Domains")), ("drift", _l("Drift")), ("mailbox", _l("Mailboxes")),
            ("invitation", _l("Invitations")), ("user", _l("People")), ("users", _l("Imports and reports")),
            ("bulk", _l("Bulk actions")), ("token", _l("API tokens")),
            ("security", _l("Two-factor sign-in")))


# A search on SQLite that more entries than this match reads the log in its order instead of
# through the trigram index (the index's matches are then sorted, the log's order is not).
INDEXED_MOST = 5000
_indexed_engines: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _has_search_index() -> bool:
    engine = db.engine
    if engine not in _indexed_engines:
        _indexed_engines[engine] = db.session.execute(db.text(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"), {"name": SEARCH_TABLE}).first() \
            is not None
    return _indexed_engines[engine]


def _indexed_matches(column: str, text: str):
    """On SQLite with the trigram index (migration 0040): the ids of the entries whose ``column``
    holds ``text``, as a statement, when at most INDEXED_MOST do (one statement to know); else None.

    The index's phrase match folds case as lower() LIKE does and more (every letter, not only
    ASCII ones), and takes % and _ as themselves: it finds at least what the search finds, which
    then decides. 100,000 entries, a name 2,500 have: 55 -> 10 ms; one none has: 70 -> 0.2 ms."""
    searched = text.lower()
    if len(searched) < 3 or db.engine.dialect.name != "sqlite" or not _has_search_index():
        return None  # a trigram index finds nothing shorter than three characters
    phrase = '{}:"{}"'.format(column, searched.replace('"', '""'))
    found = db.select(literal_column("rowid")).select_from(table(SEARCH_TABLE)).where(
        literal_column(SEARCH_TABLE).op("MATCH")(bindparam(f"{column}_phrase", phrase)))
    many = db.session.execute(db.select(func.count()).select_from(found.limit(INDEXED_MOST + 1).subquery())).scalar()
    return None if many > INDEXED_MOST else found


def query_events(account_id: int, *, family: str = "", actor: str = "", target: str = "", since: date | None = None,
                 until: date | None = None, oldest_first: bool = False):
    from portal.web.lists import like

    searched = [(AuditEvent.actor_label, actor), (AuditEvent.target_label, target)]
    indexed = [found for column, text in searched if text
               for found in [_indexed_matches(column.key, text)] if found is not None]
    # Read by the index's matches, the account's entries are not walked through their own index.
    query = db.select(AuditEvent).where((AuditEvent.account_id + 0 if indexed else AuditEvent.account_id)
                                        == account_id)
    for found in indexed:
        query = query.where(AuditEvent.id.in_(found))
    if family:
        query = query.where(AuditEvent.family == family)
    # ILIKE on PostgreSQL (its trigram indexes serve it), lower() LIKE lower() elsewhere.
    for column, text in searched:
        if text:
            query = query.where(column.ilike(like(text), escape="\\"))
    if since:
        query = query.where(AuditEvent.at >= datetime.combine(since, time.min))
    if until:
        # Through the day's last instant, not the next day's first: 9999-12-31 has no next day.
        query = query.where(AuditEvent.at <= datetime.combine(until, time.max))
    if oldest_first:
        return query.order_by(AuditEvent.at, AuditEvent.id)
    return query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
