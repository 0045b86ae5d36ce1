"""What every backend emulator shares: a real HTTP server on loopback.

An emulator listens on 127.0.0.1 (port chosen by the system), runs in a
background thread, keeps its state in memory, and records every request.
``emulator.faults`` makes it misbehave the way real servers do:

- ``slow(seconds)``: wait before handling each request;
- ``fail_5xx(n=None)``: answer the next ``n`` requests (or all) with a 503
  HTML page, without acting;
- ``refuse()`` / ``restore()``: close the listening socket, so clients see
  "connection refused", then listen again on the same port;
- ``drop_after_acting(n=1, matching=None)``: perform the next ``n`` requests
  (those ``matching`` accepts, when given) and close the connection without
  answering, as when a response is lost on the way back;
- ``garbage()``: answer every request with an HTML 200 page, without acting;
- ``reset()``: behave again.

Connections are HTTP/1.1 and kept alive, as real servers keep them, so a
client's pool reuses them. A reply with ``close_silently`` set is written
normally, without a ``Connection: close`` header, and the server then drops
the connection: the next request sent on it is read, never acted on, and
the connection closes without an answer (uvicorn after a 500, as observed,
in its worst case). Refusing or stopping closes every open connection too.

Subclasses implement ``handle(request) -> Reply``; it runs under
``emulator.lock`` so state changes are atomic.
"""

from __future__ import annotations

import abc
import base64
import json
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

GARBAGE_PAGE = b"<!DOCTYPE html><html><head><title>Welcome</title></head><body>It works!</body></html>"
UNAVAILABLE_PAGE = b"<html><body><h1>503 Service Unavailable</h1>No server is available.</body></html>"


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """The form fields, read only from a form-encoded body (as Flask does)."""
        if not self.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return {}
        return {key: values[-1] for key, values in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def basic_auth(self) -> tuple[str, str] | None:
        scheme, _, value = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        return user, password


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    close_silently: bool = False

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Reply:
        return cls(status, json.dumps(data).encode())

    @classmethod
    def text(cls, text: str, status: int = 200) -> Reply:
        return cls(status, text.encode(), "text/plain; charset=utf-8")


class Faults:
    """The fault switch of one emulator."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.delay = 0.0
            self._failures: float = 0
            self._drops = 0
            self._drop_matching: Callable[[RecordedRequest], bool] | None = None
            self._garbage = False

    def slow(self, seconds: float) -> None:
        self.delay = seconds

    def fail_5xx(self, n: int | None = None) -> None:
        with self._lock:
            self._failures = math.inf if n is None else n

    def drop_after_acting(self, n: int = 1, matching: Callable[[RecordedRequest], bool] | None = None) -> None:
        with self._lock:
            self._drops = n
            self._drop_matching = matching

    def garbage(self) -> None:
        self._garbage = True

    def refuse(self) -> None:
        self._emulator._close_listener()

    def restore(self) -> None:
        self._emulator._open_listener()

    def take(self, request: RecordedRequest) -> str | None:
        """The fault to apply to ``request``: "fail", "garbage", "drop" or None."""
        with self._lock:
            if self._failures > 0:
                self._failures -= 1
                return "fail"
            if self._garbage:
                return "garbage"
            if self._drops > 0 and (self._drop_matching is None or self._drop_matching(request)):
                self._drops -= 1
                return "drop"
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm holds
        # the body back until the client acknowledges, which a kept-alive client delays.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)
        self._doomed = False

    def finish(self) -> None:
        self.server.untrack(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        emulator = self.server.emulator
        length = int(self.headers.get("Content-Length") or 0)
        split = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query),
            headers={key.lower(): value for key, value in self.headers.items()},
            body=self.rfile.read(length),
        )
        if self._doomed:
            # The server already dropped this connection: nothing is acted on or answered.
            self.close_connection = True
            return
        emulator.requests.append(request)
        if emulator.faults.delay:
            time.sleep(emulator.faults.delay)
        fault = emulator.faults.take(request)
        if fault == "fail":
            self._write(Reply(503, UNAVAILABLE_PAGE, "text/html"))
        elif fault == "garbage":
            self._write(Reply(200, GARBAGE_PAGE, "text/html"))
        else:
            with emulator.lock:
                reply = emulator.handle(request)
            if fault == "drop":
                # The answer is lost on the way back: the connection goes with it.
                self.close_connection = True
            else:
                self._write(reply)
                self._doomed = reply.close_silently

    def _write(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            if reply.content_type:
                self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout); nothing to answer to

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: Emulator

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def track(self, connection: socket.socket) -> None:
        with self._open_lock:
            self._open.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(connection)

    def close_connections(self) -> None:
        """Hang up on every kept-alive connection, as a server that goes away does."""
        with self._open_lock:
            connections, self._open = set(self._open), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address) -> None:
        pass  # clients that time out and hang up are part of the tests


class Emulator(abc.ABC):
    """Base of the backend emulators; see the module docstring."""

    url_path = ""

    def __init__(self) -> None:
        self.faults = Faults(self)
        self.requests: list[RecordedRequest] = []
        self.lock = threading.RLock()
        self._server: _Server | None = None
        self._port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}{self.url_path}"

    def start(self) -> Emulator:
        self._open_listener()
        return self

    def stop(self) -> None:
        self._close_listener()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @abc.abstractmethod
    def handle(self, request: RecordedRequest) -> Reply:
        """Answer one request (runs under ``self.lock``)."""

    def _open_listener(self) -> None:
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.emulator = self
        self._port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()

    def _close_listener(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
            self._server = None
