"""Who an invitation's link reaches, and who may change an invitation someone else made.

The link lets whoever opens it answer as the invited address: it is mailed only where no one
but that person (or an owner) reads; a mailbox or alias that starts receiving the address ends
the links mailed there before. An invitation's offers are handled (sent again, taken away,
withdrawn) only by someone who holds them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.auth.models import User
from portal.extensions import db
from portal.invitations import services
from portal.invitations.models import PENDING, REVOKED, Invitation
from portal.mailboxes import services as mailboxes
from portal.roles.services import account_permissions, system_role
from portal.timeutil import utcnow
from tests.conftest import PASSWORD, first_link
from tests.mailboxes.conftest import enabled_domain

REFUSED = "reaches a mailbox other people may read"


def _invitation(owner, account, email, *, role="administrator"):
    invitation = services.start(owner, account, email)
    if role:
        services.add_grant(owner, invitation, role_id=system_role(role).id)
    return invitation


@pytest.fixture
def lena(owner, account, make, run_jobs):
    """A member with no account permission and her own personal mailbox (Mailbox Owner on it)."""
    domain = enabled_domain(owner, account)
    person = make.user("lena@example.org")
    make.member(account, person)
    mailbox = mailboxes.create_mailbox(owner, account, domain, "lena", kind="personal", owner=person)
    db.session.commit()
    run_jobs()
    assert account_permissions(person, account) == frozenset()
    return person, mailbox, domain


def test_an_alias_at_an_invited_address_ends_the_link_and_it_is_not_sent_again_there(
        owner, account, lena, client, auth, app, run_jobs, smtp_sink):
    """Lena, holding nothing in the account, aliased the new hire's address to her mailbox, had the
    invitation sent again, registered from its link and became an Administrator."""
    person, mailbox, _domain = lena
    invitation = _invitation(owner, account, "newhire@example.org")
    services.send_invitation(owner, invitation)
    db.session.commit()
    run_jobs()
    link = first_link(smtp_sink.text(smtp_sink.wait_for("newhire@example.org")[-1]), "/invitations/")
    auth.login(person.email)
    assert client.post(f"/accounts/{account.id}/mailboxes/{mailbox.id}/aliases",
                       data={"alias": "newhire@example.org"}).status_code == 302
    run_jobs()
    auth.logout()
    db.session.expire_all()
    assert not services.is_open(db.session.get(Invitation, invitation.id))
    stranger = app.test_client()
    path = link.removeprefix("http://localhost")
    stranger.post(path + "/register", data={"name": "Not the hire", "password": PASSWORD, "confirm": PASSWORD})
    assert db.session.execute(db.select(User).where(User.email == "newhire@example.org")).first() is None
    with pytest.raises(services.InvitationError, match=REFUSED):
        services.resend(owner, db.session.get(Invitation, invitation.id))
    auth.login(owner.email)
    page = client.post(f"/accounts/{account.id}/invitations/{invitation.id}/resend")
    assert page.status_code == 409 and REFUSED in page.get_data(as_text=True)


def test_an_address_a_mailbox_receives_by_name_is_not_invited(owner, account, lena):
    _person, mailbox, domain = lena
    mailboxes.add_alias(owner, mailbox, "alias@example.org")
    mailboxes.create_mailbox(owner, account, domain, "sales")
    db.session.commit()
    for address in ("alias@example.org", "sales@example.org"):
        with pytest.raises(services.InvitationError, match=REFUSED):
            services.send_invitation(owner, _invitation(owner, account, address, role=None))
        db.session.rollback()


def test_a_catch_all_carries_the_link_only_when_owners_alone_read_it(owner, account, lena, make):
    person, mailbox, domain = lena
    domain.settings = {"catch_all": mailbox.address}
    db.session.commit()
    with pytest.raises(services.InvitationError, match=REFUSED):
        services.send_invitation(owner, _invitation(owner, account, "newhire@example.org"))
    db.session.rollback()
    # Someone who has a profile at the address answers only once signed in as it.
    make.user("someone@example.org")
    services.send_invitation(owner, _invitation(owner, account, "someone@example.org"))
    db.session.commit()
    boss = make.user("boss@example.net")
    make.member(account, boss, roles=("owner",))
    box = mailboxes.create_mailbox(owner, account, domain, "boss", kind="personal", owner=boss)
    box.password_given_to_id = owner.id
    domain.settings = {"catch_all": box.address}
    db.session.commit()
    invitation = _invitation(owner, account, "newhire@example.org")
    services.send_invitation(owner, invitation)
    db.session.commit()
    assert invitation.status == PENDING


def test_an_invitation_is_sent_again_taken_apart_or_withdrawn_only_by_someone_holding_its_offers(
        owner, account, make, client, auth):
    invitation = _invitation(owner, account, "partner@example.net")
    services.send_invitation(owner, invitation)
    invitation.expires_at = utcnow() - timedelta(days=1)
    db.session.commit()
    helper = make.member(account, make.user("helper@example.net"), permissions=("users.invite",))
    auth.login(helper.user.email)
    base = f"/accounts/{account.id}/invitations/{invitation.id}"
    offer = invitation.grants[0].id
    for path in ("/resend", "/revoke", f"/grants/{offer}/remove"):
        answer = client.post(base + path)
        assert answer.status_code == 409, path
    db.session.expire_all()
    kept = db.session.get(Invitation, invitation.id)
    assert kept.status == PENDING and kept.expires_at < utcnow() and len(kept.grants) == 1
    # An invitation offering nothing beyond membership is theirs to handle as anyone's.
    plain = _invitation(owner, account, "plain@example.net", role=None)
    services.send_invitation(owner, plain)
    db.session.commit()
    assert client.post(f"/accounts/{account.id}/invitations/{plain.id}/resend").status_code == 302
    assert client.post(f"/accounts/{account.id}/invitations/{plain.id}/revoke").status_code == 302
    db.session.expire_all()
    assert db.session.get(Invitation, plain.id).status == REVOKED


def test_a_domain_alias_reaches_an_alias_too_and_routing_there_ends_its_links(owner, account, lena, run_jobs):
    """An alias newhire@example.org also receives newhire@alias.example when an owner aliased that
    domain onto example.org: the send check missed it, and adding the alias ended only the links
    mailed to newhire@example.org."""
    person, mailbox, domain = lena
    enabled_domain(owner, account, "alias.example")
    domain.settings = {"domain_aliases": ["alias.example"]}
    db.session.commit()
    before = _invitation(owner, account, "newhire@alias.example")
    services.send_invitation(owner, before)
    shared = _invitation(owner, account, "sales@alias.example")
    services.send_invitation(owner, shared)
    db.session.commit()
    mailboxes.add_alias(person, mailbox, "newhire@example.org")
    mailboxes.create_mailbox(owner, account, domain, "sales")
    db.session.commit()
    db.session.expire_all()
    assert not services.is_open(db.session.get(Invitation, before.id))
    assert not services.is_open(db.session.get(Invitation, shared.id))
    for invitation_id in (before.id, shared.id):
        with pytest.raises(services.InvitationError, match=REFUSED):
            services.resend(owner, db.session.get(Invitation, invitation_id))
        db.session.rollback()


def test_a_catch_all_whose_password_holder_left_carries_the_link(owner, account, make):
    """Their profile deleted, the holder's id stayed on the mailbox: sending answered 500."""
    from portal.accounts.services import delete_profile

    domain = enabled_domain(owner, account)
    catch = mailboxes.create_mailbox(owner, account, domain, "catchall")
    former = make.user("former.owner@elsewhere.example")
    make.member(account, former, roles=("owner",))
    catch.password_given_to_id = former.id
    domain.settings = {"catch_all": catch.address}
    db.session.commit()
    delete_profile(former, "former.owner@elsewhere.example")
    db.session.commit()
    invitation = _invitation(owner, account, "newhire@example.org")
    services.send_invitation(owner, invitation)
    db.session.commit()
    assert invitation.status == PENDING


