"""Domains and mailboxes in French for a person whose profile says so: the domain page, the
mailbox list and a mailbox's page, and what a domain check and a failed provisioning write, read
in the reader's language whatever the language the work ran in."""

from __future__ import annotations

import html

import pytest

from portal.domains import services as domains
from portal.domains.models import Domain
from portal.extensions import db
from portal.i18n import in_language, shown
from portal.jobs.models import Job
from portal.jobs.registry import PermanentJobError
from portal.mailboxes import services as mailboxes
from portal.mailboxes.models import Mailbox
from tests.emulated import app_environ, dimail  # noqa: F401  (fixtures: connection corp on dimail)
from tests.mailboxes.conftest import enabled_domain

NBSP = "\u00a0"


@pytest.fixture
def french(client, auth, owner, account):
    """The owner reads the portal in French (their profile's choice), signed in."""
    owner.locale = "fr"
    db.session.commit()
    auth.login("owner@example.org")
    return client


def test_domain_page__is_in_french_for_a_french_profile(french, account):
    response = french.post(f"/accounts/{account.id}/domains/new", data={"name": "example.org", "connection": "local"})
    assert response.status_code == 302
    page = french.get(response.headers["Location"]).get_data(as_text=True)
    assert '<html lang="fr">' in page
    assert "example.org a été ajouté. Publiez l’enregistrement de propriété indiqué ci-dessous." in page
    assert "Enregistrements à publier" in page and "Vérifier maintenant" in page
    assert f"Statut{NBSP}:" in page and f"Propriété{NBSP}: pas encore prouvée" in page
    assert "Publiez l’enregistrement TXT de propriété ci-dessous" in page  # the status reason, made in French
    assert "Prouve que le domaine appartient à ce compte" in page
    assert "Ce que permet le serveur de messagerie" in page and "Crée les boîtes aux lettres" in page
    assert "Records to publish" not in page and "Check now" not in page


def test_mailbox_page__names_the_built_in_backend_in_french(french, owner, account, run_jobs):
    domain = enabled_domain(owner, account)
    mailbox = mailboxes.create_mailbox(owner, account, domain, "team")
    db.session.commit()
    run_jobs()
    page = french.get(f"/accounts/{account.id}/mailboxes/{mailbox.id}").get_data(as_text=True)
    # One pair of brackets (a walkthrough found "local (Locale (intégrée))").
    assert "local (intégré)" in page and "built-in" not in page
    # A mailbox's status agrees with it (feminine in French), a domain's with the domain.
    assert ">Activée<" in page
    assert ">Activée<" in french.get(f"/accounts/{account.id}/mailboxes").get_data(as_text=True)
    domains_page = french.get(f"/accounts/{account.id}/domains").get_data(as_text=True)
    assert ">Activé<" in domains_page and ">Activée<" not in domains_page


def test_domain_list_and_settings__are_in_french(french, owner, account):
    domain = enabled_domain(owner, account)
    listing = french.get(f"/accounts/{account.id}/domains").get_data(as_text=True)
    assert "Ajouter un domaine" in listing and "Tous les statuts" in listing and "Activé" in listing
    settings = french.get(f"/accounts/{account.id}/domains/{domain.id}/settings").get_data(as_text=True)
    assert "Paramètres de example.org" in settings and "Quota par défaut des boîtes aux lettres" in settings
    assert "Valeur par défaut du serveur" in settings and "Enregistrer les paramètres" in settings
    response = french.post(f"/accounts/{account.id}/domains/{domain.id}/settings", data={"max_users": "lots"})
    assert response.status_code == 422
    assert "Saisissez un nombre entier." in response.get_data(as_text=True)


def test_domain_check__reads_in_each_readers_language_whatever_the_language_it_ran_in(french, owner, account):
    domain = domains.add_domain(owner, account, "example.org", "local")
    db.session.commit()
    with in_language("en"):  # the worker of an English account
        domains.run_check(domain, "manual")
    db.session.commit()
    with in_language("fr"):
        assert shown(domain.status_reason) == (
            f"En attente de l’enregistrement de propriété (TXT _portal-challenge.example.org){NBSP}: publiez-le, "
            "ainsi que les autres enregistrements marqués comme absents. Le portail vérifie de nouveau de lui-même.")
        assert {shown(record["message"]) for record in domain.records} == {"rien n’est publié"}
    with in_language("en"):
        assert shown(domain.status_reason).startswith("Waiting for the ownership record (TXT _portal-challenge")
        assert {shown(record["message"]) for record in domain.records} == {"nothing is published"}
    page = french.get(f"/accounts/{account.id}/domains/{domain.id}").get_data(as_text=True)
    assert "rien n’est publié" in page and "<td>à la demande</td>" in page
    assert "Remet le courrier du domaine au serveur de messagerie" in page
    assert "Prouve que le domaine appartient à ce compte" in page
    assert "En attente de l’enregistrement de propriété" in page  # the status and the check history
    assert "nothing is published" not in page and "Waiting for" not in page and "Delivers" not in page


def test_mailbox_list__is_in_french_for_a_french_profile(french, owner, account):
    domain = enabled_domain(owner, account)
    mailboxes.create_mailbox(owner, account, domain, "sales", display_name="Ventes")
    pending = domains.add_domain(owner, account, "later.example", "local")
    mailboxes.create_mailbox(owner, account, pending, "info")
    db.session.commit()
    page = french.get(f"/accounts/{account.id}/mailboxes").get_data(as_text=True)
    assert '<html lang="fr">' in page
    assert "Nouvelle boîte aux lettres" in page and "Tous les domaines" in page and "Tous les types" in page
    assert "<td>Partagée</td>" in page and "En attente" in page and "Mise en service" in page
    assert f"Exporter toutes les boîtes aux lettres{NBSP}:" in page
    assert "Sélectionner sales@example.org" in page and "Avec les boîtes aux lettres sélectionnées" in page
    assert "New mailbox" not in page and "Shared" not in page


