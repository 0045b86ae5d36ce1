"""Badges: a short status or tag in a coloured frame (``badge badge-<kind>`` in portal.css).

Written in Python rather than as template macros: lists show one or more on every row, and a
macro call costs Jinja several times what this does. Templates call them as globals."""

from __future__ import annotations

from markupsafe import Markup, escape

from portal.i18n import label

# How each status looks; any other value is "neutral".
_DOMAIN_KINDS = {"enabled": "ok", "pending": "warn", "action_required": "warn", "failed": "danger", "taken": "danger"}
_RECORD_KINDS = {"ok": "ok", "missing": "danger", "wrong": "danger", "unknown": "warn"}
_MAILBOX_KINDS = {"enabled": "ok", "pending": "warn", "provisioning": "info", "failed": "danger"}


def badge(text, kind: str = "neutral") -> Markup:
    """``text`` (escaped unless it is markup already) in a badge of ``kind``. Written with
    ``escape`` rather than ``Markup.format``, whose formatter costs several times more."""
    return Markup(f'<span class="badge badge-{escape(kind)}">{escape(text)}</span>')


def domain_status(status: str) -> Markup:
    return badge(label(status, "domain.status"), _DOMAIN_KINDS.get(status, "neutral"))


def record_state(state: str) -> Markup:
    """How a DNS record compares with what is published."""
    return badge(label(state, "domain.record_state"), _RECORD_KINDS.get(state, "neutral"))


def mailbox_status(status: str) -> Markup:
    return badge(label(status, "mailbox.status"), _MAILBOX_KINDS.get(status, "neutral"))


def register(app) -> None:
    app.jinja_env.globals.update(badge=badge, domain_status=domain_status, record_state=record_state,
                                 mailbox_status=mailbox_status)
