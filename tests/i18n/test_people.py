"""People in French: invitations, corporate users, imports, reports and every e-mail they
send, for a person whose profile says French (or, without a profile, whose account does)."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook, load_workbook

from portal.auth import services as auth
from portal.extensions import db
from portal.invitations import services as invitations
from portal.roles.services import system_role
from portal.users import imports, reports, services as users
from portal.users.models import DONE, ImportRun, UsersReport
from tests.conftest import first_link
from tests.mailboxes.conftest import enabled_domain
from tests.servers.smtp import SmtpSink

NBSP = "\u00a0"


@pytest.fixture
def domain(owner, account):
    return enabled_domain(owner, account)


@pytest.fixture
def french_admin(owner):
    owner.locale = "fr"
    db.session.commit()
    return owner


@pytest.fixture
def auth_login(auth, owner):
    """The account's owner, signed in."""
    auth.login(owner.email)


def _parts(message) -> tuple[str, str, str]:
    """Subject, text part and HTML part of a message the SMTP sink received."""
    return message["Subject"], SmtpSink.text(message), SmtpSink.html(message)


# -- e-mails ----------------------------------------------------------------------------

def test_invitation_mail__to_someone_without_a_profile_is_in_the_accounts_language(owner, account, run_jobs,
                                                                                   smtp_sink):
    account.default_locale = "fr"
    db.session.commit()
    invitation = invitations.start(owner, account, "nouveau@example.net")
    invitations.add_grant(owner, invitation, role_id=system_role("administrator").id)
    invitations.send_invitation(owner, invitation)
    db.session.commit()
    run_jobs()
    subject, text, html = _parts(smtp_sink.wait_for("nouveau@example.net")[0])
    assert subject == "Olga Owner vous invite à rejoindre Acme"
    assert "Bonjour," in text and "Ouvrez le lien pour créer votre profil et accepter." in text
    assert "Le lien reste valable 7 jours, tant que vous n’avez pas répondu." in text
    assert 'lang="fr"' in html and "Créer mon profil" in html and "L’invitation accorde" + NBSP + ":" in html
    assert "invites" not in text + html and "Hello" not in text + html


def test_invitation_mail__someone_with_a_profile_reads_it_in_their_own_language(owner, account, make, run_jobs,
                                                                                smtp_sink):
    account.default_locale = "fr"
    make.user("reader@example.net", name="Reader")  # no language chosen: the portal's default, English
    db.session.commit()
    invitations.send_invitation(owner, invitations.start(owner, account, "reader@example.net"))
    db.session.commit()
    run_jobs()
    subject, text, _html = _parts(smtp_sink.wait_for("reader@example.net")[0])
    assert subject == "Olga Owner invites you to Acme" and "You already have a profile" in text


def test_invitation_answered_mail__the_french_speaking_inviter_reads_it_in_french(french_admin, account, make,
                                                                                 run_jobs, smtp_sink):
    invitation = invitations.start(french_admin, account, "guest@example.net")
    invitations.send_invitation(french_admin, invitation)
    guest = make.user("guest@example.net", name="Guest")
    invitations.accept(guest, invitation)
    db.session.commit()
    run_jobs()
    [answered] = [m for m in smtp_sink.wait_for("owner@example.org") if "guest@" in m["Subject"]]
    subject, text, html = _parts(answered)
    assert subject == "guest@example.net a accepté votre invitation à rejoindre Acme"
    assert "Bonjour Olga Owner," in text and "<strong>accepté</strong>" in html


def test_domain_status_mail__each_admin_reads_the_reason_in_their_language(french_admin, account, make, run_jobs,
                                                                           smtp_sink):
    """The reason is stored untranslated: a French owner and an English administrator of the same
    account each read it in their own language."""
    from portal.domains.services import add_domain, disable

    make.member(account, make.user("admin@example.org", name="Adam Admin"), roles=("administrator",))
    domain = add_domain(french_admin, account, "example.org", "local")
    disable(french_admin, domain)
    db.session.commit()
    run_jobs()
    _, french, _ = _parts(smtp_sink.wait_for("owner@example.org")[-1])
    _, english, _ = _parts(smtp_sink.wait_for("admin@example.org")[-1])
    assert "Désactivé par un administrateur" in french and "Disabled by an administrator" not in french
    assert "Disabled by an administrator" in english and "\x1f" not in english + french


