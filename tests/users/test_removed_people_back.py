"""A corporate user removed, then made again (reviews of taking over profiles nobody signed into):
made again one by one or by their identity provider, they get back the owner's role on their own
personal mailbox kept or disabled at their removal, when whoever makes them again may give it (it
stays as the removal left it); someone who may only create users does not hand that mailbox, and
its mail, to a profile whose first password they set; a link to set a first password shown earlier
stops working once they are taken over."""

from __future__ import annotations

import pytest

from portal.accounts.models import Membership
from portal.audit.models import AuditEvent
from portal.auth.models import User
from portal.extensions import db
from portal.mailboxes.models import Mailbox
from portal.roles.services import account_permissions, mailbox_permissions
from portal.users import imports
from portal.users import services as users
from portal.users.models import DONE
from tests.conftest import PASSWORD
from tests.scim.conftest import new_user, scim, token  # noqa: F401
from tests.users.conftest import domain  # noqa: F401
from tests.users.test_import import _preview, _template
from tests.users.workbooks import fill


def _user(email):
    return db.session.execute(db.select(User).where(User.email == email)).scalar_one_or_none()


def _membership(user, account):
    return db.session.execute(db.select(Membership).where(Membership.user_id == user.id,
                                                          Membership.account_id == account.id)).scalar_one()


def _box(address):
    return db.session.execute(db.select(Mailbox).where(Mailbox.address == address)).scalar_one()


def _import(owner, account, run_jobs, users_rows, account_rows=()):
    run = _preview(owner, account, fill(_template(account), users=users_rows, account_rows=list(account_rows)))
    imports.confirm(owner, run)
    db.session.commit()
    run_jobs()
    run_jobs()
    db.session.refresh(run)
    assert run.status == DONE
    return run


def _jane_removed(owner, account, run_jobs):
    jane, _link = users.create_corporate_user(owner, account, first_name="Jane", last_name="Doe",
                                              email="jane@example.org", personal_mailbox=True)
    db.session.commit()
    run_jobs()
    users.remove_corporate_user(owner, account, _membership(jane, account), "disable")
    db.session.commit()
    run_jobs()
    box = _box("jane@example.org")
    assert box.status == "disabled" and users.vacant_profile(_user("jane@example.org"))
    return box


def test_made_again_by_hand_they_get_their_own_mailbox_back_as_it_was_left(owner, account, domain, run_jobs):  # noqa: F811
    """Refused before ('already used in this account')."""
    box = _jane_removed(owner, account, run_jobs)
    users.create_corporate_user(owner, account, first_name="Jane", last_name="Doe", email="jane@example.org",
                                personal_mailbox=True)
    db.session.commit()
    run_jobs()
    jane = _user("jane@example.org")
    assert jane.is_corporate and jane.default_mailbox_id == box.id
    assert "mailbox.read" in mailbox_permissions(jane, account, box.id)
    assert db.session.get(Mailbox, box.id).status == "disabled", "enabling it is a choice of its own"


def test_made_again_by_someone_who_may_only_create_users_they_do_not_get_it(owner, account, domain, make,  # noqa: F811
                                                                            run_jobs):
    """A review: a helper who may only create users made Jane again, her onboarding link going to
    a recovery address of the helper's, and held the kept mailbox (and its mail) through her."""
    box = _jane_removed(owner, account, run_jobs)
    helper = make.user("helper@outside.example")
    make.member(account, helper, permissions=("users.create",))
    users.create_corporate_user(helper, account, first_name="Jane", last_name="Doe", email="jane@example.org",
                                personal_mailbox=True, recovery_email="helper.private@outside.example")
    db.session.commit()
    run_jobs()
    assert mailbox_permissions(_user("jane@example.org"), account, box.id) == set()
    assert db.session.get(Mailbox, box.id).status == "disabled"
    refused = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "user.personal_mailbox_refused")
                                 ).scalar_one()
    assert refused.actor_label == "helper@outside.example"


def test_made_again_by_an_import_the_mailbox_is_left_to_be_given_by_hand(owner, account, domain, run_jobs):  # noqa: F811
    box = _jane_removed(owner, account, run_jobs)
    run = _import(owner, account, run_jobs, [("Jane", "Doe", "jane@example.org", "Y")])
    assert (run.created, run.updated, run.skipped) == (0, 1, 0)
    assert mailbox_permissions(_user("jane@example.org"), account, box.id) == set()