def test_an_offer_whose_role_is_gone_holds_nothing_back(owner, account, client, auth, make):
    """Once an offered custom role was deleted, nobody, the owner included, could withdraw the
    invitation, send it again or take the dead offer away."""
    from portal.roles.services import create_role, delete_role

    role = create_role(owner, account, name="Helpdesk", scope="account", description="",
                       permissions={"members.view"})
    invitation = services.start(owner, account, "partner@example.net")
    services.add_grant(owner, invitation, role_id=role.id)
    services.send_invitation(owner, invitation)
    db.session.commit()
    delete_role(owner, account, role)
    db.session.commit()
    auth.login(owner.email)
    base = f"/accounts/{account.id}/invitations/{invitation.id}"
    offer = db.session.get(Invitation, invitation.id).grants[0].id
    assert client.post(base + "/resend").status_code == 302
    assert client.post(base + f"/grants/{offer}/remove").status_code == 302
    again = client.post(base + f"/grants/{offer}/remove")
    assert again.status_code == 409 and "already taken away" in again.get_data(as_text=True)
    assert client.post(base + "/revoke").status_code == 302
    db.session.expire_all()
    kept = db.session.get(Invitation, invitation.id)
    assert kept.status == REVOKED and kept.grants == []


def test_a_domain_alias_falling_into_a_catch_all_counts_its_readers(owner, account, lena):
    """newhire@alias goes to newhire@example.org, which has no mailbox, so to example.org's
    catch-all: Lena's personal mailbox. The link was refused at newhire@example.org, not at
    newhire@alias."""
    _person, mailbox, domain = lena
    enabled_domain(owner, account, "alias.example")
    domain.settings = {"catch_all": mailbox.address, "domain_aliases": ["alias.example"]}
    db.session.commit()
    assert [found.id for found in mailboxes.receiving("newhire@alias.example")] == [mailbox.id]
    with pytest.raises(services.InvitationError, match=REFUSED):
        services.send_invitation(owner, _invitation(owner, account, "newhire@alias.example"))


