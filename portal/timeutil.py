"""Times are stored as naive UTC: SQLite keeps no zone, so both databases agree."""

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
