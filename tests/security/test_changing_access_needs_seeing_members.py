"""Changing someone's access shows who they are and what they hold: it needs seeing the members
too. Someone holding access.grant alone walked membership ids and read each member's address and
grants through the advanced page or an empty role choice (a review). (An API token cannot hold
access.grant without members.view: its scopes give both.)"""

from __future__ import annotations

from portal.extensions import db



def test_access_grant_alone_opens_no_members_page(client, auth, make, owner, account):
    target = make.member(account, make.user("hidden.person@example.org", name="Hidden Person"),
                         permissions=("audit.view",))
    make.member(account, make.user("granter@example.net"), permissions=("access.grant", "audit.view"))
    auth.login("granter@example.net")
    base = f"/accounts/{account.id}/members/{target.id}"
    answers = [client.get(base), client.get(f"{base}/advanced"), client.post(f"{base}/advanced", data={}),
               client.post(f"{base}/roles", data={"role_id": ""}),
               client.post(f"{base}/grants/1/revoke", data={})]
    for answer in answers:
        assert answer.status_code == 403, answer.status_code
        assert "hidden.person@example.org" not in answer.get_data(as_text=True)


def test_with_members_view_too_access_is_changed_as_before(client, auth, make, owner, account):
    target = make.member(account, make.user("person@example.org"), permissions=("audit.view",))
    make.member(account, make.user("granter@example.net"), permissions=("access.grant", "audit.view",
                                                                        "members.view"))
    auth.login("granter@example.net")
    base = f"/accounts/{account.id}/members/{target.id}"
    assert "person@example.org" in client.get(f"{base}/advanced").get_data(as_text=True)
    assert client.post(f"{base}/roles", data={"role_id": ""}).status_code == 422


def test_a_members_mailboxes_page_lists_only_the_mailboxes_the_viewer_may_see(client, auth, make, owner, account):
    """Seeing the members is not seeing every mailbox they hold something on: the list of a
    member's mailboxes leaves out those the viewer may not see, as the mailbox list does."""
    from portal.mailboxes.models import PERSONAL
    from portal.mailboxes.services import create_mailbox
    from portal.roles import catalogue
    from portal.roles.models import Grant
    from portal.roles.services import system_role
    from tests.mailboxes.conftest import enabled_domain

    domain = enabled_domain(owner, account, "corp.example.org")
    director = make.member(account, make.user("director@elsewhere.example"))
    create_mailbox(owner, account, domain, "board-confidential", kind=PERSONAL, owner=director.user)
    team = create_mailbox(owner, account, domain, "team")
    viewer = make.member(account, make.user("viewer@example.net"), permissions=("members.view",))
    delegate = system_role(catalogue.MAILBOX_DELEGATE)
    for membership in (director, viewer):
        db.session.add(Grant(membership_id=membership.id, account_id=account.id, mailbox_id=team.id,
                             role_id=delegate.id))
    db.session.commit()
    auth.login("viewer@example.net")
    page = client.get(f"/accounts/{account.id}/members/{director.id}/mailboxes").get_data(as_text=True)
    assert "board-confidential@corp.example.org" not in page
    assert "team@corp.example.org" in page  # the viewer may see this one: it stays listed
    auth.logout()
    auth.login(owner.email)
    page = client.get(f"/accounts/{account.id}/members/{director.id}/mailboxes").get_data(as_text=True)
    assert "board-confidential@corp.example.org" in page and "team@corp.example.org" in page
