"""The words of the OpenAPI document: reference for developers, in English like the code.

The document's own descriptions (of the API, its headers and the answers any operation may
give) live here; the endpoints' are their docstrings and ``portal.api.schemas``. What the API
answers a caller at run time (problem details) is in the caller's language instead.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

API = ("Every action of the portal's pages, for scripts. Authenticate with an API token made in an account's "
       "Settings: `Authorization: Bearer <token>`. A token acts as its creator within its scopes, on its own "
       "account only.")


class IdempotencyHeaders(BaseModel):
    idempotency_key: str | None = Field(None, alias="Idempotency-Key", max_length=255,
                                        description="Send the same key again and the request is not done twice.")


PROBLEM_FIELD = "The field, as a dotted path in the request (``body.name``, ``query.page``)."
PROBLEM_ERRORS = "What is wrong with each field."

# Answers any operation may give, whatever it does.
GENERIC_ANSWERS = {
    "400": "The request cannot be read: a value holds a NUL character or half of a UTF-16 surrogate pair, "
           "or the body is not a JSON object.",
    "401": "No valid token: missing, wrong, revoked, expired or used from a network it does not allow.",
    "403": "The token (or its maker) may not do this.",
    "404": "No such account for this token, or no such object in it.",
    "422": "A path or query value is not valid; ``errors`` names each.",
    "429": "Too many requests from this token; wait ``Retry-After`` seconds.",
}
# Answers an operation with a body may give as well.
BODY_ANSWERS = {
    "409": "The state of an object refuses the action, or a request with this Idempotency-Key is still running.",
    "413": "The body is too large.",
    "415": "The body is not sent as application/json.",
}
