from datetime import date

from flask import Blueprint, g
from flask_babel import gettext as _

from portal.audit.services import FAMILIES, query_events
from portal.web import lists
from portal.web.access import member, rule
from portal.web.render import render
from portal.web.pagecache import cached_page

bp = Blueprint("audit", __name__)

# The log only grows: past this many entries it is counted no further (the page says "more than").
COUNT_LIMIT = 10_000


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@bp.route("/accounts/<int:account_id>/audit")
@rule(member("audit.view"))
@cached_page()
def index(account_id):
    listing = lists.read({"family": tuple(name for name, _label in FAMILIES), "actor": None, "since": None,
                          "until": None}, ("at",), "at", descending=True)
    problems = [_("“%(value)s” is not a date (use YYYY-MM-DD).", value=listing.filters[key])
                for key in ("since", "until") if listing.filters[key] and _date(listing.filters[key]) is None]
    query = query_events(account_id, family=listing.filters["family"], actor=listing.filters["actor"],
                         target=listing.q, since=_date(listing.filters["since"]),
                         until=_date(listing.filters["until"]), oldest_first=not listing.descending)
    return render("audit/index.html", block="events", account=g.account,
                  page=lists.fetch(query, listing, count_limit=COUNT_LIMIT),
                  listing=listing, families=FAMILIES, problems=problems)
