"""Names are owned: account B never routes to itself, takes, blocks or learns about a mail name
on the domain account A proved, whatever path it names it through (findings 1, 2 and 7)."""

from __future__ import annotations

import html
import io

import pytest
from sqlalchemy.exc import IntegrityError

from portal.auth.models import User
from portal.backends import service as backends
from portal.domains.models import ENABLED, TAKEN, Domain
from portal.domains.services import add_domain
from portal.extensions import db
from portal.invitations.models import Invitation
from portal.mailboxes.models import FAILED, PENDING, Mailbox, MailboxAlias
from portal.i18n import shown
from tests.emulated import emulated
from tests.security.conftest import OWN_B, SHARED, prove
from tests.users.workbooks import fill


@pytest.fixture(params=["local", "mailinabox"])
def backend(request):
    with emulated(request.param) as (emulator, environ, connection):
        yield request.param, emulator, environ, connection


@pytest.fixture
def app_environ(backend):
    return backend[2]


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _login_b(client, auth):
    auth.login("mallory@b-owners.example")


def test_proving__takes_every_other_copy_and_tells_its_admins(world, smtp_sink, run_jobs):
    assert world["shared_a"].status == ENABLED and world["shared_a"].verified_at is not None
    copy_b = world["copy_b"]
    assert copy_b.status == TAKEN and copy_b.verified_at is None
    assert "Another account proved" in shown(copy_b.status_reason)
    mails = smtp_sink.wait_for("mallory@b-owners.example")
    assert any("victim.example.org" in smtp_sink.text(message) for message in mails)


def test_proving__a_second_proven_copy_is_impossible(world):
    copy_b = world["copy_b"]
    copy_b.verified_at = world["shared_a"].verified_at
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_domain_alias__of_a_domain_another_account_proved_is_refused(world, client, auth, run_jobs):
    """Finding 1: B's domain settings may not route @A's domain to B."""
    _login_b(client, auth)
    own_b, b = world["own_b"], world["b"]
    response = client.post(f"/accounts/{b.id}/domains/{own_b.id}/settings", data={"domain_aliases": SHARED})
    assert response.status_code == 422
    assert "Only this account's own proven domains can be aliases" in text(response)
    db.session.expire_all()
    assert not (db.session.get(Domain, own_b.id).settings or {}).get("domain_aliases")
    run_jobs()
    on_backend = backends.adapter(world["connection"]).get_domain_settings(OWN_B)
    assert not on_backend["domain_aliases"]


def test_domain_alias__set_before_the_name_was_taken_is_not_applied_after(world, make, dns_zone, run_jobs):
    """A stale claim is re-checked by the worker before anything is routed."""
    from portal.domains import settings

    b, own_b = world["b"], world["own_b"]
    spare = add_domain(world["owner_b"], b, "spare.example.org", world["connection"])
    db.session.commit()
    spare = prove(dns_zone, run_jobs, spare)
    settings.save(world["owner_b"], own_b, {"domain_aliases": [spare.name]})
    db.session.commit()
    # Before the worker applies it, the spare domain is given up.
    spare.verified_at = None
    db.session.commit()
    run_jobs()
    db.session.expire_all()
    own_b = db.session.get(Domain, own_b.id)
    assert own_b.settings_state == "failed" and "not proven" in own_b.settings_message
    assert not backends.adapter(world["connection"]).get_domain_settings(OWN_B)["domain_aliases"]


def test_catch_all__only_on_a_domain_the_account_proved(world, client, auth):
    _login_b(client, auth)
    b, own_b, copy_b = world["b"], world["own_b"], world["copy_b"]
    response = client.post(f"/accounts/{b.id}/domains/{own_b.id}/settings",
                           data={"catch_all": f"ceo@{SHARED}"})
    assert response.status_code == 422
    response = client.post(f"/accounts/{b.id}/domains/{copy_b.id}/settings",
                           data={"catch_all": f"ceo@{SHARED}"})
    assert response.status_code == 422
    assert "Another account proved" in text(response)
    db.session.expire_all()
    assert not (db.session.get(Domain, copy_b.id).settings or {}).get("catch_all")


