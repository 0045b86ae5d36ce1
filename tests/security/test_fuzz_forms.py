"""Every form of the portal, fed hostile values by hypothesis: no input produces an HTTP 500.

The fields tried are every field of every form class, the raw fields views read, and the domain
settings; values mix real ids of the world below with huge and negative numbers, NUL bytes,
odd Unicode and long text: first systematically (each value in every field of every route), then
in random mixtures within a time budget. The whole run takes about a minute.
"""

from __future__ import annotations

import time

import pytest
from flask_wtf import FlaskForm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.routing import IntegerConverter
from wtforms.fields.core import UnboundField

from portal.backends.base import PORTAL_DOMAIN_SETTING_KEYS
from portal.domains.models import ENABLED
from portal.domains.services import add_domain
from portal.extensions import db
from portal.invitations.services import start as start_invitation
from portal.mailboxes.services import create_mailbox
from portal.roles.services import create_role
from portal.users import services as users
from tests.conftest import PASSWORD

# Fields views read straight from the request, besides their forms'.
RAW_FIELDS = ("action", "address", "admin", "alias", "how", "kind", "permission", "protocol", "scope", "role_id",
              "mailbox_id", "q", "group")
BUDGET_SECONDS = 25


def _form_fields() -> list[str]:
    import portal  # noqa: F401  (every form module is imported by the app)

    names: set[str] = set()
    pending = list(FlaskForm.__subclasses__())
    while pending:
        form = pending.pop()
        pending.extend(form.__subclasses__())
        for klass in form.__mro__:
            names.update(name for name, value in vars(klass).items() if isinstance(value, UnboundField))
    names.update(f"pw-{name}" for name in ("current", "password", "confirm"))
    return sorted(names | set(RAW_FIELDS) | set(PORTAL_DOMAIN_SETTING_KEYS))


HOSTILE_VALUES = ["", "0", "-1", "1", "2", "2147483648", "9223372036854775808", "9" * 400, "-" + "9" * 400, "1e9",
                  "1.5", "٣", "\x00", "a\x00b", "\ufeff", "\uffff", "<script>alert(1)</script>", "=1+1", " ",
                  "y", "on", "GB", "apply", "filter", "save", "adopt", "enforce", "mailbox", "personal", "keep",
                  "delete", "Europe/Paris", "ceo@example.org", "@example.org", "a@b", "x" * 5000]
HOSTILE = st.sampled_from(HOSTILE_VALUES)
VALUES = st.one_of(HOSTILE, st.text(max_size=120), st.integers(-2**70, 2**70).map(str))


@pytest.fixture
def world(make, owner, account, run_jobs):
    domain = add_domain(owner, account, "example.org", "local")
    domain.status, domain.verified_at = ENABLED, domain.created_at
    mailbox = create_mailbox(owner, account, domain, "team")
    member = make.member(account, make.user("member@example.org"))
    role = create_role(owner, account, name="Custom", scope="account", description="", permissions={"audit.view"})
    invitation = start_invitation(owner, account, "guest@elsewhere.example")
    person, _ = users.create_corporate_user(owner, account, first_name="Cor", last_name="Porate",
                                            email="corp@example.org", personal_mailbox=False)
    db.session.commit()
    run_jobs()
    from portal.accounts.models import Membership

    corporate = db.session.execute(db.select(Membership).where(Membership.user_id == person.id)).scalar_one()
    return {"account_id": account.id, "domain_id": domain.id, "mailbox_id": mailbox.id, "membership_id": member.id,
            "role_id": role.id, "invitation_id": invitation.id, "grant_id": 1, "alias_id": 1, "run_id": 1,
            "report_id": 1, "session_id": 1, "corporate_id": corporate.id}


def _post_routes(app, ids: dict) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.endpoint in ("auth.logout", "static"):
            continue
        values = {}
        for argument in rule.arguments:
            if argument == "membership_id" and rule.endpoint.startswith("users."):
                values[argument] = ids["corporate_id"]
            elif argument in ids:
                values[argument] = ids[argument]
            elif isinstance(rule._converters[argument], IntegerConverter):
                values[argument] = 1
            else:
                values[argument] = "some-token"
        urls.append(rule.build(values, append_unknown=False)[1])
    return sorted(urls)


