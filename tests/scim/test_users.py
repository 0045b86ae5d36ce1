"""SCIM Users: the account's corporate users, created, read, filtered, replaced, patched and
removed through the same services as the pages."""

from __future__ import annotations

import pytest

from portal.accounts.models import Membership
from portal.audit.models import AuditEvent
from portal.auth.models import User
from portal.extensions import db
from portal.jobs.models import Job
from portal.mailboxes.models import Mailbox
from portal.scim.models import ScimProfile
from tests.scim.conftest import ENTERPRISE, ERROR_SCHEMA, new_user


def _error(response, status: int, scim_type: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    document = response.get_json()
    assert document["schemas"] == [ERROR_SCHEMA] and document["status"] == str(status)
    assert document.get("scimType") == scim_type, document
    return document


def _user(email: str) -> User:
    return db.session.execute(db.select(User).where(User.email == email)).scalar_one()


# -- creating ---------------------------------------------------------------------------------

def test_create__a_corporate_user_with_the_enterprise_attributes(scim, account, smtp_sink):
    response = scim.post("/Users", new_user(externalId="00u-Jane", displayName="Jane D.",
                                            **{ENTERPRISE: {"employeeNumber": "701", "department": "Sales"}}))
    assert response.status_code == 201
    created = response.get_json()
    location = f"http://localhost/scim/v2/Users/{created['id']}"
    assert response.headers["Location"] == created["meta"]["location"] == location
    assert created["userName"] == "jane.doe@example.org" and created["active"] is True
    assert created["name"] == {"givenName": "Jane", "familyName": "Doe"} and created["displayName"] == "Jane D."
    assert created["emails"] == [{"value": "jane.doe@example.org", "type": "work", "primary": True}]
    assert created[ENTERPRISE] == {"employeeNumber": "701", "department": "Sales"}
    assert created["externalId"] == "00u-Jane"
    user = _user("jane.doe@example.org")
    assert user.is_corporate and user.corporate_account_id == account.id and user.name == "Jane Doe"
    assert db.session.execute(db.select(Membership).where(Membership.user_id == user.id)).scalar_one()
    assert db.session.execute(db.select(Mailbox)).first() is None  # the account gives no personal mailboxes
    # No recovery address, no mailbox: no link is made, since a provider could show it to nobody.
    assert not db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "user.send_onboarding")).first()
    event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "user.create_corporate")).scalar_one()
    assert (event.source, event.details["token"]) == ("api", "Entra ID")


def test_create__with_personal_mailboxes_the_onboarding_link_goes_to_the_new_mailbox(scim, account, run_jobs):
    account.personal_mailboxes = True
    db.session.commit()
    response = scim.post("/Users", new_user())
    assert response.status_code == 201 and "welcome" not in response.get_data(as_text=True)
    mailbox = db.session.execute(db.select(Mailbox)).scalar_one()
    assert (mailbox.address, mailbox.kind) == ("jane.doe@example.org", "personal")
    assert db.session.execute(db.select(Job).where(Job.kind == "users.onboarding")).scalar_one()


def test_create__inactive_creates_then_suspends(scim):
    response = scim.post("/Users", new_user(active=False))
    assert response.status_code == 201 and response.get_json()["active"] is False
    assert _user("jane.doe@example.org").suspended_at is not None


@pytest.mark.parametrize("user_name, fragment", [
    ("jane@elsewhere.example", "active domains"),
    ("not an address", "userName"),
    ("", "userName is required"),
])
def test_create__an_address_off_the_accounts_active_domains_is_a_scim_400(scim, user_name, fragment):
    document = _error(scim.post("/Users", new_user(user_name=user_name)), 400, "invalidValue")
    assert fragment in document["detail"]


def test_create__on_a_disabled_domain_is_refused(scim, domain):
    domain.status = "disabled"
    db.session.commit()
    document = _error(scim.post("/Users", new_user()), 400, "invalidValue")
    assert "disabled" in document["detail"]


def test_create__without_a_first_or_last_name_is_refused_as_the_schema_says(scim):
    body = new_user(displayName="Jane Doe")
    body["name"] = {"givenName": "Jane"}
    assert "familyName" in _error(scim.post("/Users", body), 400, "invalidValue")["detail"]
    body["name"] = {"givenName": "Jane", "familyName": "   "}
    assert "last name" in _error(scim.post("/Users", body), 400, "invalidValue")["detail"]


