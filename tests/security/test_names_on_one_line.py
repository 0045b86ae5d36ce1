"""A name is one line, whatever path it comes by: names go into e-mail subjects, where a line
break makes a message unsendable (Python refuses to write such a header: no injection, but the
invitations of a person who put one in their name were never delivered), and to mail backends."""

from __future__ import annotations

from sqlalchemy import update

from portal.auth.models import User
from portal.extensions import db
from portal.jobs.models import Job
from portal.mailboxes.models import Mailbox
from portal.mailboxes.services import create_mailbox
from tests.mailboxes.conftest import enabled_domain


def _invite(client, account, email: str) -> None:
    edit = client.post(f"/accounts/{account.id}/invitations/new", data={"email": email}).headers["Location"]
    assert client.post(edit + "/send").status_code == 302


def test_profile_name__line_breaks_and_tabs_become_spaces_and_the_invitations_are_delivered(
        client, auth, owner, account, run_jobs, smtp_sink):
    auth.login("owner@example.org")
    answer = client.post("/profile", data={"name": " Eve\r\nBcc: spy@evil.example\tX ", "timezone": "UTC"})
    assert answer.status_code == 302
    db.session.expire_all()
    assert owner.name == "Eve Bcc: spy@evil.example X"
    _invite(client, account, "new@example.net")
    run_jobs()
    [message] = smtp_sink.wait_for("new@example.net")
    assert message["Subject"] == f"Eve Bcc: spy@evil.example X invites you to {account.name}"
    assert message["Bcc"] is None and not smtp_sink.to("spy@evil.example")
    assert not db.session.execute(db.select(Job).where(Job.status != "done")).all()


def test_a_name_stored_with_a_line_break_before_still_gives_a_one_line_subject(client, auth, owner, account,
                                                                                run_jobs, smtp_sink):
    db.session.execute(update(User).where(User.id == owner.id).values(name="Old\rName"))
    db.session.commit()
    auth.login("owner@example.org")
    _invite(client, account, "new@example.net")
    run_jobs()
    [message] = smtp_sink.wait_for("new@example.net")
    assert message["Subject"] == f"Old Name invites you to {account.name}"


def test_mailbox_names__are_kept_on_one_line(owner, account):
    domain = enabled_domain(owner, account)
    mailbox = create_mailbox(owner, account, domain, "team", display_name="The\nTeam", first_name="A\r\nB",
                             last_name=" C\tD ")
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(Mailbox, mailbox.id)
    assert (stored.display_name, stored.first_name, stored.last_name) == ("The Team", "A B", "C D")
    assert "the team" in stored.search_text


def test_control_characters_and_bidirectional_overrides_leave_names(client, auth, owner, account, make):
    """A profile named Bob<ESC> made every .xlsx export of the list fail, and a right-to-left override
    shows what follows it reversed (an address spelt backwards reads as another)."""
    auth.login("owner@example.org")
    answer = client.post("/profile", data={"name": "Bob\x1b[31m\x07 \u202egro.elpmaxe@nimda", "timezone": "UTC"})
    assert answer.status_code == 302
    db.session.expire_all()
    assert owner.name == "Bob[31m gro.elpmaxe@nimda"
    # What a name rightly holds stays: accents, joiners inside an emoji, a non-joiner in Persian.
    person = make.user("zoe@example.org", name="Zoë 👩\u200d💻 میر\u200cزا")
    assert person.name == "Zoë 👩\u200d💻 میر\u200cزا"
    domain = enabled_domain(owner, account)
    mailbox = create_mailbox(owner, account, domain, "team", display_name="Team\x00\u202e", first_name="\x07A")
    assert (mailbox.display_name, mailbox.first_name) == ("Team", "A")