def _login(client) -> None:
    with client.session_transaction() as session:
        session.clear()
    client.post("/login", data={"email": "owner@example.org", "password": PASSWORD})


def _signed_out(url: str, response) -> bool:
    """Sent away to sign in, from a page that needs it (the API answers 401 to a session: no token)."""
    return (not url.startswith("/login") and response.status_code in (302, 303)
            and response.location.split("?", 1)[0].endswith("/login"))


def test_fuzz__every_field_of_every_form_takes_each_hostile_value(app, client, world):
    """Systematic: for each route, every field at once holds one hostile value, for each value.
    Signed in once; again (and the value sent again) only when a request was sent away to sign in,
    its session ended by the one before (signing out, revoking sessions, deleting the account...)."""
    fields = _form_fields()
    failures = []
    _login(client)
    signed_in_again = 0
    for url in _post_routes(app, world):
        for value in HOSTILE_VALUES:
            data = {name: value for name in fields}
            response = client.post(url, data=data)
            if _signed_out(url, response):
                _login(client)
                signed_in_again += 1
                response = client.post(url, data=data)
            if response.status_code >= 500:
                failures.append(f"POST {url} with every field {value[:40]!r} -> {response.status_code}")
    assert failures == [], "\n".join(failures[:20])
    assert signed_in_again < len(HOSTILE_VALUES) * 5, "most requests were sent away to sign in: the fuzz tried little"


def test_fuzz__random_mixtures_of_fields_and_values(app, client, world):
    """Random: hypothesis mixes fields and values, within a time budget."""
    fields = _form_fields()
    urls = _post_routes(app, world)
    deadline = time.monotonic() + BUDGET_SECONDS
    failures: list[str] = []
    value = st.one_of(VALUES, st.lists(VALUES, max_size=3))

    @settings(max_examples=20 * len(urls), deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(url=st.sampled_from(urls), data=st.dictionaries(st.sampled_from(fields), value, max_size=12))
    def post(url, data):
        if time.monotonic() > deadline:
            return
        _login(client)
        response = client.post(url, data=data)
        if response.status_code >= 500:
            failures.append(f"POST {url} {data!r} -> {response.status_code}")

    post()
    assert failures == [], "\n".join(failures[:20])


@given(query=st.dictionaries(st.sampled_from(["page", "status", "domain", "owner", "action", "actor", "since",
                                              "until", "scope", "q", "group", "mailbox", "how", "email", "next",
                                              "signature", "sort", "kind", "role"]), VALUES, max_size=5))
@settings(max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_fuzz__no_query_produces_a_server_error(app, client, world, query):
    _login(client)
    account = world["account_id"]
    for path in (f"/accounts/{account}/mailboxes", f"/accounts/{account}/audit", f"/accounts/{account}/invitations",
                 f"/accounts/{account}/members", f"/accounts/{account}/roles/permissions", "/login",
                 f"/accounts/{account}/domains/{world['domain_id']}/drift/settle-all"):
        response = client.get(path, query_string=query)
        assert response.status_code < 500, (path, query)


def test_fuzz__a_text_field_sent_as_a_file_is_refused_with_a_message_not_a_500(app, client, world):
    """A review: the address of a log-in sent as a file part answered 500 (before anyone signed in),
    and so did 17 other forms. Every field of every route, sent as a file, signed out and in."""
    import io

    fields = _form_fields()
    failures = []
    signed_out = client.post("/login", data={"email": (io.BytesIO(b"owner@example.org"), "f.txt"),
                                             "password": PASSWORD}, content_type="multipart/form-data")
    assert signed_out.status_code == 400
    assert "was sent as a file" in signed_out.get_data(as_text=True)
    _login(client)
    for url in _post_routes(app, world):
        data = {name: (io.BytesIO(b"1"), "f.txt") for name in fields if name != "workbook"}
        response = client.post(url, data=data, content_type="multipart/form-data")
        if _signed_out(url, response):
            _login(client)
            response = client.post(url, data=data, content_type="multipart/form-data")
        if response.status_code != 400 or "was sent as a file" not in response.get_data(as_text=True):
            failures.append(f"POST {url} with every field a file -> {response.status_code}")
    assert failures == [], "\n".join(failures[:20])