def test_alias__on_a_domain_another_account_proved_is_refused(world, client, auth, run_jobs):
    """Finding 2: an alias on A's proven domain, from B's mailbox."""
    _login_b(client, auth)
    b, mailbox = world["b"], world["mailbox_b"]
    response = client.post(f"/accounts/{b.id}/mailboxes/{mailbox.id}/aliases", data={"alias": f"ceo@{SHARED}"})
    assert response.status_code == 409
    assert "proven by another account" in text(response)
    assert db.session.execute(db.select(MailboxAlias)).first() is None
    run_jobs()
    assert backends.adapter(world["connection"]).list_aliases(mailbox.address) == []


def test_alias__on_a_domain_not_proven_yet_is_refused(world, client, auth):
    b, mailbox = world["b"], world["mailbox_b"]
    fresh = add_domain(world["owner_b"], b, "not-yet.example.org", world["connection"])
    db.session.commit()
    _login_b(client, auth)
    response = client.post(f"/accounts/{b.id}/mailboxes/{mailbox.id}/aliases",
                           data={"alias": f"team@{fresh.name}"})
    assert response.status_code == 409 and "not proven yet" in text(response)


def test_mailbox__on_a_taken_copy_is_refused(world, client, auth):
    _login_b(client, auth)
    b, copy_b = world["b"], world["copy_b"]
    response = client.post(f"/accounts/{b.id}/mailboxes/new",
                           data={"local_part": "ceo", "domain": copy_b.id, "kind": "shared", "owner": "0"})
    assert response.status_code == 422
    assert db.session.execute(db.select(Mailbox).where(Mailbox.domain_id == copy_b.id)).first() is None


def test_unproven_copy__neither_blocks_nor_reveals_the_provers_addresses(make, backend, dns_zone, run_jobs,
                                                                          client, auth):
    """Finding 7: B's ``sales@`` on its unproven copy does not make A's fail, and what B is told
    about ``ceo@`` (A's mailbox) and ``cto@`` (a person's login address) is what it is told about any name."""
    from portal.mailboxes.services import create_mailbox

    connection = backend[3]
    owner_a = make.user("alice@a-owners.example")
    make.user(f"cto@{SHARED}")
    owner_b = make.user("mallory@b-owners.example")
    account_a, account_b = make.account(owner_a, "Victim"), make.account(owner_b, "Attacker")
    shared_a = add_domain(owner_a, account_a, SHARED, connection)
    copy_b = add_domain(owner_b, account_b, SHARED, connection)
    db.session.commit()
    create_mailbox(owner_a, account_a, shared_a, "ceo")
    db.session.commit()

    _login_b(client, auth)
    answers = {}
    for local_part in ("sales", "ceo", "cto", "nobody-has-this"):
        response = client.post(f"/accounts/{account_b.id}/mailboxes/new",
                               data={"local_part": local_part, "domain": copy_b.id, "kind": "shared",
                                     "owner": "0"})
        answers[local_part] = response.status_code
    assert answers == {"sales": 302, "ceo": 302, "cto": 302, "nobody-has-this": 302}

    sales_a = create_mailbox(owner_a, account_a, shared_a, "sales")
    db.session.commit()
    assert sales_a.status == PENDING, "A's own address is not blocked by B's waiting copy"

    prove(dns_zone, run_jobs, shared_a)
    db.session.expire_all()
    b_boxes = db.session.execute(db.select(Mailbox).where(Mailbox.domain_id == copy_b.id)).scalars().all()
    assert {m.status for m in b_boxes} == {FAILED}
    assert all("another account proved" in shown(m.status_reason) for m in b_boxes)
    a_boxes = db.session.execute(db.select(Mailbox).where(Mailbox.domain_id == shared_a.id)).scalars().all()
    assert {m.address for m in a_boxes} == {f"ceo@{SHARED}", f"sales@{SHARED}"}
    assert {m.status for m in a_boxes} == {"enabled"}
    on_backend = {box.address for box in backends.adapter(connection).list_mailboxes(SHARED)}
    assert {f"ceo@{SHARED}", f"sales@{SHARED}"} <= on_backend


def test_corporate_user__on_another_accounts_domain_is_refused(world, client, auth):
    _login_b(client, auth)
    response = client.post(f"/accounts/{world['b'].id}/users/new",
                           data={"first_name": "Chief", "last_name": "Exec", "email": f"ceo@{SHARED}",
                                 "personal_mailbox": "y"})
    assert response.status_code == 422
    assert db.session.execute(db.select(User).where(User.email == f"ceo@{SHARED}")).first() is None