def test_a_mailbox_of_the_invitees_own_does_not_end_their_invitation(owner, account, make, run_jobs):
    """Their personal mailbox, made when they joined another way (single sign-on, registration,
    another invitation), ended the invitation waiting for them: it left their Invites tab."""
    domain = enabled_domain(owner, account)
    invitation = _invitation(owner, account, "alice@example.org")
    services.send_invitation(owner, invitation)
    db.session.commit()
    alice = make.user("alice@example.org")
    mailboxes.create_mailbox(owner, account, domain, "alice", kind="personal", owner=alice)
    db.session.commit()
    assert services.is_open(db.session.get(Invitation, invitation.id))
    assert [found.id for found in services.pending_for(alice)[0]] == [invitation.id]


def test_a_read_address_is_refused_when_the_draft_is_started(owner, account, lena):
    """It was refused only at sending, after the draft had been made and offers added."""
    _person, mailbox, _domain = lena
    mailboxes.add_alias(owner, mailbox, "team@example.org")
    db.session.commit()
    with pytest.raises(services.InvitationError, match=REFUSED) as refusal:
        services.start(owner, account, "team@example.org")
    assert refusal.value.field == "email"
    assert db.session.execute(db.select(Invitation)).first() is None


def test_a_new_catch_all_or_domain_alias_ends_the_links_mailed_where_it_now_routes(
        owner, account, lena, make, client, auth):
    """Saving a catch-all, or adding a domain alias, left pending invitation links working though
    they were mailed to addresses the new routing hands to a mailbox (whoever reads it could answer
    as the invited person). Links to other domains, or to someone with a profile, are kept."""
    person, mailbox, domain = lena
    enabled_domain(owner, account, "alias.example")
    make.user("someone@example.org")
    sent = {}
    for address in ("newhire@example.org", "someone@example.org", "partner@elsewhere.example",
                    "hire2@alias.example"):
        sent[address] = _invitation(owner, account, address)
        services.send_invitation(owner, sent[address])
    db.session.commit()
    auth.login(owner.email)
    answer = client.post(f"/accounts/{account.id}/domains/{domain.id}/settings",
                         data={"catch_all": mailbox.address}, follow_redirects=True)
    assert answer.status_code == 200
    assert "1 pending invitation was mailed to an address these settings now route" in answer.get_data(as_text=True)
    db.session.expire_all()
    still = {address: services.is_open(db.session.get(Invitation, invitation.id))
             for address, invitation in sent.items()}
    assert still == {"newhire@example.org": False, "someone@example.org": True,
                     "partner@elsewhere.example": True, "hire2@alias.example": True}
    # Aliasing a domain onto this one (whose catch-all is Lena's) ends the links mailed on it.
    from portal.domains import settings as domain_settings

    assert domain_settings.save(owner, db.session.get(type(domain), domain.id),
                                {"catch_all": mailbox.address, "domain_aliases": ["alias.example"]}) == 1
    db.session.commit()
    db.session.expire_all()
    assert not services.is_open(db.session.get(Invitation, sent["hire2@alias.example"].id))
    assert services.is_open(db.session.get(Invitation, sent["partner@elsewhere.example"].id))


