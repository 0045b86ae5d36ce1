"""A corporate user removed, then made again: by hand, by an import, by their identity provider
(a review of taking over profiles nobody signed into): they get their own personal mailbox back
when it was kept or disabled, and a link to set a first password shown earlier stops working."""

from __future__ import annotations

import pytest

from portal.accounts.models import Membership
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


def _import(owner, account, run_jobs, users_rows, account_rows=()):
    run = _preview(owner, account, fill(_template(account), users=users_rows, account_rows=list(account_rows)))
    imports.confirm(owner, run)
    db.session.commit()
    run_jobs()
    run_jobs()
    db.session.refresh(run)
    assert run.status == DONE
    return run


@pytest.mark.parametrize("how", ["page", "import"])
def test_made_again_they_get_their_disabled_personal_mailbox_back(owner, account, domain, run_jobs, how):  # noqa: F811
    jane, _link = users.create_corporate_user(owner, account, first_name="Jane", last_name="Doe",
                                              email="jane@example.org", personal_mailbox=True)
    db.session.commit()
    run_jobs()
    users.remove_corporate_user(owner, account, _membership(jane, account), "disable")
    db.session.commit()
    run_jobs()
    box = db.session.execute(db.select(Mailbox).where(Mailbox.address == "jane@example.org")).scalar_one()
    assert box.status == "disabled" and users.vacant_profile(_user("jane@example.org"))
    if how == "page":
        users.create_corporate_user(owner, account, first_name="Jane", last_name="Doe", email="jane@example.org",
                                    personal_mailbox=True)
        db.session.commit()
    else:
        run = _import(owner, account, run_jobs, [("Jane", "Doe", "jane@example.org", "Y")])
        assert (run.created, run.updated, run.skipped) == (0, 1, 0)
    run_jobs()
    jane = _user("jane@example.org")
    assert jane.is_corporate and jane.corporate_account_id == account.id
    assert "mailbox.read" in mailbox_permissions(jane, account, box.id), "their own mailbox is theirs again"
    if how == "page":
        assert db.session.get(Mailbox, box.id).status == "enabled"


def test_their_identity_provider_assigns_them_again_with_their_kept_mailbox(scim, account, owner, run_jobs):  # noqa: F811
    """Entra's remove-then-assign-again: refused with 'already used in this account'."""
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
    jane = _user("jane.doe@example.org")
    box = db.session.execute(db.select(Mailbox).where(Mailbox.address == "jane.doe@example.org")).scalar_one()
    assert box.status == "enabled" and "mailbox.read" in mailbox_permissions(jane, account, box.id)


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
