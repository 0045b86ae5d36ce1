"""Requests per token are limited across every process (the count is in the database)."""

from __future__ import annotations

import pytest

from tests.api.conftest import bearer


@pytest.fixture
def app_settings():
    return {"API_RATE_LIMIT": 5}


def test_rate_limit__429_with_retry_after_beyond_the_tokens_share(client, world, token):
    url = f"/api/v1/accounts/{world['account'].id}"
    statuses = [client.get(url, headers=bearer(token)).status_code for _ in range(7)]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
    response = client.get(url, headers=bearer(token))
    assert 1 <= int(response.headers["Retry-After"]) <= 60 and response.mimetype == "application/problem+json"