def test_a_catch_all_written_otherwise_ends_nothing(owner, account, lena):
    """Only routing that is new ends links: the same catch-all in other capitals is not new."""
    from portal.domains import settings as domain_settings

    _person, mailbox, domain = lena
    invitation = _invitation(owner, account, "someone-new@example.org", role=None)
    invitation.status, invitation.expires_at = PENDING, utcnow() + timedelta(days=3)
    domain.settings = {"catch_all": mailbox.address.upper()}
    db.session.commit()
    assert domain_settings.save(owner, domain, {"catch_all": mailbox.address}) == 0
    db.session.expire_all()
    assert services.is_open(db.session.get(Invitation, invitation.id))


def test_another_accounts_mailboxes_neither_block_nor_show_through_an_invitation(
        owner, account, lena, make, client, auth, run_jobs, smtp_sink):
    """Another account invited addresses on this account's domain: one a mailbox here received
    was refused ("reaches a mailbox other people may read"), one nothing received was not, so the
    other account learnt which addresses were mailboxes here, catch-all included. Who reads this
    account's mailboxes is its own business: there they are mailed as any outside address is."""
    _person, mailbox, domain = lena
    mailboxes.add_alias(owner, mailbox, "team@example.org")
    mailboxes.create_mailbox(owner, account, domain, "sales")
    db.session.commit()
    stranger = make.user("stranger@elsewhere.example")
    theirs = make.account(stranger)
    auth.login(stranger.email)
    answers = {}
    for address in ("lena@example.org", "team@example.org", "sales@example.org", "nobody-here@example.org"):
        answer = client.post(f"/accounts/{theirs.id}/invitations/new", data={"email": address})
        answers[address] = (answer.status_code, REFUSED in answer.get_data(as_text=True))
    assert set(answers.values()) == {(302, False)}, answers
    # The same through the catch-all: every address on the domain now reaches Lena's mailbox.
    domain.settings = {"catch_all": mailbox.address}
    db.session.commit()
    answer = client.post(f"/accounts/{theirs.id}/invitations/new", data={"email": "anyone@example.org"})
    assert answer.status_code == 302
    invitation = db.session.execute(db.select(Invitation).where(
        Invitation.account_id == theirs.id, Invitation.email == "team@example.org")).scalar_one()
    services.add_grant(stranger, invitation, role_id=system_role("administrator").id)
    services.send_invitation(stranger, invitation)
    db.session.commit()
    run_jobs()
    assert invitation.status == PENDING and smtp_sink.wait_for("team@example.org")
    # In this account, the same address is still refused.
    with pytest.raises(services.InvitationError, match=REFUSED):
        services.start(owner, account, "team@example.org")


