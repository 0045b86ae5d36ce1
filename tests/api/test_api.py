"""The JSON API does what the pages do, through the same services: problem details naming each
field, pages with Link headers, idempotent creation, 202 for long work, audit marked api."""

from __future__ import annotations

import re

import pytest

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.mailboxes.models import Mailbox
from portal.roles.models import Role
from tests.api.conftest import bearer


def _url(world, path: str) -> str:
    return f"/api/v1/accounts/{world['account'].id}{path}"


def test_problem_details__name_each_invalid_field(client, world, token):
    response = client.post(_url(world, "/roles"), headers=bearer(token),
                           json={"name": "", "scope": "galaxy", "colour": "red"})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    fields = {item["field"] for item in response.get_json()["errors"]}
    assert {"body.name", "body.scope", "body.colour"} <= fields
    response = client.post(_url(world, "/roles"), headers=bearer(token), data="not json",
                           content_type="text/plain")
    assert response.status_code == 415 and response.mimetype == "application/problem+json"


@pytest.mark.parametrize("field, value", [("domain_id", True), ("domain_id", "DOMAIN"), ("domain_id", "DOMAIN_FLOAT"),
                                          ("local_part", 7), ("quota_bytes", True)])
def test_bodies__take_json_types_as_they_are(client, world, token, field, value):
    """true was read as the id 1 (and "5" as 5): a value of the wrong type is refused, naming the field."""
    domain_id = world["domain"].id
    value = {"DOMAIN": str(domain_id), "DOMAIN_FLOAT": float(domain_id)}.get(value, value) \
        if isinstance(value, str) else value
    body = {"local_part": "boxed", "domain_id": domain_id, field: value}
    response = client.post(_url(world, "/mailboxes"), headers=bearer(token), json=body)
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert [item["field"] for item in errors] == [f"body.{field}"], errors
    assert errors[0]["message"] in ("Must be a whole number.", "Must be text."), errors
    assert db.session.execute(db.select(db.func.count()).select_from(Mailbox).where(
        Mailbox.local_part == "boxed")).scalar_one() == 0


def test_service_refusals__answer_with_the_services_own_words(client, world, token):
    """The API calls the services: their rules (and messages) are the pages' own."""
    response = client.post(_url(world, "/mailboxes"), headers=bearer(token),
                           json={"local_part": "Bad Name!", "domain_id": world["domain"].id})
    assert response.status_code == 422
    body = response.get_json()
    assert body["errors"][0]["field"] == "body.local_part" and "lower-case letters" in body["errors"][0]["message"]
    response = client.post(_url(world, "/domains/999999/check"), headers=bearer(token))
    assert response.status_code == 404


def test_lists__are_paged_with_link_headers_and_filters(client, world, token, make):
    for n in range(7):
        make.member(world["account"], make.user(f"person{n}@example.org"))
    response = client.get(_url(world, "/members?per_page=3&q=person&sort=email"), headers=bearer(token))
    assert response.status_code == 200
    body = response.get_json()
    assert body["total"] == 7 and [item["email"] for item in body["items"]] == [
        "person0@example.org", "person1@example.org", "person2@example.org"]
    assert response.headers["X-Total-Count"] == "7"
    links = dict((rel, url) for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response.headers["Link"]))
    assert set(links) == {"first", "next", "last"} and "page=3" in links["last"] and "q=person" in links["next"]
    last = client.get(links["last"].removeprefix("http://localhost"), headers=bearer(token)).get_json()
    assert [item["email"] for item in last["items"]] == ["person6@example.org"]
    response = client.get(_url(world, "/members?per_page=9999"), headers=bearer(token))
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "query.per_page"


def test_idempotency_key__a_retried_post_creates_once(client, world, token):
    payload = {"name": "Role readers", "scope": "account", "permissions": ["roles.view"]}
    headers = {**bearer(token), "Idempotency-Key": "create-auditors-1"}
    first = client.post(_url(world, "/roles"), headers=headers, json=payload)
    again = client.post(_url(world, "/roles"), headers=headers, json=payload)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert db.session.execute(db.select(db.func.count()).select_from(Role).where(Role.name == "Role readers")
                              ).scalar_one() == 1
    other = client.post(_url(world, "/roles"), headers=headers, json={**payload, "name": "Other"})
    assert other.status_code == 422 and "Idempotency-Key" in other.get_json()["errors"][0]["field"]


