"""A real SMTP server on loopback that keeps what it receives, for tests."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
import time

from aiosmtpd.controller import Controller


class _Collector:
    def __init__(self, sink: "SmtpSink"):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.sink.lock:
            self.sink.messages.append(message)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpSink:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.messages: list = []
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> "SmtpSink":
        self._controller = Controller(_Collector(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()

    def to(self, address: str) -> list:
        with self.lock:
            return [m for m in self.messages if address.lower() in str(m["To"]).lower()]

    def wait_for(self, address: str, timeout: float = 10.0, count: int = 1) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no message for {address} within {timeout}s; have {[str(m['To']) for m in self.messages]}")

    @staticmethod
    def text(message) -> str:
        return message.get_body(preferencelist=("plain",)).get_content()

    @staticmethod
    def html(message) -> str:
        return message.get_body(preferencelist=("html",)).get_content()

    @classmethod
    def links(cls, message) -> list[str]:
        return re.findall(r"https?://\S+", cls.text(message))
