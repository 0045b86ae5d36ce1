"""SMTP_URL says where mail goes and how: the scheme picks the security and
its usual port, and the user and password come percent-decoded."""

from __future__ import annotations

import pytest

from portal.mail.services import SmtpEndpoint, smtp_endpoint


@pytest.mark.parametrize("url, expected", [
    ("smtp://mail.example.org", SmtpEndpoint("mail.example.org", 25, "plain")),
    ("smtp://mail.example.org:2525", SmtpEndpoint("mail.example.org", 2525, "plain")),
    ("smtp+starttls://mail.example.org", SmtpEndpoint("mail.example.org", 587, "starttls")),
    ("smtp+starttls://mail.example.org:25", SmtpEndpoint("mail.example.org", 25, "starttls")),
    ("smtps://mail.example.org", SmtpEndpoint("mail.example.org", 465, "tls")),
    ("smtps://mail.example.org:4650", SmtpEndpoint("mail.example.org", 4650, "tls")),
    ("smtp://[2001:db8::25]:2525", SmtpEndpoint("2001:db8::25", 2525, "plain")),
])
def test_smtp_url__scheme_chooses_security_and_default_port(url, expected):
    assert smtp_endpoint(url) == expected


def test_smtp_url__user_and_password_are_percent_decoded():
    endpoint = smtp_endpoint("smtp+starttls://portal%40example.org:p%40ss%3Aw%2Frd%20x@mail.example.org")
    assert (endpoint.host, endpoint.port, endpoint.security) == ("mail.example.org", 587, "starttls")
    assert endpoint.username == "portal@example.org"
    assert endpoint.password == "p@ss:w/rd x"


def test_smtp_url__user_without_password_logs_in_with_an_empty_one():
    endpoint = smtp_endpoint("smtp://portal:@mail.example.org")
    assert (endpoint.username, endpoint.password) == ("portal", "")


def test_smtp_url__password_stays_out_of_the_endpoints_repr():
    endpoint = smtp_endpoint("smtps://portal:hunter2-secret@mail.example.org")
    assert "hunter2-secret" not in repr(endpoint)
    assert "portal" in repr(endpoint)


def test_smtp_url__without_a_host_is_an_error():
    with pytest.raises(ValueError, match="no mail server"):
        smtp_endpoint("smtp://")
