from datetime import timedelta

from portal.extensions import db
from portal.jobs.models import WorkerBeat
from portal.timeutil import utcnow


def test_security_headers__on_every_page(client, make):
    make.user("first@example.org", superadmin=True)
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_pages__load_htmx_2_from_this_site_only(client, make):
    make.user("first@example.org", superadmin=True)
    page = client.get("/login").get_data(as_text=True)
    assert '/static/vendor/htmx-2.0.11.min.js' in page
    assert "https://" not in page.split("<body", 1)[0]
    assert 'hx-headers=\'{"X-CSRFToken": "' in page
    script = client.get("/static/vendor/htmx-2.0.11.min.js")
    assert script.status_code == 200 and b'version:"2.0.11"' in script.data


def test_healthz__reports_database_and_worker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["database"] == "ok" and body["worker"].startswith("no worker")
    db.session.add(WorkerBeat(name="w1", seen_at=utcnow()))
    db.session.add(WorkerBeat(name="stale", seen_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    body = client.get("/healthz").get_json()
    assert body["worker"] == "ok" and body["workers"] == 1 and body["status"] == "ok"


def test_errors__unknown_page_is_a_friendly_404(client, make):
    make.user("first@example.org", superadmin=True)
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "There is nothing here" in response.get_data(as_text=True)


def test_pages__the_page_htmx_asks_for_on_back_is_the_whole_page(client, auth, owner, account):
    """A list swapped by htmx answers its fragment; the same address asked for again by the back
    button (htmx's history restore: it keeps no copy) answers the whole page, which replaces the
    body: the fragment alone left a page without menus or announcer (a walkthrough)."""
    auth.login(owner.email)
    url = f"/accounts/{account.id}/members?page=1"
    fragment = client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    restored = client.get(url, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
                          ).get_data(as_text=True)
    assert 'id="member-list"' in fragment and "<html" not in fragment and 'id="announcer"' not in fragment
    assert restored.startswith("<!doctype html>") and 'id="announcer"' in restored and 'class="sidebar"' in restored


def test_get_on_an_address_that_only_takes_a_form__leads_to_the_page_above_it(client, auth, owner, account):
    """A walkthrough: a form refused through the boost left its POST address in the address bar
    (/domains/new); reloading, or changing the language, answered 405 and lost the page. The API
    still answers 405 in its own format."""
    auth.login("owner@example.org")
    for asked, above in ((f"/accounts/{account.id}/domains/new", f"/accounts/{account.id}/domains"),
                         (f"/accounts/{account.id}/members/bulk", f"/accounts/{account.id}/members"),
                         (f"/accounts/{account.id}/domains/99/check", f"/accounts/{account.id}/domains/99")):
        answer = client.get(asked)
        assert answer.status_code == 302 and answer.headers["Location"] == above, asked
    assert client.get(f"/api/v1/accounts/{account.id}/domains/1/check").status_code in (401, 405)


def test_get_on_a_form_address__with_hostile_characters_in_its_path_is_never_a_500(client):
    """A review: a line break in an invitation's token (the one free-text segment) made the
    redirect's Location header raise (500); '?' and '#' came back unencoded."""
    for path, location in (("/invitations/%0aX/decline", None), ("/invitations/%0d%0aSet-Cookie:x=1/decline", None),
                           ("/invitations/a%3Fb%23c/decline", "/invitations/a%3Fb%23c"),
                           ("/invitations/caf%C3%A9/decline", "/invitations/caf%C3%A9")):
        answer = client.get(path)
        assert answer.status_code == (405 if location is None else 302), path
        assert not [value for value in answer.headers.values() if "\n" in value or "\r" in value]
        assert "x=1" not in answer.headers.get("Set-Cookie", "")
        if location is not None:
            assert answer.headers["Location"] == location