def test_mailbox_page__is_in_french_with_its_history(french, owner, account, run_jobs):
    domain = enabled_domain(owner, account)
    mailbox = mailboxes.create_mailbox(owner, account, domain, "sales", quota_bytes=2 * 1024 ** 3)
    db.session.commit()
    run_jobs()
    page = french.get(f"/accounts/{account.id}/mailboxes/{mailbox.id}").get_data(as_text=True)
    assert '<html lang="fr">' in page
    assert "<dd>Partagée</dd>" in page and f"2{NBSP}Go" in page and "(activé)" in page
    assert "Historique de mise en service" in page and "<td>création</td>" in page and "Réponse du serveur" in page
    assert "Qui a accès" in page and "Supprimer…" in page and "Désactiver" in page
    new = french.get(f"/accounts/{account.id}/mailboxes/new").get_data(as_text=True)
    assert "Adresse (avant le @)" in new and "Partagée (l’adresse d’une équipe)" in new
    assert "Créer la boîte aux lettres" in new


def test_provisioning_failure__reads_in_each_readers_language_whatever_the_jobs(french, owner, account, dimail):
    domain = enabled_domain(owner, account, "corp.example", "corp", dimail)
    mailbox = mailboxes.create_mailbox(owner, account, domain, "jane", first_name="Jane", last_name="Doe")
    db.session.commit()
    job = db.session.execute(db.select(Job).where(Job.subject == f"mailbox:{mailbox.id}")).scalar_one()
    dimail.faults.refuse()
    with in_language("en"), pytest.raises(Exception) as raised:  # the worker of an English account
        mailboxes.provision(job)
    assert not isinstance(raised.value, PermanentJobError)  # the backend is down: the job is retried
    db.session.expire_all()
    attempt = db.session.get(Mailbox, mailbox.id).attempts.first()
    assert (attempt.operation, attempt.outcome) == ("create", "retrying")
    with in_language("fr"):
        assert shown(attempt.message).endswith("(nouvel essai prévu)")
    with in_language("en"):
        assert shown(attempt.message).endswith("(will retry)")
    page = french.get(f"/accounts/{account.id}/mailboxes/{mailbox.id}").get_data(as_text=True)
    assert "(nouvel essai prévu)</td>" in page and "<td>création</td>" in page
    db.session.expire_all()
    domain = db.session.get(Domain, domain.id)
    with in_language("fr"):
        refusal = mailboxes.mailboxes_block_removal(domain)
    assert refusal == "corp.example a encore 1 boîte aux lettres. Supprimez-la d’abord, puis retirez le domaine."


def test_domain_settings_refused_when_applied_read_in_each_readers_language(owner, account, run_jobs, client, auth,
                                                                          make):
    """Settings refused by the job that applies them (what routes mail names something the account
    may not use) kept their reasons in the account's language, on the page and in the API."""
    from portal.domains import settings as domain_settings
    from portal.jobs.services import enqueue

    domain = enabled_domain(owner, account)
    domain.settings = {"catch_all": "ceo%other.example@example.org"}
    domain.settings_state = "pending"
    enqueue(domain_settings.SETTINGS_KIND, {"domain_id": domain.id})
    db.session.commit()
    run_jobs()
    db.session.expire_all()
    domain = db.session.get(type(domain), domain.id)
    assert domain.settings_state == "failed"
    with in_language("en"):
        english = shown(domain.settings_message)
        english_hint = shown(domain.settings_hints["catch_all"])
    with in_language("fr"):
        french = shown(domain.settings_message)
        french_hint = shown(domain.settings_hints["catch_all"])
    assert english == english_hint and french == french_hint and english != french
    assert "\x1f" not in english + french
    admin = make.user("admin@example.org")
    admin.locale = "fr"
    make.member(account, admin, roles=("owner",))
    db.session.commit()
    auth.login("admin@example.org")
    page = client.get(f"/accounts/{account.id}/domains/{domain.id}/settings").get_data(as_text=True)
    assert html.escape(french, quote=False) in page and html.escape(english, quote=False) not in page


def test_overview__counts_mailboxes_by_status_agreed_with_their_number(french, client, owner, account, run_jobs):
    domain = enabled_domain(owner, account)
    for name in ("a", "b", "c", "d"):
        mailboxes.create_mailbox(owner, account, domain, name)
    db.session.commit()
    run_jobs()
    failed = db.session.execute(db.select(Mailbox).where(Mailbox.local_part == "d")).scalar_one()
    failed.status = "failed"
    db.session.commit()
    tile = french.get(f"/accounts/{account.id}/").get_data(as_text=True).split("boîtes aux lettres<br>")[1]
    # Each status in the order a mailbox goes through them, agreed with the number: a walkthrough
    # read "Activée : 3" (a status name, singular, before a count).
    assert tile.startswith('<span class="muted">3 activées, 1 en échec</span>')
    owner.locale = "en"
    db.session.commit()
    tile = client.get(f"/accounts/{account.id}/").get_data(as_text=True).split("mailboxes<br>")[1]
    assert tile.startswith('<span class="muted">3 enabled, 1 failed</span>')
