import pytest

from portal.extensions import db
from portal.roles import catalogue
from portal.roles.models import Grant, Role
from portal.roles.services import (AccessError, account_permissions, copy_role, create_role, delete_role,
                                   grant_role, revoke_grant, set_single_permissions, system_role, update_role)


@pytest.fixture
def setting(make):
    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    return owner, account


def test_catalogue__every_system_role_uses_known_permissions_of_its_scope():
    for role in catalogue.SYSTEM_ROLES:
        assert role.permissions <= catalogue.codes(role.scope), role.key
    assert {"owner", "administrator", "mailbox_owner", "mailbox_delegate"} <= set(catalogue.SYSTEM_BY_KEY)
    assert "account.delete" not in catalogue.SYSTEM_BY_KEY["administrator"].permissions


def test_catalogue__search_matches_words_in_any_field_and_filters():
    assert [p.code for p in catalogue.search("audit")] == ["audit.view"]
    assert all(p.scope == "mailbox" for p in catalogue.search("", scope="mailbox"))
    assert all(p.group == "Roles" for p in catalogue.search("", group="Roles"))
    assert catalogue.search("no such thing at all") == []


def test_owner__holds_every_account_permission(setting):
    owner, account = setting
    assert account_permissions(owner, account) == catalogue.codes("account")


def test_custom_role__created_copied_edited_deleted_and_audited(setting):
    owner, account = setting
    role = create_role(owner, account, name=" Help  desk ", scope="account", description="First line",
                       permissions={"members.view", "audit.view"})
    assert role.name == "Help desk"
    copy = copy_role(owner, account, role)
    assert copy.name == "Copy of Help desk" and copy.permissions == role.permissions
    second = copy_role(owner, account, role)
    assert second.name == "Copy of Help desk (2)"
    update_role(owner, account, copy, name="Auditors", description="", permissions={"audit.view"})
    assert copy.permissions == {"audit.view"}
    delete_role(owner, account, second)
    db.session.commit()
    from portal.audit.models import AuditEvent

    actions = [e.action for e in db.session.execute(db.select(AuditEvent).order_by(AuditEvent.id)).scalars()]
    assert actions.count("role.create") == 3 and "role.update" in actions and "role.delete" in actions


def test_custom_role__duplicate_names_and_unknown_permissions_are_refused(setting):
    owner, account = setting
    create_role(owner, account, name="Auditors", scope="account", description="", permissions=set())
    with pytest.raises(AccessError, match="already exists"):
        create_role(owner, account, name="auditors", scope="account", description="", permissions=set())
    with pytest.raises(AccessError, match="already exists"):
        create_role(owner, account, name="Account Owner", scope="account", description="", permissions=set())
    with pytest.raises(AccessError, match="do not exist"):
        create_role(owner, account, name="X", scope="account", description="", permissions={"mailbox.read"})


def test_system_roles__cannot_be_edited_or_deleted(setting):
    owner, account = setting
    with pytest.raises(AccessError):
        delete_role(owner, account, system_role("owner"))
    with pytest.raises(AccessError):
        update_role(owner, account, system_role("administrator"), name="Boss", description="", permissions=set())


def test_escalation__nobody_grants_or_builds_what_they_do_not_hold(setting, make):
    owner, account = setting
    limited = make.member(account, make.user("limited@example.org"),
                          permissions=("access.grant", "roles.manage", "members.view"))
    target = make.member(account, make.user("target@example.org"))
    admin_role = system_role("administrator")
    with pytest.raises(AccessError, match="do not hold"):
        grant_role(limited.user, account, target, admin_role)
    with pytest.raises(AccessError, match="do not hold"):
        create_role(limited.user, account, name="Sneaky", scope="account", description="",
                    permissions={"account.delete"})
    with pytest.raises(AccessError, match="do not hold"):
        set_single_permissions(limited.user, account, target, {"audit.view"})
    allowed = create_role(limited.user, account, name="Viewers", scope="account", description="",
                          permissions={"members.view"})
    grant_role(limited.user, account, target, allowed)
    assert account_permissions(target.user, account) == {"members.view"}


def test_last_owner__cannot_be_demoted_or_removed(setting, make):
    owner, account = setting
    from portal.accounts.services import member_in_account, remove_member
    from portal.roles.services import membership_of

    membership = membership_of(owner, account)
    owner_grant = db.session.execute(db.select(Grant).where(Grant.membership_id == membership.id)).scalar_one()
    with pytest.raises(AccessError, match="last owner"):
        revoke_grant(owner, account, owner_grant)
    with pytest.raises(AccessError, match="last owner"):
        remove_member(owner, account, member_in_account(account, membership.id))
    second = make.member(account, make.user("second@example.org"), roles=("owner",))
    revoke_grant(owner, account, owner_grant)
    db.session.commit()
    assert account_permissions(owner, account) == frozenset()
    assert account_permissions(second.user, account) == catalogue.codes("account")


