"""A mailbox password given to someone keeps working after its holder is given more rights.

Found by an attacker-side review: someone who held every right a person held (so the portal let
them reveal the password of the mailbox at that person's login address) kept it; once the person
became an administrator, they asked for the person's password reset, read the link in the mailbox
and signed in as the administrator. A reset link is now not mailed to a mailbox whose password was
last given to someone who no longer holds every right its holder holds; the mail says what to do.
"""

import pytest

from portal.audit.models import AuditEvent
from portal.auth import services as auth
from portal.extensions import db
from portal.mailboxes import services as mailboxes
from portal.mailboxes.models import Mailbox
from portal.roles.models import Grant
from portal.roles.services import system_role
from portal.users import services as users
from tests.mailboxes.conftest import enabled_domain


@pytest.fixture
def given(owner, account, make, run_jobs):
    """Bob's personal mailbox password, revealed by someone who then held all Bob's rights."""
    enabled_domain(owner, account)
    bob, _link = users.create_corporate_user(owner, account, first_name="Bob", last_name="B",
                                             email="bob@example.org", personal_mailbox=True)
    helper = make.member(account, make.user("helper@elsewhere.example"),
                         permissions=("members.view", "mailboxes.view", "mailboxes.manage", "users.manage"))
    db.session.commit()
    run_jobs()
    mailbox = db.session.execute(db.select(Mailbox).where(Mailbox.address == "bob@example.org")).scalar_one()
    assert mailboxes.reveal_secret(helper.user, mailbox)
    db.session.commit()
    return {"bob": bob, "helper": helper.user, "mailbox": mailbox}


def _promote(account, user):
    from portal.accounts.models import Membership

    membership = db.session.execute(db.select(Membership).where(Membership.account_id == account.id,
                                                                Membership.user_id == user.id)).scalar_one()
    db.session.add(Grant(membership_id=membership.id, account_id=account.id, role_id=system_role("administrator").id))
    db.session.commit()


def _reset_mail(app, run_jobs, smtp_sink):
    smtp_sink.clear()
    with app.test_request_context():
        auth.request_password_reset("bob@example.org")
        db.session.commit()
    run_jobs()
    [message] = smtp_sink.wait_for("bob@example.org")
    return smtp_sink.text(message)


def test_while_the_person_given_it_holds_all_their_rights_the_link_is_mailed(app, given, run_jobs, smtp_sink):
    assert given["mailbox"].password_given_to_id == given["helper"].id
    assert "/reset/" in _reset_mail(app, run_jobs, smtp_sink)


def test_after_a_promotion_the_link_is_withheld_and_the_mail_says_why(app, account, given, run_jobs, smtp_sink):
    _promote(account, given["bob"])
    text = _reset_mail(app, run_jobs, smtp_sink)
    assert "/reset/" not in text and "No reset link is sent to this mailbox" in text
    assert db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "user.reset_withheld")).scalar_one()


def test_once_the_holder_reveals_a_new_password_themselves_the_link_is_mailed_again(app, account, given, run_jobs,
                                                                                    smtp_sink):
    _promote(account, given["bob"])
    mailboxes.reset_password(given["bob"], given["mailbox"])
    db.session.commit()
    run_jobs()
    mailbox = db.session.get(Mailbox, given["mailbox"].id)
    assert mailboxes.reveal_secret(given["bob"], mailbox)
    db.session.commit()
    assert db.session.get(Mailbox, mailbox.id).password_given_to_id is None
    assert "/reset/" in _reset_mail(app, run_jobs, smtp_sink)
