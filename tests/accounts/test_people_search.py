"""Searching people (the Users list, the owner picker): any part of the address or the name, in
any case and any language's capitals, wildcards taken literally, only the account's own people;
the search follows renames and covers people inserted in bulk (an import)."""

from __future__ import annotations

from sqlalchemy import insert

from portal.accounts.models import Membership
from portal.auth.models import User, search_text
from portal.extensions import db


def _listed(client, account, text: str) -> str:
    answer = client.get(f"/accounts/{account.id}/members", query_string={"q": text})
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def test_users_list__finds_any_part_of_address_or_name_in_any_case(client, auth, account, owner, make):
    make.member(account, make.user("elodie@example.org", name="Élodie Ærø-Straße"))
    make.member(account, make.user("bob@example.org", name="Bob Martin"))
    make.member(make.account(make.user("stranger@example.org"), "Elsewhere"),
                make.user("elodie.other@example.org", name="Élodie Other"))
    auth.login(owner.email)
    for text in ("élodie", "ÉLODIE", "Elodie@Example", "ærø", "STRASSE", "straße"):
        page = _listed(client, account, text)
        assert "elodie@example.org" in page, text
        assert "bob@example.org" not in page and "elodie.other@example.org" not in page, text
    assert "bob@example.org" in _listed(client, account, "MARTIN")
    for text in ("%", "_lodie", "elodie\nbob", "nobody"):
        page = _listed(client, account, text)
        assert "elodie@example.org" not in page and "bob@example.org" not in page, text


def test_users_list__search_follows_a_rename(client, auth, account, owner, make):
    """(An address never changes: see test_a_persons_address_does_not_change.)"""
    person = make.user("first@example.org", name="Ada Lovelace")
    make.member(account, person)
    person.name = "Grace Hopper"
    db.session.commit()
    auth.login(owner.email)
    assert "first@example.org" in _listed(client, account, "hopper")
    assert "first@example.org" not in _listed(client, account, "lovelace")
    assert db.session.get(User, person.id).search_text == search_text("first@example.org", "Grace Hopper")


def test_users_list__people_inserted_in_bulk_are_found(client, auth, account, owner):
    people = db.session.execute(insert(User.__table__).returning(User.id, User.email), [
        {"email": f"bulk{n}@example.org", "name": f"Zoë Bulk {n}"} for n in range(3)]).all()
    db.session.execute(insert(Membership.__table__), [{"account_id": account.id, "user_id": user_id, "email": email}
                                                       for user_id, email in people])
    db.session.commit()
    auth.login(owner.email)
    page = _listed(client, account, "ZOË BULK 1")
    assert "bulk1@example.org" in page and "bulk0@example.org" not in page


def test_owner_picker__finds_members_only_in_any_case(client, auth, account, owner, make):
    make.member(account, make.user("elodie@example.org", name="Élodie Ærø"))
    make.user("elodie.outsider@example.org", name="Élodie Outsider")
    auth.login(owner.email)
    answer = client.get(f"/accounts/{account.id}/mailboxes/pick-owner", query_string={"owner_q": "ÉLOD"},
                        headers={"HX-Request": "true"})
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert "elodie@example.org" in page and "elodie.outsider@example.org" not in page


def test_a_name_that_lengthens_when_case_folded_is_kept_and_found(client, auth, account, owner, make):
    # "ß" folds to "ss" and "ΐ" to three characters: the longest name and address still fit.
    person = make.user(("x" * 64) + "@" + ("d" * 60) + ".example.org", name="ß" * 100 + "ΐ" * 100)
    make.member(account, person)
    db.session.commit()
    assert len(db.session.get(User, person.id).search_text) > 454
    auth.login(owner.email)
    assert person.email in _listed(client, account, "SSSS")
