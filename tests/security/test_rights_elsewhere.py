"""Another account gave one of this account's corporate users a right (an invitation they
accepted): from then on this account's owner could no longer suspend, restore or rename their
own employee. What gives the means to act as the person (where their links go, a reset of their
second factors) still needs every right they hold, here and elsewhere."""

from __future__ import annotations

import pytest

from portal.extensions import db
from portal.invitations import services as invitations
from portal.roles.services import AccessError
from portal.users import services as users
from tests.mailboxes.conftest import enabled_domain


@pytest.fixture
def employee_with_a_right_elsewhere(make):
    owner_a = make.user("alice@a-owners.example")
    owner_b = make.user("mallory@b-owners.example")
    account_a, account_b = make.account(owner_a, "Employer"), make.account(owner_b, "Elsewhere")
    enabled_domain(owner_a, account_a, "victim.example.org")
    employee, _link = users.create_corporate_user(owner_a, account_a, first_name="Emp", last_name="Loyee",
                                                  email="emp@victim.example.org", personal_mailbox=False)
    db.session.commit()
    invitation = invitations.start(owner_b, account_b, employee.email)
    invitations.add_grant(owner_b, invitation, permission="members.view")
    invitations.send_invitation(owner_b, invitation)
    db.session.commit()
    invitations.accept(employee, invitation, by_link=True)
    db.session.commit()
    return owner_a, account_a, employee


def _settings(user, **changed) -> dict:
    first, _space, last = user.name.partition(" ")
    return {"first_name": first, "last_name": last, "timezone": user.timezone, "phone": user.phone or "",
            "default_mailbox_id": user.default_mailbox_id, "recovery_email": user.recovery_email or "", **changed}


def test_the_employer_suspends_restores_and_renames_whatever_another_account_gave(employee_with_a_right_elsewhere):
    owner_a, account_a, employee = employee_with_a_right_elsewhere
    assert users.suspend(owner_a, account_a, employee) == "suspended"
    assert users.restore(owner_a, account_a, employee) == "restored"
    users.update_settings(owner_a, account_a, employee, **_settings(employee, first_name="Emma"))
    db.session.commit()
    assert employee.name == "Emma Loyee"


def test_where_their_links_go_still_needs_every_right_they_hold_elsewhere(employee_with_a_right_elsewhere):
    owner_a, account_a, employee = employee_with_a_right_elsewhere
    with pytest.raises(AccessError, match="in another account"):
        users.update_settings(owner_a, account_a, employee,
                              **_settings(employee, recovery_email="owner-reads-this@a-owners.example"))
    db.session.rollback()
    assert employee.recovery_email is None


def test_the_import_renames_them_as_their_page_does(employee_with_a_right_elsewhere):
    """The user's page renamed them; a Users sheet renaming them was skipped as "outranked"."""
    from tests.users.test_import import _preview, _template
    from tests.users.workbooks import fill

    owner_a, account_a, employee = employee_with_a_right_elsewhere
    run = _preview(owner_a, account_a, fill(_template(account_a),
                                            users=[("Emmy", "Loyee", "emp@victim.example.org", "N")]))
    assert {user["email"]: user["skip"] for user in run.plan["users"]} == {"emp@victim.example.org": ""}