def test_create__an_existing_user_name_is_a_409_uniqueness(scim, make):
    assert scim.post("/Users", new_user()).status_code == 201
    document = _error(scim.post("/Users", new_user(user_name="JANE.DOE@example.org")), 409, "uniqueness")
    assert "already a user of this account" in document["detail"]
    make.user("someone@example.org")
    document = _error(scim.post("/Users", new_user(user_name="someone@example.org")), 409, "uniqueness")
    assert "invite them" in document["detail"]


def test_create__attributes_the_portal_does_not_keep_are_ignored(scim):
    body = new_user(title="Boss", phoneNumbers=[{"value": "+33 1 23", "type": "work"}], id="chosen-by-client",
                    emails=[{"value": "other@example.org", "type": "work", "primary": True}])
    created = scim.post("/Users", body).get_json()
    assert created["id"] != "chosen-by-client" and "title" not in created
    assert created["emails"][0]["value"] == "jane.doe@example.org"


# -- reading and filtering ------------------------------------------------------------------------

@pytest.fixture
def people(scim, make, account):
    """Three provisioned people, one suspended, and one corporate user made in the pages."""
    ids = {}
    for number, (given, family, department, active) in enumerate(
            [("Ann", "Alder", "Sales", True), ("Bob", "Birch", "Support", False), ("Cid", "Cedar", "Sales", True)]):
        body = new_user(user_name=f"{given.lower()}@example.org", given=given, family=family, active=active,
                        externalId=f"Ext-{number}", **{ENTERPRISE: {"department": department}})
        ids[given] = scim.post("/Users", body).get_json()["id"]
    from portal.users.services import create_corporate_user

    owner = db.session.get(User, account.memberships[0].user_id)
    user, _ = create_corporate_user(owner, account, first_name="Dee", last_name="Dogwood", email="dee@example.org",
                                    personal_mailbox=False)
    db.session.commit()
    ids["Dee"] = str(user.id)
    make.member(account, make.user("guest@elsewhere.example"))  # a member, not a corporate user: not a SCIM user
    return ids


def _names(response) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["name"]["givenName"] for item in response.get_json()["Resources"]]


@pytest.mark.parametrize("expression, expected", [
    ('userName eq "ANN@example.org"', ["Ann"]),
    ('userName sw "b"', ["Bob"]),
    ('externalId eq "Ext-0"', ["Ann"]),
    ('externalId eq "ext-0"', []),  # externalId is case-exact
    ('emails[type eq "work"].value eq "Cid@Example.org"', ["Cid"]),
    ('emails[type eq "work" and value co "dee"]', ["Dee"]),
    ('emails.value ew "@example.org" and active eq false', ["Bob"]),
    ('active eq "True"', ["Ann", "Cid", "Dee"]),
    ('displayName eq "Dee Dogwood"', ["Dee"]),
    (f'{ENTERPRISE}:department eq "sales"', ["Ann", "Cid"]),
    ('not (userName eq "ann@example.org") and externalId pr', ["Bob", "Cid"]),
    ('userName eq "nobody@example.org"', []),
])
def test_filters__as_identity_providers_send_them(scim, people, expression, expected):
    assert _names(scim.get("/Users", filter=expression)) == expected


def test_filter__by_id(scim, people):
    assert _names(scim.get("/Users", filter=f'id eq "{people["Bob"]}"')) == ["Bob"]
    assert _names(scim.get("/Users", filter='id eq "not-a-number"')) == []


@pytest.mark.parametrize("expression", [
    'title eq "Boss"', 'userName eq', 'userName xx "a"', '(userName eq "a"', 'meta.created gt "2020-01-01T00:00:00Z"',
    'name.givenName eq "Ann"', 'active eq "maybe"',
])
def test_filters__it_cannot_answer_are_a_400_invalid_filter(scim, people, expression):
    _error(scim.get("/Users", filter=expression), 400, "invalidFilter")