def test_verification_mail__to_a_french_speaking_user_is_french(app, make, run_jobs, smtp_sink):
    user = make.user("lea@example.net", name="Léa", verified=False)
    user.locale = "fr"
    db.session.commit()
    with app.test_request_context():
        auth.send_verification(user)
    db.session.commit()
    run_jobs()
    subject, text, html = _parts(smtp_sink.wait_for("lea@example.net")[0])
    assert subject == "Confirmez votre adresse pour le portail de messagerie"
    assert "Bonjour Léa," in text and "Confirmez que lea@example.net est bien votre adresse" in text
    assert "Le lien ne sert qu’une fois et expire dans" in text
    assert 'lang="fr"' in html and "Confirmer mon adresse" in html and "Envoyé par le portail de messagerie" in html


def test_onboarding_mail__to_a_new_corporate_user_is_in_their_accounts_language(owner, account, domain, run_jobs,
                                                                               smtp_sink):
    """The new person chose no language yet and the link goes to an outside address with no
    profile: they read their account's language."""
    account.default_locale = "fr"
    db.session.commit()
    users.create_corporate_user(owner, account, first_name="Jeanne", last_name="Dupont", email="jeanne@example.org",
                                personal_mailbox=False, recovery_email="jeanne.perso@elsewhere.example")
    db.session.commit()
    run_jobs()
    message = smtp_sink.wait_for("jeanne.perso@elsewhere.example")[0]
    subject, text, html = _parts(message)
    assert subject == "Votre profil Acme est prêt"
    assert "Un administrateur de Acme a créé votre profil pour jeanne@example.org" in text
    assert "Choisir mon mot de passe" in html and first_link(text, "/welcome/")


def test_mail__a_corporate_user_who_chose_no_language_reads_their_accounts(owner, account, domain, run_jobs,
                                                                             smtp_sink):
    account.default_locale = "fr"
    db.session.commit()
    users.create_corporate_user(owner, account, first_name="Jeanne", last_name="Dupont", email="jeanne@example.org",
                                personal_mailbox=False)
    db.session.commit()
    auth.request_password_reset("jeanne@example.org")
    db.session.commit()
    run_jobs()
    subject, text, _html = _parts(smtp_sink.wait_for("jeanne@example.org")[0])
    assert subject == "Choisissez un nouveau mot de passe pour le portail de messagerie"
    assert "Quelqu’un a demandé la réinitialisation du mot de passe de jeanne@example.org" in text


def test_onboarding_mail__a_french_speaking_user_reads_it_in_french_whatever_the_account(owner, account, domain,
                                                                                        run_jobs, smtp_sink):
    user, link = users.create_corporate_user(owner, account, first_name="Paul", last_name="Martin",
                                             email="paul@example.org", personal_mailbox=False)
    assert link  # no address to mail it to: shown to the admin
    user.locale = "fr"
    user.recovery_email = "paul.perso@elsewhere.example"
    users.send_onboarding(owner, account, user)
    db.session.commit()
    run_jobs()
    subject, text, _html = _parts(smtp_sink.wait_for("paul.perso@elsewhere.example")[0])
    assert subject == "Votre profil Acme est prêt" and "Choisissez votre mot de passe ici" in text


# -- pages ----------------------------------------------------------------------------------

