"""Equal work and equal answers on every public path (finding 6), and log-in limits a
stranger cannot turn against the owner's own browser (finding 11)."""

from __future__ import annotations

import re

import pytest

from portal.auth import passwords
from portal.auth.models import LoginFailure
from portal.extensions import db
from portal.jobs.models import Job
from tests.conftest import PASSWORD


def _answer(response) -> tuple[int, str]:
    """Status and page, without what differs on every request (the CSRF token)."""
    body = re.sub(r'name="csrf_token" value="[^"]*"', "", response.get_data(as_text=True))
    return response.status_code, re.sub(r'"X-CSRFToken": "[^"]*"', "", body)


@pytest.fixture
def verifications(monkeypatch):
    """Counts the password hashes verified (the expensive step whose absence gave unknown addresses away)."""
    seen = []
    original = passwords.PasswordHasher.verify

    def counting(self, stored, password):
        seen.append(stored)
        return original(self, stored, password)

    monkeypatch.setattr(passwords.PasswordHasher, "verify", counting)
    return seen


def test_login__unknown_and_registered_addresses_cost_and_answer_the_same(client, make, verifications):
    make.user("ada@example.org")
    known = client.post("/login", data={"email": "ada@example.org", "password": "wrong password!"})
    assert len(verifications) == 1
    unknown = client.post("/login", data={"email": "nobody@example.org", "password": "wrong password!"})
    assert len(verifications) == 2, "a password is verified for an unknown address too"
    known_answer, unknown_answer = _answer(known), _answer(unknown)
    assert known_answer[0] == unknown_answer[0] == 422
    assert known_answer[1].replace("ada@example.org", "X") == unknown_answer[1].replace("nobody@example.org", "X")


def test_login__profile_without_a_password_costs_the_same(client, make, verifications):
    user = make.user("sso@example.org")
    user.password_hash = None
    db.session.commit()
    response = client.post("/login", data={"email": "sso@example.org", "password": "anything at all"})
    assert response.status_code == 422 and len(verifications) == 1


def test_password_reset__same_work_in_the_request_for_every_address(client, make, run_jobs, smtp_sink):
    make.user("ada@example.org")
    answers = []
    for address in ("ada@example.org", "nobody@example.org"):
        response = client.post("/password/forgot", data={"email": address})
        answers.append(_answer(response)[1].replace(address, "X"))
    assert answers[0] == answers[1]
    jobs = db.session.execute(db.select(Job).order_by(Job.id)).scalars().all()
    assert [job.kind for job in jobs] == ["auth.address_mail", "auth.address_mail"]
    assert "token" not in str([job.payload for job in jobs])
    run_jobs()
    assert [str(m["To"]) for m in smtp_sink.messages] == ["ada@example.org"]


def test_register__hashes_the_password_for_an_address_already_registered(client, make, monkeypatch):
    make.user("ada@example.org")
    hashed = []
    original = passwords.PasswordHasher.hash
    monkeypatch.setattr(passwords.PasswordHasher, "hash", lambda self, pw, **kw: hashed.append(1) or
                        original(self, pw, **kw))
    answers = []
    for address in ("ada@example.org", "new-person@example.org"):
        response = client.post("/register", data={"email": address, "name": "A", "password": PASSWORD,
                                                  "confirm": PASSWORD})
        answers.append(_answer(response))
    assert hashed == [1, 1]
    assert answers[0][0] == answers[1][0] == 200
    assert answers[0][1].replace("ada@example.org", "X") == answers[1][1].replace("new-person@example.org", "X")


def test_members__nobody_is_added_to_an_account_without_accepting(client, make, auth, owner, account):
    """The old "Add member" form told registered addresses apart and added them unasked."""
    make.user("bob@example.org")
    auth.login("owner@example.org")
    assert client.post(f"/accounts/{account.id}/members/add", data={"email": "bob@example.org"}).status_code == 404
    page = client.get(f"/accounts/{account.id}/members").get_data(as_text=True)
    assert "bob@example.org" not in page and "accepting an invitation" in page


# -- lock-out -------------------------------------------------------------------------------

def test_lockout__a_strangers_guesses_do_not_lock_the_owners_browser_out(app, client, make):
    make.user("ada@example.org")
    assert client.post("/login", data={"email": "ada@example.org", "password": PASSWORD}).status_code == 302
    assert client.get_cookie("portal_device") is not None
    client.post("/logout")
    stranger = app.test_client()
    for _ in range(5):
        stranger.post("/login", data={"email": "ada@example.org", "password": "guess guess guess"})
    assert stranger.post("/login", data={"email": "ada@example.org", "password": PASSWORD}).status_code == 429, \
        "the stranger's client is locked out, even with the right password"
    assert client.post("/login", data={"email": "ada@example.org", "password": PASSWORD}).status_code == 302, \
        "the owner's browser still gets in"


def test_lockout__guesses_from_the_owners_browser_are_bounded_too(client, make):
    make.user("ada@example.org")
    client.post("/login", data={"email": "ada@example.org", "password": PASSWORD})
    client.post("/logout")
    for _ in range(5):
        assert client.post("/login", data={"email": "ada@example.org", "password": "wrong wrong"}).status_code == 422
    response = client.post("/login", data={"email": "ada@example.org", "password": PASSWORD})
    assert response.status_code == 429 and "from this browser" in response.get_data(as_text=True)
    assert db.session.execute(db.select(LoginFailure.device)).scalars().all() != [""] * 5


def test_lockout__a_device_cookie_of_someone_else_does_not_help(app, make):
    make.user("ada@example.org")
    make.user("eve@example.org")
    eve = app.test_client()
    eve.post("/login", data={"email": "eve@example.org", "password": PASSWORD})
    eve.post("/logout")
    for _ in range(5):
        eve.post("/login", data={"email": "ada@example.org", "password": "guess guess guess"})
    assert eve.post("/login", data={"email": "ada@example.org", "password": PASSWORD}).status_code == 429


def test_lockout__a_password_reset_lifts_it(app, client, make, run_jobs, smtp_sink):
    from tests.conftest import first_link

    make.user("ada@example.org")
    for _ in range(5):
        client.post("/login", data={"email": "ada@example.org", "password": "guess guess guess"})
    client.post("/password/forgot", data={"email": "ada@example.org"})
    run_jobs()
    [message] = smtp_sink.wait_for("ada@example.org")
    path = first_link(smtp_sink.text(message), "/password/reset/").removeprefix("http://localhost")
    new = "a brand new passphrase"
    assert client.post(path, data={"password": new, "confirm": new}).status_code == 302
    assert client.post("/login", data={"email": "ada@example.org", "password": new}).status_code == 302
