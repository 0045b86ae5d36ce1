"""Signing in, in French and English: the log-in, registration, forgotten-password and reset pages
read in the browser's language before anyone is signed in, with their refusals; the profile page
reads in the language the person chose, whatever the browser asks for."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.auth import tokens
from portal.auth.models import UserSession
from portal.extensions import db
from tests.conftest import PASSWORD

NBSP = "\u00a0"
FIREFOX_ON_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

# What each page says, per language: words that show the whole page went through the catalogue.
PAGES = {
    "fr": {
        "login": ["<title>Se connecter", "<h1>Se connecter</h1>", "Adresse e-mail", "Mot de passe",
                  f"Mot de passe oublié{NBSP}?", "Créer un profil"],
        "login_refused": "Cette adresse et ce mot de passe ne correspondent pas.",
        "required": "Ce champ est requis.",
        "register": ["<h1>Créez votre profil</h1>", "Votre nom", "Confirmation du mot de passe",
                     "Nous envoyons un lien à cette adresse pour la confirmer.", "Au moins 10 caractères.",
                     f'Déjà inscrit{NBSP}? <a href="/login">Connectez-vous</a>.'],
        "passwords_differ": "Les mots de passe ne correspondent pas.",
        "too_short": "Utilisez au moins 10 caractères.",
        "forgot": [f"<h1>Mot de passe oublié{NBSP}?</h1>", "Envoyer le lien",
                   f"Saisissez votre adresse{NBSP}: nous vous envoyons par e-mail un lien"],
        "forgot_sent": ["<h1>Consultez votre messagerie</h1>",
                        "Si <strong>ada@example.org</strong> a un profil ici, un lien pour choisir un nouveau "
                        "mot de passe vous a été envoyé.", "Retour à la connexion"],
        "reset": ["<h1>Choisir un nouveau mot de passe</h1>", "Nouveau mot de passe",
                  "Confirmation du nouveau mot de passe", "Enregistrer le nouveau mot de passe"],
        "repetitive": "Choisissez un mot de passe moins répétitif.",
        "reset_done": "Votre mot de passe est changé. Connectez-vous dès maintenant avec celui-ci.",
        "link_dead": ["<h1>Ce lien ne fonctionne plus</h1>", "Demander un nouveau lien de réinitialisation"],
    },
    "en": {
        "login": ["<title>Log in", "<h1>Log in</h1>", "E-mail address", "Password", "Forgot your password?",
                  "Create a profile"],
        "login_refused": "That address and password do not match.",
        "required": "This field is required.",
        "register": ["<h1>Create your profile</h1>", "Your name", "Password again",
                     "We send a link to this address to confirm it.", "At least 10 characters.",
                     'Already registered? <a href="/login">Log in</a>.'],
        "passwords_differ": "The passwords differ.",
        "too_short": "Use at least 10 characters.",
        "forgot": ["<h1>Forgot your password?</h1>", "Send the link",
                   "Enter your address: we e-mail you a link to choose a new password."],
        "forgot_sent": ["<h1>Check your e-mail</h1>",
                        "If <strong>ada@example.org</strong> has a profile here, a link to choose a new password "
                        "is on its way.", "Back to log-in"],
        "reset": ["<h1>Choose a new password</h1>", "New password", "New password again", "Save the new password"],
        "repetitive": "Use a less repetitive password.",
        "reset_done": "Your password is changed. Log in with it now.",
        "link_dead": ["<h1>This link no longer works</h1>", "Ask for a new reset link"],
    },
}


@pytest.fixture
def ada(make):
    return make.user("ada@example.org", name="Ada")


def _browser(client, language: str, user_agent: str | None = None):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    if user_agent:
        client.environ_base["HTTP_USER_AGENT"] = user_agent
    return client


def _page(response, status: int = 200) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def _has_all(page: str, texts: list[str]) -> None:
    missing = [text for text in texts if text not in page]
    assert missing == [], f"missing from the page: {missing}"


# -- before signing in: the browser's language ------------------------------------------------

@pytest.mark.parametrize("language", ["fr", "en"])
def test_login_page__reads_in_the_browsers_language_with_its_refusals(language, client, ada):
    expected = PAGES[language]
    _browser(client, language)
    page = _page(client.get("/login"))
    assert f'<html lang="{language}">' in page
    _has_all(page, expected["login"])
    empty = _page(client.post("/login", data={"email": "", "password": ""}), 422)
    assert f'<html lang="{language}">' in empty and expected["required"] in empty
    wrong = _page(client.post("/login", data={"email": "ada@example.org", "password": "not the password"}), 422)
    assert expected["login_refused"] in wrong


def test_login_page__a_french_browser_is_told_to_wait_in_french(client, ada):
    _browser(client, "fr-FR,fr;q=0.9,en;q=0.5")
    for _ in range(5):
        client.post("/login", data={"email": "ada@example.org", "password": "not the password"})
    page = _page(client.post("/login", data={"email": "ada@example.org", "password": PASSWORD}), 429)
    assert ("Trop d’échecs de connexion pour cette adresse. Patientez 15 minutes ou réinitialisez votre "
            "mot de passe.") in page


@pytest.mark.parametrize("language", ["fr", "en"])
def test_register_page__reads_in_the_browsers_language_with_its_refusals(language, client, ada):
    expected = PAGES[language]
    _browser(client, language)
    page = _page(client.get("/register"))
    assert f'<html lang="{language}">' in page
    _has_all(page, expected["register"])
    differ = _page(client.post("/register", data={"name": "Néo", "email": "neo@example.org",
                                                  "password": "long enough 1", "confirm": "long enough 2"}), 422)
    assert expected["passwords_differ"] in differ
    short = _page(client.post("/register", data={"name": "Néo", "email": "neo@example.org",
                                                 "password": "short", "confirm": "short"}), 422)
    assert f'<html lang="{language}">' in short and expected["too_short"] in short


@pytest.mark.parametrize("language", ["fr", "en"])
def test_forgot_password_page__reads_in_the_browsers_language(language, client, ada):
    expected = PAGES[language]
    _browser(client, language)
    page = _page(client.get("/password/forgot"))
    assert f'<html lang="{language}">' in page
    _has_all(page, expected["forgot"])
    empty = _page(client.post("/password/forgot", data={"email": ""}), 422)
    assert expected["required"] in empty
    sent = _page(client.post("/password/forgot", data={"email": "ada@example.org"}))
    _has_all(sent, expected["forgot_sent"])


@pytest.mark.parametrize("language", ["fr", "en"])
def test_reset_page__reads_in_the_browsers_language_with_its_refusals(language, client, ada):
    expected = PAGES[language]
    raw = tokens.issue(ada, tokens.RESET_PASSWORD, 24)
    db.session.commit()
    _browser(client, language)
    page = _page(client.get(f"/password/reset/{raw}"))
    assert f'<html lang="{language}">' in page
    _has_all(page, expected["reset"])
    differ = _page(client.post(f"/password/reset/{raw}", data={"password": "long enough 1",
                                                              "confirm": "long enough 2"}), 422)
    assert expected["passwords_differ"] in differ
    repetitive = _page(client.post(f"/password/reset/{raw}", data={"password": "abababababab",
                                                                  "confirm": "abababababab"}), 422)
    assert expected["repetitive"] in repetitive
    done = _page(client.post(f"/password/reset/{raw}", data={"password": "a new password 7",
                                                            "confirm": "a new password 7"}, follow_redirects=True))
    assert expected["reset_done"] in done and expected["login"][1] in done
    dead = _page(client.get(f"/password/reset/{raw}"), 410)
    _has_all(dead, expected["link_dead"])


def test_session_end__is_announced_in_the_browsers_language(client, auth, ada):
    _browser(client, "fr")
    auth.login("ada@example.org")
    row = db.session.execute(db.select(UserSession)).scalar_one()
    row.created_at -= timedelta(hours=73)
    db.session.commit()
    page = _page(client.get("/profile", follow_redirects=True))
    assert '<html lang="fr">' in page and "Votre session a pris fin. Veuillez vous reconnecter." in page


# -- signed in: the person's language ---------------------------------------------------------

def test_profile_page__is_french_for_a_person_who_chose_french_whatever_the_browser(app, client, auth, ada):
    ada.locale = "fr"
    db.session.commit()
    _browser(client, "en", FIREFOX_ON_LINUX)
    auth.login("ada@example.org")
    elsewhere = app.test_client()
    elsewhere.post("/login", data={"email": "ada@example.org", "password": PASSWORD})
    page = _page(client.get("/profile"))
    assert '<html lang="fr">' in page
    _has_all(page, ["<h1>Votre profil</h1>", "Détails", "Fuseau horaire",
                    "Les heures du portail sont affichées dans ce fuseau horaire.", "Mot de passe actuel",
                    "Au moins 10 caractères. Vos autres sessions prennent fin.", "Changer le mot de passe",
                    "Où vous êtes connecté", "Navigateur", "Dernière activité", "Firefox sous Linux",
                    "Ce navigateur", "Déconnecter", "Se déconnecter partout ailleurs", "Supprimer mon profil…"])
    assert "Where you are signed in" not in page and "Your profile" not in page
    wrong = _page(client.post("/profile/password", data={"pw-current": "not the password",
                                                         "pw-password": "a new password 7",
                                                         "pw-confirm": "a new password 7"}), 422)
    assert "Votre mot de passe actuel n’est pas le bon." in wrong
    ended = _page(client.post("/profile/sessions/end-others", follow_redirects=True))
    assert "Déconnecté partout ailleurs (1 session fermée)." in ended
    saved = _page(client.post("/profile", data={"name": "Ada", "timezone": "Europe/Paris", "locale": "fr"},
                              follow_redirects=True))
    assert "Votre profil est enregistré." in saved


def test_profile_page__is_english_for_an_english_browser_and_a_new_choice_answers_in_it(client, auth, ada):
    _browser(client, "en", FIREFOX_ON_LINUX)
    auth.login("ada@example.org")
    page = _page(client.get("/profile"))
    assert '<html lang="en">' in page
    _has_all(page, ["<h1>Your profile</h1>", "Details", "Time zone", "Current password", "Change password",
                    "Where you are signed in", "Firefox on Linux", "This browser", "Delete my profile…"])
    assert "Votre profil" not in page
    switched = _page(client.post("/profile", data={"name": "Ada", "timezone": "UTC", "locale": "fr"},
                                 follow_redirects=True))
    assert '<html lang="fr">' in switched and "Votre profil est enregistré." in switched


# -- e-mails to someone who never chose a language: the language of the page they used ------------

def test_register__keeps_the_pages_language_as_the_profiles_and_mails_the_link_in_it(client, run_jobs, smtp_sink):
    from portal.auth.models import User

    _browser(client, "fr")
    response = client.post("/register", data={"name": "Léa Dupont", "email": "lea@example.org",
                                              "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code in (200, 302), response.get_data(as_text=True)[:1000]
    lea = db.session.execute(db.select(User).where(User.email == "lea@example.org")).scalar_one()
    assert lea.locale == "fr"
    run_jobs()
    [message] = smtp_sink.wait_for("lea@example.org")
    assert message["Subject"] == "Confirmez votre adresse pour le portail de messagerie"
    assert "Bonjour Léa Dupont," in smtp_sink.text(message)


@pytest.mark.parametrize(("language", "subject"), [("fr", "Choisissez un nouveau mot de passe pour le portail de "
                                                           "messagerie"),
                                                   ("en", "Choose a new password for the mail portal")])
def test_password_reset__to_someone_without_a_language_is_in_the_language_of_the_page_asked_from(
        language, subject, client, ada, run_jobs, smtp_sink):
    assert ada.locale is None
    _browser(client, language)
    assert client.post("/password/forgot", data={"email": "ada@example.org"}).status_code in (200, 302)
    run_jobs()
    [message] = smtp_sink.wait_for("ada@example.org")
    assert message["Subject"] == subject


@pytest.mark.parametrize("language, email, expected", [
    ("fr", "ada.example.org", "Une adresse doit contenir un @."),
    ("fr", "ada@localhost", "La partie après le @ doit être un nom de domaine avec un point, comme example.org."),
    ("fr", "ada @example.org", "La partie avant le @ contient des caractères interdits dans une adresse."),
    ("en", "ada.example.org", "An address needs an @ sign."),
    # Full-width letters read as "ada" and were a profile apart from ada@ (a review).
    ("en", "\uff41\uff44\uff41@example.org", "The part before the @ sign holds look-alike forms of characters"),
    ("fr", "\ufb01le@example.org", "La partie avant le @ contient des formes de caractères qui en imitent d’autres"),
    # Invisible characters: ada@ with a grapheme joiner, a variation selector, a Hangul filler or a
    # blank Braille cell looked the same as ada@ and was a profile apart (a review).
    ("en", "ada\u034f@example.org", "The part before the @ sign holds an invisible character"),
    ("en", "ada\ufe0f@example.org", "The part before the @ sign holds an invisible character"),
    ("en", "ada\u1160@example.org", "The part before the @ sign holds an invisible character"),
    ("fr", "\u2800ada@example.org", "La partie avant le @ contient un caractère invisible"),
    # "İ" lower-cases to "i" and a combining dot above: refused, with what to type instead (it was
    # told of "full-width letters, ligatures").
    ("en", "\u0130ada@example.org", "holds a capital letter with no small letter of its own (such as İ): type it "
                                     "in small letters."),
    ("fr", "ad\u0130a@example.org", "La partie avant le @ contient une majuscule sans minuscule à elle (comme İ)"),
])
def test_registration__an_invalid_address_is_explained_in_the_browsers_language(language, email, expected, client,
                                                                                ada):
    _browser(client, language)
    page = _page(client.post("/register", data={"name": "Ada", "email": email, "password": PASSWORD,
                                                "confirm": PASSWORD}), 422)
    assert expected in page
    assert "@-sign" not in page


def test_address_refusals__an_explanation_not_listed_reads_as_the_general_text(app):
    from portal.auth.addresses import address_problem
    from portal.i18n import in_language

    with app.test_request_context("/"):
        assert address_problem("A new explanation the check may give one day.") == \
            "The address has a form or characters an address cannot have."
        assert address_problem("A bracketed IP address after the @-sign is not allowed here.") == \
            "An IP address in brackets is not accepted after the @ sign."
        with in_language("fr"):
            assert address_problem("Anything else.") == \
                "L’adresse a une forme ou des caractères qu’une adresse ne peut pas avoir."
