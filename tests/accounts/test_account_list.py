"""The accounts a person may open, at the scale of a large instance: the switcher at the top of
every page names a few, the accounts page lists them all in pages with a search, and neither
costs more statements with 60 accounts than with 3; a person sees only their own accounts."""

from __future__ import annotations

import re

from sqlalchemy import event, insert

from portal import SWITCHER_ACCOUNTS
from portal.accounts.models import Account
from portal.extensions import db


def _count_statements(client, path: str) -> tuple[int, str]:
    statements = []

    def count(_connection, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        answer = client.get(path)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert answer.status_code == 200
    return len(statements), answer.get_data(as_text=True)


def _add_accounts(first: int, last: int) -> None:
    db.session.execute(insert(Account.__table__), [{"name": f"Shop {n:03d}"} for n in range(first, last)])
    db.session.commit()


def _switcher(html: str) -> list[str]:
    menu = re.search(r'<nav class="switcher".*?</nav>', html, re.S)
    return re.findall(r'<li><a href="/accounts/\d+/"[^>]*>([^<]+)</a></li>', menu.group(0)) if menu else []


def _listed(html: str) -> list[str]:
    """The account names in the list (from its first line to the end of the page or fragment)."""
    return re.findall(r'<td><a href="/accounts/\d+/">([^<]+)</a></td>', html.split('<div id="account-list">', 1)[1])


def test_superadmin__switcher_names_a_few_and_the_list_pages_them_all(client, auth, make):
    admin = make.user("root@example.org", superadmin=True)
    make.account(make.user("someone@example.org"), "Acme")
    _add_accounts(0, 2)
    auth.login(admin.email)
    few, html = _count_statements(client, "/accounts")
    assert _listed(html) == ["Acme", "Shop 000", "Shop 001"] and "More accounts" not in html
    _add_accounts(2, 60)
    many, html = _count_statements(client, "/accounts")
    assert many == few
    assert _listed(html) == ["Acme"] + [f"Shop {n:03d}" for n in range(49)]
    assert _switcher(html) == ["Acme"] + [f"Shop {n:03d}" for n in range(SWITCHER_ACCOUNTS - 1)]
    assert "More accounts… / new account" in html
    second = client.get("/accounts", query_string={"page": 2}).get_data(as_text=True)
    assert _listed(second) == [f"Shop {n:03d}" for n in range(49, 60)]
    found = client.get("/accounts", query_string={"q": "SHOP 05"}).get_data(as_text=True)
    assert _listed(found) == [f"Shop {n:03d}" for n in range(50, 60)]
    backwards = client.get("/accounts", query_string={"sort": "name", "dir": "desc"}).get_data(as_text=True)
    assert _listed(backwards)[:2] == ["Shop 059", "Shop 058"]
    # An account page's switcher is bounded too, whatever the page.
    acme = db.session.execute(db.select(Account.id).where(Account.name == "Acme")).scalar_one()
    _, page = _count_statements(client, f"/accounts/{acme}/")
    assert len(_switcher(page)) == SWITCHER_ACCOUNTS


def test_accounts_page__finds_a_name_in_any_case_and_any_languages_capitals(client, auth, make, owner, account):
    make.account(owner, "École Ærø-Straße")
    auth.login(owner.email)
    for text in ("école", "ÉCOLE", "ærø", "STRASSE", "straße"):
        found = client.get("/accounts", query_string={"q": text}).get_data(as_text=True)
        assert _listed(found) == ["École Ærø-Straße"], text


def test_member__sees_and_finds_only_their_own_accounts(client, auth, make, owner, account):
    make.account(owner, "Second")
    make.account(make.user("stranger@example.org"), "Stranger's")
    _add_accounts(0, 20)
    auth.login(owner.email)
    html = client.get("/accounts").get_data(as_text=True)
    assert _listed(html) == ["Acme", "Second"] and _switcher(html) == ["Acme", "Second"]
    assert "More accounts" not in html
    for text in ("Stranger", "shop", "%", "_"):
        found = client.get("/accounts", query_string={"q": text}).get_data(as_text=True)
        assert _listed(found) == [], text
        assert "No account matches this search." in found


def test_home__opens_the_remembered_account_only_while_the_person_may(client, auth, make, owner, account):
    other = make.account(owner, "Second")
    auth.login(owner.email)
    client.get(f"/accounts/{other.id}/")  # remembered
    assert client.get("/").headers["Location"].endswith(f"/accounts/{other.id}/")
    stranger = make.account(make.user("stranger@example.org"), "Stranger's")
    with client.session_transaction() as session:
        session["account_id"] = stranger.id
    assert client.get("/").headers["Location"].endswith("/accounts")
    with client.session_transaction() as session:
        session["account_id"] = "1 OR 1=1"
    assert client.get("/").headers["Location"].endswith("/accounts")


def test_home__the_only_account_opens_by_itself(client, auth, owner, account):
    auth.login(owner.email)
    assert client.get("/").headers["Location"].endswith(f"/accounts/{account.id}/")


def test_accounts_page__htmx_search_swaps_the_list_alone(client, auth, owner, account, make):
    make.account(owner, "Second")
    auth.login(owner.email)
    answer = client.get("/accounts", query_string={"q": "sec"},
                        headers={"HX-Request": "true", "HX-Target": "account-list"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and html.lstrip().startswith('<div id="account-list">')
    assert _listed(html) == ["Second"] and "<h1>" not in html
