"""Every message is a job: it is queued with the change that causes it and
delivered by the worker, to a real SMTP server on loopback or to .eml files."""

from __future__ import annotations

import email
import email.policy
import json
import ssl
from datetime import timedelta
from pathlib import Path

import pytest

from portal.extensions import db
from portal.jobs.models import DONE, FAILED, QUEUED, Job
from portal.mail.services import send
from tests.mail.sinks import Certificate, ScriptedSmtpSink
from tests.servers.smtp import SmtpSink

TOKEN = "one-time-token-7f3a9c"

# The login sinks take AUTH without STARTTLS, as a test server may.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture
def use_smtp_url(app):
    def use(url: str) -> None:
        app.config["PORTAL"] = {**app.config["PORTAL"], "SMTP_URL": url}

    return use


@pytest.fixture
def ada(make):
    return make.user("ada@example.org", name="Ada")


def send_reset_mail(app, user) -> Job:
    """Queue the password-reset message, whose body holds a one-time link, and commit."""
    with app.test_request_context():
        send(user.email, "reset_password", user=user, token=TOKEN, hours=24)
    db.session.commit()
    return db.session.execute(db.select(Job).where(Job.kind == "mail.send")).scalars().one()


def reloaded(job: Job) -> Job:
    db.session.refresh(job)
    return job


def assert_multipart_reset_mail(message, to: str = "ada@example.org") -> None:
    assert message["From"] == "Mail portal <portal@localhost>"
    assert message["To"] == to
    assert message["Subject"] == "Choose a new password for the mail portal"
    assert message["Message-ID"] and message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert text.startswith("Hello Ada,")
    assert f"http://localhost/password/reset/{TOKEN}" in text
    assert "<html" in html and f"/password/reset/{TOKEN}" in html


# -- SMTP -----------------------------------------------------------------------------

def test_mail__message_is_a_job_delivered_as_multipart_text_and_html(app, ada, run_jobs, smtp_sink):
    job = send_reset_mail(app, ada)
    assert job.status == QUEUED and job.subject == "mail:reset_password"
    assert job.payload["to"] == "ada@example.org" and job.payload["subject"].startswith("Choose a new password")
    assert TOKEN not in json.dumps(job.payload), "the one-time link is sealed while the message waits"
    assert smtp_sink.messages == [], "nothing is sent inside the request"

    assert run_jobs() == 1
    [message] = smtp_sink.wait_for("ada@example.org")
    assert_multipart_reset_mail(message)


def test_mail__delivered_job_no_longer_holds_the_body_or_its_link(app, ada, run_jobs, smtp_sink):
    job = send_reset_mail(app, ada)
    run_jobs()

    reloaded(job)
    assert job.status == DONE
    assert job.payload == {"to": "ada@example.org", "subject": "Choose a new password for the mail portal",
                           "delivered": True}
    assert TOKEN not in json.dumps(job.payload)


def test_mail__waits_while_the_server_is_down_and_is_delivered_once_it_is_back(
        app, ada, run_jobs, use_smtp_url):
    server = SmtpSink()  # a free port that nothing listens on yet
    use_smtp_url(server.url)
    job = send_reset_mail(app, ada)

    assert run_jobs() == 1
    reloaded(job)
    assert (job.status, job.attempts) == (QUEUED, 1)
    assert job.last_error == "the mail server could not be reached (ConnectionRefusedError)"
    assert job.payload["sealed"] and TOKEN not in json.dumps(job.payload), \
        "the message is kept, sealed, until it is delivered"
    assert run_jobs() == 0, "it waits for its backoff"

    assert run_jobs(now=job.run_at + timedelta(seconds=1)) == 1
    assert (reloaded(job).status, job.attempts) == (QUEUED, 2)

    server.start()
    try:
        assert run_jobs(now=job.run_at + timedelta(seconds=1)) == 1
        [message] = server.wait_for("ada@example.org")
    finally:
        server.stop()
    assert_multipart_reset_mail(message)
    reloaded(job)
    assert (job.status, job.attempts, job.last_error) == (DONE, 3, None)


@pytest.mark.parametrize("server_options, state, error", [
    ({"rcpt_replies": {"ada@example.org": "550 5.1.1 No such user"}}, FAILED,
     "the mail server refused the recipient: ada@example.org (550)"),
    ({"data_reply": "554 5.7.1 Message rejected as spam"}, FAILED,
     "the mail server refused the message (554)"),
    ({"rcpt_replies": {"ada@example.org": "451 4.7.1 Greylisted, try again later"}}, QUEUED,
     "the mail server deferred the recipient: ada@example.org (451)"),
    ({"data_reply": "452 4.3.1 Insufficient system storage"}, QUEUED,
     "the mail server deferred the message (452)"),
], ids=["5xx-recipient", "5xx-data", "4xx-recipient", "4xx-data"])
def test_mail__5xx_refusal_fails_at_once_and_4xx_is_retried(
        app, ada, run_jobs, use_smtp_url, server_options, state, error):
    server = ScriptedSmtpSink(**server_options).start()
    try:
        use_smtp_url(server.url)
        job = send_reset_mail(app, ada)
        assert run_jobs() == 1
    finally:
        server.stop()

    reloaded(job)
    assert (job.status, job.attempts, job.last_error) == (state, 1, error)
    assert server.messages == []


