"""A NUL character written as ``\\u0000`` in an API body reaches Python as text, which PostgreSQL
refuses in any text column: the request is a 400 that says why, on SQLite too."""

from __future__ import annotations

import json

from portal.extensions import db
from portal.mailboxes.models import Mailbox
from tests.api.conftest import bearer


def test_api_body__a_nul_anywhere_is_refused(client, world, token):
    url = f"/api/v1/accounts/{world['account'].id}/mailboxes"
    for body in ({"local_part": "te\u0000am", "domain_id": world["domain"].id},
                 {"local_part": "team2", "domain_id": world["domain"].id, "display_name": "\u0000"},
                 {"local_part": "team3", "domain_id": world["domain"].id, "\u0000": "x"},
                 # Half of a surrogate pair (JSON "\ud800" alone): no database driver can encode it.
                 {"local_part": "team4", "domain_id": world["domain"].id, "display_name": "A\ud800"},
                 {"local_part": "team5", "domain_id": world["domain"].id, "\udfff": "x"}):
        response = client.post(url, data=json.dumps(body), content_type="application/json",
                               headers={**bearer(token), "Idempotency-Key": json.dumps(body)[:60]})
        assert response.status_code == 400, response.get_data(as_text=True)
        assert "NUL" in response.get_json()["detail"]
    assert not db.session.execute(db.select(Mailbox).where(Mailbox.local_part.like("team_%"))).scalars().all()
