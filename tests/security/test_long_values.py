"""Values as long as each field allows, together longer than where they are kept: PostgreSQL refuses
what SQLite keeps, and the request ended in an HTTP 500 there (found by attacker-side reviews)."""

import io

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.invitations.models import InvitationGrant
from portal.mailboxes import services as mailboxes
from portal.mailboxes.models import Mailbox
from portal.roles.services import create_role
from portal.tokens import services as tokens
from portal.users import workbook
from portal.users.models import ImportRun
from tests.conftest import PASSWORD, first_link
from tests.mailboxes.conftest import enabled_domain
from tests.users.workbooks import fill

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LONG_DOMAIN = "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + ".example"  # 199 characters
LONGEST_DOMAIN = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 50, "org"])  # 245 characters


def test_a_workbook_with_a_long_file_name_is_previewed_its_name_cut_in_the_log(owner, account, client, auth,
                                                                              run_jobs):
    enabled_domain(owner, account)
    data = fill(workbook.template(account), users=[("Ann", "Able", "ann@example.org", "")])
    auth.login("owner@example.org")
    response = client.post(f"/accounts/{account.id}/users/import",
                           data={"workbook": (io.BytesIO(data), "a" * 300 + ".xlsx")},
                           content_type="multipart/form-data")
    assert response.status_code == 302
    run_jobs()
    assert db.session.execute(db.select(ImportRun)).scalar_one().to_create == 1
    labels = db.session.execute(db.select(AuditEvent.target_label).where(
        AuditEvent.action.like("users.import%"))).scalars().all()
    assert labels and all(len(label) == 254 and label.startswith("aaa") for label in labels)


def test_a_workbook_sent_to_the_api_under_the_longest_name_it_allows(owner, account, client):
    enabled_domain(owner, account)
    data = fill(workbook.template(account), users=[("Ann", "Able", "ann@example.org", "")])
    _token, raw = tokens.create(owner, account, name="t", scopes={"imports:write"}, expires_at=None)
    db.session.commit()
    response = client.post(f"/api/v1/accounts/{account.id}/imports?filename=" + "a" * 250 + ".xlsx", data=data,
                           content_type=XLSX, headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code in (201, 202), response.get_data(as_text=True)[:300]


def test_an_offer_of_a_long_role_on_a_long_mailbox_address_is_kept(owner, account, client, auth):
    domain = enabled_domain(owner, account, LONG_DOMAIN)
    mailbox = mailboxes.create_mailbox(owner, account, domain, "m" * 50)  # a 250-character address
    role = create_role(owner, account, name="R" * 80, scope="mailbox", description="", permissions={"mailbox.read"})
    db.session.commit()
    auth.login("owner@example.org")
    created = client.post(f"/accounts/{account.id}/invitations/new", data={"email": "guest@elsewhere.example"})
    assert created.status_code == 302
    response = client.post(created.headers["Location"] + "/grants",
                           data={"scope": "mailbox", "mailbox_id": mailbox.id, "role_id": role.id})
    assert response.status_code == 302
    offer = db.session.execute(db.select(InvitationGrant)).scalar_one()
    assert len(offer.label) == 300 and offer.shown_label == f"{'R' * 80} on {'m' * 50}@{LONG_DOMAIN}"


def test_an_address_longer_than_mail_allows_is_refused_with_its_reason(make, client, auth):
    owner = make.user("mallory@b-owners.example")
    account = make.account(owner, "B")
    auth.login("mallory@b-owners.example")
    assert client.post(f"/accounts/{account.id}/domains/new",
                       data={"name": LONGEST_DOMAIN, "connection": "local"}).status_code == 302
    from portal.domains.models import Domain

    domain_id = db.session.execute(db.select(Domain.id)).scalar_one()
    response = client.post(f"/accounts/{account.id}/mailboxes/new",
                           data={"local_part": "x" * 40, "domain": domain_id, "kind": "shared", "owner": "0"})
    assert response.status_code == 422
    assert "at most 254 characters; this one would have 287" in response.get_data(as_text=True)
    assert db.session.execute(db.select(Mailbox)).first() is None


def test_a_name_of_200_letters_without_a_space_gets_its_personal_mailbox(owner, account, client, run_jobs, smtp_sink):
    """The forms allow names of 200 characters; said at the first space, such a name was a first
    name longer than a mailbox keeps (100), when an invited person registered from the link."""
    from portal.invitations import services as invitations

    enabled_domain(owner, account)
    account.personal_mailboxes = True
    invitation = invitations.start(owner, account, "staff@example.org")
    invitations.send_invitation(owner, invitation)
    db.session.commit()
    run_jobs()
    path = first_link(smtp_sink.text(smtp_sink.wait_for("staff@example.org")[-1]), "/invitations/")
    response = client.post(path.removeprefix("http://localhost") + "/register",
                           data={"name": "N" * 200, "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302
    mailbox = db.session.execute(db.select(Mailbox).where(Mailbox.address == "staff@example.org")).scalar_one()
    assert (mailbox.first_name, mailbox.last_name, mailbox.display_name) == ("N" * 100, "", "N" * 200)


def test_a_mailbox_name_longer_than_kept_is_refused_by_the_service(owner, account):
    import pytest

    domain = enabled_domain(owner, account)
    with pytest.raises(mailboxes.MailboxError) as refusal:
        mailboxes.create_mailbox(owner, account, domain, "desk", first_name="F" * 101)
    assert refusal.value.field == "first_name" and "At most 100 characters" in str(refusal.value)
