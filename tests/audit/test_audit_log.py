from datetime import timedelta

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.i18n import label
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


def test_audit_log__a_search_ignores_case_and_takes_wildcards_literally(client, auth, make):
    """ILIKE on PostgreSQL (trigram indexes serve it), lower() LIKE elsewhere: the same answers."""
    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    for label in ("Zoé.Durand@Example.org", "50%_off@example.org", "500ff@example.org", "back\\slash@example.org"):
        db.session.add(AuditEvent(action="member.add", account_id=account.id, actor_label=label, target_label=label,
                                  target_type="user", target_id="1"))
    db.session.commit()
    auth.login("owner@example.org")
    base = f"/accounts/{account.id}/audit"

    def found(**query) -> set[str]:
        page = client.get(base, query_string=query).get_data(as_text=True)
        return {label for label in ("durand", "50%_off", "500ff", "slash") if label in page.lower()}

    assert found(q="DURAND@example") == {"durand"} and found(actor="zoé.durand") == {"durand"}
    assert found(q="50%_") == {"50%_off"} and found(actor="0_o") == set()
    assert found(q="k\\s") == {"slash"} and found(q="zzzz") == set()


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


def test_audit_entries__carry_their_family_however_they_are_written(client, auth, make):
    """The family filter reads a column filled from the action: for the ORM's inserts and for bulk
    inserts (an import writes its entries that way) alike."""
    from sqlalchemy import insert

    from portal.audit.services import record

    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    record("role.delete", account=account, actor=owner)
    db.session.execute(insert(AuditEvent.__table__), [
        {"action": "user.create_corporate", "account_id": account.id, "target_label": f"bulk{n}@example.org"}
        for n in range(3)] + [{"action": "nodot", "account_id": account.id, "target_label": ""}])
    db.session.commit()
    families = dict(db.session.execute(db.select(AuditEvent.action, AuditEvent.family)).all())
    assert families["role.delete"] == "role" and families["user.create_corporate"] == "user"
    assert families["nodot"] == "nodot" and families["account.create"] == "account"
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{account.id}/audit?family=user").get_data(as_text=True)
    assert all(f"bulk{n}@example.org" in page for n in range(3))
    assert "<code>role.delete</code>" not in page and "<code>account.create</code>" not in page
    page = client.get(f"/accounts/{account.id}/audit?family=role").get_data(as_text=True)
    assert "<code>role.delete</code>" in page and "bulk0@example.org" not in page


def test_security_page__shows_the_persons_own_security_events_only(client, auth, make):
    from portal.audit.services import record

    me, other = make.user("me@example.org"), make.user("other@example.org")
    account = make.account(me, "Acme")
    record("security.reset_by_admin", account=account, target=me, actor=me)
    record("security.reset_by_operator", account=account, target=other, actor=me)
    record("member.add", account=account, target=me, actor=me)
    db.session.commit()
    auth.login("me@example.org")
    events = client.get("/profile/security").get_data(as_text=True).split('id="events"', 1)[1]
    mine = label("security.reset_by_admin", "audit.action")
    theirs = label("security.reset_by_operator", "audit.action")
    assert mine in events and theirs not in events and label("member.add", "audit.action") not in events


def test_audit_log__details_read_in_the_readers_language_names_reasons_and_yes_or_no(client, auth, make, run_jobs):
    """The Details column showed the code's English keys, and a domain's new status reason as the
    worker wrote it; names and stored reasons are now the reader's, as is the API's reason."""
    from portal.domains.services import add_domain, disable
    from tests.api.conftest import WRITE_SCOPES, bearer, tokens

    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    domain = add_domain(owner, account, "example.org", "local")
    disable(owner, domain)
    db.session.add(AuditEvent(action="user.create_corporate", account_id=account.id, actor_label=owner.email,
                              details={"personal_mailbox": True, "which": ["a", "b"], "empty": ""}))
    _, raw = tokens.create(owner, account, name="robot", scopes=set(WRITE_SCOPES), expires_at=None)
    owner.locale = "fr"
    db.session.commit()
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{account.id}/audit").get_data(as_text=True)
    assert "motif\u00a0: Désactivé par un administrateur" in page
    assert "avant\u00a0: En attente" in page and "après\u00a0: Désactivé" in page  # statuses read as on the pages
    assert "boîte aux lettres personnelle\u00a0: oui" in page and "lesquels\u00a0: a, b" in page
    assert "\x1f" not in page and "reason:" not in page and "personal_mailbox" not in page and "empty" not in page
    answer = client.get(f"/api/v1/accounts/{account.id}/audit", headers=bearer(raw))
    reasons = [item["details"]["reason"] for item in answer.get_json()["items"] if item["action"] == "domain.status"]
    assert reasons and reasons[0].startswith("Désactivé par un administrateur")
    assert all("\x1f" not in str(item["details"]) for item in answer.get_json()["items"])


