"""The foundation, invitation and import flows in French, in headless Chromium.

Issue 15: a French-speaking person goes through each flow with pages in French, found by their
French labels and roles, ``<html lang="fr">`` on the way, and the e-mails the flow sends (read
from the real SMTP sink) are French too. The language comes from where the portal takes it: the
browser's Accept-Language before signing in, the profile once signed in, the account's default
language for someone without a profile.

French typography puts a non-breaking space before ``:`` ``;`` ``!`` ``?`` and inside
« guillemets »; Playwright's text matching takes it for a space, but the e-mails are compared as
they are written.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from babel.dates import format_skeleton
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from portal.extensions import db
from tests.browser.helpers import watch
from tests.browser.test_corporate_users import held_worker  # noqa: F401  (fixture: both worker slots held)
from tests.conftest import PASSWORD, first_link
from tests.mailboxes.conftest import enabled_domain

pytestmark = pytest.mark.browser

NBSP = "\u00a0"
# Long enough for the worker to pick up a job and run it, and for the page to poll for it.
SLOW = 20_000
FRENCH_BROWSER = {"locale": "fr-FR"}


@pytest.fixture
def owner(make):
    return make.user("olga@acme.example", name="Olga Owner")


# -- helpers ------------------------------------------------------------------------------

def _in_french(page: Page) -> None:
    expect(page.locator("html")).to_have_attribute("lang", "fr")


def _sidebar(page: Page, name: str):
    return page.get_by_role("navigation", name="Compte").get_by_role("link", name=name, exact=True)


def _open_section(page: Page, name: str, heading: str | None = None) -> None:
    _sidebar(page, name).click()
    expect(page.get_by_role("heading", name=heading or name, exact=True)).to_be_visible()
    _in_french(page)


# The log-in page's words in each language: before signing in, the browser's language rules.
LOG_IN_PAGE = {"en": ("Log in", "E-mail address", "Password"),
               "fr": ("Se connecter", "Adresse e-mail", "Mot de passe")}


def _log_in(page: Page, live_server, email: str, browser_language: str = "fr") -> None:
    """Log in from the log-in page in the browser's language; a French-speaking person's pages
    are French from then on."""
    log_in_label, address_label, password_label = LOG_IN_PAGE[browser_language]
    page.goto(live_server.url("/login"))
    expect(page.locator("html")).to_have_attribute("lang", browser_language)
    expect(page.get_by_role("heading", name=log_in_label, exact=True)).to_be_visible()
    page.get_by_label(address_label).fill(email)
    page.get_by_label(password_label).fill(PASSWORD)
    page.get_by_role("button", name=log_in_label).click()
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()
    # The boosted log-in swaps the body in: <html lang> follows the answer's Content-Language.
    _in_french(page)


def _card(page: Page, heading: str):
    return page.locator("section.card").filter(has=page.get_by_role("heading", name=heading, exact=True))


def _message(smtp_sink, address: str, subject: str):
    """The message to ``address`` whose subject is ``subject``, waiting for the worker to send it."""
    deadline = time.monotonic() + SLOW / 1000
    while True:
        received = smtp_sink.to(address)
        for message in received:
            if str(message["Subject"]) == subject:
                return message
        if time.monotonic() > deadline:
            raise AssertionError(f"no message {subject!r} to {address}; it received "
                                 f"{[str(message['Subject']) for message in received]}")
        time.sleep(0.1)


def _download(page: Page, tmp_path: Path, trigger) -> Path:
    with page.expect_download() as info:
        trigger()
    download = info.value
    assert download.failure() is None, download.failure()
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    return target


def _french_days_around_now() -> set[str]:
    """Today and the days either side as a French page writes a date in UTC (« 4 déc. 2026 »)."""
    now = datetime.now(timezone.utc)
    return {format_skeleton("yMMMd", (now + timedelta(days=shift)).date(), locale="fr") for shift in (-1, 0, 1)}


# -- 1. the foundation -----------------------------------------------------------------------

@pytest.mark.browser_context_args(**FRENCH_BROWSER)
def test_foundation_in_french__register_confirm_log_in_choose_french_create_an_account(
        page: Page, live_server, make, smtp_sink, problems):
    make.user("root@example.org", superadmin=True)

    # A browser asking for French gets the French registration page.
    page.goto(live_server.url("/register"))
    _in_french(page)
    expect(page.get_by_role("heading", name="Créez votre profil")).to_be_visible()
    page.get_by_label("Votre nom").fill("Léa Dupont")
    page.get_by_label("Adresse e-mail").fill("lea@example.net")
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_label("Confirmation du mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="S’inscrire").click()
    expect(page.get_by_role("heading", name="Consultez votre messagerie")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Nous avons envoyé un message à lea@example.net.")

    # The confirmation e-mail: its language is checked at the end, once the whole flow has run.
    [confirmation] = smtp_sink.wait_for("lea@example.net", timeout=SLOW / 1000)
    text = smtp_sink.text(confirmation)

    page.goto(first_link(text, "/verify/"))
    _in_french(page)
    expect(page.get_by_role("heading", name="Confirmez votre adresse")).to_be_visible()
    page.get_by_role("button", name="Confirmer mon adresse").click()
    expect(page.get_by_text("Votre adresse est confirmée.")).to_be_visible()
    expect(page.get_by_label("Adresse e-mail")).to_have_value("lea@example.net")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(live_server.url("/accounts"))
    expect(page.get_by_role("heading", name="Vos comptes")).to_be_visible()
    _in_french(page)

    # French becomes her choice, whatever browser she uses next.
    page.get_by_role("navigation", name="Vous").get_by_role("link", name="Léa Dupont").click()
    expect(page.get_by_role("heading", name="Votre profil", exact=True)).to_be_visible()
    language = page.get_by_label("Langue", exact=True)
    expect(language).to_have_value("fr")  # she registered from French pages: her profile keeps French
    language.select_option(label="Français")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_text("Votre profil est enregistré.")).to_be_visible()
    expect(page.get_by_label("Langue", exact=True)).to_have_value("fr")
    _in_french(page)

    # Her account, and its Overview in French.
    page.goto(live_server.url("/accounts"))
    new_account = _card(page, "Nouveau compte")
    new_account.get_by_label("Nom du compte").fill("Machines analytiques")
    new_account.get_by_role("button", name="Créer le compte").click()
    expect(page.get_by_role("heading", name="Machines analytiques", exact=True)).to_be_visible()
    expect(page.get_by_text("Compte « Machines analytiques » créé. Vous en êtes le propriétaire.")).to_be_visible()
    expect(_sidebar(page, "Vue d’ensemble")).to_have_attribute("aria-current", "page")
    _in_french(page)
    tiles = page.locator("main .tiles")
    expect(tiles).to_contain_text("1 personne")
    expect(tiles).to_contain_text("0 domaine")
    expect(tiles).to_contain_text("0 boîte aux lettres")
    expect(page.get_by_role("heading", name="Premiers pas")).to_be_visible()

    # The account's creation is in the recent activity, dated the French way (« 4 déc. 2026, 14:03 UTC »).
    recent = _card(page, "Activité récente")
    expect(recent.get_by_role("link", name="Tout le journal d’audit")).to_be_visible()
    when = recent.locator("time").first.inner_text()
    assert any(when.startswith(day) for day in _french_days_around_now()), when
    assert re.search(r"\b\d{2}:\d{2}\b", when) and "AM" not in when and "PM" not in when, when
    assert problems == [], problems

    # The confirmation e-mail is French, like the pages she registered from.
    subject, html = str(confirmation["Subject"]), smtp_sink.html(confirmation)
    assert subject == "Confirmez votre adresse pour le portail de messagerie"
    assert "Bonjour Léa Dupont," in text
    assert "Confirmez que lea@example.net est bien votre adresse" in text
    assert "Le lien ne sert qu’une fois et expire dans" in text
    assert 'lang="fr"' in html and "Confirmer mon adresse" in html
    assert "Hello" not in text and "Confirm your address" not in text


# -- 2. an invitation ------------------------------------------------------------------------

def test_invitation_in_french__owner_sets_the_accounts_language_invites_and_the_person_registers(
        page: Page, new_context, live_server, owner, account, smtp_sink, problems):
    owner.locale = "fr"
    db.session.commit()

    # Her browser asks for English; once she is signed in her profile's French wins.
    _log_in(page, live_server, "olga@acme.example", browser_language="en")

    # The account writes to people without a profile in French.
    _open_section(page, "Paramètres", "Paramètres du compte")
    language = page.get_by_label("Langue des invitations aux personnes sans profil")
    language.select_option(label="Français")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_text("Paramètres du compte enregistrés.")).to_be_visible()
    expect(page.get_by_label("Langue des invitations aux personnes sans profil")).to_have_value("fr")

    # The draft, from the Users page.
    _open_section(page, "Utilisateurs")
    page.locator(".page-header").get_by_role("link", name="Nouvelle invitation").click()
    expect(page.get_by_role("heading", name="Invitations", exact=True)).to_be_visible()
    _in_french(page)
    page.get_by_label("Adresse e-mail à inviter").fill("nina@example.net")
    page.get_by_role("button", name="Nouvelle invitation").click()

    expect(page.get_by_role("heading", name=re.compile(r"^nina@example\.net"))).to_be_visible()
    _in_french(page)
    expect(page.locator("h1 .badge")).to_have_text("Brouillon")
    expect(page.get_by_text("Pas encore envoyée : choisissez ce qu’elle accorde")).to_be_visible()
    expect(page.get_by_text("Rien pour l’instant : la personne rejoindra le compte sans aucun accès.")).to_be_visible()
    account_access = _card(page, "Accès au compte")
    account_access.get_by_label("Rôle", exact=True).select_option(label="Administrateur du compte")
    account_access.get_by_role("button", name="Ajouter un accès au compte").click()
    expect(page.get_by_text("Ajouté à l’invitation.")).to_be_visible()
    expect(_card(page, "Ce que l’invitation accorde")).to_contain_text("Administrateur du compte")

    page.get_by_role("button", name="Envoyer l’invitation").click()
    expect(page.get_by_text("Invitation envoyée à nina@example.net.")).to_be_visible()
    expect(page.locator("h1 .badge")).to_have_text("En attente")
    expect(page.locator("main")).to_contain_text(re.compile(r"Envoyée le .+\s;\sle lien est valable jusqu’au "))
    expect(page.locator(".page-header").get_by_role("button", name="Renvoyer")).to_be_visible()

    # Nina has no profile: the e-mail is in the account's language.
    invitation_mail = _message(smtp_sink, "nina@example.net", "Olga Owner vous invite à rejoindre Acme")
    text, html = smtp_sink.text(invitation_mail), smtp_sink.html(invitation_mail)
    assert "Bonjour," in text
    assert "Olga Owner invite nina@example.net à rejoindre Acme sur le portail de messagerie." in text
    assert f"L’invitation accorde{NBSP}: Administrateur du compte." in text
    assert "Ouvrez le lien pour créer votre profil et accepter." in text
    assert 'lang="fr"' in html and "Créer mon profil" in html
    assert "Hello" not in text + html and "invites" not in text + html

    # She follows the link in a French browser of her own and registers.
    invited = watch(new_context(**FRENCH_BROWSER).new_page(), problems)
    invited.goto(first_link(text, "/invitations/"))
    _in_french(invited)
    expect(invited.get_by_role("heading", name="Rejoindre Acme")).to_be_visible()
    expect(invited.get_by_text("Olga Owner (olga@acme.example) vous invite. Créez votre profil pour accepter.")).to_be_visible()
    expect(invited.get_by_text("L’invitation accorde : Administrateur du compte.")).to_be_visible()
    address = invited.get_by_label("Adresse e-mail")
    expect(address).to_have_value("nina@example.net")
    expect(address).not_to_be_editable()
    invited.get_by_label("Votre nom").fill("Nina Nouvelle")
    invited.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    invited.get_by_label("Confirmation du mot de passe").fill(PASSWORD)
    invited.get_by_role("button", name="Créer mon profil et accepter").click()

    expect(invited.get_by_text("Bienvenue. Vous êtes maintenant membre de Acme.")).to_be_visible()
    expect(invited.get_by_role("heading", name="Acme", exact=True)).to_be_visible()
    _in_french(invited)
    expect(invited.get_by_role("navigation", name="Vous").get_by_role("link", name="Nina Nouvelle")).to_be_visible()
    expect(invited.get_by_role("navigation", name="Compte").get_by_role("link", name="Utilisateurs")).to_be_visible()

    # The French-speaking owner hears the answer in French.
    answer = _message(smtp_sink, "olga@acme.example", "nina@example.net a accepté votre invitation à rejoindre Acme")
    assert "Bonjour Olga Owner," in smtp_sink.text(answer)
    page.reload()
    expect(page.locator("h1 .badge")).to_have_text("Acceptée")
    assert problems == [], problems


# -- 3. an import -----------------------------------------------------------------------------

USERS_HEADER = ["Prénom", "Nom", "Adresse e-mail", "Boîte aux lettres personnelle (O/N)",
                "Adresse de secours (facultative)"]


@pytest.mark.browser_context_args(**FRENCH_BROWSER)
def test_import_in_french__template_preview_progress_result_and_onboarding_mail(
        page: Page, live_server, held_worker, owner, account, smtp_sink, tmp_path, problems):
    enabled_domain(owner, account)
    owner.locale = "fr"
    account.default_locale = "fr"
    db.session.commit()

    _log_in(page, live_server, "olga@acme.example")
    _open_section(page, "Utilisateurs")
    page.locator(".page-header").get_by_role("link", name="Créer des utilisateurs depuis un classeur").click()
    expect(page.get_by_role("heading", name="Créer des utilisateurs depuis un classeur")).to_be_visible()
    _in_french(page)
    expect(page.get_by_role("heading", name="1. Téléchargez le modèle")).to_be_visible()

    # The template is written in French: its sheets and their headers.
    template = _download(page, tmp_path, lambda: page.get_by_role("link", name="Télécharger le modèle").click())
    book = load_workbook(template)
    assert book.sheetnames == ["Rôles", "Droits", "Utilisateurs", "Compte"]
    assert [cell.value for cell in book["Utilisateurs"][1]] == USERS_HEADER
    assert [cell.value for cell in book["Compte"][1]] == ["Adresse e-mail", "Rôle", "Droit"]
    assert "Administrateur du compte" in [row[0] for row in book["Rôles"].iter_rows(min_row=2, values_only=True)]
    book["Utilisateurs"].append(["Jeanne", "Dupont", "jeanne.dupont@example.org", "N", "jeanne@ailleurs.example"])
    book["Utilisateurs"].append(["Paul", "Martin", "paul.martin@example.org", "N", None])
    book["Compte"].append(["paul.martin@example.org", "Administrateur du compte", None])
    filled = tmp_path / "personnel.xlsx"
    book.save(filled)

    # The preview.
    page.get_by_label("Classeur (.xlsx)").set_input_files(filled)
    page.get_by_role("button", name="Vérifier le classeur").click()
    expect(page.get_by_role("heading", name="personnel.xlsx")).to_be_visible()
    _in_french(page)
    expect(page.get_by_text("2 lignes sur la feuille Utilisateurs :")).to_be_visible(timeout=SLOW)
    tiles = page.locator("#import-progress .tile")
    expect(tiles).to_have_text(["2 à créer", "0 à mettre à jour", "0 à ignorer", "0 problème"])
    expect(page.get_by_text("Chaque utilisateur créé qui a une adresse de secours")).to_be_visible()

    # Confirmed while the worker is busy: the run waits, then the page follows it to the end.
    held_worker.hold()
    page.get_by_role("button", name="Créer 2 utilisateurs").click()
    progress = page.get_by_role("progressbar", name="Progression de l’import")
    expect(progress).to_have_attribute("aria-valuenow", "0")
    expect(page.locator(".progress")).to_contain_text("0 lignes sur 2 · 0 %")
    expect(page.locator(".status-line")).to_have_text("Statut : En file d’attente")
    held_worker.release()
    expect(progress).to_have_attribute("aria-valuenow", "100", timeout=SLOW)
    expect(page.locator(".progress")).to_contain_text("2 lignes sur 2 · 100 %")
    expect(page.locator(".status-line")).to_have_text(re.compile(r"^Statut\s:\sTerminé\s*$"))
    expect(tiles).to_have_text(["2 créés", "0 mis à jour", "0 ignoré"])
    _in_french(page)

    result = _download(page, tmp_path,
                       lambda: page.get_by_role("link", name="Télécharger le classeur de résultat").click())
    sheet = load_workbook(result)["Utilisateurs"]
    header, *rows = list(sheet.iter_rows(values_only=True))
    assert header[-2:] == ("Statut", "Message")
    assert {row[2]: row[-2] for row in rows} == {"jeanne.dupont@example.org": "créé",
                                                  "paul.martin@example.org": "créé"}

    # Jeanne's onboarding e-mail goes to her recovery address, which has no profile: the account's French.
    onboarding = _message(smtp_sink, "jeanne@ailleurs.example", "Votre profil Acme est prêt")
    text, html = smtp_sink.text(onboarding), smtp_sink.html(onboarding)
    assert "Bonjour Jeanne Dupont," in text
    assert ("Un administrateur de Acme a créé votre profil pour jeanne.dupont@example.org. "
            f"Choisissez votre mot de passe ici{NBSP}:") in text
    assert first_link(text, "/welcome/").startswith(live_server.url("/welcome/"))
    assert 'lang="fr"' in html and "Choisir mon mot de passe" in html
    assert "Hello" not in text and "Choose your password" not in text

    # Both are on the Users page, in French.
    _open_section(page, "Utilisateurs")
    expect(page.locator("tbody tr", has_text="paul.martin@example.org")).to_contain_text("Administrateur du compte")
    expect(page.locator("tbody tr", has_text="jeanne.dupont@example.org")).to_be_visible()
    assert problems == [], problems