def test_paging__start_index_count_and_total(scim, people):
    first = scim.get("/Users", startIndex=1, count=2).get_json()
    second = scim.get("/Users", startIndex=3, count=2).get_json()
    assert (first["totalResults"], first["startIndex"], first["itemsPerPage"]) == (4, 1, 2)
    assert (second["startIndex"], second["itemsPerPage"]) == (3, 2)
    ids = [item["id"] for item in first["Resources"] + second["Resources"]]
    assert sorted(ids, key=int) == ids and len(set(ids)) == 4
    only_count = scim.get("/Users", count=0).get_json()
    assert (only_count["totalResults"], only_count["Resources"]) == (4, [])
    assert scim.get("/Users", startIndex=-5).get_json()["startIndex"] == 1
    beyond = scim.get("/Users", startIndex="9" * 30, count="9" * 30).get_json()
    assert (beyond["totalResults"], beyond["Resources"]) == (4, [])
    _error(scim.get("/Users", count="many"), 400, "invalidValue")


def test_attributes_and_excluded_attributes(scim, people):
    only = scim.get(f"/Users/{people['Ann']}", attributes="userName").get_json()
    assert set(only) == {"schemas", "id", "userName"}
    without = scim.get("/Users", excludedAttributes=f"emails,{ENTERPRISE}").get_json()["Resources"][0]
    assert "emails" not in without and ENTERPRISE not in without and "userName" in without


def test_search_by_post(scim, people):
    response = scim.post("/Users/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                                            "filter": 'userName eq "cid@example.org"', "attributes": ["userName"]})
    assert [item["userName"] for item in response.get_json()["Resources"]] == ["cid@example.org"]


def test_users_made_in_the_pages__are_scim_users_too(scim, people):
    dee = scim.get(f"/Users/{people['Dee']}").get_json()
    assert dee["name"] == {"givenName": "Dee", "familyName": "Dogwood"} and dee["displayName"] == "Dee Dogwood"
    assert "externalId" not in dee


# -- replacing and patching -------------------------------------------------------------------

def test_put__replaces_what_the_provider_keeps_and_renames_through_the_settings(scim, people):
    path = f"/Users/{people['Ann']}"
    body = new_user(user_name="ann@example.org", given="Anne", family="Alder-Smith", externalId="Ext-0",
                    **{ENTERPRISE: {"employeeNumber": "42"}})
    replaced = scim.put(path, body).get_json()
    assert replaced["name"] == {"givenName": "Anne", "familyName": "Alder-Smith"}
    assert replaced[ENTERPRISE] == {"employeeNumber": "42"}  # department left out: cleared
    assert _user("ann@example.org").name == "Anne Alder-Smith"
    assert db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "user.settings")).scalar_one()


def test_put__cannot_change_the_user_name(scim, people):
    body = new_user(user_name="annie@example.org", given="Ann", family="Alder")
    document = _error(scim.put(f"/Users/{people['Ann']}", body), 400, "mutability")
    assert "login address" in document["detail"]


@pytest.mark.parametrize("written", ["", "   ", None])
def test_put_and_patch__a_blank_or_missing_user_name_is_a_400_and_keeps_the_address(scim, people, written):
    path = f"/Users/{people['Ann']}"
    body = new_user(user_name=written, given="Ann", family="Alder")
    if written is None:
        del body["userName"]
    document = _error(scim.put(path, body), 400, "invalidValue")
    assert "userName" in document["detail"]
    if written is not None:  # replaced by another value than the address: the attribute cannot change
        document = _error(scim.patch(path, {"op": "replace", "path": "userName", "value": written}), 400,
                          "mutability")
        assert "userName" in document["detail"]
    assert scim.get(path).get_json()["userName"] == "ann@example.org"


def test_put_and_patch__the_address_restated_as_a_provider_writes_it_changes_nothing(scim, people, owner, account):
    """userName compares as the address it names: in another case, with spaces around it, or with its
    domain in Unicode where the portal keeps the ASCII (IDNA) form."""
    from tests.mailboxes.conftest import enabled_domain

    enabled_domain(owner, account, "bücher.example")
    created = scim.post("/Users", new_user(user_name="Lena@Bücher.example", given="Lena", family="Lind")).get_json()
    assert created["userName"] == "lena@xn--bcher-kva.example"
    ann, lena = f"/Users/{people['Ann']}", f"/Users/{created['id']}"
    for path, written, given, family in ((ann, " ANN@Example.org ", "Ann", "Alder"),
                                         (lena, "lena@bücher.example", "Lena", "Lind"),
                                         (lena, "LENA@BÜCHER.EXAMPLE", "Lena", "Lind")):
        response = scim.put(path, new_user(user_name=written, given=given, family=family))
        assert response.status_code == 200, (written, response.get_json())
        response = scim.patch(path, {"op": "replace", "path": "userName", "value": written})
        assert response.status_code == 200, (written, response.get_json())
        assert response.get_json()["userName"] == (created["userName"] if path == lena else "ann@example.org")
    _error(scim.put(lena, new_user(user_name="lena@example.org", given="Lena", family="Lind")),
           400, "mutability")


