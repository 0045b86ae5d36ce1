"""Rendering pages and their fragments from one template.

A fragment is a named block of the page's template; htmx requests get just
that block, everyone else the whole page, so there is no second copy of the
markup to keep in step.
"""

from __future__ import annotations

from datetime import timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app, has_request_context, request
from flask import render_template as render_page
from flask_login import current_user

from portal.web.htmx import is_htmx


def render(template: str, block: str | None = None, status: int = 200, **context):
    if block and is_htmx(request):
        environment = current_app.jinja_env
        compiled = environment.get_or_select_template(template)
        current_app.update_template_context(context)
        fragment = compiled.new_context(context)
        body = "".join(compiled.blocks[block](fragment))
        return body, status
    return render_page(template, **context), status


def filesize(number: int | None) -> str:
    """Bytes in the unit people use for mailbox quotas (binary multiples)."""
    if number is None:
        return ""
    for unit, size in (("TB", 1024 ** 4), ("GB", 1024 ** 3), ("MB", 1024 ** 2), ("KB", 1024)):
        if number >= size:
            value = number / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{number} bytes"


def when(moment, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (naive UTC) time in the signed-in person's time zone, with the zone named."""
    if moment is None:
        return ""
    zone_name = current_user.timezone if has_request_context() and current_user.is_authenticated else "UTC"
    try:
        zone = ZoneInfo(zone_name or "UTC")
    except ZoneInfoNotFoundError:
        zone = ZoneInfo("UTC")
    local = moment.replace(tzinfo=timezone.utc).astimezone(zone)
    return f"{local.strftime(fmt)} {local.tzname()}" if any(c in fmt for c in "HM") else local.strftime(fmt)
