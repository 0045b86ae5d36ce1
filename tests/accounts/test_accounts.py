from portal.accounts.models import Account, Membership
from portal.extensions import db
from portal.roles.services import account_grants


def test_create_account__makes_the_creator_its_owner(client, auth, make):
    user = make.user("ada@example.org")
    auth.login("ada@example.org")
    response = client.post("/accounts/new", data={"name": "  Acme   Corp "})
    assert response.status_code == 302
    account = db.session.execute(db.select(Account)).scalar_one()
    assert account.name == "Acme Corp"
    membership = db.session.execute(db.select(Membership)).scalar_one()
    assert membership.user_id == user.id
    assert [grant.role.system_key for grant in account_grants(membership)] == ["owner"]


def test_create_account__takes_its_creators_language_for_what_the_portal_writes(client, auth, make, run_jobs):
    """A French admin's domain page read the worker's check results in English (a walkthrough).
    They are now shown in the reader's language; what the worker still writes as text (a refusal's
    words, a workbook) is in the account's language, which was the portal's default."""
    from portal.domains.models import Domain

    make.user("ada@example.org").locale = "fr"
    make.user("bob@example.org")
    db.session.commit()
    auth.login("ada@example.org")
    assert client.post("/accounts/new", data={"name": "Société Dupont"}).status_code == 302
    french = db.session.execute(db.select(Account).where(Account.name == "Société Dupont")).scalar_one()
    assert french.default_locale == "fr"
    assert client.post(f"/accounts/{french.id}/domains/new",
                       data={"name": "dupont.example", "connection": "local"}).status_code == 302
    run_jobs()
    domain = db.session.execute(db.select(Domain)).scalar_one()
    page = client.get(f"/accounts/{french.id}/domains/{domain.id}").get_data(as_text=True)
    assert "En attente de l’enregistrement de propriété" in page and "Waiting for" not in page
    auth.logout()
    auth.login("bob@example.org")
    assert client.post("/accounts/new", data={"name": "Acme"}).status_code == 302
    assert db.session.execute(db.select(Account).where(Account.name == "Acme")).scalar_one().default_locale is None


def test_create_account__empty_name_is_refused_with_message(client, auth, make):
    make.user("ada@example.org")
    auth.login("ada@example.org")
    response = client.post("/accounts/new", data={"name": ""})
    assert response.status_code == 422
    assert "Give the account a name." in response.get_data(as_text=True)


def test_switcher__lists_every_account_of_the_user(client, auth, make):
    user = make.user("ada@example.org")
    first = make.account(user, "First")
    second = make.account(user, "Second")
    make.account(make.user("other@example.org"), "Not mine")
    auth.login("ada@example.org")
    page = client.get(f"/accounts/{first.id}/").get_data(as_text=True)
    assert f"/accounts/{second.id}/" in page and "Not mine" not in page
    assert client.get("/").headers["Location"].endswith(f"/accounts/{first.id}/")


def test_members__grant_a_role_to_a_member(client, auth, make):
    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    membership = make.member(account, make.user("bob@example.org"))
    auth.login("owner@example.org")
    from portal.roles.models import Role

    admin = db.session.execute(db.select(Role).where(Role.system_key == "administrator")).scalar_one()
    response = client.post(f"/accounts/{account.id}/members/{membership.id}/roles", data={"role_id": admin.id})
    assert response.status_code == 302
    page = client.get(f"/accounts/{account.id}/members").get_data(as_text=True)
    assert "bob@example.org" in page and "Account Administrator" in page


def test_members_and_mailbox_access__single_permissions_are_shown_by_their_names(client, auth, make):
    """The lists showed permission codes ("members.view") where every other page shows names."""
    from portal.mailboxes.services import create_mailbox
    from portal.roles.models import Grant
    from tests.mailboxes.conftest import enabled_domain

    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    membership = make.member(account, make.user("bob@example.org"), permissions=("members.view",))
    sales = create_mailbox(owner, account, enabled_domain(owner, account), "sales")
    db.session.add(Grant(membership_id=membership.id, account_id=account.id, permission="mailbox.read",
                         mailbox_id=sales.id))
    db.session.commit()
    auth.login("owner@example.org")
    members = client.get(f"/accounts/{account.id}/members").get_data(as_text=True)
    mailbox = client.get(f"/accounts/{account.id}/mailboxes/{sales.id}").get_data(as_text=True)
    assert "See members" in members and ">members.view<" not in members
    assert "Read mail" in mailbox and ">mailbox.read<" not in mailbox