def test_accepting_an_invitation_does_not_give_a_removed_person_their_mailbox_back(owner, account, domain, make,  # noqa: F811
                                                                                   run_jobs):
    """A review: accepting an invitation that offered only members.view, from someone with nothing
    on the mailbox, gave a person who had signed in before, then was removed, their disabled
    mailbox back, enabled."""
    from portal.invitations import services as invitations
    from portal.auth.passwords import hash_password

    account.personal_mailboxes = True
    db.session.commit()
    box = _jane_removed(owner, account, run_jobs)
    jane = _user("jane@example.org")
    jane.password_hash, jane.email_verified_at = hash_password(PASSWORD), jane.created_at
    inviter = make.user("inviter@outside.example")
    make.member(account, inviter, permissions=("users.invite", "members.view"))
    invitation = invitations.start(inviter, account, "jane@example.org")
    invitations.add_grant(inviter, invitation, permission="members.view")
    invitations.send_invitation(inviter, invitation)
    db.session.commit()
    invitations.accept(_user("jane@example.org"), invitation, by_link=True)
    db.session.commit()
    run_jobs()
    assert mailbox_permissions(_user("jane@example.org"), account, box.id) == set()
    assert db.session.get(Mailbox, box.id).status == "disabled"


def test_their_identity_provider_assigns_them_again_with_their_kept_mailbox(scim, account, owner, run_jobs):  # noqa: F811
    """Entra's remove-then-assign-again was refused: 'already used in this account'."""
    account.personal_mailboxes = True
    db.session.commit()
    made = scim.post("/Users", new_user())
    assert made.status_code == 201
    run_jobs()
    assert scim.delete(f"/Users/{made.get_json()['id']}").status_code == 204
    run_jobs()
    again = scim.post("/Users", new_user())
    assert again.status_code == 201, again.get_data(as_text=True)
    run_jobs()
    box = _box("jane.doe@example.org")
    assert "mailbox.read" in mailbox_permissions(_user("jane.doe@example.org"), account, box.id)


@pytest.mark.parametrize("how", ["page", "import"])
def test_an_onboarding_link_shown_before_they_were_removed_stops_working(owner, account, domain, make, client,  # noqa: F811
                                                                         run_jobs, how):
    """A helper who may only create users made Jane (the link shown to them); Jane was removed
    before her first sign-in, then imported again as an administrator: the helper's link still
    set her password."""
    helper = make.user("helper@outside.example")
    make.member(account, helper, permissions=("users.create", "members.view"))
    jane, link = users.create_corporate_user(helper, account, first_name="Jane", last_name="Doe",
                                             email="jane@example.org", personal_mailbox=False)
    db.session.commit()
    assert "/welcome/" in link
    users.remove_corporate_user(owner, account, _membership(jane, account), "keep")
    db.session.commit()
    if how == "page":
        users.create_corporate_user(owner, account, first_name="Jane", last_name="Doe", email="jane@example.org",
                                    personal_mailbox=False, recovery_email="jane.private@elsewhere.example")
        db.session.commit()
    else:
        _import(owner, account, run_jobs, [("Jane", "Doe", "jane@example.org", "N")],
                [("jane@example.org", "Account Administrator", None)])
        assert "access.grant" in account_permissions(_user("jane@example.org"), account)
    client.post(link.removeprefix("http://localhost"), data={"password": PASSWORD, "confirm": PASSWORD})
    db.session.expire_all()
    assert _user("jane@example.org").password_hash is None


def test_restoring_them_enables_only_what_their_suspension_disabled(owner, account, domain, make, run_jobs):  # noqa: F811
    """A review: made again without their kept mailbox's role, then suspended and restored by
    someone who may manage users, the person's mailbox disabled at their removal was enabled."""
    box = _jane_removed(owner, account, run_jobs)
    helper = make.user("helper@outside.example")
    make.member(account, helper, permissions=("users.create", "users.manage"))
    jane, _link = users.create_corporate_user(helper, account, first_name="Jane", last_name="Doe",
                                              email="jane@example.org", personal_mailbox=True)
    db.session.commit()
    assert users.suspend(helper, account, jane) == "suspended"  # nothing to disable: it already was
    db.session.commit()
    users.restore(helper, account, _user("jane@example.org"))
    db.session.commit()
    run_jobs()
    assert db.session.get(Mailbox, box.id).status == "disabled"
    # What a suspension disabled, restoring enables again.
    own = users.create_corporate_user(owner, account, first_name="Ann", last_name="Able", email="ann@example.org",
                                      personal_mailbox=True)[0]
    db.session.commit()
    run_jobs()
    users.suspend(owner, account, own)
    db.session.commit()
    run_jobs()
    assert _box("ann@example.org").status == "disabled"
    users.restore(owner, account, _user("ann@example.org"))
    db.session.commit()
    run_jobs()
    assert _box("ann@example.org").status == "enabled"
