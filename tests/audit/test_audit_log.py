from datetime import timedelta

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.timeutil import utcnow


def test_audit_log__lists_events_with_who_what_where(client, auth, make):
    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    auth.login("owner@example.org")
    client.post(f"/accounts/{account.id}/roles/new", data={"scope": "account", "name": "Auditors",
                                                           "permission": ["audit.view"], "action": "save"},
                headers={"User-Agent": "pytest-agent"})
    event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "role.create")).scalar_one()
    assert (event.actor_id, event.account_id, event.source) == (owner.id, account.id, "web")
    assert event.ip == "127.0.0.1" and event.user_agent == "pytest-agent"
    assert event.details["permissions"] == ["audit.view"]
    page = client.get(f"/accounts/{account.id}/audit").get_data(as_text=True)
    assert "role.create" in page and "account.create" in page and "Auditors" in page


def test_audit_log__filters_by_kind_of_action_actor_target_and_dates(client, auth, make):
    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    old = AuditEvent(action="role.delete", account_id=account.id, actor_label="someone@example.org",
                     at=utcnow() - timedelta(days=10))
    db.session.add(old)
    db.session.commit()
    auth.login("owner@example.org")
    base = f"/accounts/{account.id}/audit"
    page = client.get(f"{base}?family=role").get_data(as_text=True)
    assert "someone@example.org" in page and "<code>account.create</code>" not in page
    page = client.get(f"{base}?q=acme").get_data(as_text=True)
    assert "<code>account.create</code>" in page and "someone@example.org" not in page
    page = client.get(f"{base}?actor=owner@").get_data(as_text=True)
    assert "someone@example.org" not in page and "account.create" in page
    since = (utcnow() - timedelta(days=2)).date().isoformat()
    page = client.get(f"{base}?since={since}").get_data(as_text=True)
    assert "someone@example.org" not in page
    response = client.get(f"{base}?since=yesterday")
    assert "is not a date" in response.get_data(as_text=True)
    fragment = client.get(f"{base}?family=role", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="events">')


def test_audit_log__other_accounts_events_never_show(client, auth, make):
    mine = make.account(make.user("owner@example.org"), "Mine")
    make.account(make.user("other@example.org"), "Theirs")
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{mine.id}/audit").get_data(as_text=True)
    assert "other@example.org" not in page and "Theirs" not in page


def test_audit_entry__keeps_the_actor_label_when_the_profile_is_gone(make):
    from portal.audit.services import record

    user = make.user("gone@example.org")
    event = record("test.action", actor=user)
    db.session.commit()
    db.session.delete(user)
    db.session.commit()
    db.session.refresh(event)
    assert event.actor_id is None and event.actor_label == "gone@example.org"
