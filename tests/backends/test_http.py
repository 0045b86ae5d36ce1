"""The HTTP plumbing every HTTP adapter shares, against a real kept-alive server on loopback:
connections after a 5xx, connections the server closed, and bodies judged by their content."""

from __future__ import annotations

import pytest

from portal.backends.base import PermanentBackendError, TransientBackendError
from portal.backends.http import HttpClient, is_html_page
from tests.servers.emu_common import Emulator, RecordedRequest, Reply

from .conftest import TIMEOUT

FLASK_404 = ("<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
             "<p>The requested URL was not found on the server.</p>\n")
NGINX_502 = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>" \
            "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"


class Scripted(Emulator):
    """Answers each path with the reply set for it; records what it acted on."""

    def __init__(self) -> None:
        super().__init__()
        self.replies: dict[str, Reply] = {}
        self.acted: list[str] = []

    def handle(self, request: RecordedRequest) -> Reply:
        self.acted.append(f"{request.method} {request.path}")
        return self.replies.get(request.path, Reply.json({"ok": True}))


@pytest.fixture
def server():
    with Scripted() as emulator:
        yield emulator


@pytest.fixture
def client(server):
    return HttpClient(server.url, service="Box", timeout=TIMEOUT, scrub=lambda text: text)


def test_http__a_connection_is_not_reused_after_a_server_error(server, client):
    # uvicorn's way: the 500 is answered, then the kept-alive connection is dropped without a word.
    server.replies["/create"] = Reply(500, b"Internal Server Error", "text/plain; charset=utf-8",
                                      close_silently=True)
    client.send("GET", "/warm-up")

    failed = client.send("POST", "/create")
    next_create = client.send("POST", "/create-another")  # not safe to send twice: it must go out on a fresh one

    assert (failed.status_code, next_create.status_code) == (500, 200)
    assert server.acted == ["GET /warm-up", "POST /create", "POST /create-another"]


def test_http__a_read_on_a_connection_the_server_closed_is_sent_again_on_a_fresh_one(server, client):
    server.replies["/first"] = Reply.json({"ok": True})
    server.replies["/first"].close_silently = True  # e.g. the server's keep-alive timeout ran out
    client.send("GET", "/first")

    answer = client.send("GET", "/second")

    assert answer.status_code == 200
    assert server.acted == ["GET /first", "GET /second"]


def test_http__a_create_on_a_connection_the_server_closed_is_not_sent_twice(server, client):
    server.replies["/first"] = Reply(200, b"{}", close_silently=True)
    client.send("GET", "/first")

    with pytest.raises(TransientBackendError) as caught:
        client.send("POST", "/create")

    assert caught.value.code == "connection"
    assert server.acted == ["GET /first"]
    assert client.send("POST", "/create").status_code == 200  # the next attempt goes out on a fresh connection


def test_http__a_post_the_adapter_marks_idempotent_is_sent_again(server, client):
    server.replies["/first"] = Reply(200, b"{}", close_silently=True)
    client.send("GET", "/first")

    answer = client.send("POST", "/get_user", idempotent=True)

    assert answer.status_code == 200
    assert server.acted == ["GET /first", "POST /get_user"]


def test_http__a_refused_connection_is_transient_and_not_retried_forever(server, client):
    client.send("GET", "/warm-up")
    server.faults.refuse()
    try:
        with pytest.raises(TransientBackendError) as caught:
            client.send("GET", "/again")
    finally:
        server.faults.restore()

    assert caught.value.code == "connection"
    assert client.send("GET", "/after").status_code == 200


def test_http__a_dropped_answer_closes_the_connection_and_the_next_read_works(server, client):
    client.send("GET", "/warm-up")
    server.faults.drop_after_acting(1, matching=lambda request: request.path == "/lost")

    with pytest.raises(TransientBackendError):
        client.send("POST", "/lost")
    answer = client.send("GET", "/next")

    assert answer.status_code == 200
    assert server.acted == ["GET /warm-up", "POST /lost", "GET /next"]


PROXY_SETTINGS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                  "no_proxy", "NO_PROXY")


def test_http__goes_through_the_proxy_the_environment_names_unless_no_proxy_exempts_the_host(server, monkeypatch):
    for name in PROXY_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    with Scripted() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        through_proxy = HttpClient("http://mail-api.example", service="Box", timeout=TIMEOUT, scrub=lambda text: text)
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        direct = HttpClient(server.url, service="Box", timeout=TIMEOUT, scrub=lambda text: text)
        # The environment is read when a client is made (a worker's adapter): later changes do not reach it.
        monkeypatch.delenv("http_proxy")

        proxied_answer = through_proxy.send("GET", "/status")
        direct_answer = direct.send("GET", "/status")

    assert (proxied_answer.status_code, direct_answer.status_code) == (200, 200)
    assert [(sent.method, sent.headers["host"], sent.path) for sent in proxy.requests] == [
        ("GET", "mail-api.example", "/status")]
    assert server.acted == ["GET /status"]


def test_http__sends_the_cookies_a_server_set_and_the_callers_headers(server, client):
    server.replies["/login"] = Reply(200, b"{}", headers={"Set-Cookie": "session=abc; Path=/"})
    client.send("GET", "/login")

    client.send("POST", "/next", headers={"Authorization": "Bearer token"}, json={"name": "x"})

    sent = server.requests[-1]
    assert sent.headers["cookie"] == "session=abc"
    assert sent.headers["authorization"] == "Bearer token"
    assert sent.headers["user-agent"].startswith("python-requests/")
    assert (sent.headers["content-type"], sent.json()) == ("application/json", {"name": "x"})


@pytest.mark.parametrize(("content_type", "body"), [
    ("text/html; charset=utf-8", "That's not a user (jane@example.org)."),
    ("text/plain", "Invalid quota."),
    ("application/octet-stream", "User already exists."),
])
def test_http__plain_text_is_the_backends_message_whatever_the_content_type(server, client, content_type, body):
    server.replies["/x"] = Reply(400, body.encode(), content_type)

    response = client.send("POST", "/x")
    error = client.error_for(response, client.message(response))

    assert client.message(response) == body
    assert client.describe_body(response) == repr(body)
    assert isinstance(error, PermanentBackendError)
    assert error.message == f"Box rejected the request (HTTP 400): {body}"


@pytest.mark.parametrize("page", [FLASK_404, NGINX_502, "<HTML><BODY><P>gone</P></BODY></HTML>"])
def test_http__only_a_real_html_page_is_called_an_html_page(server, client, page):
    server.replies["/x"] = Reply(404, page.encode(), "text/plain")

    response = client.send("GET", "/x")

    assert client.message(response) is None
    assert client.describe_body(response) == "an HTML page"


@pytest.mark.parametrize(("text", "page"), [
    (FLASK_404, True),
    (NGINX_502, True),
    ("  <!DOCTYPE HTML PUBLIC><p>x", True),
    ("<div><p>a form</p></div>", True),
    ("Use <b>lower case</b> addresses.", False),
    ("<jane@example.org> is not a user.", False),
    ("mail user added\nupdated DNS: example.org\nweb updated\n", False),
])
def test_is_html_page__judges_the_content(text, page):
    assert is_html_page(text) is page