def test_mail__smtp_login_is_used_and_the_password_never_shown(app, ada, run_jobs, use_smtp_url, caplog):
    caplog.set_level("DEBUG")
    server = ScriptedSmtpSink(login=("portal", "s3cr#t pass:word")).start()
    try:
        use_smtp_url(server.smtp_url("smtp", "portal:s3cr%23t%20pass%3Aword"))
        send_reset_mail(app, ada)
        assert run_jobs() == 1
        [message] = server.wait_for("ada@example.org")
        assert_multipart_reset_mail(message)
        assert server.logins == [("portal", "s3cr#t pass:word", True)]

        use_smtp_url(server.smtp_url("smtp", "portal:Wr0ng-Passw0rd"))
        with app.test_request_context():
            send("bob@example.org", "reset_password", user=ada, token=TOKEN, hours=24)
        db.session.commit()
        assert run_jobs() == 1
    finally:
        server.stop()

    job = db.session.execute(db.select(Job).where(Job.status != DONE)).scalars().one()
    assert (job.status, job.attempts) == (QUEUED, 1), "mail waits for the login to be fixed"
    assert job.last_error == "the mail server refused the portal's login (535)"
    assert server.logins[-1] == ("portal", "Wr0ng-Passw0rd", False)
    assert server.to("bob@example.org") == []
    for secret in ("Wr0ng-Passw0rd", "s3cr", "pass%3Aword"):
        assert secret not in caplog.text
        assert secret not in json.dumps(job.payload) + job.last_error


def test_mail__login_the_server_does_not_offer_keeps_the_message_waiting(
        app, ada, run_jobs, use_smtp_url, smtp_sink, caplog):
    caplog.set_level("DEBUG")
    use_smtp_url(smtp_sink.url.replace("smtp://", "smtp://portal:Wr0ng-Passw0rd@"))
    job = send_reset_mail(app, ada)

    assert run_jobs() == 1
    reloaded(job)
    assert (job.status, job.last_error) == (
        QUEUED, "the mail server cannot do what SMTP_URL asks: SMTP AUTH extension not supported by server.")
    assert smtp_sink.messages == []
    assert "Wr0ng-Passw0rd" not in caplog.text


def _trusting(monkeypatch, certificate: Certificate) -> None:
    """Make the portal's default TLS context trust the test certificate, as an
    operator would install a private CA."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert ssl.create_default_context().get_ca_certs(), "SSL_CERT_FILE is honoured"


@pytest.mark.skipif(not Certificate.available(), reason="needs the openssl command to make a certificate")
@pytest.mark.parametrize("scheme, tls", [("smtp+starttls", "starttls"), ("smtps", "implicit")])
def test_mail__tls_delivery_with_login(app, ada, run_jobs, use_smtp_url, tmp_path, monkeypatch, scheme, tls):
    certificate = Certificate(tmp_path)
    _trusting(monkeypatch, certificate)
    server = ScriptedSmtpSink(login=("portal", "secret"), tls=tls, certificate=certificate).start()
    try:
        # The server takes no login (and, with STARTTLS, no mail) before TLS is up.
        use_smtp_url(server.smtp_url(scheme, "portal:secret"))
        job = send_reset_mail(app, ada)
        assert run_jobs() == 1
        [message] = server.wait_for("ada@example.org")
    finally:
        server.stop()
    assert_multipart_reset_mail(message)
    assert server.logins == [("portal", "secret", True)]
    assert reloaded(job).status == DONE


def test_mail__untrusted_certificate_keeps_the_message_waiting(app, ada, run_jobs, use_smtp_url, tmp_path):
    if not Certificate.available():
        pytest.skip("needs the openssl command to make a certificate")
    server = ScriptedSmtpSink(tls="implicit", certificate=Certificate(tmp_path)).start()
    try:
        use_smtp_url(server.smtp_url("smtps"))
        job = send_reset_mail(app, ada)
        assert run_jobs() == 1
    finally:
        server.stop()
    reloaded(job)
    assert (job.status, job.last_error) == (QUEUED, "the mail server could not be reached (SSLCertVerificationError)")


# -- files --------------------------------------------------------------------------------

def test_mail__file_setting_writes_a_multipart_eml_under_instance_mail(app, ada, run_jobs, use_smtp_url):
    use_smtp_url("file")
    job = send_reset_mail(app, ada)
    written = Path(app.instance_path) / "mail" / f"{job.id:08d}.eml"
    written.unlink(missing_ok=True)  # the instance folder is shared by the whole run

    assert run_jobs() == 1
    assert reloaded(job).status == DONE
    message = email.message_from_bytes(written.read_bytes(), policy=email.policy.default)
    assert_multipart_reset_mail(message)


def test_mail__file_url_writes_into_the_folder_it_names(app, ada, run_jobs, use_smtp_url, tmp_path):
    folder = tmp_path / "outbox with space"
    use_smtp_url(f"file://{str(folder).replace(' ', '%20')}")
    job = send_reset_mail(app, ada)

    assert run_jobs() == 1
    [written] = folder.glob("*.eml")
    assert written.name == f"{job.id:08d}.eml"
    assert_multipart_reset_mail(email.message_from_bytes(written.read_bytes(), policy=email.policy.default))