def test_members__remove_needs_confirmation_and_protects_the_last_owner(client, auth, make):
    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    bob = make.member(account, make.user("bob@example.org"))
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{account.id}/members/{bob.id}/remove").get_data(as_text=True)
    assert "Remove from the account" in page
    assert db.session.get(Membership, bob.id) is not None
    assert client.post(f"/accounts/{account.id}/members/{bob.id}/remove").status_code == 302
    assert db.session.get(Membership, bob.id) is None
    own = db.session.execute(db.select(Membership).where(Membership.user_id == owner.id)).scalar_one()
    response = client.post(f"/accounts/{account.id}/members/{own.id}/remove")
    assert response.status_code == 403
    assert "last owner" in response.get_data(as_text=True)


def test_members__removing_someone_needs_holding_their_rights_on_mailboxes_too(client, auth, make, run_jobs):
    """Someone who may remove members but holds nothing on the CEO's mailbox removed its assistant,
    taking away rights they could not have revoked one by one."""
    from portal.mailboxes import services as mailboxes
    from portal.roles.services import grant_mailbox_role, system_role
    from tests.mailboxes.conftest import enabled_domain

    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    domain = enabled_domain(owner, account)
    ceo = mailboxes.create_mailbox(owner, account, domain, "ceo")
    assistant = make.member(account, make.user("assistant@example.net"))
    grant_mailbox_role(owner, account, assistant, ceo.id, system_role("mailbox_owner"))
    plain = make.member(account, make.user("plain@example.net"))
    db.session.commit()
    make.member(account, make.user("junior@example.net"), permissions=("members.remove", "members.view"))
    auth.login("junior@example.net")
    refused = client.post(f"/accounts/{account.id}/members/{assistant.id}/remove")
    assert refused.status_code == 403 and "permissions on a mailbox" in refused.get_data(as_text=True)
    assert client.post(f"/accounts/{account.id}/members/{plain.id}/remove").status_code == 302
    db.session.expire_all()
    assert db.session.get(Membership, assistant.id) is not None and db.session.get(Membership, plain.id) is None
    auth.logout()
    make.member(account, make.user("admin@example.net"), roles=("administrator",))
    auth.login("admin@example.net")
    assert client.post(f"/accounts/{account.id}/members/{assistant.id}/remove").status_code == 302


def test_members__rights_on_a_personal_mailbox_whose_owner_is_gone_are_checked_too(client, auth, make):
    """Only one's own personal mailboxes are left aside; one whose owner was deleted (the column
    NULL) slipped through the SQL test of "not their own"."""
    from portal.mailboxes import services as mailboxes
    from portal.mailboxes.models import Mailbox
    from portal.roles.services import grant_mailbox_role, system_role
    from tests.mailboxes.conftest import enabled_domain

    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    domain = enabled_domain(owner, account)
    former = make.user("former@example.org")
    box = mailboxes.create_mailbox(owner, account, domain, "former", kind="personal", owner=former)
    assistant = make.member(account, make.user("assistant@example.net"))
    grant_mailbox_role(owner, account, assistant, box.id, system_role("mailbox_owner"))
    db.session.execute(db.update(Mailbox).where(Mailbox.id == box.id).values(owner_id=None))
    db.session.commit()
    make.member(account, make.user("junior@example.net"), permissions=("members.remove", "members.view"))
    auth.login("junior@example.net")
    refused = client.post(f"/accounts/{account.id}/members/{assistant.id}/remove")
    assert refused.status_code == 403 and "permissions on a mailbox" in refused.get_data(as_text=True)
    assert db.session.get(Membership, assistant.id) is not None


def test_advanced__grants_single_permissions_within_what_the_granter_holds(client, auth, make):
    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    make.member(account, make.user("admin@example.org"), roles=("administrator",))
    bob = make.member(account, make.user("bob@example.org"))
    auth.login("admin@example.org")
    url = f"/accounts/{account.id}/members/{bob.id}/advanced"
    response = client.post(url, data={"permission": ["account.delete"], "action": "apply"})
    assert response.status_code == 403
    assert "do not hold" in response.get_data(as_text=True)
    response = client.post(url, data={"permission": ["audit.view", "members.view"], "action": "apply"})
    assert response.status_code == 302
    assert {g.permission for g in account_grants(bob)} == {"audit.view", "members.view"}


def test_members__rows_are_ticked_only_by_someone_who_may_act_on_them(client, auth, make):
    """A walkthrough: someone who may only see members had a box on every row of the Users list
    and no bulk action to apply; an owner has both."""
    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    make.member(account, make.user("carol@example.org"), permissions=("members.view",))
    db.session.commit()
    auth.login("carol@example.org")
    page = client.get(f"/accounts/{account.id}/members").get_data(as_text=True)
    assert "carol@example.org" in page and 'name="member"' not in page and "With the selected people" not in page
    client.post("/logout")
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{account.id}/members").get_data(as_text=True)
    assert page.count('name="member"') == 2 and "With the selected people" in page
