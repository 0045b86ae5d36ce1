import re

import pytest

from portal.extensions import db
from portal.roles.models import Role


@pytest.fixture
def owner_client(client, auth, make):
    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    auth.login("owner@example.org")
    return client, account


def test_role_editor__creates_a_role_from_ticked_permissions(owner_client):
    client, account = owner_client
    response = client.post(f"/accounts/{account.id}/roles/new", data={
        "scope": "account", "name": "Auditors", "description": "Read the log",
        "permission": ["audit.view", "members.view"], "action": "save"})
    assert response.status_code == 302
    role = db.session.execute(db.select(Role).where(Role.name == "Auditors")).scalar_one()
    assert role.permissions == {"audit.view", "members.view"} and role.account_id == account.id
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Read the audit log" in page


def test_role_editor__filtering_keeps_ticks_and_typed_values(owner_client):
    client, account = owner_client
    response = client.post(f"/accounts/{account.id}/roles/new", data={
        "scope": "account", "name": "Half typed", "permission": ["members.view"], "q": "audit", "action": "filter"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'value="Half typed"' in page
    assert 'name="permission" value="members.view" id="perm-kept-members.view" checked' in page
    assert "1 selected, 1 of them hidden by the filter" in page
    assert "perm-audit.view" in page and "perm-domains.manage" not in page


def test_role_editor__counts_only_permissions_of_the_roles_scope(owner_client):
    client, account = owner_client
    response = client.post(f"/accounts/{account.id}/roles/new", data={
        "scope": "mailbox", "name": "Mixed", "permission": ["mailbox.read", "members.view", "nope"],
        "action": "filter"})
    assert "(1 selected)" in response.get_data(as_text=True)


def test_role_editor__htmx_filter_answers_only_the_picker(owner_client):
    client, account = owner_client
    response = client.post(f"/accounts/{account.id}/roles/new", data={
        "scope": "account", "name": "", "q": "mailbox", "action": "filter"}, headers={"HX-Request": "true"})
    page = response.get_data(as_text=True)
    assert page.lstrip().startswith('<div class="picker" id="permission-picker">')
    assert "<html" not in page


def test_role_editor__missing_name_re_renders_with_message(owner_client):
    client, account = owner_client
    response = client.post(f"/accounts/{account.id}/roles/new", data={
        "scope": "account", "name": "", "permission": ["audit.view"], "action": "save"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Give the role a name." in page
    assert 'value="audit.view" id="perm-audit.view" checked' in page


@pytest.mark.parametrize("name, message", [("Account \u041ewner", "each word of a role&#39;s name in one alphabet"),
                                           ("Account\u200bOwner", "already exists")])
def test_role_editor__a_refused_name_is_said_at_the_name_field(owner_client, name, message):
    """A walkthrough: the refusal showed only at the top of the page, the field unmarked."""
    client, account = owner_client
    response = client.post(f"/accounts/{account.id}/roles/new", data={
        "scope": "account", "name": name, "description": "Kept", "permission": ["audit.view"], "action": "save"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    field = re.search(r'<input[^>]*id="name"[^>]*>', page).group(0)
    assert 'aria-invalid="true"' in field
    error_id = re.search(r'aria-describedby="([^"]*)"', field).group(1).split()[-1]
    assert re.search(rf'id="{error_id}"[^>]*>[^<]*{message}', page), "the message is tied to the field"
    assert 'value="audit.view" id="perm-audit.view" checked' in page and "Kept" in page


def test_system_role__has_no_edit_or_delete(owner_client):
    client, account = owner_client
    owner_role = db.session.execute(db.select(Role).where(Role.system_key == "owner")).scalar_one()
    page = client.get(f"/accounts/{account.id}/roles/{owner_role.id}").get_data(as_text=True)
    assert "/edit" not in page and "Delete…" not in page
    response = client.post(f"/accounts/{account.id}/roles/{owner_role.id}/delete")
    assert response.status_code == 403
    assert db.session.get(Role, owner_role.id) is not None


def test_permission_catalogue__search_and_filters_with_and_without_htmx(owner_client):
    client, account = owner_client
    page = client.get(f"/accounts/{account.id}/permissions?q=delete").get_data(as_text=True)
    assert "account.delete" in page and "audit.view" not in page
    page = client.get(f"/accounts/{account.id}/permissions?scope=mailbox").get_data(as_text=True)
    assert "mailbox.read" in page and "<code>roles.manage</code>" not in page
    fragment = client.get(f"/accounts/{account.id}/permissions?group=Roles",
                          headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="results">')
    assert "roles.manage" in fragment and "audit.view" not in fragment


def test_role_page__lists_and_counts_each_holder_once_and_only_this_accounts(client, auth, make, owner, account):
    owner_role = db.session.execute(db.select(Role).where(Role.system_key == "owner")).scalar_one()
    make.member(account, make.user("twice@example.org"), roles=("owner", "administrator"))
    make.member(account, make.user("plain@example.org"))
    make.account(make.user("elsewhere@example.org"), "Elsewhere")  # owner of another account
    db.session.commit()
    auth.login(owner.email)
    page = client.get(f"/accounts/{account.id}/roles/{owner_role.id}").get_data(as_text=True)
    assert page.count("twice@example.org") == 1 and owner.email in page
    assert "plain@example.org" not in page and "elsewhere@example.org" not in page
    assert "1–2 of 2 members" in page


def test_role_page__names_its_holders_only_to_someone_who_may_see_the_users(client, auth, make, owner, account):
    """The holders of Account Owner (or, through Mailbox Owner, everyone with a personal mailbox)
    were listed by address and name to someone who may see roles but not the account's users."""
    owner_role = db.session.execute(db.select(Role).where(Role.system_key == "owner")).scalar_one()
    make.member(account, make.user("second.owner@example.org", name="Second Owner"), roles=("owner",))
    make.member(account, make.user("viewer@example.org"), permissions=("roles.view",))
    auth.login("viewer@example.org")
    assert client.get(f"/accounts/{account.id}/members").status_code == 403
    page = client.get(f"/accounts/{account.id}/roles/{owner_role.id}").get_data(as_text=True)
    assert "second.owner@example.org" not in page and "Second Owner" not in page and owner.email not in page
    assert "2 members hold it." in page


def test_roles_page__counts_each_roles_holders_in_this_account_only(client, auth, make, owner, account):
    """System roles are shared by every account: their holders are counted per account (from the
    grants' account), a member holding two of them once in each."""
    make.member(account, make.user("twice@example.org"), roles=("owner", "administrator"))
    make.member(account, make.user("admin@example.org"), roles=("administrator",))
    other = make.account(make.user("elsewhere@example.org"), "Elsewhere")
    for number in range(3):
        make.member(other, make.user(f"other{number}@example.org"), roles=("owner", "administrator"))
    db.session.commit()
    auth.login(owner.email)
    page = client.get(f"/accounts/{account.id}/roles").get_data(as_text=True)

    def holders_of(label: str) -> str:
        row = next(row for row in page.split("<tr") if f">{label}</a>" in row)
        return re.search(r"#holders\">([^<]+)</a>", row).group(1)

    assert holders_of("Account Owner") == "2 members"  # owner and twice; not the four of Elsewhere
    assert holders_of("Account Administrator") == "2 members"
    assert holders_of("Mailbox Owner") == "0 members"
