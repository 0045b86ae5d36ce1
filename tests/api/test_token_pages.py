"""Settings → API tokens: made by those who may, with a fresh proof of who they are; shown once,
kept as a hash; refused when stronger than their maker; revoked for good; another account's
tokens are out of reach."""

from __future__ import annotations

from datetime import timedelta

from portal.auth.models import UserSession
from portal.extensions import db
from portal.timeutil import utcnow
from portal.tokens import services as tokens
from portal.tokens.models import ApiToken
from tests.api.conftest import bearer


def _page(world) -> str:
    return f"/accounts/{world['account'].id}/settings/tokens"


def _make(client, world, **fields):
    data = {"name": "nightly export", "scope": ["domains:read", "mailboxes:read"], "expires": "", "networks": ""}
    data.update(fields)
    return client.post(_page(world), data=data)


def test_token__shown_once_and_kept_only_as_a_hash(client, world, auth):
    auth.login("owner@example.org")
    response = _make(client, world)
    assert response.status_code == 201
    html = response.get_data(as_text=True)
    raw = html.split('<code class="value">')[1].split("</code>")[0]
    assert raw.startswith("mpt_") and len(raw) > 40
    row = db.session.execute(db.select(ApiToken).where(ApiToken.name == "nightly export")).scalar_one()
    assert row.token_hash == tokens.digest(raw) and raw not in (row.prefix, row.token_hash)
    assert raw not in client.get(_page(world)).get_data(as_text=True)
    # It works, and the page then says when and from where it was last used.
    assert client.get(f"/api/v1/accounts/{world['account'].id}/domains", headers=bearer(raw)).status_code == 200
    listing = client.get(_page(world)).get_data(as_text=True)
    assert "127.0.0.1" in listing and "never" not in listing.split("nightly export")[1].split("</tr>")[0]


def test_token__refused_when_stronger_than_its_maker_or_badly_filled(client, world, auth, make):
    helper = make.member(world["account"], make.user("helper@example.org"),
                         permissions=("api_tokens.manage", "domains.view"))
    auth.login(helper.user.email)
    refused = _make(client, world, scope=["domains:write"])
    assert refused.status_code == 422 and "cannot hold more than you do" in refused.get_data(as_text=True)
    for fields, words in (({"name": "  "}, "Give the token a name"),
                          ({"scope": []}, "Choose at least one scope"),
                          ({"scope": ["galaxy:write"]}, "Unknown scopes"),
                          ({"expires": "yesterday"}, "as a date"),
                          ({"expires": "2001-01-01"}, "in the future"),
                          ({"networks": "10.0.0.0/33"}, "is not an address or a network"),
                          ({"scope": ["domains:read"], "name": "x" * 81}, "At most 80")):
        response = _make(client, world, **{"scope": ["domains:read"], **fields})
        assert response.status_code == 422 and words in response.get_data(as_text=True), fields
    assert db.session.execute(db.select(db.func.count()).select_from(ApiToken)).scalar_one() == 0
    kept = _make(client, world, scope=["domains:read"], name="helper's", networks="192.0.2.7, 2001:db8::/32")
    assert kept.status_code == 201
    row = db.session.execute(db.select(ApiToken)).scalar_one()
    assert row.allowed_networks == ["192.0.2.7/32", "2001:db8::/32"] and row.scopes == ["domains:read"]