def test_single_permissions__set_exactly_and_combined_with_roles(setting, make):
    owner, account = setting
    member = make.member(account, make.user("m@example.org"), roles=("administrator",))
    added, removed = set_single_permissions(owner, account, member, {"account.delete"})
    assert added == {"account.delete"} and removed == set()
    assert account_permissions(member.user, account) == catalogue.codes("account")
    set_single_permissions(owner, account, member, set())
    assert "account.delete" not in account_permissions(member.user, account)


def test_deleting_a_custom_role__takes_away_what_it_granted(setting, make):
    owner, account = setting
    role = create_role(owner, account, name="Auditors", scope="account", description="", permissions={"audit.view"})
    member = make.member(account, make.user("m@example.org"))
    grant_role(owner, account, member, role)
    delete_role(owner, account, role)
    db.session.commit()
    assert account_permissions(member.user, account) == frozenset()
    assert db.session.get(Role, role.id) is None


def test_the_owner_role_is_given_offered_or_taken_only_by_an_owner(owner, account, make):
    """A member holding every account permission one by one granted themself the Owner role, and
    with it what only owners do (deleting the account, catch-alls, domain aliases)."""
    import pytest

    from portal.accounts.services import remove_member
    from portal.invitations import services as invitations
    from portal.roles import catalogue
    from portal.roles.services import (AccessError, account_grants, grant_role, is_owner, outranks,
                                       revoke_grant, system_role)

    every = tuple(sorted(catalogue.codes(catalogue.ACCOUNT)))
    deputy = make.member(account, make.user("deputy@example.net"), permissions=every)
    second = make.member(account, make.user("second@example.net"), roles=("owner",))
    owner_role = system_role(catalogue.OWNER)
    with pytest.raises(AccessError, match="Only an owner"):
        grant_role(deputy.user, account, deputy, owner_role)
    with pytest.raises(AccessError, match="Only an owner"):
        revoke_grant(deputy.user, account, account_grants(second)[0])
    with pytest.raises(AccessError, match="Only an owner"):
        remove_member(deputy.user, account, second)
    invitation = invitations.start(deputy.user, account, "friend@example.net")
    with pytest.raises(invitations.InvitationError, match="Only an owner"):
        invitations.add_grant(deputy.user, invitation, role_id=owner_role.id)
    assert not outranks(deputy.user, account, second.user)
    assert outranks(deputy.user, account, make.member(account, make.user("plain@example.net"),
                                                      roles=("administrator",)).user)
    db.session.rollback()
    assert not is_owner(deputy.user, account.id)
    # An owner does all of it.
    grant_role(owner, account, deputy, owner_role)
    assert outranks(owner, account, second.user)
    revoke_grant(owner, account, account_grants(second)[0])
    db.session.commit()
    assert is_owner(deputy.user, account.id) and not is_owner(second.user, account.id)


def test_editing_a_held_role__changes_its_holders_access_and_needs_the_right_to_grant(setting, make):
    """A review: someone holding only the right to manage roles (and domains) added "manage
    domains" to a role a helper held, and could take a permission from its holders without holding
    the rest of the role, as neither granting nor revoking would have let them."""
    owner, account = setting
    editor = make.member(account, make.user("editor@example.org"),
                         permissions=("roles.view", "roles.manage", "domains.manage", "audit.view"))
    role = create_role(owner, account, name="Viewers", scope="account", description="", permissions={"audit.view"})
    unheld = create_role(owner, account, name="Unheld", scope="account", description="", permissions={"audit.view"})
    holder = make.member(account, make.user("helper@example.org"))
    grant_role(owner, account, holder, role)
    db.session.commit()

    with pytest.raises(AccessError, match="People hold this role"):
        update_role(editor.user, account, role, name="Viewers", description="", permissions={"audit.view",
                                                                                             "domains.manage"})
    with pytest.raises(AccessError, match="People hold this role"):
        update_role(editor.user, account, role, name="Viewers", description="", permissions=set())
    with pytest.raises(AccessError, match="People hold this role"):
        delete_role(editor.user, account, role)
    assert account_permissions(holder.user, account) == {"audit.view"}

    # A role nobody holds is theirs to shape and delete; and with the right to grant, a held one too.
    update_role(editor.user, account, unheld, name="Unheld", description="", permissions={"domains.manage"})
    delete_role(editor.user, account, unheld)
    for code in ("access.grant", "members.view"):
        db.session.add(Grant(membership_id=editor.id, account_id=account.id, permission=code))
    db.session.flush()
    update_role(editor.user, account, role, name="Viewers", description="", permissions={"domains.manage"})
    assert account_permissions(holder.user, account) == {"domains.manage"}


