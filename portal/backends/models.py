"""What the worker learnt about each backend connection, for the web to read.

An adapter may find out at run time that its server offers less than its
class declares (an older dimail without domain checks or password reset).
Adapters never touch the database, so the worker writes what the adapter
discovered here, and ``service.capabilities(name)`` reads it back for pages.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.timeutil import utcnow


class BackendState(db.Model):
    __tablename__ = "backend_states"

    connection: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Capability name -> supported, as discovered on the server.
    capabilities: Mapped[dict] = mapped_column(JSON, default=dict)
    # Capability name -> why, where the server explains what it lacks.
    notes: Mapped[dict] = mapped_column(JSON, default=dict)
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)
