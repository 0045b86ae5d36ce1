from datetime import date

from flask import Blueprint, g, request

from portal.audit.services import known_actions, query_events
from portal.extensions import db
from portal.web.access import member, rule
from portal.web.inputs import arg_page
from portal.web.render import render

bp = Blueprint("audit", __name__)
PAGE_SIZE = 50


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@bp.route("/accounts/<int:account_id>/audit")
@rule(member("audit.view"))
def index(account_id):
    filters = {
        "action": request.args.get("action", "").strip()[:64],
        "actor": request.args.get("actor", "").strip()[:254],
        "since": request.args.get("since", ""),
        "until": request.args.get("until", ""),
    }
    problems = [f"“{filters[key]}” is not a date (use YYYY-MM-DD)." for key in ("since", "until")
                if filters[key] and _date(filters[key]) is None]
    page = arg_page()
    query = query_events(account_id, action=filters["action"], actor=filters["actor"],
                         since=_date(filters["since"]), until=_date(filters["until"]))
    events = db.paginate(query, page=page, per_page=PAGE_SIZE, error_out=False)
    return render("audit/index.html", block="events", account=g.account, events=events, filters=filters,
                  actions=known_actions(account_id), problems=problems)
