"""Passkeys through the portal's pages, answered by a software authenticator as a browser would:
registration, the second step of a log-in, confirmation, and every forged or replayed answer."""

from __future__ import annotations

import json

import pytest

from portal.extensions import db
from portal.security.models import Passkey, RecoveryCode
from portal.security.passkeys import RelyingParty, relying_party
from tests.security.two_factor_helpers import (SoftAuthenticator, b64url, codes_on_page, enrol_passkey, make_stale,
                                               password_step, signed_in)

EMAIL = "ada@example.org"


@pytest.fixture
def ada(make):
    return make.user(EMAIL, name="Ada Lovelace")


@pytest.fixture
def key():
    return SoftAuthenticator()


@pytest.fixture
def enrolled(client, auth, ada, key):
    auth.login(EMAIL)
    assert enrol_passkey(client, key).status_code == 200
    auth.logout()
    return key


def _sign_in_options(client) -> dict:
    response = client.post("/login/two-factor/passkey/options")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_registration__keeps_the_public_key_for_this_host_and_shows_recovery_codes(client, auth, ada, key):
    auth.login(EMAIL)
    options = client.post("/profile/security/passkeys/options").get_json()["publicKey"]
    assert options["rp"]["id"] == "localhost" and options["user"]["name"] == EMAIL
    assert options["attestation"] == "none"
    response = client.post("/profile/security/passkeys",
                           data={"name": "  Work   laptop ", "credential": key.create({"publicKey": options})})
    assert response.status_code == 200
    assert len(codes_on_page(response.get_data(as_text=True))) == 10
    passkey = db.session.execute(db.select(Passkey)).scalar_one()
    assert (passkey.name, passkey.rp_id, passkey.credential_id, passkey.transports) == (
        "Work laptop", "localhost", key.credential_id, "internal")
    assert passkey.public_key.startswith(b"\xa5")  # the COSE key as the authenticator gave it

    second = SoftAuthenticator()
    page = enrol_passkey(client, second, "Phone")
    assert page.status_code == 302, "a second passkey brings no new codes"
    assert "“Phone” is added" in client.get(page.headers["Location"]).get_data(as_text=True)
    options = client.post("/profile/security/passkeys/options").get_json()["publicKey"]
    assert len(options["excludeCredentials"]) == 2


def test_registration__an_answer_to_another_challenge_or_origin_is_refused(client, auth, ada):
    auth.login(EMAIL)
    options = client.post("/profile/security/passkeys/options").get_json()
    forged = json.loads(SoftAuthenticator().create(options))
    client.post("/profile/security/passkeys/options")  # a new challenge replaces the first
    response = client.post("/profile/security/passkeys", data={"name": "x", "credential": json.dumps(forged)})
    assert "could not be verified" in client.get(response.headers["Location"]).get_data(as_text=True)

    options = client.post("/profile/security/passkeys/options").get_json()
    phishing = SoftAuthenticator(origin="http://localhost.evil.example").create(options)
    response = client.post("/profile/security/passkeys", data={"name": "x", "credential": phishing})
    assert "could not be verified" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert db.session.execute(db.select(Passkey)).first() is None


def test_registration__without_javascript_says_what_is_needed(client, auth, ada):
    auth.login(EMAIL)
    response = client.post("/profile/security/passkeys", data={"name": "x", "credential": ""})
    assert "needs JavaScript" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_login__with_a_passkey(client, enrolled):
    response = password_step(client, EMAIL, next_path="/profile")
    assert "Use a passkey" in client.get(response.headers["Location"]).get_data(as_text=True)
    options = _sign_in_options(client)["publicKey"]
    assert options["rpId"] == "localhost"
    assert [item["id"] for item in options["allowCredentials"]] == [b64url(enrolled.credential_id)]
    done = client.post("/login/two-factor/passkey", data={"credential": enrolled.get({"publicKey": options})})
    assert done.status_code == 302 and done.headers["Location"] == "/profile"
    assert signed_in(client)
    passkey = db.session.execute(db.select(Passkey)).scalar_one()
    assert passkey.sign_count == enrolled.sign_count and passkey.last_used_at is not None