def test_invitation_pages__are_french_for_a_french_speaking_admin(french_admin, account, client, auth_login):
    invitation = invitations.start(french_admin, account, "nouveau@example.net")
    invitations.add_grant(french_admin, invitation, role_id=system_role("administrator").id)
    db.session.commit()
    listing = client.get(f"/accounts/{account.id}/invitations").get_data(as_text=True)
    assert '<html lang="fr">' in listing
    assert "Accès proposés" in listing and "Brouillon" in listing and "Envoyée par" in listing
    page = client.get(f"/accounts/{account.id}/invitations/{invitation.id}").get_data(as_text=True)
    assert '<html lang="fr">' in page
    assert "Pas encore envoyée" in page and "Ce que l’invitation accorde" in page
    assert "Ajouter un accès au compte" in page and "Envoyer l’invitation" in page
    sent = client.post(f"/accounts/{account.id}/invitations/{invitation.id}/send", follow_redirects=True)
    assert "Invitation envoyée à nouveau@example.net." in sent.get_data(as_text=True)
    revoke = client.get(f"/accounts/{account.id}/invitations/{invitation.id}/revoke").get_data(as_text=True)
    assert f"Retirer l’invitation pour nouveau@example.net{NBSP}?" in revoke


def test_invitation_pages__the_invited_person_answers_in_french(owner, account, make, client, auth):
    invitation = invitations.start(owner, account, "invitee@example.net")
    invitations.send_invitation(owner, invitation)
    invitee = make.user("invitee@example.net", name="Invitée")
    invitee.locale = "fr"
    db.session.commit()
    auth.login("invitee@example.net")
    page = client.get("/profile/invites").get_data(as_text=True)
    assert '<html lang="fr">' in page and "Votre profil" in page and "Refuser" in page
    assert "De la part de owner@example.org, envoyée le" in page
    answered = client.post(f"/profile/invites/{invitation.id}/accept", follow_redirects=True)
    assert "Vous avez rejoint Acme." in answered.get_data(as_text=True)


def test_user_pages__are_french_for_a_french_speaking_admin(french_admin, account, domain, client, auth_login):
    page = client.get(f"/accounts/{account.id}/users/new").get_data(as_text=True)
    assert '<html lang="fr">' in page and "Créer une boîte aux lettres personnelle" in page
    created = client.post(f"/accounts/{account.id}/users/new", data={
        "first_name": "Jeanne", "last_name": "Dupont", "email": "jeanne@example.org", "personal_mailbox": "y"})
    body = created.get_data(as_text=True)
    assert "Le profil de Jeanne Dupont est prêt" in body
    assert "Le lien de première connexion sera envoyé à jeanne@example.org" in body
    refused = client.post(f"/accounts/{account.id}/users/new", data={
        "first_name": "", "last_name": "X", "email": "x@example.org"})
    assert refused.status_code == 422 and "Saisissez le prénom." in refused.get_data(as_text=True)
    reports_page = client.get(f"/accounts/{account.id}/users/reports").get_data(as_text=True)
    assert "Rapports sur les utilisateurs" in reports_page and "Aucun rapport pour l’instant." in reports_page


# -- imports ---------------------------------------------------------------------------------