def test_audit_log__detail_values_that_are_codes_or_moments_read_in_the_readers_language(client, auth, make):
    """A French reader saw 'role : administrator', 'type : shared' and '2026-12-14T09:30:00': the
    codes the log keeps are shown by their labels, a stored moment in the reader's zone and words;
    a value without a label (a custom role's name) is shown as stored."""
    from portal.roles.services import system_role

    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    administrator = system_role("administrator").name  # stored in English, as the log keeps it
    db.session.add_all([
        AuditEvent(action="access.grant_role", account_id=account.id, actor_label=owner.email,
                   details={"role": administrator}),
        AuditEvent(action="access.grant_role", account_id=account.id, actor_label=owner.email,
                   details={"role": "Helpdesk crew"}),
        AuditEvent(action="mailbox.create", account_id=account.id, actor_label=owner.email,
                   details={"kind": "shared", "owner": None}),
        AuditEvent(action="access.set_permissions", account_id=account.id, actor_label=owner.email,
                   details={"added": ["mailboxes.manage"], "removed": []}),
        AuditEvent(action="token.create", account_id=account.id, actor_label=owner.email,
                   details={"expires": "2026-12-14T09:30:00", "scopes": ["users:read"]}),
        AuditEvent(action="bulk.start", account_id=account.id, actor_label=owner.email,
                   details={"selection": "rows ticked", "rows": 3}),
        AuditEvent(action="user.remove_corporate", account_id=account.id, actor_label=owner.email,
                   details={"mailboxes": "disable"}),
    ])
    owner.locale, owner.timezone = "fr", "Europe/Paris"
    db.session.commit()
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{account.id}/audit").get_data(as_text=True)
    assert administrator == "Account Administrator" and f"rôle\u00a0: Administrateur du compte" in page
    assert "rôle\u00a0: Helpdesk crew" in page
    assert "type\u00a0: Partagée" in page and "Shared" not in page
    assert "2026-12-14T09:30" not in page and "10:30" in page  # 09:30 UTC is 10:30 in Paris in December
    assert "sélection\u00a0: les lignes cochées" in page and "rows ticked" not in page
    assert "mailboxes.manage" not in page


def test_audit_log__free_text_that_looks_like_a_moment_stays_text_and_never_fails_the_page(client, auth, make):
    """A review: a role or passkey named '0001-01-01T00:00+01:00' was read as a moment and moved to
    the reader's zone, which overflowed: the log answered 500 for everyone. Only details the code
    stores as moments are read so, and one out of range shows as stored."""
    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    edge = "0001-01-01T00:00+01:00"
    db.session.add_all([
        AuditEvent(action="access.grant_role", account_id=account.id, actor_label=owner.email, details={"role": edge}),
        AuditEvent(action="security.passkey_added", account_id=account.id, actor_label=owner.email,
                   details={"name": "2026-12-14T09:30:00"}),
        AuditEvent(action="token.create", account_id=account.id, actor_label=owner.email, details={"expires": edge}),
    ])
    owner.timezone = "Pacific/Kiritimati"
    db.session.commit()
    auth.login("owner@example.org")
    response = client.get(f"/accounts/{account.id}/audit")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert page.count(edge) == 1  # the role's name; the moment shows as one, in its own offset
    assert "expires: Jan 1, 1, 12:00 AM UTC+01:00" in page or "expires: Jan 1, 1" in page
    assert "name: 2026-12-14T09:30:00" in page  # a name is text, whatever it looks like


LABELS = ("Zoé.Durand@Example.org", "ZOÉ.MARTIN@example.org", "50%_off@example.org", "500ff@example.org",
          "back\\slash@example.org", 'report "Q3".xlsx', "İstanbul office", "ab", "plain@example.org")
SEARCHES = ("durand", "DURAND@EX", "zoé", "ZOÉ", '"q3"', 'rt "', "50%_", "0_o", "k\\s", "İst", "istanbul", "ab",
            "zzzz", "example", "é.d")


def test_audit_search__the_sqlite_trigram_index_finds_what_reading_the_log_finds(make, monkeypatch):
    """SQLite finds a search's entries through its trigram index (migration 0040) when few match;
    the answers are those of reading the log in order (case, accents, quotes, % and _ as
    themselves, short searches), the index follows entries written, renamed and removed, and a
    search many entries match reads the log in order."""
    from portal.audit import services

    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    other = make.account(make.user("other@example.org"), "Other")
    for label in LABELS:
        for account_id in (account.id, other.id):
            db.session.add(AuditEvent(action="member.add", account_id=account_id, actor_label=label,
                                      target_label=label, target_type="user", target_id="1"))
    db.session.commit()
    sqlite = db.engine.dialect.name == "sqlite"

    def found(**search) -> list[int]:
        return list(db.session.execute(services.query_events(account.id, **search)).scalars().all())

    statements = []
    db.event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    indexed = {key: {search: found(**{key: search}) for search in SEARCHES} for key in ("actor", "target")}
    used_index = any("MATCH" in statement for statement in statements)
    monkeypatch.setattr(services, "_indexed_matches", lambda column, text: None)
    read = {key: {search: found(**{key: search}) for search in SEARCHES} for key in ("actor", "target")}
    assert indexed == read and used_index == sqlite
    assert [event.target_label for event in indexed["target"]["durand"]] == ["Zoé.Durand@Example.org"]
    assert {event.account_id for events in indexed["target"].values() for event in events} == {account.id}
    assert len(indexed["target"]["example"]) == 6 and indexed["target"]["zzzz"] == []
    monkeypatch.undo()

    event = db.session.execute(db.select(AuditEvent).where(AuditEvent.account_id == account.id,
                                                           AuditEvent.target_label == "plain@example.org")).scalar_one()
    event.target_label = "renamed@example.org"
    db.session.delete(indexed["target"]["durand"][0])
    db.session.commit()
    assert [e.target_label for e in found(target="renamed")] == ["renamed@example.org"]
    assert found(target="plain@") == [] and found(target="durand") == []
    if sqlite:
        # The external-content index agrees with the log, row for row (FTS5 says so or raises).
        db.session.execute(db.text("INSERT INTO audit_events_search(audit_events_search) VALUES ('integrity-check')"))
        monkeypatch.setattr(services, "INDEXED_MOST", 1)
        statements.clear()
        assert len(found(target="example")) == 5
        assert not any("FROM audit_events_search" in statement and "count" not in statement
                       for statement in statements)