def test_login__a_passkey_answer_is_used_once(app, client, enrolled):
    password_step(client, EMAIL)
    answer = enrolled.get(_sign_in_options(client))
    assert client.post("/login/two-factor/passkey", data={"credential": answer}).status_code == 302
    other = app.test_client()
    password_step(other, EMAIL)
    _sign_in_options(other)
    replay = other.post("/login/two-factor/passkey", data={"credential": answer})
    assert replay.status_code == 422 and not signed_in(other)


def test_login__a_cloned_authenticator_whose_count_went_back_is_refused(client, enrolled):
    password_step(client, EMAIL)
    assert client.post("/login/two-factor/passkey",
                       data={"credential": enrolled.get(_sign_in_options(client))}).status_code == 302
    client.post("/logout")
    enrolled.sign_count = 0
    password_step(client, EMAIL)
    response = client.post("/login/two-factor/passkey", data={"credential": enrolled.get(_sign_in_options(client))})
    assert response.status_code == 422 and not signed_in(client)


def test_login__another_persons_passkey_or_a_signature_for_another_host_is_refused(client, auth, make, enrolled):
    make.user("eve@example.org")
    auth.login("eve@example.org")
    eves_key = SoftAuthenticator()
    enrol_passkey(client, eves_key)
    auth.logout()
    password_step(client, EMAIL)
    stolen = eves_key.get(_sign_in_options(client))
    assert client.post("/login/two-factor/passkey", data={"credential": stolen}).status_code == 422
    elsewhere = enrolled.get(_sign_in_options(client), rp_id="evil.example")
    assert client.post("/login/two-factor/passkey", data={"credential": elsewhere}).status_code == 422
    assert not signed_in(client)


@pytest.mark.parametrize("garbage", ["", "{", "[]", '{"rawId": 5}', '{"rawId": "%%%"}', '{"rawId": "AAAA"}',
                                     '{"rawId": "AAAA", "id": "AAAA", "type": "public-key", "response": {}}',
                                     "x" * 30000, "[" * 5000 + "]" * 5000])
def test_login__any_answer_that_is_not_a_passkeys_is_refused_without_an_error(client, enrolled, garbage):
    password_step(client, EMAIL)
    _sign_in_options(client)
    response = client.post("/login/two-factor/passkey", data={"credential": garbage})
    assert response.status_code == 422 and not signed_in(client)


def test_an_answer_nested_deeper_than_the_parser_goes_is_refused_on_every_passkey_form(client, enrolled):
    """It raised RecursionError, which is not a ValueError: an HTTP 500 on each of them."""
    deep = "[" * 5000 + "]" * 5000
    password_step(client, EMAIL)
    client.post("/login/two-factor/passkey", data={"credential": enrolled.get(_sign_in_options(client))})
    client.post("/profile/security/passkeys/options")
    response = client.post("/profile/security/passkeys", data={"credential": deep, "name": "Deep"})
    assert response.status_code == 302 and response.headers["Location"].startswith("/profile/security")
    assert "not a passkey" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert db.session.execute(db.select(db.func.count()).select_from(Passkey)).scalar_one() == 1
    make_stale()
    client.post("/profile/confirm/passkey/options")
    assert client.post("/profile/confirm/passkey", data={"credential": deep}).status_code == 422


def test_confirmation__with_a_passkey(client, enrolled):
    password_step(client, EMAIL)
    client.post("/login/two-factor/passkey", data={"credential": enrolled.get(_sign_in_options(client))})
    make_stale()
    assert client.post("/profile/security/recovery-codes").headers["Location"].startswith("/profile/confirm")
    options = client.post("/profile/confirm/passkey/options").get_json()
    response = client.post("/profile/confirm/passkey?next=/profile/security",
                           data={"credential": enrolled.get(options)})
    assert response.status_code == 302 and response.headers["Location"] == "/profile/security"
    assert client.post("/profile/security/recovery-codes").status_code == 200


