"""Rendering pages and their fragments from one template.

A fragment is a named block of the page's template; htmx requests get just
that block, everyone else the whole page, so there is no second copy of the
markup to keep in step.
"""

from __future__ import annotations

from flask import current_app, request
from flask import render_template as render_page

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
