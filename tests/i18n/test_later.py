"""Texts stored to be read later (``later``) come out in the reader's language, filled in, and no
stored value, however made, breaks the page that shows it."""

from __future__ import annotations

import pytest

from portal.extensions import db
from portal.i18n import LATER, in_language, later, later_plural, shown
from portal.mailboxes.models import FAILED, Mailbox
from tests.mailboxes.conftest import enabled_domain

NBSP = "\u00a0"


def test_later__is_translated_when_shown_with_its_values_lists_and_plurals(app):
    waiting = later("Waits for %(domain)s to be enabled; it is created on the backend then.", domain="example.org")
    missing = later("Still missing or wrong: %(records)s. Publish them as shown below.", records=[
        later("%(type)s %(name)s (nothing found)", type="MX", name="example.org"),
        later("%(type)s %(name)s (found %(found)s instead)", type="TXT", name="example.org", found="v=spf1 -all")])
    gave_up = later_plural("Gave up after %(num)d attempt: %(detail)s", "Gave up after %(num)d attempts: %(detail)s",
                           3, detail="refused")
    with in_language("en"):
        assert shown(waiting) == "Waits for example.org to be enabled; it is created on the backend then."
        assert shown(missing) == ("Still missing or wrong: MX example.org (nothing found); TXT example.org "
                                  "(found v=spf1 -all instead). Publish them as shown below.")
        assert shown(gave_up) == "Gave up after 3 attempts: refused"
    with in_language("fr"):
        assert shown(waiting).startswith("Attend l’activation de example.org")
        assert f"(rien de trouvé){NBSP}; TXT" in shown(missing)
        assert shown(missing).startswith(f"Toujours absents ou incorrects{NBSP}: MX")
        assert shown(gave_up).startswith("Abandon après 3 tentatives")
    # Without an app (an adapter's tests, a script): the English written in the code.
    assert shown(waiting).startswith("Waits for example.org")


@pytest.mark.parametrize("stored", [
    LATER, LATER + "{", LATER + "[]", LATER + "[1, 2]", LATER + '["%(a)d", {"a": "x"}]', LATER + '["%(a)s", {}]',
    LATER + '["%(a)s", {"a": [[[[1]]]]}]', LATER + '["x", "y", "z", "w"]', LATER + "[" * 5000 + "]" * 5000,
    LATER + '["%(a)s", {"a": "' + (LATER + '[\\"%(a)s\\", {}]').replace('"', '\\"') + '"}]',
    LATER + "[1,{}]", LATER + "[null,{}]", LATER + "[true,{}]", LATER + '["%(a)s",{"a":{"later":[1,2]}}]',
    LATER + '["%(a)s",{"a":{"when":"yesterday"}}]', LATER + '["x",{},"y","many"]',
    LATER + '["%(a)99999999999s",{"a":"x"}]', LATER + '["%(a)*s",{"a":"x"}]', LATER + '["%s %d",{"a":"x"}]',
    LATER + '["x",{},"xs",Infinity]', LATER + '["%(a)d",{"a":Infinity}]',
    LATER + '["%(a)s",{"a":{"when":"9999-12-31T23:30:00"}}]',
    "a backend's own words", "", None,
])
def test_shown__any_stored_value_reads_as_text_and_never_fails(app, stored):
    """Review: ``[1,{}]`` came back as the number 1 (the API answered 500), and a width made the
    page build a string of 100 GB (MemoryError)."""
    for language in ("fr", "en"):
        with in_language(language):
            assert isinstance(shown(stored), str) and len(shown(stored)) < 50_000


def test_later__a_value_put_in_is_shown_as_it_came_never_read_as_a_stored_text(app):
    """Review: a TXT record of the domain's own DNS that started with the mark was shown as the
    portal's own words ("Every record is published…"), or blew the page up with a width."""
    spoof = LATER + '["Every record is published and the mail backend accepts the domain.",{}]'
    bomb = LATER + '["%(a)99999999999s",{"a":"x"}]'
    stored = later("%(type)s %(name)s (found %(found)s instead)", type="TXT", name="example.org", found=spoof)
    nested = later("Still missing or wrong: %(records)s. Publish them as shown below.", records=[stored])
    with in_language("fr"):
        assert spoof in shown(nested) and "Tous les enregistrements" not in shown(nested)
        assert bomb in shown(later("Not created: %(reason)s", reason=bomb))


def test_later__a_time_put_in_reads_in_the_readers_zone_and_language(app):
    """Review: the grace period's date was written once, in the worker's language and zone."""
    from datetime import datetime

    from flask import g

    stored = later("Still enabled, but checks have failed since %(moment)s: %(reason)s",
                   moment=datetime(2026, 12, 6, 11, 12), reason="x")
    with in_language("fr", "Pacific/Auckland"):
        assert "7 déc. 2026" in shown(stored) and "00:12" in shown(stored)
    with in_language("en", "UTC"):
        assert "Dec 6, 2026" in shown(stored) and "11:12 UTC" in shown(stored)
    assert g.get("portal_timezone") is None


def test_mailbox_page__shows_a_stored_reason_with_its_values_escaped(client, auth, owner, account):
    domain = enabled_domain(owner, account)
    mailbox = Mailbox(account_id=account.id, domain_id=domain.id, local_part="sales", address="sales@example.org",
                      kind="shared", status=FAILED,
                      status_reason=later("Not created: %(reason)s", reason="<script>alert(1)</script>"))
    broken = Mailbox(account_id=account.id, domain_id=domain.id, local_part="desk", address="desk@example.org",
                     kind="shared", status=FAILED, status_reason=LATER + '["%(a)d", {"a": "x"}]')
    db.session.add_all([mailbox, broken])
    db.session.commit()
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{account.id}/mailboxes/{mailbox.id}").get_data(as_text=True)
    assert "Not created: &lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert client.get(f"/accounts/{account.id}/mailboxes/{broken.id}").status_code == 200
    overview = client.get(f"/accounts/{account.id}/").get_data(as_text=True)
    assert "Not created: &lt;script&gt;" in overview and LATER not in overview