def test_removing_passkeys__the_last_one_turns_two_factor_sign_in_off(client, enrolled):
    password_step(client, EMAIL)
    client.post("/login/two-factor/passkey", data={"credential": enrolled.get(_sign_in_options(client))})
    passkey = db.session.execute(db.select(Passkey)).scalar_one()
    response = client.post(f"/profile/security/passkeys/{passkey.id}/remove")
    assert "Two-factor sign-in is now off" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert db.session.execute(db.select(RecoveryCode)).first() is None
    gone = client.post(f"/profile/security/passkeys/{passkey.id}/remove")
    assert "already removed" in client.get(gone.headers["Location"]).get_data(as_text=True)


def test_removing_passkeys__someone_elses_cannot_be_removed(client, auth, make, enrolled):
    passkey = db.session.execute(db.select(Passkey)).scalar_one()
    make.user("eve@example.org")
    auth.login("eve@example.org")
    client.post(f"/profile/security/passkeys/{passkey.id}/remove")
    assert db.session.get(Passkey, passkey.id) is not None


def test_relying_party__an_ip_address_is_explained_not_offered(client, auth, ada):
    auth.login(EMAIL)
    client.set_cookie("portal_session", client.get_cookie("portal_session").value, domain="127.0.0.1")
    page = client.get("/profile/security", base_url="http://127.0.0.1:5000").get_data(as_text=True)
    assert "Browsers refuse passkeys on an IP address" in page and "http://localhost:5000" in page
    assert 'data-passkey="register"' not in page


def test_relying_party__is_the_configured_address_when_the_request_comes_that_way(app):
    app.config["PORTAL"] = {**app.config["PORTAL"], "BASE_URL": "https://portal.example.org"}
    # Behind a TLS proxy the request says http; the browser's origin is the https one.
    with app.test_request_context("/", base_url="http://portal.example.org"):
        assert relying_party() == RelyingParty("portal.example.org", "https://portal.example.org")
    with app.test_request_context("/", base_url="http://localhost:8080"):
        assert relying_party() == RelyingParty("localhost", "http://localhost:8080")


class TestAnotherHostThanTheConfiguredOne:
    @pytest.fixture
    def app_settings(self):
        return {"BASE_URL": "http://127.0.0.1:5000"}

    def test_passkeys_are_made_for_the_host_the_browser_sees(self, client, auth, ada):
        auth.login(EMAIL)
        options = client.post("/profile/security/passkeys/options", base_url="http://localhost:5000").get_json()
        assert options["publicKey"]["rp"]["id"] == "localhost"
        key = SoftAuthenticator(origin="http://localhost:5000")
        response = client.post("/profile/security/passkeys", base_url="http://localhost:5000",
                               data={"name": "x", "credential": key.create(options)})
        assert response.status_code == 200
        assert db.session.execute(db.select(Passkey.rp_id)).scalar_one() == "localhost"


def test_second_step__passkeys_made_for_another_host_are_explained(client, enrolled):
    password_step(client, EMAIL)
    client.set_cookie("portal_session", client.get_cookie("portal_session").value, domain="mail.example.net")
    page = client.get("/login/two-factor", base_url="http://mail.example.net").get_data(as_text=True)
    assert "Your passkeys work only where they were made (localhost)" in page
    assert 'data-passkey="sign-in"' not in page


def test_login__a_challenge_serves_one_answer_only(client, enrolled):
    password_step(client, EMAIL)
    options = _sign_in_options(client)
    impostor = SoftAuthenticator()
    impostor.credential_id = enrolled.credential_id  # the right id, signed with another key
    assert client.post("/login/two-factor/passkey", data={"credential": impostor.get(options)}).status_code == 422
    late = client.post("/login/two-factor/passkey", data={"credential": enrolled.get(options)})
    assert late.status_code == 422 and "expired" in late.get_data(as_text=True)
    assert not signed_in(client)
