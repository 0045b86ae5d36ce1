"""The HTTP plumbing shared by the requests-based adapters.

One place owns timeouts, the mapping of network failures and HTTP statuses
to typed errors, and the reading of bodies that may not be what they claim,
so that dimail, OpenSRS and Mail-in-a-Box only deal with their own formats.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from .base import (
    BackendError,
    ConfigurationError,
    PermanentBackendError,
    TransientBackendError,
    UnexpectedResponse,
)

log = logging.getLogger(__name__)

_EXCERPT_LENGTH = 300


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
    ) -> requests.Response:
        """Send one request; network failures become TransientBackendError."""
        started = time.monotonic()
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                json=json,
                data=data,
                params=params,
                headers=headers,
                auth=auth,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout as error:
            log.info("%s %s %s: no answer within %.1f s", self.service, method, path, self.timeout)
            raise TransientBackendError(
                f"{self.service} did not answer within {self.timeout:g} s", code="timeout"
            ) from error
        except requests.RequestException as error:
            log.info("%s %s %s: %s", self.service, method, path, type(error).__name__)
            raise TransientBackendError(
                f"Could not reach {self.service} at {self.host}: the connection failed "
                "or closed before an answer",
                code="connection",
            ) from error
        log.debug(
            "%s %s %s -> %s in %.2f s",
            self.service, method, path, response.status_code, time.monotonic() - started,
        )
        return response

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
        if "html" in response.headers.get("Content-Type", "") or text.startswith("<"):
            return "an HTML page"
        return repr(self.excerpt(text))

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
