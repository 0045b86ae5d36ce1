"""scim2-tester, the python-scim project's compliance checker, run against the portal served on
loopback: it reads the discovery endpoints, then creates, reads, lists, searches, replaces,
patches (add, remove, replace on every attribute the schemas declare) and deletes users and
groups. No check may fail for what the ServiceProviderConfig declares."""

from __future__ import annotations

import itertools

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from tests.scim.conftest import make_token


@pytest.fixture
def app_settings():
    return {"API_RATE_LIMIT": 100_000}  # the checker sends a few hundred requests in a few seconds


class OnTheDomain(SyncSCIMClient):
    """The checker makes userNames of random UUIDs; the portal only takes addresses on the
    account's enabled domains, so each user it creates gets a fresh one there."""

    addresses = (f"checker-{number}@example.org" for number in itertools.count(1))

    def create(self, resource=None, **kwargs):
        if getattr(resource, "user_name", None) is not None:
            resource.user_name = next(self.addresses)
        return super().create(resource, **kwargs)


def test_scim2_tester__finds_no_failure_in_what_the_service_provider_config_declares(live_server, owner, account,
                                                                                   domain):
    raw = make_token(owner, account)
    with httpx2.Client(base_url=live_server.url("/scim/v2"), headers={"Authorization": f"Bearer {raw}"},
                       timeout=20) as http:
        results = check_server(OnTheDomain(http))
    failures = [result for result in results if result.status in (Status.ERROR, Status.CRITICAL)]
    ran = [result for result in results if result.status != Status.SKIPPED]
    assert not failures, "\n\n".join(f"{result.resource_type or ''} {result.title}: {result.reason}\n"
                                     f"{str(result.data)[:1500]}" for result in failures)
    assert len(ran) > 60
    titles = {result.title for result in ran}
    assert {"check_add_attribute", "check_remove_attribute", "check_replace_attribute", "object_replacement",
            "object_deletion", "object_query_with_attributes", "random_url"} <= titles