def test_mailbox__created_through_a_job_answers_202_with_its_status_url(client, world, token, run_jobs):
    response = client.post(_url(world, "/mailboxes"), headers=bearer(token),
                           json={"local_part": "sales", "domain_id": world["domain"].id, "display_name": "Sales"})
    assert response.status_code == 202 and response.get_json()["status"] == "provisioning"
    status_url = response.headers["Location"].removeprefix("http://localhost")
    run_jobs()
    mailbox = client.get(status_url, headers=bearer(token)).get_json()
    assert mailbox["status"] == "enabled" and mailbox["address"] == "sales@example.org"
    assert mailbox["status_reason"] == "Created on the backend."  # stored untranslated, answered as text
    history = client.get(status_url + "/history", headers=bearer(token)).get_json()
    assert history["items"][0]["operation"] == "create" and history["items"][0]["outcome"] == "ok"
    assert history["items"][0]["message"] == "Created on the backend."
    domain = client.get(_url(world, f"/domains/{world['domain'].id}"), headers=bearer(token)).get_json()
    assert domain["records"] and all(not record["purpose"].startswith("\x1f") for record in domain["records"])
    alias = client.post(status_url + "/aliases", headers=bearer(token), json={"alias": "orders@example.org"})
    assert alias.status_code == 202
    run_jobs()
    assert client.get(status_url, headers=bearer(token)).get_json()["aliases"][0]["state"] == "active"
    foreign = client.post(status_url + "/aliases", headers=bearer(token), json={"alias": "ceo@elsewhere.example"})
    assert foreign.status_code == 422 and foreign.get_json()["errors"][0]["field"] == "body.alias"


def test_audit__changes_made_with_a_token_are_marked_api_with_its_name(client, world, token):
    response = client.post(_url(world, "/roles"), headers=bearer(token), json={"name": "Scripted", "scope": "account"})
    assert response.status_code == 201
    events = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "role.create")
                                .order_by(AuditEvent.id)).scalars().all()
    assert [event.source for event in events] == ["web", "api"]  # the fixture's role, then this one
    assert events[-1].details["token"] == "automation" and "token" not in events[0].details
    page = client.get(_url(world, "/audit?family=role"), headers=bearer(token)).get_json()
    assert page["items"][0]["source"] == "api"


