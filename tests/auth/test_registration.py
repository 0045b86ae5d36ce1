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
