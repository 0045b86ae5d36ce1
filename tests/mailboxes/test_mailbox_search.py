"""Searching mailboxes (the Mailboxes list, the mailbox picker): any part of the address or the
display name, in any case and any language's capitals, wildcards taken literally, only the
account's own mailboxes; the search follows a new display name and covers bulk-inserted rows."""

from __future__ import annotations

from sqlalchemy import insert

from portal.extensions import db
from portal.mailboxes import services
from portal.mailboxes.models import Mailbox, mailbox_search_text
from tests.mailboxes.conftest import enabled_domain


def _listed(client, account, text: str) -> str:
    answer = client.get(f"/accounts/{account.id}/mailboxes", query_string={"q": text})
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def test_mailboxes_list__finds_any_part_of_address_or_display_name_in_any_case(client, auth, owner, account, make):
    domain = enabled_domain(owner, account)
    services.create_mailbox(owner, account, domain, "accueil", display_name="Élodie Ærø-Straße")
    services.create_mailbox(owner, account, domain, "compta", display_name="Bob Martin")
    other_owner = make.user("other@example.net")
    other = make.account(other_owner, "Elsewhere")
    services.create_mailbox(other_owner, other, enabled_domain(other_owner, other, "example.net"), "elodie",
                            display_name="Élodie Other")
    db.session.commit()
    auth.login(owner.email)
    for text in ("élodie", "ÉLODIE", "Accueil@Example", "ærø", "STRASSE", "straße"):
        page = _listed(client, account, text)
        assert "accueil@example.org" in page, text
        assert "compta@example.org" not in page and "elodie@example.net" not in page, text
    assert "compta@example.org" in _listed(client, account, "MARTIN")
    for text in ("%", "_ccueil", "accueil\ncompta", "nobody"):
        page = _listed(client, account, text)
        assert "accueil@example.org" not in page and "compta@example.org" not in page, text
    picked = client.get(f"/accounts/{account.id}/mailboxes/pick", query_string={"mailbox_q": "ÉLO"})
    assert "accueil@example.org" in picked.get_data(as_text=True)


def test_mailboxes_list__search_follows_a_new_display_name_and_bulk_inserts(client, auth, owner, account):
    domain = enabled_domain(owner, account)
    mailbox = services.create_mailbox(owner, account, domain, "team", display_name="Ada Lovelace")
    db.session.commit()
    mailbox.display_name = "Grace Hopper"
    db.session.execute(insert(Mailbox.__table__), [{
        "account_id": account.id, "domain_id": domain.id, "local_part": "bulk", "address": "bulk@example.org",
        "kind": "shared", "display_name": "Zoë Bulk", "status": "enabled"}])
    db.session.commit()
    auth.login(owner.email)
    assert "team@example.org" in _listed(client, account, "hopper")
    assert "team@example.org" not in _listed(client, account, "lovelace")
    assert "bulk@example.org" in _listed(client, account, "ZOË")
    assert db.session.get(Mailbox, mailbox.id).search_text == mailbox_search_text("team@example.org", "Grace Hopper")
