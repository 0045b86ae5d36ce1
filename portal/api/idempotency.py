"""``Idempotency-Key`` on creating requests: a retried POST never creates twice.

The key is claimed (in its own committed row) before the work starts, so two copies of the same
request racing each other do the work once; the answer is kept with the key, and a later request
with the same key and the same content gets that answer again. The same key with other content
is refused. The kept answer is sealed (it may hold a one-time onboarding link).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from flask import Response, request
from flask_babel import gettext as _
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from portal.api.problems import problem
from portal.extensions import db
from portal.sealing import seal, unseal
from portal.timeutil import utcnow
from portal.tokens.models import IdempotentRequest

HEADER = "Idempotency-Key"
ANSWERS = b"api-idempotent-answers"
# How long a key is remembered; after that the same key starts a new request.
KEPT_FOR = timedelta(hours=24)


def _fingerprint() -> str:
    """The request as far as its content goes: method, path with its query, media type and body."""
    described = f"{request.method} {request.full_path}\n{request.mimetype}\n".encode()
    return hashlib.sha256(described + request.get_data(cache=True)).hexdigest()


def _replay(row: IdempotentRequest) -> Response:
    if not row.status:
        return problem(409, _("A request with this %(header)s is still being carried out; try again shortly.",
                              header=HEADER))
    body = unseal(ANSWERS, row.body.encode())
    if body is None:
        return problem(409, _("The first answer to this %(header)s can no longer be read; send a new key.",
                              header=HEADER))
    headers = {"Idempotent-Replayed": "true", **({"Location": row.location} if row.location else {})}
    mimetype = "application/problem+json" if row.status >= 400 else "application/json"
    return Response(body, status=row.status, mimetype=mimetype, headers=headers)


def once(token, run) -> Response:
    """Run ``run()`` at most once for this token and key; answer what it answered."""
    key = request.headers.get(HEADER, "").strip()
    if not key:
        return run()
    if len(key) > 255:
        return problem(400, _("%(header)s is at most 255 characters.", header=HEADER))
    fingerprint = _fingerprint()
    db.session.execute(delete(IdempotentRequest).where(IdempotentRequest.token_id == token.id,
                                                       IdempotentRequest.created_at < utcnow() - KEPT_FOR))
    claim = IdempotentRequest(token_id=token.id, key=key, fingerprint=fingerprint)
    db.session.add(claim)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        earlier = db.session.execute(db.select(IdempotentRequest).where(
            IdempotentRequest.token_id == token.id, IdempotentRequest.key == key)).scalar_one()
        if earlier.fingerprint != fingerprint:
            return problem(422, _("This %(header)s was used for another request.", header=HEADER),
                           errors={f"header.{HEADER}": _("already used for a different request")})
        return _replay(earlier)
    try:
        response = run()
    except BaseException:
        _release(claim.id)
        raise
    claim = db.session.get(IdempotentRequest, claim.id)
    if response.status_code >= 500:
        db.session.delete(claim)  # nothing was done: the same key may be tried again
    else:
        claim.status = response.status_code
        claim.body = seal(ANSWERS, response.get_data(as_text=True)).decode()
        claim.location = response.headers.get("Location", "")[:500]
    db.session.commit()
    return response


def _release(claim_id: int) -> None:
    """The work failed before it answered (its transaction is rolled back): free the key, so a
    retry with it is carried out instead of being told it is still under way."""
    db.session.rollback()
    db.session.execute(delete(IdempotentRequest).where(IdempotentRequest.id == claim_id))
    db.session.commit()