def test_name_parts_with_spaces__come_back_as_sent(scim, people):
    path = f"/Users/{people['Ann']}"
    patched = scim.patch(path, {"op": "replace", "path": "name", "value": {"givenName": "Mary Ann",
                                                                            "familyName": "van Alder"}}).get_json()
    assert patched["name"] == {"givenName": "Mary Ann", "familyName": "van Alder"}
    assert _user("ann@example.org").name == "Mary Ann van Alder"


@pytest.mark.parametrize("operations", [
    [{"op": "Replace", "path": "active", "value": "False"}],
    [{"op": "replace", "path": "active", "value": False}],
    [{"op": "Replace", "value": {"active": "False"}}],
    [{"op": "REPLACE", "value": {"active": False, "displayName": "Ann A."}}],
])
def test_patch__active_false_in_every_shape_suspends(scim, people, operations):
    response = scim.patch(f"/Users/{people['Ann']}", *operations)
    assert response.status_code == 200 and response.get_json()["active"] is False
    assert _user("ann@example.org").suspended_at is not None


def test_patch__active_true_restores(scim, people):
    response = scim.patch(f"/Users/{people['Bob']}", {"op": "Replace", "path": "active", "value": "True"})
    assert response.get_json()["active"] is True and _user("bob@example.org").suspended_at is None
    assert db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "user.restore")).scalar_one()


