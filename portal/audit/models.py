from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.audit import actions  # noqa: F401  (declares how actions and sources read)
from portal.extensions import db
from portal.i18n import has_label, label, shown, when
from portal.timeutil import utcnow

SYSTEM_ACTOR = "system"
# SQLite: the trigram index of the actor's and the target's labels, an FTS5 table the migrations
# make (0040) and the models do not declare, with the tables FTS5 keeps beside it.
SEARCH_TABLE = "audit_events_search"


def undeclared(name: str) -> bool:
    """Whether the table ``name`` is one the migrations make outside the models (for Alembic's
    comparisons: ``include_object``)."""
    return name == SEARCH_TABLE or name.startswith(SEARCH_TABLE + "_")


def family_of(action: str) -> str:
    """An action's family: what comes before its first dot (``user`` for ``user.suspend``)."""
    return action.split(".", 1)[0][:32]


def _family_default(context) -> str:
    # Filled from the action for every insert, the ORM's and the bulk inserts' (one row or many).
    return family_of(context.get_current_parameters().get("action") or "")


class AuditEvent(db.Model):
    """Append-only record of one action. The actor's label is copied in so the
    entry still says who acted after their profile is gone."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_account_at", "account_id", "at"),
        # The audit log filtered by family reads its entries (and counts them) from this index,
        # where a prefix match on the action scanned every entry of the account.
        Index("ix_audit_events_account_family_at", "account_id", "family", "at"),
        # A person's own security events (their security page), among every account's entries.
        Index("ix_audit_events_target_at", "target_type", "target_id", "at"),
        # Searching the log by who acted or what was acted on (ILIKE '%text%'): trigram indexes on
        # PostgreSQL where pg_trgm could be installed (migration 0038; 100,000 entries were
        # scanned, 70 ms); on SQLite an FTS5 trigram table (SEARCH_TABLE, migration 0040).
        Index("ix_audit_events_actor_label_trgm", "actor_label", postgresql_using="gin",
              postgresql_ops={"actor_label": "gin_trgm_ops"}).ddl_if(dialect="postgresql"),
        Index("ix_audit_events_target_label_trgm", "target_label", postgresql_using="gin",
              postgresql_ops={"target_label": "gin_trgm_ops"}).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    actor_label: Mapped[str] = mapped_column(String(254), default=SYSTEM_ACTOR)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64), index=True)
    family: Mapped[str] = mapped_column(String(32), default=_family_default)
    target_type: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    target_label: Mapped[str] = mapped_column(String(254), default="")
    source: Mapped[str] = mapped_column(String(16), default="web")
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)

    @property
    def description(self) -> str:
        """What was done, in the reader's language (the code itself for an action not described)."""
        return label(self.action, "audit.action")

    @property
    def details_shown(self) -> list[tuple[str, str]]:
        """The details as people read them: each name and value in the reader's language (a stored
        reason translated, yes or no, a list joined), the empty ones left out."""
        statuses = _STATUS_KINDS.get(self.target_type)
        return [(label(key, "audit.detail"),
                 label(value, statuses) if statuses and key in ("before", "after", "status")
                 else _moment_text(value) if key in MOMENTS and isinstance(value, str)
                 else _detail_text(value, actions.DETAIL_VALUES.get(key, "audit.value")))
                for key, value in (self.details or {}).items() if value not in (None, [], {}, "")]

    @property
    def actor_shown(self) -> str:
        """Who did it: their address, or the portal itself."""
        return _("the portal") if self.actor_label == SYSTEM_ACTOR else self.actor_label

    @property
    def target_shown(self) -> str:
        """What was acted on: a label kept as a ``later`` text (a bulk action's, an export's list)
        in the reader's language, any other (an address, a file's name) as it was written."""
        return shown(self.target_label)

    @property
    def source_shown(self) -> str:
        return label(self.source, "audit.source")


# The statuses an entry's before/after/status hold, by the kind of its target.
_STATUS_KINDS = {"domain": "domain.status", "mailbox": "mailbox.status"}


def _detail_text(value, family: str = "audit.value") -> str:
    """A detail's value as people read it: a code of ``family`` by its label, a stored moment in
    the reader's zone and language, a stored ``later`` text translated."""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        return ", ".join(_detail_text(item, family) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{label(key, 'audit.detail')}: {_detail_text(item, family)}" for key, item in value.items())
    if isinstance(value, str):
        return label(value, family) if has_label(value, family) else str(shown(value))
    return str(shown(value))


# The details the code stores as moments (``_jsonable``: a datetime's ISO form); free text that
# looks like one (a token's or a role's name) stays text.
MOMENTS = frozenset({"expires"})


def _moment_text(value: str) -> str:
    """A stored moment in the reader's zone and words; one that cannot be read or shown there
    (malformed, or out of range once moved to their zone) as it was stored."""
    try:
        return when(datetime.fromisoformat(value), "%Y-%m-%d %H:%M")
    except (ValueError, OverflowError):
        return value
