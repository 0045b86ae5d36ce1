"""One administrator's day on each HTTP backend, through the portal (its pages and its worker),
against an emulator that behaves as the real server was seen doing (reference/OBSERVED.md).

Every step ends with the portal and the server agreeing; the drift comparison at the end shows
exactly the one mailbox made behind the portal's back.
"""

from __future__ import annotations

from portal.domains.models import ENABLED as DOMAIN_ENABLED
from portal.extensions import db
from portal.mailboxes import drift
from portal.mailboxes.models import DELETED, ENABLED, Mailbox, MailboxAlias, ProvisioningAttempt
from portal.i18n import shown

from .conftest import DOMAIN

GIB = 1024 ** 3
NAMES = ("ann", "bob", "cid", "dan", "eve")


def _mailbox(local_part: str) -> Mailbox:
    return db.session.execute(db.select(Mailbox).where(Mailbox.address == f"{local_part}@{DOMAIN}")).scalar_one()


def _page(portal, account, mailbox: Mailbox) -> str:
    return portal.get(f"/accounts/{account.id}/mailboxes/{mailbox.id}").get_data(as_text=True)


def _last_attempt(mailbox: Mailbox) -> ProvisioningAttempt:
    return mailbox.attempts.first()


def test_scenario__a_day_on_the_backend_ends_with_the_portal_and_the_server_agreeing(
        server, portal, account, enable_domain, run_jobs):
    base = f"/accounts/{account.id}"

    # -- the domain: checked by the backend where it can, by the portal's DNS checks where it cannot
    domain = enable_domain()
    assert domain.status == DOMAIN_ENABLED, (domain.status_reason, [(r["name"], r["type"], r["state"], r.get("message")) for r in domain.records])
    if server.dimail:
        assert DOMAIN in server.emulator.domains
    domain_page = portal.get(f"{base}/domains/{domain.id}").get_data(as_text=True)
    if server.kind == "dimail-public":
        assert "This dimail has no domain check" in domain_page
        assert "This dimail ignores &#34;active&#34;" in domain_page or "This dimail ignores &quot;active&quot;" \
            in domain_page

    # -- five mailboxes, one of which the server already has
    server.create(f"dan@{DOMAIN}")
    for name in NAMES:
        response = portal.post(f"{base}/mailboxes/new", data={
            "local_part": name, "domain": domain.id, "kind": "shared", "owner": 0,
            "first_name": name.title(), "last_name": "Example"})
        assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    run_jobs()
    for name in NAMES:
        mailbox = _mailbox(name)
        assert mailbox.status == ENABLED, (name, shown(mailbox.status_reason))
        assert server.has(mailbox.address) and server.active(mailbox.address)
    assert shown(_mailbox("dan").status_reason) == "Already on the backend (an earlier attempt made it)."
    assert server.emulator.creations[f"dan@{DOMAIN}"] == 1  # made behind the portal's back, never again

    # -- disable one, where the server can
    ann = _mailbox("ann")
    page = _page(portal, account, ann)
    disabled = portal.post(f"{base}/mailboxes/{ann.id}/disable")
    run_jobs()
    db.session.refresh(ann)
    if server.kind == "dimail-current":
        assert ">Disable</button>" in page and disabled.status_code == 302
        assert ann.status == "disabled" and not server.active(ann.address)
    else:
        assert ">Disable</button>" not in page
        assert disabled.status_code == 409 and "cannot disable" in disabled.get_data(as_text=True)
        assert ann.status == ENABLED and server.active(ann.address)

    # -- a new password
    bob = _mailbox("bob")
    reset = portal.post(f"{base}/mailboxes/{bob.id}/password")
    run_jobs()
    db.session.refresh(bob)
    if server.kind == "dimail-public":
        assert reset.status_code == 409 and "cannot reset passwords" in reset.get_data(as_text=True)
    else:
        assert reset.status_code == 302
        revealed = portal.post(f"{base}/mailboxes/{bob.id}/password/reveal").get_data(as_text=True)
        assert server.password(bob.address) in revealed
    assert bob.status == ENABLED

    # -- a quota, where the server has them
    quota = portal.post(f"{base}/mailboxes/{bob.id}/quota", data={"quota": 2, "quota_unit": "GB"})
    run_jobs()
    db.session.refresh(bob)
    if server.dimail:
        assert quota.status_code == 409 and bob.quota_bytes is None
    else:
        assert quota.status_code == 302
        assert bob.quota_bytes == 2 * GIB and server.emulator.users[bob.address]["quota"] == "2G"

    # -- an alias
    added = portal.post(f"{base}/mailboxes/{bob.id}/aliases", data={"alias": f"sales@{DOMAIN}"})
    assert added.status_code == 302, added.get_data(as_text=True)[:3000]
    run_jobs()
    alias = db.session.execute(db.select(MailboxAlias).where(MailboxAlias.address == f"sales@{DOMAIN}")).scalar_one()
    assert alias.state == "active", alias.message
    assert server.aliases_of(bob.address) == [f"sales@{DOMAIN}"]

    # -- delete one, and one the server already removed
    cid, eve = _mailbox("cid"), _mailbox("eve")
    server.receive_mail(cid.address)
    server.remove(eve.address)
    for mailbox in (cid, eve):
        response = portal.post(f"{base}/mailboxes/{mailbox.id}/delete")
        assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    run_jobs()
    for mailbox in (cid, eve):
        db.session.refresh(mailbox)
        assert mailbox.status == DELETED, (mailbox.address, shown(mailbox.status_reason))
        assert not server.has(mailbox.address)

    # -- one made behind the portal's back
    server.create(f"zed@{DOMAIN}")

    # -- the comparison sees only that one
    assert portal.post(f"{base}/domains/{domain.id}/drift/compare").status_code == 302
    run_jobs()
    report = drift.latest_report(domain)
    assert report.error == ""
    assert [(d["address"], d["kind"]) for d in report.differences] == [(f"zed@{DOMAIN}", drift.UNKNOWN_TO_PORTAL)]
    expected_apart = {"dimail-public": [(f"oxadmin@{DOMAIN}", drift.SYSTEM)],
                      "dimail-current": [(f"oxadmin@{DOMAIN}", drift.SYSTEM)],
                      "mailinabox": [(f"cid@{DOMAIN}", drift.ARCHIVED), (f"eve@{DOMAIN}", drift.ARCHIVED)]}[server.kind]
    assert [(item.address, item.kind) for item in report.set_apart] == expected_apart

    # -- and the portal shows what the server has, mailbox by mailbox
    for mailbox in db.session.execute(db.select(Mailbox).where(Mailbox.domain_id == domain.id)).scalars():
        if mailbox.status == DELETED:
            assert not server.has(mailbox.address)
        else:
            assert server.has(mailbox.address) and server.active(mailbox.address) == (mailbox.status == ENABLED)
            assert _last_attempt(mailbox).outcome == "ok" or mailbox.status_reason == _last_attempt(mailbox).message
