"""Microsoft Entra ID's provisioning of one person, request by request as Entra sends them: look
up by userName, create, PATCH Replace of the name and department, PATCH active "False", then
DELETE. The person, their sessions, their mailbox (on the backend too) and the audit log end as
the portal's own pages would leave them."""

from __future__ import annotations

from portal.accounts.models import Membership
from portal.audit.models import AuditEvent
from portal.auth.models import User, UserSession
from portal.auth.passwords import hash_password
from portal.backends import service as backends
from portal.extensions import db
from portal.mailboxes.models import Mailbox
from portal.timeutil import utcnow
from tests.conftest import PASSWORD
from tests.scim.conftest import ENTERPRISE, PATCH_SCHEMA, USER_SCHEMA

ADDRESS = "alex.wu@example.org"


def _signed_in(app, email: str):
    """The person's own browser, logged in."""
    browser = app.test_client()
    response = browser.post("/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    assert browser.get("/profile").status_code == 200
    return browser


def test_entra_sequence__lookup_create_update_suspend_remove(app, scim, owner, account, domain, run_jobs):
    account.personal_mailboxes = True  # and deprovisioned mailboxes are disabled: the default
    db.session.commit()

    # 1. Entra looks the person up before creating them.
    lookup = scim.get("/Users", filter=f'userName eq "{ADDRESS}"')
    assert lookup.status_code == 200 and lookup.get_json()["totalResults"] == 0

    # 2. Create, with Entra's default attribute mappings.
    created = scim.post("/Users", {
        "schemas": [USER_SCHEMA, ENTERPRISE], "externalId": "alex.wu", "userName": ADDRESS, "active": True,
        "displayName": "Alex Wu", "name": {"formatted": "Alex Wu", "familyName": "Wu", "givenName": "Alex"},
        "emails": [{"primary": True, "type": "work", "value": ADDRESS}],
        "title": "Analyst", "preferredLanguage": "en-GB",
        ENTERPRISE: {"employeeNumber": "1042", "department": "Finance"},
    })
    assert created.status_code == 201, created.get_data(as_text=True)
    user_id = created.get_json()["id"]
    run_jobs()
    mailbox = db.session.execute(db.select(Mailbox).where(Mailbox.address == ADDRESS)).scalar_one()
    assert mailbox.status == "enabled" and mailbox.kind == "personal"
    assert backends.for_domain(domain).get_mailbox(ADDRESS).active is True

    # Entra matches on userName the next time round.
    again = scim.get("/Users", filter=f'userName eq "{ADDRESS.upper()}"').get_json()
    assert [item["id"] for item in again["Resources"]] == [user_id]

    # The person sets a password and signs in.
    user = db.session.get(User, int(user_id))
    user.password_hash, user.email_verified_at = hash_password(PASSWORD), utcnow()
    db.session.commit()
    browser = _signed_in(app, ADDRESS)

    # 3. Name and department change in Entra.
    updated = scim.call("PATCH", f"/Users/{user_id}", {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "Replace", "path": "name.givenName", "value": "Alexandra"},
        {"op": "Replace", "path": "name.familyName", "value": "Wu-Martin"},
        {"op": "Replace", "path": "displayName", "value": "Alexandra Wu-Martin"},
        {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Treasury"},
    ]})
    assert updated.status_code == 200, updated.get_data(as_text=True)
    body = updated.get_json()
    assert body["name"] == {"givenName": "Alexandra", "familyName": "Wu-Martin"}
    assert body[ENTERPRISE]["department"] == "Treasury"
    db.session.refresh(user)
    assert user.name == "Alexandra Wu-Martin"

    # 4. The person is disabled in Entra (or unassigned from the app): active "False".
    suspended = scim.call("PATCH", f"/Users/{user_id}", {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "Replace", "path": "active", "value": "False"}]})
    assert suspended.status_code == 200 and suspended.get_json()["active"] is False
    db.session.refresh(user)
    assert user.suspended_at is not None
    sessions = db.session.execute(db.select(UserSession).where(UserSession.user_id == user.id)).scalars().all()
    assert sessions and all(row.ended_at is not None and row.end_reason == "suspended by the account"
                            for row in sessions)
    assert browser.get("/profile").status_code == 302  # sent back to the log-in page
    run_jobs()
    db.session.refresh(mailbox)
    assert mailbox.status == "disabled"
    assert backends.for_domain(domain).get_mailbox(ADDRESS).active is False
    assert db.session.execute(db.select(Membership).where(Membership.user_id == user.id)).scalar_one()  # access kept

    # 5. Deleted in Entra: removed as corporate-user removal does, the mailbox kept disabled.
    assert scim.delete(f"/Users/{user_id}").status_code == 204
    run_jobs()
    db.session.refresh(user)
    assert not user.is_corporate and user.corporate_account_id is None
    assert db.session.execute(db.select(Membership).where(Membership.user_id == user.id)).first() is None
    db.session.refresh(mailbox)
    assert mailbox.status == "disabled" and backends.for_domain(domain).get_mailbox(ADDRESS).active is False
    assert scim.get(f"/Users/{user_id}").status_code == 404
    assert scim.get("/Users", filter=f'userName eq "{ADDRESS}"').get_json()["totalResults"] == 0

    # The audit log says who did each thing: the API, through the token named "Entra ID".
    events = db.session.execute(db.select(AuditEvent).where(AuditEvent.target_id == user_id,
                                                            AuditEvent.target_type == "user")
                                .order_by(AuditEvent.id)).scalars().all()
    actions = [event.action for event in events]
    for action in ("user.create_corporate", "user.scim_profile", "user.settings", "user.suspend",
                   "user.remove_corporate"):
        assert action in actions, actions
    by_token = [event for event in events if event.actor_id == owner.id]
    assert {event.action for event in by_token} >= {"user.create_corporate", "user.suspend", "user.remove_corporate"}
    assert all(event.source == "api" and event.details.get("token") == "Entra ID" for event in by_token), [
        (event.action, event.source, event.details) for event in by_token]
    suspend = next(event for event in events if event.action == "user.suspend")
    assert suspend.details["mailboxes_disabled"] == [ADDRESS]