def test_routing_here_leaves_another_accounts_links_as_they_are(owner, account, lena, make, client, auth):
    """The owner of the domain saved a catch-all and read "1 pending invitation was mailed to an
    address these settings now route", counting another account's invitation; an alias made here
    ended that account's invitation at once, its page saying when: each told one account what the
    other did. Who reads this account's mailboxes does not stop another account's invitations
    (see the test above), so they are neither ended nor counted here."""
    person, mailbox, domain = lena
    stranger = make.user("stranger@elsewhere.example")
    theirs = make.account(stranger)
    sent = {}
    for address in ("newhire@example.org", "ceo@example.org"):
        sent[address] = _invitation(stranger, theirs, address)
        services.send_invitation(stranger, sent[address])
    db.session.commit()
    auth.login(person.email)
    assert client.post(f"/accounts/{account.id}/mailboxes/{mailbox.id}/aliases",
                       data={"alias": "ceo@example.org"}).status_code == 302
    auth.logout()
    auth.login(owner.email)
    answer = client.post(f"/accounts/{account.id}/domains/{domain.id}/settings",
                         data={"catch_all": mailbox.address}, follow_redirects=True)
    assert answer.status_code == 200
    assert "pending invitation" not in answer.get_data(as_text=True)
    db.session.expire_all()
    assert all(services.is_open(db.session.get(Invitation, invitation.id)) for invitation in sent.values())


def test_a_tagged_address_reaches_the_mailbox_of_its_untagged_name_and_is_not_invited(owner, account, lena):
    """A review: an invitation to team+boss@ was sent while nobody read team@ yet, and waited there
    for whoever was later given team@'s password (the right to take it was enough), whose link made
    them an Administrator. Mail servers deliver name+tag@ to name@: it is received by name."""
    _person, mailbox, domain = lena
    mailboxes.create_mailbox(owner, account, domain, "team")
    mailboxes.add_alias(owner, mailbox, "desk@example.org")
    db.session.commit()
    for address in ("team+boss@example.org", "desk+night@example.org", "lena+x@example.org"):
        with pytest.raises(services.InvitationError, match=REFUSED):
            services.send_invitation(owner, _invitation(owner, account, address))
        db.session.rollback()


def test_a_new_mailbox_ends_the_links_mailed_to_its_name_with_a_tag_and_only_those(owner, account, lena, run_jobs):
    _person, _mailbox, domain = lena
    sent = {}
    for address in ("sales+lead@example.org", "sa1es+x@example.org", "sales@example.org.evil", "salesx@example.org"):
        sent[address] = _invitation(owner, account, address)
        services.send_invitation(owner, sent[address])
    db.session.commit()
    mailboxes.create_mailbox(owner, account, domain, "sales")
    mailboxes.create_mailbox(owner, account, domain, "sa_es")  # '_' is no wildcard here
    db.session.commit()
    db.session.expire_all()
    assert {address: services.is_open(invitation) for address, invitation in sent.items()} == {
        "sales+lead@example.org": False, "sa1es+x@example.org": True, "sales@example.org.evil": True,
        "salesx@example.org": True}


def test_a_catch_all_over_a_thousand_pending_invitations_ends_them_all(owner, account, client, auth):
    """A review: one LIKE per address made an expression SQLite refuses past a thousand, and setting
    the catch-all answered 500."""
    from portal.timeutil import utcnow

    domain = enabled_domain(owner, account)
    now = utcnow()
    db.session.execute(db.insert(Invitation), [
        {"account_id": account.id, "email": f"hire{n}@{domain.name}", "status": PENDING, "invited_by_id": owner.id,
         "sent_at": now, "expires_at": now + timedelta(days=7)} for n in range(1100)])
    db.session.commit()
    auth.login(owner.email)
    answer = client.post(f"/accounts/{account.id}/domains/{domain.id}/settings",
                         data={"catch_all": f"postmaster@{domain.name}"})
    assert answer.status_code == 302
    db.session.expire_all()
    assert db.session.execute(db.select(db.func.count()).select_from(Invitation).where(
        Invitation.expires_at > utcnow())).scalar() == 0