def test_workbook__users_on_another_accounts_domain_fail_the_import(world, client, auth, run_jobs):
    from portal.users import workbook
    from portal.users.models import ImportRun

    _login_b(client, auth)
    b = world["b"]
    data = fill(workbook.template(b), users=[("Chief", "Exec", f"ceo@{SHARED}", "Y")])
    response = client.post(f"/accounts/{b.id}/users/import", data={"workbook": (io.BytesIO(data), "u.xlsx")},
                           content_type="multipart/form-data")
    assert response.status_code == 302
    run_jobs()
    run = db.session.execute(db.select(ImportRun)).scalar_one()
    assert run.fatal and "not on an active domain" in shown(run.fatal)
    assert client.post(f"/accounts/{b.id}/users/import/{run.id}/confirm").status_code == 409
    assert db.session.execute(db.select(User).where(User.email == f"ceo@{SHARED}")).first() is None


def test_invitation__to_an_address_on_another_accounts_domain_brings_no_mailbox(world, client, auth, run_jobs,
                                                                               smtp_sink, app):
    from portal.invitations import services as invitations

    b = world["b"]
    b.personal_mailboxes = True
    db.session.commit()
    invitation = invitations.start(world["owner_b"], b, f"cfo@{SHARED}")
    invitations.send_invitation(world["owner_b"], invitation)
    db.session.commit()
    cfo = make_verified(f"cfo@{SHARED}")
    invitations.accept(cfo, db.session.get(Invitation, invitation.id))
    db.session.commit()
    run_jobs()
    assert not (cfo.is_corporate and cfo.corporate_account_id == b.id)
    assert db.session.execute(db.select(Mailbox).where(Mailbox.address == f"cfo@{SHARED}")).first() is None


def make_verified(email: str) -> User:
    from portal.auth.passwords import hash_password
    from portal.timeutil import utcnow
    from tests.conftest import PASSWORD

    user = User(email=email, password_hash=hash_password(PASSWORD), email_verified_at=utcnow(), address_proven_at=utcnow())
    db.session.add(user)
    db.session.commit()
    return user


# -- someone's login address: mail to it opens their profile (found by an attacker-side review)

def test_alias__at_someone_elses_login_address_is_refused_and_their_own_mailbox_may_have_it(
        client, auth, owner, account, run_jobs):
    from portal.auth.passwords import hash_password
    from portal.mailboxes.models import Mailbox, MailboxAlias
    from portal.timeutil import utcnow
    from portal.users import services as users
    from tests.conftest import PASSWORD
    from tests.mailboxes.conftest import enabled_domain

    enabled_domain(owner, account, "corp.example.org")
    users.create_corporate_user(owner, account, first_name="Big", last_name="Boss", email="boss@corp.example.org",
                                personal_mailbox=False)
    eve, _ = users.create_corporate_user(owner, account, first_name="Eve", last_name="Low",
                                         email="eve@corp.example.org", personal_mailbox=True)
    eve.password_hash, eve.email_verified_at = hash_password(PASSWORD), utcnow()
    db.session.commit()
    run_jobs()
    box = db.session.execute(db.select(Mailbox).where(Mailbox.address == "eve@corp.example.org")).scalar_one()
    auth.login("eve@corp.example.org")
    refused = client.post(f"/accounts/{account.id}/mailboxes/{box.id}/aliases", data={"alias": "Boss@corp.example.org"})
    assert refused.status_code in (409, 422)
    assert "boss@corp.example.org is boss@corp.example.org&#39;s login address" in refused.get_data(as_text=True)
    assert db.session.execute(db.select(MailboxAlias)).first() is None
    # An address nobody signs in with is fine.
    assert client.post(f"/accounts/{account.id}/mailboxes/{box.id}/aliases",
                       data={"alias": "sales@corp.example.org"}).status_code == 302
    # And nobody is then created at an address an alias holds: their mail would reach the mailbox.
    try:
        users.create_corporate_user(owner, account, first_name="Sal", last_name="Es", email="sales@corp.example.org",
                                    personal_mailbox=False)
    except users.UserError as refusal:
        assert str(refusal) == "sales@corp.example.org is an alias of a mailbox: remove the alias first."
    else:
        raise AssertionError("a person was created at an alias's address")
