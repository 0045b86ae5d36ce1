"""A create answer lost on the way back loses the first password with it (finding 12): the
mailbox page says so and offers a new password where the backend can set one."""

from __future__ import annotations

from datetime import timedelta

from portal.domains.models import ENABLED
from portal.domains.services import add_domain
from portal.extensions import db
from portal.mailboxes import services
from portal.timeutil import utcnow
from tests.emulated import box, box_app_environ  # noqa: F401  (fixtures: Mail-in-a-Box as emu)


def test_lost_create_answer__the_page_says_the_password_was_lost_and_offers_a_new_one(
        owner, account, box, run_jobs, client, auth):
    emulator, _, connection = box
    domain = add_domain(owner, account, "corp.example.org", connection)
    domain.status, domain.verified_at = ENABLED, domain.created_at
    db.session.commit()
    emulator.faults.drop_after_acting(1, matching=lambda request: request.path.endswith("/users/add"))
    mailbox = services.create_mailbox(owner, account, domain, "jane")
    db.session.commit()
    run_jobs()
    run_jobs(now=utcnow() + timedelta(hours=1))
    db.session.refresh(mailbox)
    assert mailbox.status == "enabled" and mailbox.password_lost
    assert services.waiting_secret(mailbox) is None

    auth.login("owner@example.org")
    page = client.get(f"/accounts/{account.id}/mailboxes/{mailbox.id}").get_data(as_text=True)
    assert "The first password was lost" in page and "Set a new password" in page
    assert client.post(f"/accounts/{account.id}/mailboxes/{mailbox.id}/password").status_code == 302
    run_jobs()
    db.session.refresh(mailbox)
    assert not mailbox.password_lost and services.waiting_secret(mailbox) is not None
    response = client.post(f"/accounts/{account.id}/mailboxes/{mailbox.id}/password/reveal")
    password = emulator.users["jane@corp.example.org"]["password"]
    assert response.status_code == 200 and password in response.get_data(as_text=True)
