"""Link secrets kept out of the logs.

A request log line (werkzeug's under ``make run``, gunicorn's access log when an operator turns
it on, the portal's own on an error) names the path and the query. Some paths carry a secret that
works when replayed: a password reset, onboarding, verification or invitation link's token, a
report link's signature. Each such record is written with the secret replaced (a review read a
reset token in the log and chose the person's password with it).
"""

from __future__ import annotations

import logging
import re

# The link routes whose last part is a one-time secret (see the views of auth, users, invitations),
# wherever they stand in a line (a request line, a Referer, a ``next`` argument, URL-encoded or
# not); a secret is long, where the account pages' ids there are numbers.
_SECRET_PATH = re.compile(r"((?:/|%2F)(?:password(?:/|%2F)reset|welcome|verify|invitations)(?:/|%2F))"
                          r"[^/\s?&\"'%]{16,}", re.IGNORECASE)
# A report link's signature, a token in a query, the sign-on callback's code and state.
_SECRET_QUERY = re.compile(r"((?:[?&]|%3F|%26)(?:signature|token|code|state)(?:=|%3D))[^&\s\"'%]+", re.IGNORECASE)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return _SECRET_QUERY.sub(r"\1" + REDACTED, _SECRET_PATH.sub(r"\1" + REDACTED, text))


class RedactLinkSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


_FILTER = RedactLinkSecrets()
# The loggers that write request lines; the portal's own is added by ``install``.
REQUEST_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error")


def install(app_logger: logging.Logger) -> None:
    """Filter every logger that may write a request's path (idempotent)."""
    for logger in [logging.getLogger(name) for name in REQUEST_LOGGERS] + [app_logger]:
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
