from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from portal.extensions import db
from portal.i18n import _l, labels
from portal.timeutil import utcnow

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"

MEMBERS = "members"
MAILBOXES = "mailboxes"

labels("bulk.status", {QUEUED: _l("Queued"), RUNNING: _l("Running"), DONE: _l("Done"), FAILED: _l("Failed")})


class BulkRun(db.Model):
    """One action on many people or mailboxes, run as one job with progress."""

    __tablename__ = "bulk_runs"
    # One run per confirmation: the same confirmation posted twice at once (a double click) starts
    # one run, the database refusing the second.
    __table_args__ = (Index("uq_bulk_runs_creator_key", "created_by_id", "run_key", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    target: Mapped[str] = mapped_column(String(16))   # members | mailboxes
    action: Mapped[str] = mapped_column(String(32))
    # The action's choices (a role, what happens to mailboxes) and its label as confirmed; once
    # it runs, where an attempt that stopped part-way resumes ("resume_at", "gone").
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    # {"ids": [...]} for the rows ticked; {"filters": {...}, "matched": [...]} for every row a
    # filtered list matched when the run was confirmed ("matched": the account's rows among
    # those ticked, once it runs).
    selection: Mapped[dict] = mapped_column(JSON, default=dict)
    # The key of the confirmation page that started it (random, one per page shown).
    run_key: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    succeeded: Mapped[int] = mapped_column(default=0)
    # Rows already as asked (a role not held to take away, a mailbox already enabled): nothing done.
    unchanged: Mapped[int] = mapped_column(default=0, server_default="0")
    failed: Mapped[int] = mapped_column(default=0)
    # The first refusals, with whom they concern: [{"label", "message"}].
    problems: Mapped[list] = mapped_column(JSON, default=list)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    created_by = relationship("User", lazy="joined")

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(self.done * 100 / self.total)


class ExportRun(db.Model):
    """A list too long to write while the page waits (``portal.bulk.exports``), written by a job
    as it was filtered, for whoever asked, and kept a day."""

    __tablename__ = "export_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    target: Mapped[str] = mapped_column(String(16))   # members | mailboxes
    format: Mapped[str] = mapped_column(String(8))    # xlsx | csv
    # The list's search, filters and sort as on the page.
    filters: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    rows: Mapped[int] = mapped_column(default=0)
    # A Mailboxes list written while its asker saw every mailbox of the account: downloaded only
    # while they still do (else it holds mailboxes they may no longer see).
    every_mailbox: Mapped[bool] = mapped_column(default=False)
    # Else, the mailboxes whose grants let its asker see them when it was written: downloaded only
    # while they still see each (a grant taken away takes the file with it).
    granted_mailboxes: Mapped[list | None] = deferred(mapped_column(JSON, nullable=True))
    # The file; erased once kept for its time (``erased``).
    content: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    erased: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    created_by = relationship("User", lazy="joined")