def test_token__needs_a_fresh_proof_of_who_one_is(client, world, auth):
    auth.login("owner@example.org")
    db.session.execute(db.update(UserSession).values(confirmed_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    page = client.get(_page(world)).get_data(as_text=True)
    assert "Confirm it’s you" in page and 'name="scope"' not in page
    response = _make(client, world)
    assert response.status_code in (302, 303) and "/confirm" in response.headers["Location"]
    assert db.session.execute(db.select(db.func.count()).select_from(ApiToken)).scalar_one() == 0


def test_token__only_for_those_who_manage_tokens_and_only_this_accounts(client, world, auth, make, other_token):
    viewer = make.member(world["account"], make.user("viewer@example.org"), permissions=("domains.view",))
    auth.login(viewer.user.email)
    assert client.get(_page(world)).status_code == 403
    assert _make(client, world).status_code == 403
    auth.logout()
    auth.login("owner@example.org")
    theirs = db.session.execute(db.select(ApiToken).where(ApiToken.name == "theirs")).scalar_one()
    url = f"{_page(world)}/{theirs.id}/revoke"
    assert client.get(url).status_code == 404 and client.post(url).status_code == 404
    assert theirs.revoked_at is None and "theirs" not in client.get(_page(world)).get_data(as_text=True)


def test_token__revoked_for_good(client, world, auth, token):
    auth.login("owner@example.org")
    row = db.session.execute(db.select(ApiToken).where(ApiToken.name == "automation")).scalar_one()
    url = f"/api/v1/accounts/{world['account'].id}"
    assert client.get(url, headers=bearer(token)).status_code == 200
    assert "Revoke" in client.get(f"{_page(world)}/{row.id}/revoke").get_data(as_text=True)
    assert client.post(f"{_page(world)}/{row.id}/revoke").status_code == 302
    assert client.get(url, headers=bearer(token)).status_code == 401
    page = client.get(_page(world)).get_data(as_text=True)
    # Said where one lands (a walkthrough: a revoked token moved to the end of the list, unsaid).
    assert "The token “automation” is revoked: it no longer works." in page
    # The form comes before the list (a walkthrough: below 50 rows its errors were out of sight).
    assert page.index('id="new-token-form"') < page.index('id="token-list"')


def test_token__listed_as_not_working_with_the_reason_once_its_maker_cannot_use_it(client, world, auth, make):
    """Found by an attacker-side review: the list said "Active" for a token that no longer worked because
    its maker had left (an admin reviewing tokens could not tell which ones scripts still use)."""
    from portal.accounts.services import remove_member

    account = world["account"]
    leaver = make.member(account, make.user("leaver@example.org"), permissions=("api_tokens.manage", "domains.view"))
    weak = make.member(account, make.user("weak@example.org"), permissions=("api_tokens.manage", "domains.view"))
    tokens.create(leaver.user, account, name="leaver's", scopes={"domains:read"}, expires_at=None)
    tokens.create(weak.user, account, name="weak's", scopes={"domains:read"}, expires_at=None)
    tokens.create(world["owner"], account, name="owner's", scopes={"domains:read"}, expires_at=None)
    db.session.commit()
    remove_member(world["owner"], account, leaver)
    from portal.roles.models import Grant

    db.session.execute(db.delete(Grant).where(Grant.membership_id == weak.id, Grant.permission == "domains.view"))
    db.session.commit()
    auth.login("owner@example.org")
    rows = {row.split("</strong>")[0].rsplit(">", 1)[-1]: row
            for row in client.get(_page(world)).get_data(as_text=True).split("<tr>")[2:]}
    assert "Not working" in rows["leaver&#39;s"] and "no longer a member" in rows["leaver&#39;s"]
    assert "Not working" in rows["weak&#39;s"] and "no longer holds what its scopes need" in rows["weak&#39;s"]
    assert "Active" in rows["owner&#39;s"] and "Not working" not in rows["owner&#39;s"]
    assert "Revoke…" in rows["leaver&#39;s"]


def test_tokens_page__an_expiry_at_the_edge_of_the_calendar_shows_in_utc_not_a_500(owner, account, client, auth):
    """A review: a token expiring 9999-12-31 (the form allows it) could not be moved to a zone east
    of UTC: making it and the tokens page answered 500 for whoever reads there."""
    from portal.extensions import db

    owner.timezone = "Pacific/Kiritimati"
    db.session.commit()
    auth.login(owner.email)
    base = f"/accounts/{account.id}/settings/tokens"
    made = client.post(base, data={"name": "far", "scope": ["mailboxes:read"], "expires": "9999-12-31"})
    assert made.status_code == 201 and "9999" in made.get_data(as_text=True)  # the new token, shown once
    page = client.get(base)
    assert page.status_code == 200 and "9999" in page.get_data(as_text=True)


def test_token__revoked_only_by_its_maker_or_someone_who_holds_all_their_rights(client, world, auth, make):
    """A review: someone who may only manage tokens revoked the Owner's identity-provider token (and
    with it every removal the provider would have made), unseen."""
    from portal.accounts.services import remove_member

    account = world["account"]
    clerk = make.member(account, make.user("clerk@example.org"), permissions=("api_tokens.manage", "domains.view"))
    admin = make.member(account, make.user("admin@example.org"), roles=("administrator",))
    leaver = make.member(account, make.user("leaver@example.org"), permissions=("api_tokens.manage", "domains.view"))
    owners, _ = tokens.create(world["owner"], account, name="Entra ID", scopes={"domains:read"}, expires_at=None)
    admins, _ = tokens.create(admin.user, account, name="admin's", scopes={"domains:read"}, expires_at=None)
    clerks, _ = tokens.create(clerk.user, account, name="clerk's", scopes={"domains:read"}, expires_at=None)
    leavers, _ = tokens.create(leaver.user, account, name="leaver's", scopes={"domains:read"}, expires_at=None)
    db.session.commit()
    remove_member(world["owner"], account, leaver)
    db.session.commit()

    auth.login("clerk@example.org")
    rows = {row.split("</strong>")[0].rsplit(">", 1)[-1]: row
            for row in client.get(_page(world)).get_data(as_text=True).split("<tr>")[2:]}
    assert "Revoke…" not in rows["Entra ID"] and "Revoke…" not in rows["admin&#39;s"]
    assert "Revoke…" in rows["clerk&#39;s"] and "Revoke…" in rows["leaver&#39;s"]
    page = client.get(f"{_page(world)}/{owners.id}/revoke")
    assert page.status_code == 200 and "Only its maker" in page.get_data(as_text=True)
    assert 'class="button danger"' not in page.get_data(as_text=True)
    assert client.post(f"{_page(world)}/{owners.id}/revoke").status_code == 403
    assert client.post(f"{_page(world)}/{admins.id}/revoke").status_code == 403
    for mine in (clerks, leavers):
        assert client.post(f"{_page(world)}/{mine.id}/revoke").status_code == 302
    db.session.expire_all()
    assert db.session.get(ApiToken, owners.id).revoked_at is None
    assert db.session.get(ApiToken, admins.id).revoked_at is None
    assert db.session.get(ApiToken, clerks.id).revoked_at is not None
    assert db.session.get(ApiToken, leavers.id).revoked_at is not None
    auth.logout()

    # An Administrator holds every permission but is no owner: the Owner's token is not theirs to end.
    auth.login("admin@example.org")
    assert client.post(f"{_page(world)}/{owners.id}/revoke").status_code == 403
    auth.logout()
    auth.login("owner@example.org")
    assert client.post(f"{_page(world)}/{admins.id}/revoke").status_code == 302
    db.session.expire_all()
    assert db.session.get(ApiToken, admins.id).revoked_at is not None



def test_token_form__offers_only_the_scopes_its_maker_may_give(client, world, auth, make):
    """A walkthrough: a member who may manage tokens was offered every scope, and refused on sending
    those whose permissions they lack. They are greyed now (reading the account needs nothing)."""
    import re

    account = world["account"]
    make.member(account, make.user("reader@example.org"), permissions=("api_tokens.manage", "domains.view"))
    make.member(account, make.user("bare@example.org"), permissions=("api_tokens.manage",))
    auth.login("reader@example.org")
    page = client.get(_page(world)).get_data(as_text=True)
    boxes = {match.group(1): "disabled" in match.group(0)
             for match in re.finditer(r'<input type="checkbox" name="scope" value="([^"]+)"[^>]*>', page)}
    assert boxes["domains:read"] is False and boxes["domains:write"] is True and boxes["mailboxes:read"] is True
    assert _make(client, world, scope=["domains:read"]).status_code == 201
    auth.logout()
    auth.login("bare@example.org")
    page = client.get(_page(world)).get_data(as_text=True)
    offered = [match.group(1) for match in re.finditer(
        r'<input type="checkbox" name="scope" value="([^"]+)"(?![^>]*disabled)[^>]*>', page)]
    assert offered == ["account:read"]
    auth.logout()
    auth.login("owner@example.org")
    page = client.get(_page(world)).get_data(as_text=True)
    assert not any("disabled" in box for box in re.findall(r'<input type="checkbox" name="scope"[^>]*>', page))


def test_tokens_page__pages_every_token_and_finds_one_by_name(client, world, auth):
    """A scale review: the newest 200 tokens were shown, no more and nothing said, so an older live
    token could be neither seen nor revoked. Paged with their count, revoked ones last, searchable."""
    from sqlalchemy import insert

    account, maker_id, now = world["account"], world["owner"].id, utcnow()
    db.session.execute(insert(ApiToken.__table__), [
        {"account_id": account.id, "created_by_id": maker_id, "name": f"job {n:03d}", "token_hash": f"{n:064d}",
         "prefix": f"mpt_{n:06d}", "scopes": ["audit:read"], "allowed_networks": [], "created_at": now,
         "revoked_at": now if n == 119 else None, "window_count": 0} for n in range(120)])
    db.session.commit()
    auth.login("owner@example.org")
    total = 120
    page = client.get(_page(world)).get_data(as_text=True)
    assert f"1–50 of {total} tokens" in page and "job 118" in page and "job 000" not in page
    last = client.get(f"{_page(world)}?page={(total + 49) // 50}", headers={"HX-Request": "true"})
    text = last.get_data(as_text=True)
    assert text.lstrip().startswith('<div id="token-list">') and "<h1>" not in text
    assert text.index("job 000") < text.index("job 119")  # the revoked one last
    found = client.get(f"{_page(world)}?q=JOB+007").get_data(as_text=True)
    assert "job 007" in found and "job 008" not in found and "1–1 of 1 token" in found
    assert "No token matches this search." in client.get(f"{_page(world)}?q=%25_nothing").get_data(as_text=True)
    # In any language's capitals, by name or by prefix (SQLite's lower() folds ASCII alone: "Équipe"
    # was not found by "équipe"); a search never spans the name and the prefix.
    db.session.execute(insert(ApiToken.__table__), [
        {"account_id": account.id, "created_by_id": maker_id, "name": "Équipe ÖLÇÜ", "token_hash": "f" * 64,
         "prefix": "mpt_Zz9", "scopes": ["audit:read"], "allowed_networks": [], "created_at": now, "window_count": 0}])
    db.session.commit()
    for search in ("équipe", "ÉQUIPE+ölçü", "MPT_zZ9"):
        found = client.get(f"{_page(world)}?q={search}").get_data(as_text=True)
        assert "Équipe ÖLÇÜ" in found and "1–1 of 1 token" in found, search
    assert "No token matches this search." in client.get(f"{_page(world)}?q=l%C3%A7%C3%BC%0Ampt").get_data(as_text=True)
    assert ApiToken(name="Équipe", prefix="mpt_AB").search_text == ApiToken(prefix="mpt_AB", name="Équipe").search_text \
        == "équipe\nmpt_ab"  # as the tokens page makes them, whatever the order