def test_renaming_a_role__is_for_someone_who_holds_what_it_gives(setting, make):
    """A review: someone holding only the right to manage roles renamed a role of rights they did
    not hold to look like the Owner role."""
    owner, account = setting
    editor = make.member(account, make.user("editor@example.org"), permissions=("roles.view", "roles.manage"))
    role = create_role(owner, account, name="Domain admins", scope="account", description="Domains",
                       permissions={"domains.manage", "users.manage"})
    with pytest.raises(AccessError, match="do not hold"):
        update_role(editor.user, account, role, name="Helpdesk", description="Domains",
                    permissions={"domains.manage", "users.manage"})
    with pytest.raises(AccessError, match="do not hold"):
        update_role(editor.user, account, role, name="Domain admins", description="Read this first",
                    permissions={"domains.manage", "users.manage"})
    update_role(owner, account, role, name="Helpdesk", description="Domains", permissions={"domains.manage",
                                                                                         "users.manage"})
    assert role.name == "Helpdesk"


@pytest.mark.parametrize("name", ["Account\u200b Owner", "Account Owner\u200b", "\u202eAccount Owner",
                                  "Ａｃｃｏｕｎｔ Ｏｗｎｅｒ", "account\u00a0owner", "Propriétaire du compte",
                                  "PROPRIÉTAIRE DU COMPTE", "Mailbox Owner", "Account Owner\u034f",
                                  "Account Owner\ufe0f", "Account\u3164Owner", "Account Owner\u115f",
                                  "Account\u2800Owner", "Account Owner\U000e0041", "Account\u200bOwner",
                                  "accountowner"])
def test_role_names__that_would_read_as_a_system_role_are_refused(setting, name):
    owner, account = setting
    with pytest.raises(AccessError, match="already exists"):
        create_role(owner, account, name=name, scope="account", description="", permissions={"audit.view"})


def test_role_names__invisible_characters_are_dropped(setting):
    owner, account = setting
    role = create_role(owner, account, name="Help\u200bdesk\u2066 team", scope="account", description="",
                       permissions={"audit.view"})
    assert role.name == "Helpdesk team"
    with pytest.raises(AccessError, match="already exists"):
        create_role(owner, account, name="Help\u200ddesk team", scope="account", description="",
                    permissions={"audit.view"})


def test_role_names__letters_of_look_alike_alphabets_are_not_mixed(setting):
    """A review: "Account Оwner" with a Cyrillic "О" read as the Owner role."""
    owner, account = setting
    with pytest.raises(AccessError, match="each word of a role's name in one alphabet"):
        create_role(owner, account, name="Account \u041ewner", scope="account", description="",
                    permissions={"audit.view"})
    for name in ("Аccount Owner", "Support-Кiev", "Ωmega team"):
        with pytest.raises(AccessError, match="each word of a role's name in one alphabet"):
            create_role(owner, account, name=name, scope="account", description="", permissions={"audit.view"})
    # Words of different alphabets side by side read as they are.
    for name in ("Секретариат", "Γραμματεία", "Équipe d’accueil", "Team 日本", "Support (Київ)", "Ω team"):
        assert create_role(owner, account, name=name, scope="account", description="",
                           permissions={"audit.view"}).name == name


def test_role_names__a_role_named_before_these_rules_is_still_edited_under_its_name(setting):
    """A role stored with a name now refused (a system role's name in French, letters of two
    alphabets) keeps working: only a new name is held to the rules."""
    owner, account = setting
    role = create_role(owner, account, name="Placeholder", scope="account", description="",
                       permissions={"audit.view"})
    role.name = "Propriétaire du compte"
    db.session.flush()
    update_role(owner, account, role, name="Propriétaire du compte", description="Kept", permissions={"audit.view",
                                                                                                    "members.view"})
    assert role.description == "Kept"


def test_editing_a_role_an_invitation_offers__needs_the_right_to_grant(setting, make):
    """A review: nobody held the role yet, but a pending invitation offered it; an editor who may not
    grant added a permission, and the invitee got it on accepting."""
    from portal.invitations import services as invitations

    owner, account = setting
    editor = make.member(account, make.user("editor@example.org"),
                         permissions=("roles.view", "roles.manage", "domains.manage", "audit.view"))
    role = create_role(owner, account, name="Viewers", scope="account", description="", permissions={"audit.view"})
    draft = invitations.start(owner, account, "guest@elsewhere.example")
    invitations.add_grant(owner, draft, role_id=role.id)
    db.session.commit()
    with pytest.raises(AccessError, match="or are offered it"):  # a draft offers it too
        update_role(editor.user, account, role, name="Viewers", description="", permissions=set())
    invitations.send_invitation(owner, draft)
    db.session.commit()
    with pytest.raises(AccessError, match="or are offered it"):
        update_role(editor.user, account, role, name="Viewers", description="",
                    permissions={"audit.view", "domains.manage"})
    with pytest.raises(AccessError, match="or are offered it"):
        delete_role(editor.user, account, role)
