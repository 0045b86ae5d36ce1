"""The mailbox list through the API is read within the token's scopes: a token made for domains,
the audit log or an identity provider lists no mailbox (403, as a single mailbox answers), and a
mailbox token lists them (a review)."""

from __future__ import annotations

import pytest

from portal.accounts.services import add_member
from portal.extensions import db
from portal.mailboxes.models import PERSONAL
from portal.mailboxes.services import create_mailbox
from portal.tokens import services as tokens
from tests.api.conftest import bearer, world  # noqa: F401  (fixture)


@pytest.mark.parametrize("scopes", [{"domains:read"}, {"audit:read"}, {"scim:write"}, {"account:read"},
                                    {"users:read", "roles:read"}])
def test_a_token_for_another_area_lists_no_mailbox(client, world, make, scopes):
    person = make.user("secret.person@example.org", name="Secret Person")
    add_member(world["account"], person)
    create_mailbox(world["owner"], world["account"], world["domain"], "secret.person", kind=PERSONAL, owner=person)
    _, raw = tokens.create(world["owner"], world["account"], name="elsewhere", scopes=scopes, expires_at=None)
    db.session.commit()
    account_id = world["account"].id
    single = client.get(f"/api/v1/accounts/{account_id}/mailboxes/{world['mailbox'].id}", headers=bearer(raw))
    listed = client.get(f"/api/v1/accounts/{account_id}/mailboxes", headers=bearer(raw))
    body = listed.get_data(as_text=True)
    assert single.status_code == listed.status_code == 403, (single.status_code, listed.status_code, body[:300])
    assert "team@example.org" not in body and "secret.person" not in body


def test_a_mailbox_token_lists_the_mailboxes(client, world):
    _, raw = tokens.create(world["owner"], world["account"], name="mail", scopes={"mailboxes:read"}, expires_at=None)
    db.session.commit()
    listed = client.get(f"/api/v1/accounts/{world['account'].id}/mailboxes", headers=bearer(raw))
    assert listed.status_code == 200
    assert [item["address"] for item in listed.get_json()["items"]] == ["team@example.org"]
