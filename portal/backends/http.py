"""The HTTP plumbing shared by the requests-based adapters.

One place owns timeouts, the mapping of network failures and HTTP statuses
to typed errors, and the reading of bodies that may not be what they claim,
so that dimail, OpenSRS and Mail-in-a-Box only deal with their own formats.

Connections are pooled and kept alive, which real servers make fragile:

- uvicorn (dimail) drops a kept-alive connection after a 500 without a
  ``Connection: close`` header, so a connection is never reused after a 5xx;
- a kept-alive connection the server closed meanwhile fails the next request
  sent on it. A request that is safe to repeat (a read, or a call the adapter
  marks idempotent) is then sent once more on a fresh connection; any other
  request (a create) fails as a transient error, because the server may have
  acted on it: the adapter's own look-up decides on the next attempt.

A body is judged by what it contains, not by its ``Content-Type``: a box may
send plain text as ``text/html`` (Mail-in-a-Box does for every message), and
only a real HTML page is reported as one.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import NewConnectionError

from .base import (
    BackendError,
    ConfigurationError,
    PermanentBackendError,
    TransientBackendError,
    UnexpectedResponse,
)

log = logging.getLogger(__name__)

_EXCERPT_LENGTH = 300
# Methods a server must be able to receive twice with the effect of once (RFC 9110, 9.2.2).
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_MARKUP = re.compile(r"<\s*(?:head|body|title|h[1-6]|p|div|table|pre|center|hr)\b[^>]*>", re.IGNORECASE)


def is_html_page(text: str) -> bool:
    """Whether a body is a real HTML page (a proxy's or a server's error page), not a message.

    It starts as a document does, or it is clearly made of markup.
    """
    start = text.lstrip()[:200].lower()
    if start.startswith(("<!doctype html", "<html")):
        return True
    return start.startswith("<") and len(_MARKUP.findall(text[:2000])) >= 2


class HttpClient:
    """Calls one HTTP service with a timeout on every request.

    ``service`` names the backend in messages; ``scrub`` masks secrets in any
    text taken from a response before it reaches an error message.
    """

    def __init__(
        self,
        base_url: str,
        *,
        service: str,
        timeout: float,
        scrub: Callable[[str], str],
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"{service}: url must be an http(s) URL, got {base_url!r}")
        if parts.username or parts.password:
            # Credentials in a URL end up in logs and exception texts.
            raise ConfigurationError(f"{service}: put credentials in their own settings, not in the url")
        self.base_url = base_url.rstrip("/")
        self.host = parts.netloc
        self.service = service
        self.timeout = timeout
        self.scrub = scrub
        self._session = requests.Session()
        # The environment's proxy (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY) and CA bundle (REQUESTS_CA_BUNDLE,
        # CURL_CA_BUNDLE) settings are read here, once, as requests would read them for this url on every
        # call (scanning the whole environment twice and looking for a ~/.netrc, which is not read:
        # credentials are the connection's settings). Requests are then prepared and sent with them.
        self._send_options = {
            "timeout": timeout,
            "allow_redirects": False,
            "proxies": requests.utils.get_environ_proxies(self.base_url),
            "verify": os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True,
            "stream": False,
            "cert": None,
        }
        self._session.trust_env = False
        # Whether the pool may hold a kept-alive connection from an earlier answer.
        self._pooled = False

    def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send one request; network failures become TransientBackendError.

        ``idempotent`` says whether the request may be sent twice (default:
        by its method); only such a request is resent, once, when a reused
        connection turns out to be closed.
        """
        repeatable = method.upper() in _IDEMPOTENT_METHODS if idempotent is None else idempotent
        arguments = {"json": json, "data": data, "params": params, "headers": headers, "auth": auth}
        started = time.monotonic()
        try:
            response = self._attempt(method, path, arguments)
        except _ClosedConnection as closed:
            if not repeatable:
                raise closed.error from closed.__cause__
            log.info("%s %s %s: the kept-alive connection was closed; sending again on a new one",
                     self.service, method, path)
            try:
                response = self._attempt(method, path, arguments)
            except _ClosedConnection as again:
                raise again.error from again.__cause__
        if response.status_code >= 500 or response.headers.get("Connection", "").lower() == "close":
            # A server that failed may drop the connection without saying so (uvicorn does).
            self._forget_connections()
        else:
            self._pooled = True
        log.debug(
            "%s %s %s -> %s in %.2f s",
            self.service, method, path, response.status_code, time.monotonic() - started,
        )
        return response

    def _attempt(self, method: str, path: str, arguments: Mapping[str, Any]) -> requests.Response:
        """One try; ``_ClosedConnection`` when a kept-alive connection had been closed under it."""
        try:
            return self._session.send(self._prepare(method, path, arguments), **self._send_options)
        except requests.Timeout as error:
            self._forget_connections()
            log.info("%s %s %s: no answer within %.1f s", self.service, method, path, self.timeout)
            raise TransientBackendError(
                f"{self.service} did not answer within {self.timeout:g} s", code="timeout"
            ) from error
        except requests.RequestException as error:
            reused = self._pooled and not _never_connected(error)
            self._forget_connections()
            log.info("%s %s %s: %s", self.service, method, path, type(error).__name__)
            unreachable = TransientBackendError(
                f"Could not reach {self.service} at {self.host}: the connection failed or closed before an answer",
                code="connection",
            )
            if reused:
                raise _ClosedConnection(unreachable) from error
            raise unreachable from error

    def _prepare(self, method: str, path: str, arguments: Mapping[str, Any]) -> requests.PreparedRequest:
        """The request as the session would prepare it, without merging settings it does not have
        (default auth or query parameters) into each one: its headers, cookies and hooks are added."""
        headers = CaseInsensitiveDict(self._session.headers)
        headers.update(arguments["headers"] or {})
        return requests.Request(method.upper(), self.base_url + path, headers=headers, json=arguments["json"],
                                data=arguments["data"], params=arguments["params"], auth=arguments["auth"],
                                cookies=self._session.cookies, hooks=self._session.hooks).prepare()

    def _forget_connections(self) -> None:
        """Close every pooled connection; the next request opens a fresh one."""
        self._session.close()
        self._pooled = False


    def json(self, response: requests.Response) -> Any:
        """The JSON body, or UnexpectedResponse when it is anything else."""
        try:
            return response.json()
        except ValueError:
            raise UnexpectedResponse(
                f"{self.service} answered HTTP {response.status_code} with "
                f"{self.describe_body(response)} instead of JSON",
                code="unexpected_response",
            ) from None

    def describe_body(self, response: requests.Response) -> str:
        """A short, secret-free account of a body for error messages."""
        text = response.text.strip()
        if not text:
            return "an empty body"
        if is_html_page(text):
            return "an HTML page"
        return repr(self.excerpt(text))

    def message(self, response: requests.Response) -> str | None:
        """The backend's own words in a body, whatever its ``Content-Type`` says; None for a page or nothing."""
        text = response.text.strip()
        if not text or is_html_page(text):
            return None
        return text

    def excerpt(self, text: str) -> str:
        text = self.scrub(" ".join(text.split()))
        return text if len(text) <= _EXCERPT_LENGTH else text[: _EXCERPT_LENGTH - 1] + "…"

    def error_for(
        self,
        response: requests.Response,
        detail: str | None = None,
        *,
        hints: Mapping[str, str] | None = None,
    ) -> BackendError:
        """The typed error for an answer the adapter did not expect.

        ``detail`` is the backend's own explanation when the adapter could
        read one from the body; otherwise a short excerpt of the body is used.
        """
        status = response.status_code
        if detail is None:
            detail = self.describe_body(response)
        else:
            detail = self.excerpt(detail)
        hints = {key: self.excerpt(value) for key, value in (hints or {}).items()}
        if status == 429:
            return TransientBackendError(
                f"{self.service} is rate limiting requests (HTTP 429): {detail}", code="rate_limited"
            )
        if status >= 500:
            return TransientBackendError(
                f"{self.service} failed with HTTP {status}: {detail}", code="server_error"
            )
        if 300 <= status < 400:
            # Redirects are not followed: a server that sends one is reached at another address.
            location = self.excerpt(response.headers.get("Location", "")) or "another address"
            return PermanentBackendError(
                f"{self.service} redirected the request to {location} (HTTP {status}): "
                "check the connection's url", code="redirected"
            )
        if status in (401, 403):
            return PermanentBackendError(
                f"{self.service} refused the credentials (HTTP {status}): {detail}", code="auth"
            )
        if 400 <= status < 500:
            # A 404 stays a plain rejection: from a wrong url it looks the
            # same as from a missing object, and only the adapter can tell
            # the two apart (BackendNotFound lets callers treat it as gone).
            return PermanentBackendError(
                f"{self.service} rejected the request (HTTP {status}): {detail}", code="rejected", hints=hints
            )
        return UnexpectedResponse(
            f"{self.service} answered with unexpected HTTP {status}: {detail}", code="unexpected_response"
        )


class _ClosedConnection(Exception):
    """A request failed on a kept-alive connection; ``error`` is what to raise if it is not sent again."""

    def __init__(self, error: TransientBackendError) -> None:
        super().__init__(error.message)
        self.error = error


def _never_connected(error: requests.RequestException) -> bool:
    """Whether a failure happened before any connection was made (refused, unresolvable):
    nothing was sent, and a kept-alive connection was not the cause."""
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending:
        cause = pending.pop()
        if id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, NewConnectionError):
            return True
        linked = [cause.__cause__, cause.__context__, getattr(cause, "reason", None), *cause.args]
        pending.extend(link for link in linked if isinstance(link, BaseException))
    return False
