from portal.auth.models import User
from portal.extensions import db
from tests.conftest import PASSWORD, first_link


def _register(client, email="ada@example.org", password=PASSWORD, confirm=None):
    return client.post("/register", data={"name": "Ada", "email": email, "password": password,
                                          "confirm": confirm or password})


def test_registration__sends_verification_link_that_confirms_once(client, make, run_jobs, smtp_sink):
    make.user("first@example.org", superadmin=True)
    response = _register(client)
    assert response.status_code == 200
    assert "Check your e-mail" in response.get_data(as_text=True)
    user = db.session.execute(db.select(User).where(User.email == "ada@example.org")).scalar_one()
    assert user.email_verified_at is None

    assert run_jobs() == 1
    [message] = smtp_sink.wait_for("ada@example.org")
    assert message["Subject"] == "Confirm your address for the mail portal"
    assert message.get_body(preferencelist=("html",)) is not None
    link = first_link(smtp_sink.text(message), "/verify/")
    path = link.removeprefix("http://localhost")

    assert client.get(path).status_code == 200  # a page with a button: prefetchers do not confirm
    db.session.refresh(user)
    assert user.email_verified_at is None
    response = client.post(path)
    assert response.status_code == 302
    db.session.refresh(user)
    assert user.email_verified_at is not None
    assert client.post(path).status_code == 410  # single use


def test_registration__unverified_user_cannot_log_in(client, make):
    make.user("first@example.org", superadmin=True)
    make.user("late@example.org", verified=False)
    response = client.post("/login", data={"email": "late@example.org", "password": PASSWORD})
    assert response.status_code == 422
    assert "Confirm your address first" in response.get_data(as_text=True)


def test_registration__invalid_input_keeps_values_and_says_why(client, make):
    make.user("first@example.org", superadmin=True)
    response = _register(client, email="not-an-address", password="short")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'value="not-an-address"' in page
    assert 'value="Ada"' in page
    assert "An address needs an @ sign." in page
    response = _register(client, email="ada@example.org", password="short")
    assert response.status_code == 422
    assert "at least 10 characters" in response.get_data(as_text=True)
    response = _register(client, password=PASSWORD, confirm="something else entirely")
    assert "The passwords differ." in response.get_data(as_text=True)


def test_registration__existing_address_is_not_revealed(client, make, run_jobs, smtp_sink):
    make.user("first@example.org", superadmin=True)
    make.user("taken@example.org")
    response = _register(client, email="Taken@Example.org")
    assert response.status_code == 200
    assert "Check your e-mail" in response.get_data(as_text=True)
    assert db.session.execute(db.select(db.func.count()).select_from(User)).scalar_one() == 2
    run_jobs()
    [message] = smtp_sink.wait_for("taken@example.org")
    assert "already has a profile" in smtp_sink.text(message)


def test_registration__closed_when_the_operator_says_so(make, app, client):
    app.config["PORTAL"] = {**app.config["PORTAL"], "OPEN_REGISTRATION": False}
    make.user("first@example.org", superadmin=True)
    assert client.get("/register").status_code == 403
    assert _register(client).status_code == 403


CHOSEN = "a visitor's own password 42"


def _session_of(app, client) -> dict:
    """What anyone reads in the session cookie: it is signed, not hidden."""
    cookie = client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))
    return app.session_interface.get_signing_serializer(app).loads(cookie.value)


def test_registration__neither_the_cookie_nor_the_next_log_in_tells_whether_the_address_had_a_profile(app, make):
    """A visitor registered an address someone has, and one nobody has: the session cookie held
    the new profile's id for the second only, and logging in with the password they had just
    chosen answered "Confirm your address first" for the second, "do not match" for the first."""
    import re

    make.user("first@example.org", superadmin=True)
    make.user("taken@example.org")  # their password is not the visitor's
    assert CHOSEN != PASSWORD
    answers, marks = [], []
    for email in ("taken@example.org", "free@example.org"):
        visitor = app.test_client()
        page = _register(visitor, email=email, password=CHOSEN)
        assert page.status_code == 200 and "Check your e-mail" in page.get_data(as_text=True)
        kept = _session_of(app, visitor)
        marks.append((sorted(kept), len(str(kept["registered"]))))
        login = visitor.post("/login", data={"email": email, "password": CHOSEN})
        text = re.sub(r'(name="csrf_token" (type="hidden" )?value="|"X-CSRFToken": ")[^"]+"', "",
                      login.get_data(as_text=True))  # each browser's own token
        answers.append((login.status_code, text.replace(email, "ADDRESS")))
    assert marks[0] == marks[1], marks
    assert answers[0] == answers[1]
    status, text = answers[1]
    assert status == 422 and "do not match" in text and "Confirm your address first" in text
    assert "Send the confirmation link again" in text


def test_registration__the_confirmation_takes_one_click_only_in_the_browser_that_registered(app, make, run_jobs,
                                                                                        smtp_sink):
    make.user("first@example.org", superadmin=True)
    registering = app.test_client()
    _register(registering)
    run_jobs()
    path = first_link(smtp_sink.text(smtp_sink.wait_for("ada@example.org")[-1]), "/verify/").removeprefix(
        "http://localhost")
    other = app.test_client()
    assert 'name="password"' in other.get(path).get_data(as_text=True)  # elsewhere: the password is asked
    assert 'name="password"' not in registering.get(path).get_data(as_text=True)
    assert registering.post(path).status_code == 302
    assert db.session.execute(db.select(User).where(User.email == "ada@example.org")).scalar_one().is_verified


def test_registration__only_a_wrong_password_is_told_how_to_confirm(client, make):
    """Every refused log-in but a rate limit offered the confirmation link, a suspended person's too."""
    from portal.timeutil import utcnow

    make.user("first@example.org", superadmin=True)
    person = make.user("away@example.org")
    person.suspended_at = utcnow()
    db.session.commit()
    text = client.post("/login", data={"email": person.email, "password": PASSWORD}).get_data(as_text=True)
    assert "suspended" in text.lower()
    assert "Confirm your address first" not in text and "Send the confirmation link again" not in text
    text = client.post("/login", data={"email": "first@example.org", "password": CHOSEN}).get_data(as_text=True)
    assert "do not match" in text and "Send the confirmation link again" in text
