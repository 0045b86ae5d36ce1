"""SMTP sinks that behave like particular mail servers: one that refuses or
defers, one that is slow, one that wants a login, one that speaks TLS. All are
the real aiosmtpd server on loopback, as ``tests/servers/smtp.py``'s sink."""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
import ssl
import subprocess
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.servers.smtp import SmtpSink


class _ScriptedHandler:
    def __init__(self, sink: "ScriptedSmtpSink"):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.sink.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.sink.data_delay:
            await asyncio.sleep(self.sink.data_delay)
        if self.sink.data_reply:
            return self.sink.data_reply
        self.sink.collect(envelope.content)
        return "250 OK"


class ScriptedSmtpSink(SmtpSink):
    """``rcpt_replies`` answers RCPT TO for chosen addresses (e.g. ``"550 5.1.1 no such
    user"``); ``data_reply`` answers every DATA; ``data_delay`` waits before
    answering DATA; ``login=(user, password)`` requires AUTH (over plain text, as
    a test server may); ``tls`` is ``"starttls"`` or ``"implicit"`` with ``certificate``."""

    def __init__(self, port: int | None = None, *, rcpt_replies: dict[str, str] | None = None,
                 data_reply: str | None = None, data_delay: float = 0.0,
                 login: tuple[str, str] | None = None, tls: str | None = None,
                 certificate: "Certificate | None" = None):
        super().__init__(port)
        self.rcpt_replies = {address.lower(): reply for address, reply in (rcpt_replies or {}).items()}
        self.data_reply = data_reply
        self.data_delay = data_delay
        self.login = login
        self.tls = tls
        self.certificate = certificate
        self.logins: list[tuple[str, str, bool]] = []  # (user, password, accepted)
        self.secured_sessions = 0

    def collect(self, content: bytes) -> None:
        with self.lock:
            self.messages.append(email.message_from_bytes(content, policy=email.policy.default))

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        accepted = (user, password) == self.login
        with self.lock:
            self.logins.append((user, password, accepted))
        # handled=False lets aiosmtpd answer a refusal with its 535.
        return AuthResult(success=accepted, handled=False)

    def start(self) -> "ScriptedSmtpSink":
        options: dict = {}
        if self.login:
            # aiosmtpd counts only STARTTLS as TLS for AUTH; implicit TLS is encrypted too.
            options.update(authenticator=self._authenticate, auth_required=True,
                           auth_require_tls=self.tls == "starttls")
        if self.tls == "starttls":
            options.update(tls_context=self.certificate.server_context(), require_starttls=True)
        elif self.tls == "implicit":
            options.update(ssl_context=self.certificate.server_context())
        self._controller = Controller(_ScriptedHandler(self), hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()
        return self

    def smtp_url(self, scheme: str = "smtp", userinfo: str = "") -> str:
        """The sink's address as an SMTP_URL, e.g. ``smtps://user:pass@127.0.0.1:port``."""
        return f"{scheme}://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"


class Certificate:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""

    def __init__(self, folder: Path):
        self.cert = folder / "cert.pem"
        self.key = folder / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(self.key), "-out", str(self.cert)],
            check=True, capture_output=True)

    @staticmethod
    def available() -> bool:
        return shutil.which("openssl") is not None

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context
