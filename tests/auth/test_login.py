from datetime import timedelta

from portal.audit.models import AuditEvent
from portal.extensions import db
from tests.conftest import PASSWORD, first_link


def test_login__right_password_starts_a_session_and_is_audited(client, make):
    user = make.user("ada@example.org")
    response = client.post("/login", data={"email": "ADA@example.org ", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/profile").status_code == 200
    cookie = next(c for c in client._cookies.values() if c.key == "portal_session")
    assert cookie.http_only
    assert cookie.same_site == "Lax"
    event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "user.login")).scalar_one()
    assert event.actor_id == user.id


def test_login__an_address_on_a_domain_typed_in_unicode_is_found_as_it_was_registered(client, make):
    """Registration keeps a domain in its ASCII form; log-in lowercased the typed address only."""
    make.user("ada@xn--mnchen-3ya.example")
    response = client.post("/login", data={"email": "Ada@MÜNCHEN.example", "password": PASSWORD})
    assert response.status_code == 302


def test_login__wrong_password_is_refused_with_the_address_kept(client, make):
    make.user("ada@example.org")
    response = client.post("/login", data={"email": "ada@example.org", "password": "wrong password!"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "do not match" in page
    assert 'value="ada@example.org"' in page


def test_login__failures_are_limited_per_address(client, make):
    make.user("ada@example.org")
    for _ in range(5):
        client.post("/login", data={"email": "ada@example.org", "password": "wrong password!"})
    response = client.post("/login", data={"email": "ada@example.org", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed log-ins for this address" in response.get_data(as_text=True)


def test_login__failures_are_limited_per_ip(app, client, make):
    app.config["PORTAL"] = {**app.config["PORTAL"], "LOGIN_MAX_FAILURES_PER_IP": 3}
    make.user("ada@example.org")
    for number in range(3):
        client.post("/login", data={"email": f"guess{number}@example.org", "password": "wrong password!"})
    response = client.post("/login", data={"email": "ada@example.org", "password": PASSWORD})
    assert response.status_code == 429
    assert "from your network" in response.get_data(as_text=True)


def test_login__the_network_limit_does_not_turn_away_a_browser_its_owner_logged_in_from(app, make):
    """Behind a TLS proxy every request has the proxy's address: a stranger's wrong log-ins at any
    addresses refused everyone, the owners' known browsers with the right password included."""
    app.config["PORTAL"] = {**app.config["PORTAL"], "LOGIN_MAX_FAILURES_PER_IP": 3}
    make.user("ada@example.org")
    owner = app.test_client()
    assert owner.post("/login", data={"email": "ada@example.org", "password": PASSWORD}).status_code == 302
    assert owner.get_cookie("portal_device") is not None
    owner.post("/logout")
    stranger = app.test_client()
    for number in range(3):
        stranger.post("/login", data={"email": f"nobody{number}@example.net", "password": "wrong password!"})
    assert stranger.post("/login", data={"email": "ada@example.org", "password": PASSWORD}).status_code == 429
    assert owner.post("/login", data={"email": "ada@example.org", "password": PASSWORD}).status_code == 302


def test_login__secure_cookie_under_https(app_settings, make, database_url, smtp_sink, instance_dir):
    from portal import create_app
    from tests.conftest import make_settings

    https_app = create_app(make_settings(database_url, smtp_sink.url, BASE_URL="https://portal.example.org"),
                           environ={"PORTAL_TEST_INSTANCE_PATH": str(instance_dir)})
    make.user("ada@example.org")
    response = https_app.test_client().get("/login", base_url="https://portal.example.org")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("portal_session=") and "Secure" in cookie and "HttpOnly" in cookie


def test_logout__ends_the_session(client, make, auth):
    make.user("ada@example.org")
    auth.login("ada@example.org")
    assert client.post("/logout").status_code == 302
    response = client.get("/profile")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_session__ends_after_the_absolute_limit(client, make, auth):
    make.user("ada@example.org")
    auth.login("ada@example.org")
    from portal.auth.models import UserSession

    row = db.session.execute(db.select(UserSession)).scalar_one()
    row.created_at -= timedelta(hours=73)
    db.session.commit()
    response = client.get("/profile")
    assert response.status_code == 302
    assert client.get("/profile").status_code == 302


def test_login__next_only_goes_to_this_site(client, make):
    make.user("ada@example.org")
    response = client.post("/login?next=https://evil.example/", data={"email": "ada@example.org", "password": PASSWORD})
    assert response.headers["Location"] == "/"
    client.post("/logout")
    response = client.post("/login?next=/profile", data={"email": "ada@example.org", "password": PASSWORD})
    assert response.headers["Location"] == "/profile"


def test_password_reset__link_sets_a_new_password_once(client, make, run_jobs, smtp_sink):
    make.user("ada@example.org")
    response = client.post("/password/forgot", data={"email": "ada@example.org"})
    assert response.status_code == 200
    run_jobs()
    [message] = smtp_sink.wait_for("ada@example.org")
    path = first_link(smtp_sink.text(message), "/password/reset/").removeprefix("http://localhost")
    new = "a brand new passphrase"
    response = client.post(path, data={"password": new, "confirm": new})
    assert response.status_code == 302
    assert client.post(path, data={"password": new, "confirm": new}).status_code == 410
    assert client.post("/login", data={"email": "ada@example.org", "password": new}).status_code == 302


def test_password_reset__unknown_address_gets_the_same_answer_and_no_mail(client, make, run_jobs, smtp_sink):
    make.user("ada@example.org")
    response = client.post("/password/forgot", data={"email": "nobody@example.org"})
    assert response.status_code == 200
    assert "If <strong>nobody@example.org</strong> has a profile" in response.get_data(as_text=True)
    assert run_jobs() == 1, "the look-up is queued whatever the address, so the answer takes as long"
    assert smtp_sink.messages == []


def test_password_reset__tampered_or_truncated_token_is_refused(client, make):
    make.user("ada@example.org")
    assert client.get("/password/reset/not-a-token").status_code == 410
    assert client.get("/password/reset/" + "x" * 500).status_code == 410


def test_password_change__ends_other_sessions(app, make, auth, client):
    make.user("ada@example.org")
    other = app.test_client()
    Auth = type(auth)
    Auth(other).login("ada@example.org")
    auth.login("ada@example.org")
    new = "another good passphrase"
    response = client.post("/profile/password", data={"pw-current": PASSWORD, "pw-password": new, "pw-confirm": new})
    assert response.status_code == 302
    assert client.get("/profile").status_code == 200
    assert other.get("/profile").status_code == 302


def test_password_change__wrong_current_password_is_refused(client, make, auth):
    make.user("ada@example.org")
    auth.login("ada@example.org")
    response = client.post("/profile/password", data={"pw-current": "nope nope nope", "pw-password": "another good passphrase",
                                                      "pw-confirm": "another good passphrase"})
    assert response.status_code == 422
    assert "current password is not right" in response.get_data(as_text=True)


def test_password_change__guesses_at_the_current_password_stop_at_the_limit(client, make, auth):
    """Someone holding a session (a cookie copied, a browser left open) guessed the current password
    as often as they liked, and one right guess took the profile over."""
    from portal.security.models import FactorFailure
    from portal.security.services import MAX_FAILURES

    make.user("ada@example.org")
    auth.login("ada@example.org")
    new = {"pw-password": "another good passphrase", "pw-confirm": "another good passphrase"}
    for number in range(MAX_FAILURES):
        wrong = client.post("/profile/password", data={"pw-current": f"guess number {number}", **new})
        assert wrong.status_code == 422 and "current password is not right" in wrong.get_data(as_text=True)
    assert db.session.execute(db.select(db.func.count()).select_from(FactorFailure)).scalar_one() == MAX_FAILURES
    right = client.post("/profile/password", data={"pw-current": PASSWORD, **new})
    assert right.status_code == 422 and "Too many wrong codes or passwords" in right.get_data(as_text=True)
    assert auth.login("ada@example.org").status_code == 302, "the password did not change"


def test_profile__saves_name_and_time_zone(client, make, auth):
    user = make.user("ada@example.org")
    auth.login("ada@example.org")
    response = client.post("/profile", data={"name": "Ada Lovelace", "timezone": "Europe/Paris"})
    assert response.status_code == 302
    db.session.refresh(user)
    assert (user.name, user.timezone) == ("Ada Lovelace", "Europe/Paris")
    response = client.post("/profile", data={"name": "Ada", "timezone": "Mars/Olympus"})
    assert response.status_code == 422
    assert "Choose a time zone from the list." in response.get_data(as_text=True)


def test_profile__time_zones_are_places_by_region_and_a_legacy_name_chosen_before_stays(client, make, auth):
    """A walkthrough: the time zone list was the database's 599 names in one list (US/Eastern,
    Etc/GMT+5, EST5EDT among them). It lists places by region; a legacy name still saves, and a
    profile holding one is offered it as it is."""
    import re

    user = make.user("ada@example.org")
    auth.login("ada@example.org")
    page = client.get("/profile").get_data(as_text=True)
    select = re.search(r'<select[^>]* id="timezone".*?</select>', page, re.S).group(0)
    assert '<optgroup label="Europe">' in select and '<optgroup label="Americas">' in select
    assert '<option value="Europe/Paris">Paris</option>' in select
    assert '<option value="America/Argentina/Buenos_Aires">Argentina / Buenos Aires</option>' in select
    assert "US/Eastern" not in select and "Etc/GMT" not in select
    assert 350 < len(re.findall("<option ", select)) < 500
    assert client.post("/profile", data={"name": "Ada", "timezone": "US/Eastern"}).status_code == 302
    db.session.refresh(user)
    assert user.timezone == "US/Eastern"
    page = client.get("/profile").get_data(as_text=True)
    assert '<optgroup label="Other"><option selected value="US/Eastern">US/Eastern</option></optgroup>' in page


def test_setup__first_visit_creates_the_superadmin_then_closes(client):
    assert client.get("/").headers["Location"].endswith("/setup")
    response = client.post("/setup", data={"name": "Op", "email": "op@example.org",
                                           "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302
    from portal.auth.models import User

    user = db.session.execute(db.select(User)).scalar_one()
    assert user.is_superadmin and user.is_verified
    client.post("/logout")
    assert client.get("/setup").status_code == 404


def test_create_admin_command__creates_a_superadmin(app):
    from portal.auth.models import User

    runner = app.test_cli_runner()
    result = runner.invoke(args=["portal", "create-admin", "--email", "root@example.org", "--name", "Root",
                                 "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    user = db.session.execute(db.select(User).where(User.email == "root@example.org")).scalar_one()
    assert user.is_superadmin
    result = runner.invoke(args=["portal", "create-admin", "--email", "root@example.org", "--name", "",
                                 "--password", PASSWORD])
    assert result.exit_code != 0
    assert "already exists" in result.output


def test_password_reset__a_link_asked_for_before_a_password_change_no_longer_works(app, client, auth, make, run_jobs,
                                                                                  smtp_sink):
    """Found by an attacker-side review: the old link set a new password after the person had
    changed theirs in their profile (thinking that settled a reset they had not asked for)."""
    import re

    make.user("ada@example.net")
    client.post("/password/forgot", data={"email": "ada@example.net"})
    run_jobs()
    [mail] = smtp_sink.wait_for("ada@example.net")
    path = re.search(r"http://localhost(/password/reset/\S+)", smtp_sink.text(mail)).group(1)
    auth.login("ada@example.net")
    changed = client.post("/profile/password", data={"pw-current": PASSWORD, "pw-password": "new ada secret 77",
                                                     "pw-confirm": "new ada secret 77"})
    assert changed.status_code == 302
    other = app.test_client()
    other.post(path, data={"password": "mallory was here 1", "confirm": "mallory was here 1"})
    assert other.post("/login", data={"email": "ada@example.net", "password": "mallory was here 1"}).status_code == 422
    assert other.post("/login", data={"email": "ada@example.net", "password": "new ada secret 77"}).status_code == 302
