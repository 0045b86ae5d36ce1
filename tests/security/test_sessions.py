"""Sessions live on the server and really end (finding 5): a cookie copied before log-out, a
password change, a removal or "sign out everywhere" opens nothing afterwards."""

from __future__ import annotations

from portal.auth.models import UserSession
from portal.extensions import db
from tests.conftest import PASSWORD


def _copy_cookie(client) -> str:
    return client.get_cookie("portal_session").value


def _with_cookie(app, value):
    other = app.test_client()
    other.set_cookie("portal_session", value)
    return other


def test_logout__a_cookie_copied_before_opens_nothing(app, client, make, auth):
    make.user("ada@example.org")
    auth.login("ada@example.org")
    stolen = _copy_cookie(client)
    assert _with_cookie(app, stolen).get("/profile").status_code == 200
    auth.logout()
    response = _with_cookie(app, stolen).get("/profile")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    row = db.session.execute(db.select(UserSession)).scalar_one()
    assert row.ended_at is not None and row.end_reason == "logged out"


def test_profile__lists_sessions_and_signs_one_out(app, client, make, auth):
    make.user("ada@example.org")
    laptop = app.test_client()
    laptop.post("/login", data={"email": "ada@example.org", "password": PASSWORD},
                headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"})
    auth.login("ada@example.org")
    page = client.get("/profile").get_data(as_text=True)
    assert "Firefox on Linux" in page and "This browser" in page
    laptop_session = db.session.execute(db.select(UserSession).order_by(UserSession.id)).scalars().first()
    assert client.post(f"/profile/sessions/{laptop_session.id}/end").status_code == 302
    assert laptop.get("/profile").status_code == 302, "the laptop is signed out"
    assert client.get("/profile").status_code == 200, "this browser stays signed in"


def test_profile__cannot_end_someone_elses_session(app, client, make, auth):
    make.user("ada@example.org")
    make.user("bob@example.org")
    bob = app.test_client()
    bob.post("/login", data={"email": "bob@example.org", "password": PASSWORD})
    bobs = db.session.execute(db.select(UserSession)).scalar_one()
    auth.login("ada@example.org")
    client.post(f"/profile/sessions/{bobs.id}/end")
    assert bob.get("/profile").status_code == 200


def test_sign_out_everywhere_else__keeps_only_this_browser(app, client, make, auth):
    make.user("ada@example.org")
    others = [app.test_client() for _ in range(3)]
    for other in others:
        other.post("/login", data={"email": "ada@example.org", "password": PASSWORD})
    auth.login("ada@example.org")
    assert client.post("/profile/sessions/end-others").status_code == 302
    assert [other.get("/profile").status_code for other in others] == [302, 302, 302]
    assert client.get("/profile").status_code == 200


def test_password_change__ends_every_other_session(app, client, make, auth):
    make.user("ada@example.org")
    other = app.test_client()
    other.post("/login", data={"email": "ada@example.org", "password": PASSWORD})
    auth.login("ada@example.org")
    new = "a completely new passphrase"
    response = client.post("/profile/password", data={"pw-current": PASSWORD, "pw-password": new,
                                                      "pw-confirm": new})
    assert response.status_code == 302
    assert other.get("/profile").status_code == 302
    assert client.get("/profile").status_code == 200


def test_idle_session__ends(app, client, make, auth):
    from datetime import timedelta

    make.user("ada@example.org")
    auth.login("ada@example.org")
    row = db.session.execute(db.select(UserSession)).scalar_one()
    row.last_seen_at -= timedelta(hours=13)
    db.session.commit()
    assert client.get("/profile").status_code == 302
    db.session.expire_all()
    assert db.session.get(UserSession, row.id).end_reason == "expired"


def test_removed_corporate_user__is_signed_out(app, client, make, auth, owner, account):
    from portal.domains.models import ENABLED
    from portal.domains.services import add_domain
    from portal.users import corporate

    domain = add_domain(owner, account, "corp.example.org", "local")
    domain.status, domain.verified_at = ENABLED, domain.created_at
    worker = make.user("worker@corp.example.org")
    corporate.make_corporate(worker, domain)
    db.session.commit()
    worker_client = app.test_client()
    worker_client.post("/login", data={"email": "worker@corp.example.org", "password": PASSWORD})
    assert worker_client.get("/profile").status_code == 200
    from portal.accounts.models import Membership

    membership = db.session.execute(db.select(Membership).where(Membership.user_id == worker.id)).scalar_one()
    auth.login("owner@example.org")
    response = client.post(f"/accounts/{account.id}/members/{membership.id}/remove-user", data={"mailboxes": "keep"})
    assert response.status_code == 302
    assert worker_client.get("/profile").status_code == 302


def test_session_cookie__is_signed_at_log_in_for_the_whole_session_not_again_on_each_page(app, client, make, auth):
    """The idle and absolute limits are the server's (the session's row): the cookie is set once,
    to outlive the absolute limit, and a page that changes nothing in it sends no new one."""
    from datetime import datetime, timedelta, timezone
    from email.utils import parsedate_to_datetime

    make.user("ada@example.org")
    client.get("/login")
    answer = client.post("/login", data={"email": "ada@example.org", "password": PASSWORD})
    cookie = next(value for value in answer.headers.getlist("Set-Cookie") if value.startswith("portal_session="))
    expires = parsedate_to_datetime(next(part.split("=", 1)[1] for part in cookie.split("; ")
                                         if part.lower().startswith("expires=")))
    hours = app.config["PORTAL"]["SESSION_MAX_HOURS"]
    assert abs(expires - (datetime.now(timezone.utc) + timedelta(hours=hours))) < timedelta(minutes=5)
    # The first page after log-in puts a CSRF token in the new session (log-in clears the old one).
    first = client.get("/profile")
    assert first.status_code == 200 and [value for value in first.headers.getlist("Set-Cookie")
                                         if value.startswith("portal_session=")]
    page = client.get("/profile")
    assert page.status_code == 200 and not [value for value in page.headers.getlist("Set-Cookie")
                                            if value.startswith("portal_session=")]


def test_session__ends_at_the_absolute_limit_however_active(app, client, make, auth):
    from datetime import timedelta

    make.user("ada@example.org")
    auth.login("ada@example.org")
    row = db.session.execute(db.select(UserSession)).scalar_one()
    row.created_at -= timedelta(hours=app.config["PORTAL"]["SESSION_MAX_HOURS"], minutes=1)
    db.session.commit()
    assert client.get("/profile").status_code == 302
    db.session.expire_all()
    assert db.session.get(UserSession, row.id).end_reason == "expired"