def test_patch__entra_paths_for_names_enterprise_attributes_and_the_manager(scim, people):
    path = f"/Users/{people['Cid']}"
    response = scim.patch(
        path,
        {"op": "Replace", "path": "name.givenName", "value": "Cedric"},
        {"op": "Add", "path": f"{ENTERPRISE}:department", "value": "Engineering"},
        {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": people["Ann"]},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "cid@example.org"},
        {"op": "Add", "path": 'addresses[type eq "work"].formatted', "value": "1 Main St"},
    )
    patched = response.get_json()
    assert response.status_code == 200, patched
    assert patched["name"]["givenName"] == "Cedric" and patched[ENTERPRISE]["department"] == "Engineering"
    assert patched[ENTERPRISE]["manager"] == {"value": people["Ann"],
                                              "$ref": f"http://localhost/scim/v2/Users/{people['Ann']}"}
    removed = scim.patch(path, {"op": "Remove", "path": f"{ENTERPRISE}:manager"},
                         {"op": "remove", "path": "externalId"}).get_json()
    assert "manager" not in removed[ENTERPRISE] and "externalId" not in removed


def test_patch__refusals_are_scim_errors(scim, people):
    path = f"/Users/{people['Ann']}"
    _error(scim.patch(path, {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "x@example.org"}),
           400, "mutability")
    _error(scim.patch(path, {"op": "remove", "path": "name.familyName"}), 400, "mutability")
    _error(scim.patch(path, {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": "999999"}}),
           400, "invalidValue")
    _error(scim.patch(path, {"op": "frobnicate", "path": "active", "value": False}), 400, "invalidValue")
    _error(scim.patch(path, {"op": "replace", "path": "name.givenName", "value": "x" * 101}), 400, "invalidValue")
    _error(scim.patch(path, {"op": "replace", "path": "userName", "value": "ann2@example.org"}), 400, "mutability")
    _error(scim.call("PATCH", path, ["not", "an", "object"]), 400, "invalidSyntax")
    assert scim.get(path).get_json()["name"] == {"givenName": "Ann", "familyName": "Alder"}


def test_patch__that_changes_nothing_changes_nothing(scim, people):
    before = db.session.execute(db.select(db.func.count()).select_from(AuditEvent)).scalar_one()
    path = f"/Users/{people['Ann']}"
    response = scim.patch(path, {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "ANN@example.org"},
                          {"op": "replace", "path": "name.givenName", "value": "Ann"})
    assert response.status_code == 200
    # userName restated in another case is the same address (userName is not case-exact), as a
    # PUT restating it already was: an identity provider sends it in the case it holds.
    for restated in ({"op": "Replace", "path": "userName", "value": "Ann@Example.org"},
                     {"op": "replace", "value": {"userName": "ANN@example.org", "name.givenName": "Ann"}}):
        response = scim.patch(path, restated)
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["userName"] == "ann@example.org"
    assert db.session.execute(db.select(db.func.count()).select_from(AuditEvent)).scalar_one() == before


def test_the_token_creator_cannot_suspend_themselves(scim, owner, account, domain):
    from portal.users.corporate import make_corporate

    make_corporate(owner, domain)
    db.session.commit()
    document = _error(scim.patch(f"/Users/{owner.id}", {"op": "replace", "path": "active", "value": False}), 400,
                      "invalidValue")
    assert "yourself" in document["detail"]


# -- removing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("choice, status_after", [("disable", "disabled"), ("keep", "enabled")])
def test_delete__removes_the_corporate_user_with_the_accounts_mailbox_choice(scim, account, run_jobs, choice,
                                                                             status_after):
    account.personal_mailboxes, account.deprovisioned_mailboxes = True, choice
    db.session.commit()
    created = scim.post("/Users", new_user()).get_json()
    run_jobs()
    assert scim.delete(f"/Users/{created['id']}").status_code == 204
    run_jobs()
    user = _user("jane.doe@example.org")
    assert not user.is_corporate and user.corporate_account_id is None
    assert db.session.execute(db.select(Membership).where(Membership.user_id == user.id)).first() is None
    assert db.session.execute(db.select(ScimProfile)).first() is None
    assert db.session.execute(db.select(Mailbox)).scalar_one().status == status_after
    event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "user.remove_corporate")).scalar_one()
    assert event.details["mailboxes"] == choice and event.source == "api"
    _error(scim.get(f"/Users/{created['id']}"), 404)
    _error(scim.delete(f"/Users/{created['id']}"), 404)


def test_delete__mailboxes_are_deleted_only_for_a_token_whose_maker_may_delete_them(client, owner, account, domain,
                                                                               run_jobs, make):
    """With the account set to delete a removed person's mailboxes, a token made by someone who
    may not delete mailboxes is refused (with why) and the person stays; the owner's token removes
    them and deletes their mailbox (a review: removing a person deleted mailboxes for whoever could
    not delete them by hand)."""
    from tests.scim.conftest import Scim, make_token

    account.personal_mailboxes, account.deprovisioned_mailboxes = True, "delete"
    clerk = make.user("clerk@elsewhere.example")
    make.member(account, clerk, permissions=("members.view", "roles.view", "roles.manage", "access.grant",
                                             "users.create", "users.manage"))
    db.session.commit()
    scim = Scim(client, make_token(clerk, account, name="Clerk's"))
    created = scim.post("/Users", new_user()).get_json()
    run_jobs()
    document = _error(scim.delete(f"/Users/{created['id']}"), 403)
    assert "needs the right to manage mailboxes" in document["detail"]
    run_jobs()
    assert _user("jane.doe@example.org").is_corporate
    assert db.session.execute(db.select(Mailbox)).scalar_one().status == "enabled"
    owners = Scim(client, make_token(owner, account))
    assert owners.delete(f"/Users/{created['id']}").status_code == 204
    run_jobs()
    assert not _user("jane.doe@example.org").is_corporate
    assert db.session.execute(db.select(Mailbox)).scalar_one().status == "deleted"


def test_account_settings__the_deprovisioning_choice(client, auth, owner, account):
    from portal.accounts.services import update_settings
    from portal.roles.services import AccessError

    auth.login("owner@example.org")
    page = client.get(f"/accounts/{account.id}/settings").get_data(as_text=True)
    assert "identity provider removes someone" in page and '<option selected value="disable">' in page
    update_settings(owner, account, name=account.name, self_registration=True, personal_mailboxes=False,
                    personal_mailbox_role_id=None, deprovisioned_mailboxes="delete")
    db.session.commit()
    assert account.deprovisioned_mailboxes == "delete"
    event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "account.settings")).scalar_one()
    assert event.details["deprovisioned_mailboxes"] == "delete"
    with pytest.raises(AccessError):
        update_settings(owner, account, name=account.name, self_registration=True, personal_mailboxes=False,
                        personal_mailbox_role_id=None, deprovisioned_mailboxes="shred")
