from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from portal.extensions import db
from portal.i18n import _l, labels
from portal.timeutil import utcnow

CHECKING = "checking"     # uploaded; the worker is reading and validating it
REFUSED = "refused"       # could not be read (damaged, a zip bomb, not a users workbook): see ``fatal``
PREVIEWED = "previewed"   # validated, waiting for the admin to confirm
QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
labels("import.status", {CHECKING: _l("checking"), REFUSED: _l("refused"), PREVIEWED: _l("previewed"),
                         QUEUED: _l("queued"), RUNNING: _l("running"), DONE: _l("done"), FAILED: _l("failed"),
                         CANCELLED: _l("cancelled")})
labels("report.status", {QUEUED: _l("queued"), RUNNING: _l("running"), DONE: _l("done"), FAILED: _l("failed")})


class ImportRun(db.Model):
    """One uploaded workbook: its preview, its progress and its result."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=PREVIEWED)
    # The workbook as uploaded: any worker, on any machine, can read it.
    workbook: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    # The plan the preview made, and its problems: the run carries it out as shown.
    plan: Mapped[dict] = deferred(mapped_column(JSON, default=dict))
    problems: Mapped[list] = deferred(mapped_column(JSON, default=list))
    fatal: Mapped[str] = mapped_column(Text, default="")
    to_create: Mapped[int] = mapped_column(default=0)
    to_update: Mapped[int] = mapped_column(default=0)
    to_skip: Mapped[int] = mapped_column(default=0)
    problem_count: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    # Of those created, how many have no recovery address nor personal mailbox to be mailed a link.
    need_link: Mapped[int] = mapped_column(default=0, server_default="0")
    updated: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    created_by = relationship("User", lazy="joined")

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(self.done * 100 / self.total)


class UsersReport(db.Model):
    __tablename__ = "users_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    rows: Mapped[int] = mapped_column(default=0)
    content: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    requested_by = relationship("User", lazy="joined")
