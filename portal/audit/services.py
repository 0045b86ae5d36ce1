"""Writing and reading the audit log.

``record`` adds the event to the current transaction, so an action and its
audit entry are committed (or rolled back) together.
"""

from __future__ import annotations

from datetime import date, datetime, time

from flask import g, has_request_context, request
from flask_login import current_user
from sqlalchemy import insert

from portal.audit.models import SYSTEM_ACTOR, AuditEvent, family_of
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


def query_events(account_id: int, *, family: str = "", actor: str = "", target: str = "", since: date | None = None,
                 until: date | None = None, oldest_first: bool = False):
    from portal.web.lists import like

    query = db.select(AuditEvent).where(AuditEvent.account_id == account_id)
    if family:
        query = query.where(AuditEvent.family == family)
    # ILIKE on PostgreSQL (its trigram indexes serve it), lower() LIKE lower() elsewhere.
    if actor:
        query = query.where(AuditEvent.actor_label.ilike(like(actor), escape="\\"))
    if target:
        query = query.where(AuditEvent.target_label.ilike(like(target), escape="\\"))
    if since:
        query = query.where(AuditEvent.at >= datetime.combine(since, time.min))
    if until:
        # Through the day's last instant, not the next day's first: 9999-12-31 has no next day.
        query = query.where(AuditEvent.at <= datetime.combine(until, time.max))
    if oldest_first:
        return query.order_by(AuditEvent.at, AuditEvent.id)
    return query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