def test_import__upload_preview_confirm_and_result_through_the_api(client, world, token, run_jobs):
    from portal.users import workbook
    from tests.users.workbooks import fill

    data = fill(workbook.template(world["account"]), users=[("Ann", "Able", "ann@example.org", "N")])
    response = client.post(_url(world, "/imports?filename=staff.xlsx"), headers=bearer(token), data=data,
                           content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert response.status_code == 202
    run_url = response.headers["Location"].removeprefix("http://localhost")
    run_jobs()
    preview = client.get(run_url, headers=bearer(token)).get_json()
    assert preview["status"] == "previewed" and preview["to_create"] == 1
    assert client.post(run_url + "/confirm", headers=bearer(token)).status_code == 202
    run_jobs()
    done = client.get(run_url, headers=bearer(token)).get_json()
    assert done["status"] == "done" and done["created"] == 1 and done["result_url"]
    result = client.get(done["result_url"].removeprefix("http://localhost"), headers=bearer(token))
    assert result.status_code == 200 and result.data[:2] == b"PK"
    bomb = client.post(_url(world, "/imports"), headers=bearer(token), data=b"not a zip",
                       content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert bomb.status_code == 422 and "not an .xlsx" in bomb.get_json()["detail"]


def test_openapi__a_3_1_document_generated_from_the_code_and_a_reference_page(client, world, token):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert len(operations) > 50
    assert all(op.get("tags") for op in operations)
    create = document["paths"]["/api/v1/accounts/{account_id}/mailboxes"]["post"]
    assert "application/problem+json" in create["responses"]["422"]["content"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    page = client.get("/api/v1/reference").get_data(as_text=True)
    assert "POST /api/v1/accounts/{account_id}/mailboxes" in page and "<script src=\"http" not in page


def test_session_cookies__never_open_the_api(client, world, auth):
    """The API is for tokens: a signed-in browser (a forged cross-site request) gets 401."""
    auth.login("owner@example.org")
    assert client.get(_url(world, "/members")).status_code == 401
    assert client.post(_url(world, "/roles"), json={"name": "x", "scope": "account"}).status_code == 401


def test_mailbox_count__unchanged_by_refused_requests(client, world, token):
    before = db.session.execute(db.select(db.func.count()).select_from(Mailbox)).scalar_one()
    client.post(_url(world, "/mailboxes"), headers=bearer(token), json={"local_part": "x", "domain_id": 2**40})
    assert db.session.execute(db.select(db.func.count()).select_from(Mailbox)).scalar_one() == before


def test_idempotency_key__the_kept_answer_is_sealed(client, world, token):
    """A corporate user's answer may carry a one-time onboarding link: it is never stored readable."""
    from portal.tokens.models import IdempotentRequest

    headers = {**bearer(token), "Idempotency-Key": "ann"}
    payload = {"first_name": "Ann", "last_name": "Able", "email": "ann@example.org", "personal_mailbox": False}
    first = client.post(_url(world, "/users"), headers=headers, json=payload)
    assert first.status_code == 201
    link = first.get_json()["onboarding"]["link"]
    assert link and link.startswith("http")
    row = db.session.execute(db.select(IdempotentRequest)).scalar_one()
    assert link not in row.body and "ann@example.org" not in row.body
    again = client.post(_url(world, "/users"), headers=headers, json=payload)
    assert again.status_code == 201 and again.get_json()["onboarding"]["link"] == link


@pytest.mark.parametrize("zone", ["Not/AZone", "America", "zone.tab", "Europe/", "  Europe/Paris  ", "utc+2"])
def test_user_settings__a_time_zone_the_tz_database_lacks_is_refused_by_name(client, world, token, zone):
    """A review: the API stored any text as a person's time zone, and their times then showed in UTC."""
    from portal.auth.models import User

    created = client.post(_url(world, "/users"), headers=bearer(token), json={
        "first_name": "Cor", "last_name": "Porate", "email": "cor@example.org", "personal_mailbox": False})
    assert created.status_code == 201
    membership_id = created.get_json()["member"]["id"]
    answer = client.put(_url(world, f"/users/{membership_id}"), headers=bearer(token), json={
        "first_name": "Cor", "last_name": "Porate", "timezone": zone})
    assert answer.status_code == 422 and "tz database" in answer.get_data(as_text=True)
    assert db.session.execute(db.select(User.timezone).where(User.email == "cor@example.org")).scalar_one() == "UTC"
    kept = client.put(_url(world, f"/users/{membership_id}"), headers=bearer(token), json={
        "first_name": "Cor", "last_name": "Porate", "timezone": "Europe/Paris"})
    assert kept.status_code == 200
    db.session.expire_all()
    assert db.session.execute(db.select(User.timezone).where(User.email == "cor@example.org")).scalar_one() == \
        "Europe/Paris"


def test_member__what_they_hold_comes_in_pages_account_first(client, world, token):
    """A review: someone delegated on each of 10,000 mailboxes made a 950 kB answer."""
    from sqlalchemy import insert

    from portal.accounts.models import Membership
    from portal.roles.models import Grant
    from portal.roles.services import system_role

    account, domain = world["account"], world["domain"]
    membership_id = world["ids"]["membership_id"]
    boxes = db.session.execute(insert(Mailbox).returning(Mailbox.id), [{
        "account_id": account.id, "domain_id": domain.id, "local_part": f"shared{n:03d}",
        "address": f"shared{n:03d}@{domain.name}", "kind": "shared", "status": "enabled", "status_reason": "",
        "want_active": True, "backend_admin": False, "password_lost": False, "first_name": "", "last_name": "",
        "display_name": ""} for n in range(120)]).scalars().all()
    delegate = system_role("mailbox_delegate")
    db.session.execute(insert(Grant.__table__), [
        {"membership_id": membership_id, "account_id": account.id, "role_id": delegate.id, "mailbox_id": box}
        for box in boxes])
    db.session.add(Grant(membership_id=membership_id, account_id=account.id, permission="audit.view"))
    db.session.commit()
    assert db.session.get(Membership, membership_id) is not None
    url = _url(world, f"/members/{membership_id}")
    first = client.get(url, headers=bearer(token)).get_json()
    held = db.session.execute(db.select(db.func.count()).select_from(Grant)
                              .where(Grant.membership_id == membership_id)).scalar_one()
    assert first["total"] == held >= 121 and len(first["grants"]) == 50
    assert first["grants"][0]["mailbox_id"] is None, "what they hold over the account comes first"
    pages = [first] + [client.get(url, headers=bearer(token), query_string={"page": page}).get_json()
                       for page in range(2, 5)]
    ids = [grant["id"] for page in pages for grant in page["grants"]]
    assert len(ids) == len(set(ids)) == held
    assert client.get(url, headers=bearer(token), query_string={"per_page": 0}).status_code == 422
