"""Attacks on the SCIM endpoint from another account's identity provider token: creating people
tells nothing about who has a profile beyond the account's own domains, and hostile filters are
SCIM 400s, never a server error."""

from __future__ import annotations

import pytest

from portal.extensions import db
from tests.mailboxes.conftest import enabled_domain
from tests.scim.conftest import ERROR_SCHEMA, Scim, domain, make_token, new_user, scim, token  # noqa: F401  (fixtures)


@pytest.fixture
def intruder(client, make) -> Scim:
    """Account B's identity provider, with its own proven domain."""
    owner_b = make.user("boss@b-owners.example")
    account_b = make.account(owner_b, "B")
    enabled_domain(owner_b, account_b, "b.example")
    return Scim(client, make_token(owner_b, account_b, name="B's IdP"))


def test_create__an_address_off_the_accounts_domains_answers_the_same_whether_it_has_a_profile_or_not(
        scim, intruder, make, owner):
    """B learns nothing about A's people (or anyone's) by trying to create them."""
    make.user("ceo@example.org")  # a person of A's proven domain
    make.user("someone@elsewhere.example")
    answers = {}
    for address in ("ceo@example.org", "nobody@example.org", owner.email, "someone@elsewhere.example",
                    "no-one@elsewhere.example"):
        response = intruder.post("/Users", new_user(address))
        document = response.get_json()
        assert document["schemas"] == [ERROR_SCHEMA]
        answers[address] = (response.status_code, document.get("scimType"),
                            document["detail"].replace(address, "<address>").replace(address.split("@")[1], "<domain>"))
    assert len(set(answers.values())) == 1, answers
    assert next(iter(answers.values()))[0] == 400


def test_create__an_existing_person_of_the_accounts_own_domain_is_still_a_409(scim, make):
    make.user("already@example.org")
    response = scim.post("/Users", new_user("already@example.org"))
    assert response.status_code == 409 and response.get_json()["scimType"] == "uniqueness"


@pytest.mark.parametrize("joiner", [" or ", " and "])
def test_filter__thousands_of_terms_are_a_400_invalid_filter(scim, joiner):
    expression = joiner.join(['userName eq "x@example.org"'] * 3000)
    for response in (scim.get("/Users", filter=expression),
                     scim.post("/Users/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                                                  "filter": expression}),
                     scim.get("/Groups", filter=joiner.join(['displayName eq "x"'] * 3000))):
        db.session.rollback()
        assert response.status_code == 400, response.get_data(as_text=True)[:300]
        assert response.get_json()["scimType"] == "invalidFilter"


def test_filter__as_many_terms_as_a_provider_sends_still_work(scim):
    scim.post("/Users", new_user("jane.doe@example.org"))
    expression = " or ".join([f'userName eq "p{number}@example.org"' for number in range(49)]
                             + ['userName eq "jane.doe@example.org"'])
    response = scim.get("/Users", filter=expression)
    assert response.status_code == 200 and response.get_json()["totalResults"] == 1
