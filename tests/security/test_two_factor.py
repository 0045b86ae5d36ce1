"""Two-factor sign-in with an authenticator app and recovery codes: enrolment, the second step of
a password log-in, no replay, the rate limit, recovery codes used once, and nothing in clear."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from portal.audit.models import AuditEvent
from portal.auth.models import UserSession
from portal.extensions import db
from portal.security.models import AuthenticatorApp, FactorFailure, RecoveryCode
from portal.timeutil import utcnow
from tests.security.two_factor_helpers import (code_at_step, code_now, code_of_another_step, codes_on_page, enrol_app,
                                               make_stale, password_step, secret_on_page, signed_in)

EMAIL = "ada@example.org"


@pytest.fixture
def ada(make):
    return make.user(EMAIL, name="Ada Lovelace")


@pytest.fixture
def enrolled(client, auth, ada):
    """Ada set up an authenticator app a while ago; she is logged out. Returns (secret, recovery codes)."""
    auth.login(EMAIL)
    secret, codes = enrol_app(client)
    auth.logout()
    db.session.execute(update(AuthenticatorApp).values(last_used_step=0))
    db.session.commit()
    return secret, codes


def _actions(user) -> list[str]:
    return list(db.session.execute(db.select(AuditEvent.action).where(
        AuditEvent.target_id == str(user.id), AuditEvent.action.startswith("security.")).order_by(AuditEvent.id))
        .scalars())


def _wait_for_next_step() -> None:
    """Sleep into the next 30-second step when the current one is about to end (so a test's two
    codes are of the steps it means)."""
    left = 30 - time.time() % 30
    if left < 3:
        time.sleep(left + 0.1)


# -- enrolment -----------------------------------------------------------------------------

def test_app_enrolment__shows_a_qr_code_and_the_key_and_is_confirmed_by_a_first_code(client, auth, ada):
    auth.login(EMAIL)
    page = client.get("/profile/security").get_data(as_text=True)
    assert "Two-factor sign-in" in page and "Off" in page
    assert client.post("/profile/security/app").status_code == 302
    setup = client.get("/profile/security/app").get_data(as_text=True)
    assert "<svg" in setup and 'role="img"' in setup and "<title>QR code to scan</title>" in setup
    secret = secret_on_page(setup)
    assert len(secret) == 32
    # A phone cannot scan its own screen: the same key opens in its app from a link.
    assert 'href="otpauth://totp/' in setup and f"secret={secret}" in setup

    wrong = client.post("/profile/security/app/confirm", data={"code": "000000" if code_now(secret) != "000000"
                                                               else "111111"})
    assert wrong.status_code == 422 and "not the one your app shows" in wrong.get_data(as_text=True)
    assert db.session.execute(db.select(AuthenticatorApp.confirmed_at)).scalar_one() is None

    done = client.post("/profile/security/app/confirm", data={"code": code_now(secret)})
    assert done.status_code == 200
    codes = codes_on_page(done.get_data(as_text=True))
    assert len(codes) == 10 and len(set(codes)) == 10
    assert "shown this once" in done.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.execute(db.select(AuthenticatorApp.confirmed_at)).scalar_one() is not None
    assert _actions(ada) == ["security.app_added", "security.recovery_codes_issued"]
    assert "On" in client.get("/profile/security").get_data(as_text=True)


def test_app_enrolment__a_second_app_needs_the_first_removed(client, auth, ada):
    auth.login(EMAIL)
    enrol_app(client)
    response = client.post("/profile/security/app")
    assert response.status_code == 302
    assert "remove it first" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_secrets__are_neither_in_clear_in_the_database_nor_in_the_logs(client, auth, ada, caplog):
    caplog.set_level(logging.DEBUG)
    auth.login(EMAIL)
    secret, codes = enrol_app(client)
    auth.logout()
    password_step(client, EMAIL)
    client.post("/login/two-factor/recovery-code", data={"recovery_code": codes[0]})
    dump = []
    for table in ("authenticator_apps", "recovery_codes", "audit_events", "factor_failures", "jobs"):
        for row in db.session.execute(text(f"SELECT * FROM {table}")):
            dump.extend(bytes(value).decode("latin-1") if isinstance(value, (bytes, memoryview)) else str(value)
                        for value in row)
    everything = "\n".join(dump).lower()
    assert secret.lower() not in everything
    assert all(code.replace("-", "") not in everything.replace("-", "") for code in codes)
    logged = caplog.text.lower()
    assert secret.lower() not in logged and all(code not in logged for code in codes)


# -- the second step of a log-in ----------------------------------------------------------------

def test_login__a_right_password_alone_starts_no_session(client, enrolled):
    sessions_before = db.session.execute(db.select(db.func.count()).select_from(UserSession)).scalar_one()
    response = password_step(client, EMAIL)
    assert response.status_code == 302 and response.headers["Location"].endswith("/login/two-factor")
    assert not signed_in(client)
    assert db.session.execute(db.select(db.func.count()).select_from(UserSession)).scalar_one() == sessions_before
    page = client.get("/login/two-factor").get_data(as_text=True)
    assert "Two-factor sign-in" in page and EMAIL in page


def test_login__the_app_code_completes_it_and_goes_where_it_was_headed(client, ada, enrolled):
    secret, _ = enrolled
    password_step(client, EMAIL, next_path="/accounts")
    response = client.post("/login/two-factor", data={"code": code_now(secret)})
    assert response.status_code == 302 and response.headers["Location"] == "/accounts"
    assert signed_in(client)
    row = db.session.execute(db.select(UserSession).order_by(UserSession.id.desc())).scalars().first()
    assert row.signed_in_with == "second_factor" and row.confirmed_at is not None
    assert client.get("/login/two-factor").status_code == 302, "the pending log-in went with the new session"


def test_login__the_second_step_waits_ten_minutes_at_most(client, enrolled):
    secret, _ = enrolled
    password_step(client, EMAIL)
    with client.session_transaction() as session:
        session["two_factor_pending"] = {**session["two_factor_pending"], "at": int(time.time()) - 601}
    response = client.post("/login/two-factor", data={"code": code_now(secret)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert not signed_in(client)


def test_login__the_second_step_without_a_password_first_leads_to_the_log_in(client, enrolled):
    for response in (client.get("/login/two-factor"), client.post("/login/two-factor", data={"code": "123456"}),
                     client.post("/login/two-factor/recovery-code", data={"recovery_code": "x"})):
        assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert client.post("/login/two-factor/passkey/options").status_code == 401


def test_login__a_code_is_refused_a_second_time_in_its_window(app, client, ada, enrolled):
    secret, _ = enrolled
    _wait_for_next_step()
    code = code_now(secret)
    password_step(client, EMAIL)
    assert client.post("/login/two-factor", data={"code": code}).status_code == 302
    other = app.test_client()
    password_step(other, EMAIL)
    replay = other.post("/login/two-factor", data={"code": code})
    assert replay.status_code == 422 and "already used" in replay.get_data(as_text=True)
    earlier = other.post("/login/two-factor", data={"code": code_of_another_step(secret, -1)})
    assert earlier.status_code == 422, "a code older than the one used is refused too"
    assert not signed_in(other)
    assert _actions(ada)[-2:] == ["security.factor_refused", "security.factor_refused"]


def test_login__codes_of_the_neighbouring_steps_are_accepted_for_clocks_a_little_off(client, enrolled):
    secret, _ = enrolled
    password_step(client, EMAIL)
    assert client.post("/login/two-factor", data={"code": code_of_another_step(secret, 1)}).status_code == 302
    assert signed_in(client)


def test_login__codes_far_from_now_are_refused(client, enrolled):
    secret, _ = enrolled
    password_step(client, EMAIL)
    for steps in (-3, 3):
        code = code_of_another_step(secret, steps)
        if code not in {code_of_another_step(secret, near) for near in (-1, 0, 1)}:
            assert client.post("/login/two-factor", data={"code": code}).status_code == 422


def test_login__wrong_codes_are_limited_per_person_and_audited(app, client, ada, enrolled):
    secret, codes = enrolled
    password_step(client, EMAIL)
    for _ in range(5):
        assert client.post("/login/two-factor", data={"code": "99999"}).status_code == 422
    refused = client.post("/login/two-factor", data={"code": code_now(secret)})
    assert refused.status_code == 429 and "Too many wrong codes" in refused.get_data(as_text=True)
    elsewhere = app.test_client()
    password_step(elsewhere, EMAIL)
    assert elsewhere.post("/login/two-factor/recovery-code", data={"recovery_code": codes[0]}).status_code == 429, \
        "the limit is the person's, not the browser's"
    assert _actions(ada).count("security.factor_refused") == 5
    assert db.session.execute(db.select(FactorFailure.kind).distinct()).scalars().all() == ["app_code"]

    db.session.execute(update(FactorFailure).values(at=utcnow() - timedelta(minutes=16)))
    db.session.commit()
    assert client.post("/login/two-factor", data={"code": code_now(secret)}).status_code == 302


def test_login__a_person_suspended_between_the_steps_is_not_let_in(client, ada, enrolled):
    secret, _ = enrolled
    password_step(client, EMAIL)
    ada.suspended_at = utcnow()
    db.session.commit()
    response = client.post("/login/two-factor", data={"code": code_now(secret)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert not signed_in(client)


def test_login__people_without_a_second_factor_are_not_asked(client, ada):
    response = password_step(client, EMAIL)
    assert response.status_code == 302 and "/two-factor" not in response.headers["Location"]
    assert signed_in(client)


@pytest.mark.parametrize("value", ["", " ", "٣٣٣٣٣٣", "１２３４５６", "12 34 56", "-1", "9" * 400, "x" * 5000,
                                   "<script>", "=1+1", "\ufeff123456", "🙂" * 8])
def test_second_step__hostile_values_are_refused_without_an_error(client, enrolled, value):
    password_step(client, EMAIL)
    assert client.post("/login/two-factor", data={"code": value}).status_code in (422, 429)
    assert client.post("/login/two-factor/recovery-code", data={"recovery_code": value}).status_code in (422, 429)
    assert client.post("/login/two-factor/passkey", data={"credential": value}).status_code == 422
    assert not signed_in(client)


# -- recovery codes -----------------------------------------------------------------------------

def test_recovery_code__signs_in_once(app, client, ada, enrolled):
    _, codes = enrolled
    password_step(client, EMAIL)
    response = client.post("/login/two-factor/recovery-code", data={"recovery_code": codes[3].upper().replace("-", " ")})
    assert response.status_code == 302
    assert "9 left" in client.get("/profile").get_data(as_text=True), "signed in, and told how many are left"
    other = app.test_client()
    password_step(other, EMAIL)
    again = other.post("/login/two-factor/recovery-code", data={"recovery_code": codes[3]})
    assert again.status_code == 422 and "already used" in again.get_data(as_text=True)
    assert not signed_in(other)
    assert "security.recovery_code_used" in _actions(ada)


def test_recovery_codes__new_ones_replace_the_old(client, auth, enrolled):
    secret, old = enrolled
    password_step(client, EMAIL)
    client.post("/login/two-factor", data={"code": code_now(secret)})
    page = client.post("/profile/security/recovery-codes")
    assert page.status_code == 200
    new = codes_on_page(page.get_data(as_text=True))
    assert len(new) == 10 and not set(new) & set(old)
    assert db.session.execute(db.select(db.func.count()).select_from(RecoveryCode)).scalar_one() == 10
    auth.logout()
    password_step(client, EMAIL)
    assert client.post("/login/two-factor/recovery-code", data={"recovery_code": old[0]}).status_code == 422
    assert client.post("/login/two-factor/recovery-code", data={"recovery_code": new[0]}).status_code == 302


# -- changing one's factors -----------------------------------------------------------------------

def _sign_in_with_app(client, secret):
    _wait_for_next_step()
    password_step(client, EMAIL)
    assert client.post("/login/two-factor", data={"code": code_now(secret)}).status_code == 302


def test_removing_the_last_factor__turns_two_factor_sign_in_off_and_drops_the_recovery_codes(client, ada, enrolled):
    secret, _ = enrolled
    _sign_in_with_app(client, secret)
    response = client.post("/profile/security/app/remove")
    assert response.status_code == 302
    assert "Two-factor sign-in is now off" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert db.session.execute(db.select(db.func.count()).select_from(RecoveryCode)).scalar_one() == 0
    assert "security.app_removed" in _actions(ada)
    client.post("/logout")
    assert password_step(client, EMAIL).headers["Location"] == "/"


def test_changing_factors__needs_a_fresh_confirmation(client, ada, enrolled):
    secret, _ = enrolled
    _sign_in_with_app(client, secret)
    make_stale()
    for url in ("/profile/security/app/remove", "/profile/security/recovery-codes", "/profile/security/app",
                "/profile/security/passkeys/1/remove"):
        response = client.post(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/profile/confirm?next=/profile/security"), url
    assert client.post("/profile/security/passkeys/options").status_code == 401
    assert db.session.execute(db.select(AuthenticatorApp)).scalar_one().confirmed_at is not None

    wrong = client.post("/profile/confirm?next=/profile/security", data={"password": "not my password at all"})
    assert wrong.status_code == 422
    confirmed = client.post("/profile/confirm?next=/profile/security", data={"password": "correct horse battery"})
    assert confirmed.status_code == 302 and confirmed.headers["Location"] == "/profile/security"
    assert client.post("/profile/security/app/remove").status_code == 302
    assert db.session.execute(db.select(AuthenticatorApp)).scalar_one_or_none() is None


def test_confirmation__with_a_code_of_the_app_and_never_with_the_same_code_twice(client, ada, enrolled):
    secret, _ = enrolled
    _sign_in_with_app(client, secret)
    make_stale()
    used = db.session.execute(db.select(AuthenticatorApp.last_used_step)).scalar_one()
    replay = client.post("/profile/confirm/code?next=/profile/security", data={"code": code_at_step(secret, used)})
    assert replay.status_code == 422 and "already used" in replay.get_data(as_text=True)
    response = client.post("/profile/confirm/code?next=/profile/security",
                           data={"code": code_at_step(secret, used + 1)})
    assert response.status_code == 302 and response.headers["Location"] == "/profile/security"
    assert client.post("/profile/security/recovery-codes").status_code == 200


def test_confirmation__next_is_only_ever_a_path_of_this_site(client, ada):
    client.post("/login", data={"email": EMAIL, "password": "correct horse battery"})
    response = client.post("/profile/confirm?next=https://evil.example/", data={"password": "correct horse battery"})
    assert response.status_code == 302 and response.headers["Location"] == "/profile/security"


def test_confirmation__wrong_passwords_count_towards_the_limit(client, ada):
    client.post("/login", data={"email": EMAIL, "password": "correct horse battery"})
    for _ in range(5):
        assert client.post("/profile/confirm", data={"password": "a wrong password"}).status_code == 422
    assert client.post("/profile/confirm", data={"password": "correct horse battery"}).status_code == 429


def test_security_page__lists_the_persons_recent_security_events(client, ada, enrolled):
    secret, _ = enrolled
    password_step(client, EMAIL)
    client.post("/login/two-factor", data={"code": "12345x"})
    client.post("/login/two-factor", data={"code": code_now(secret)})
    page = client.get("/profile/security").get_data(as_text=True)
    assert "Authenticator app added" in page and "Wrong code, password or passkey refused" in page


def test_log_in__counts_as_a_fresh_confirmation(client, ada):
    client.post("/login", data={"email": EMAIL, "password": "correct horse battery"})
    assert client.post("/profile/security/app").status_code == 302
    assert client.get("/profile/security/app").status_code == 200


def test_pages__speak_the_persons_language(client, ada, enrolled):
    response = password_step(client, EMAIL)
    page = client.get(response.headers["Location"], headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Double authentification" in page and "Utiliser un code de secours" in page
    wrong = client.post("/login/two-factor", data={"code": "12345x"}, headers={"Accept-Language": "fr"})
    assert "Ce code n’est pas le bon." in wrong.get_data(as_text=True)