def _upload(client, account, data: bytes):
    response = client.post(f"/accounts/{account.id}/users/import",
                           data={"workbook": (io.BytesIO(data), "personnel.xlsx")}, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return db.session.execute(db.select(ImportRun).order_by(ImportRun.id.desc())).scalars().first()


def _book(sheets: dict[str, list[tuple]]) -> bytes:
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
    output = io.BytesIO()
    book.save(output)
    return output.getvalue()


def test_import__preview_problems_and_result_are_french_for_a_french_speaking_admin(french_admin, account, domain,
                                                                                   client, auth_login, run_jobs):
    data = _book({
        "Users": [("First name", "Last name", "E-mail", "Personal mailbox (Y/N)"),
                  ("Ann", "Able", "ann@example.org", "N"), ("", "Sans", "sans@example.org", "N"),
                  ("Bob", "Baker", "bob@example.org", "peut-être")],
        "Account": [("E-mail", "Role", "Permission"), ("ann@example.org", "Account Administrator", None)]})
    run = _upload(client, account, data)
    run_jobs()
    page = client.get(f"/accounts/{account.id}/users/import/{run.id}").get_data(as_text=True)
    assert '<html lang="fr">' in page
    assert "3 lignes sur la feuille Utilisateurs" in page and "<strong>1</strong> à créer" in page
    assert "Le prénom manque." in page and f"«{NBSP}peut-être{NBSP}» n’est ni O, ni N, ni vide." in page
    assert "Créer 1 utilisateur" in page and "Les 2 lignes comportant des problèmes ne seront pas créées." in page
    assert client.post(f"/accounts/{account.id}/users/import/{run.id}/confirm").status_code == 302
    run_jobs()
    db.session.expire_all()
    run = db.session.get(ImportRun, run.id)
    assert run.status == DONE and run.created == 1
    done = client.get(f"/accounts/{account.id}/users/import/{run.id}").get_data(as_text=True)
    assert "<strong>1</strong> créé" in done and "Télécharger le classeur de résultat" in done
    result = load_workbook(io.BytesIO(client.get(f"/accounts/{account.id}/users/import/{run.id}/result.xlsx").data))
    assert result.sheetnames == ["Utilisateurs"]
    rows = list(result["Utilisateurs"].iter_rows(values_only=True))
    assert rows[0][-2:] == ("Statut", "Message")
    by_email = {row[2]: row[-2:] for row in rows[1:]}
    assert by_email["ann@example.org"][0] == "créé"
    assert "envoyez-lui un lien de première connexion depuis sa page" in by_email["ann@example.org"][1]
    assert by_email["sans@example.org"] == ("ignoré", f"cette ligne comporte des problèmes{NBSP}: Le prénom manque.")


def test_import__problems_are_worded_in_the_language_of_whoever_reads_them(owner, account, domain, make, client,
                                                                         auth, run_jobs):
    data = _book({"Users": [("First name", "Last name", "E-mail"), ("", "Sans", "sans@example.org")],
                  "Account": [("E-mail", "Role", "Permission")]})
    run = imports.receive(owner, account, "staff.xlsx", data)
    db.session.commit()
    run_jobs()
    auth.login("owner@example.org")
    assert "The first name is missing." in client.get(f"/accounts/{account.id}/users/import/{run.id}").get_data(
        as_text=True)
    reader = make.user("lecteur@example.org")
    reader.locale = "fr"
    make.member(account, reader, roles=("administrator",))
    auth.logout()
    auth.login("lecteur@example.org")
    assert "Le prénom manque." in client.get(f"/accounts/{account.id}/users/import/{run.id}").get_data(as_text=True)


def test_import__a_workbook_with_french_sheet_names_and_headers_imports(owner, account, domain, run_jobs):
    data = _book({
        "Utilisateurs": [("Prénom", "Nom", "Adresse e-mail", "Boîte aux lettres personnelle (O/N)",
                          "Adresse de secours (facultative)"),
                         ("Anne", "Martin", "anne@example.org", "O", None), ("Bruno", "Petit", "bruno@example.org", "N",
                                                                            "bruno@elsewhere.example")],
        "Compte": [("Adresse e-mail", "Rôle", "Droit"), ("anne@example.org", "Administrateur du compte", None),
                   ("bruno@example.org", None, "audit.view")]})
    run = imports.receive(owner, account, "personnel.xlsx", data)
    db.session.commit()
    run_jobs()
    db.session.refresh(run)
    assert (run.status, run.total, run.to_create, run.problem_count, run.fatal) == ("previewed", 2, 2, 0, ""), \
        run.problems
    planned = {user["email"]: user for user in run.plan["users"]}
    assert planned["anne@example.org"]["personal_mailbox"] and not planned["bruno@example.org"]["personal_mailbox"]


def test_import__the_template_a_french_speaking_admin_downloads_is_french_and_imports(french_admin, account, domain,
                                                                                     client, auth_login, run_jobs):
    from portal.mailboxes import services as mailboxes

    mailboxes.create_mailbox(french_admin, account, domain, "ventes")
    db.session.commit()
    response = client.get(f"/accounts/{account.id}/users/import/template")
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["Rôles", "Droits", "Utilisateurs", "Compte", "ventes@example.org"]
    assert [cell.value for cell in book["Utilisateurs"][1]] == [
        "Prénom", "Nom", "Adresse e-mail", "Boîte aux lettres personnelle (O/N)", "Adresse de secours (facultative)"]
    assert [cell.value for cell in book["Compte"][1]] == ["Adresse e-mail", "Rôle", "Droit"]
    assert book["Utilisateurs"].data_validations.dataValidation[0].formula1 == '"O,N"'
    assert book["Utilisateurs"]["D1"].comment.text.startswith("O" + NBSP + ":")
    assert book["ventes@example.org"]["A1"].value == "Boîte aux lettres"
    roles = {row[0]: row[1] for row in book["Rôles"].iter_rows(min_row=2, values_only=True)}
    mailbox_role = next(name for name in roles if roles[name] != roles[next(iter(roles))])
    book["Utilisateurs"].append(["Anne", "Martin", "anne@example.org", "O"])
    book["Compte"].append(["anne@example.org", next(iter(roles)), None])
    book["ventes@example.org"].append(["anne@example.org", mailbox_role, None])
    output = io.BytesIO()
    book.save(output)
    run = _upload(client, account, output.getvalue())
    run_jobs()
    db.session.refresh(run)
    assert (run.status, run.to_create, run.problem_count, run.fatal) == ("previewed", 1, 0, ""), run.problems
    assert client.post(f"/accounts/{account.id}/users/import/{run.id}/confirm").status_code == 302
    run_jobs()
    db.session.refresh(run)
    assert run.status == DONE and run.created == 1


# -- the users report ------------------------------------------------------------------------

def test_users_report__workbook_and_mail_in_the_language_of_who_asked(french_admin, account, make, run_jobs,
                                                                     smtp_sink):
    make.member(account, make.user("membre@example.org", name="Membre"), roles=("administrator",))
    reports.request_report(french_admin, account)
    db.session.commit()
    run_jobs()
    subject, text, html = _parts(smtp_sink.wait_for("owner@example.org")[0])
    assert subject == "Le rapport sur les utilisateurs de Acme est prêt"
    assert "(2 utilisateurs) est prêt" in text and "Télécharger" in html
    report = db.session.execute(db.select(UsersReport)).scalar_one()
    sheet = load_workbook(io.BytesIO(report.content))["Utilisateurs"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:6] == ("Nom", "Adresse e-mail", "Utilisateur de l’organisation", "Statut", "Rôles du compte",
                           "Droits sur le compte")
    member = next(row for row in rows[1:] if row[1] == "membre@example.org")
    assert member[2:5] == ("non", "actif", "Administrateur du compte")


def test_import__an_invalid_address_says_why_in_the_readers_language(owner, account, domain, make, client, auth,
                                                                     run_jobs):
    data = _book({"Users": [("First name", "Last name", "E-mail"), ("Ann", "Able", "ann.example.org"),
                            ("Bob", "Baker", "bob..baker@example.org")],
                  "Account": [("E-mail", "Role", "Permission")]})
    run = imports.receive(owner, account, "staff.xlsx", data)
    db.session.commit()
    run_jobs()
    auth.login("owner@example.org")
    english = client.get(f"/accounts/{account.id}/users/import/{run.id}").get_data(as_text=True)
    # Two sentences, not a capital after a colon (a walkthrough).
    assert "is not a valid address. An address needs an @ sign." in english
    assert "is not a valid address. An address cannot have two periods in a row." in english
    reader = make.user("lecteur@example.org")
    reader.locale = "fr"
    make.member(account, reader, roles=("administrator",))
    auth.logout()
    auth.login("lecteur@example.org")
    french = client.get(f"/accounts/{account.id}/users/import/{run.id}").get_data(as_text=True)
    assert f"«{NBSP}ann.example.org{NBSP}» n’est pas une adresse valide. Une adresse doit contenir un @." in french
    assert "Une adresse ne peut pas contenir deux points de suite." in french
    assert "@-sign" not in french and "@-sign" not in english
