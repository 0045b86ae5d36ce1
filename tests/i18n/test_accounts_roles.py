"""Accounts, roles, the audit log and API tokens in French for a French-speaking profile; the
JSON API's problem details in the language the request asks for."""

from __future__ import annotations

import pytest

from portal.extensions import db
from portal.roles.models import Role
from portal.roles.services import create_role
from portal.tokens import services as tokens

NBSP = "\u00a0"


@pytest.fixture
def french(client, auth, owner, account, make):
    """The owner reads the portal in French; the account has a member and a custom role."""
    owner.locale = "fr"
    make.member(account, make.user("bob@example.org", name="Bob"), roles=("administrator",))
    create_role(owner, account, name="Auditeurs", scope="account", description="Lisent le journal",
                permissions={"audit.view"})
    db.session.commit()
    auth.login(owner.email)
    return client


def _page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    page = response.get_data(as_text=True)
    assert '<html lang="fr">' in page
    return page


def test_overview__is_in_french(french, account):
    page = _page(french, f"/accounts/{account.id}/")
    assert "Premiers pas" in page and "Ajouter un domaine" in page and "Publier ses enregistrements" in page
    assert "</strong> personnes" in page and "À faire" in page
    assert "Activité récente" in page and "Compte créé" in page and "Tout le journal d’audit" in page
    assert "Getting started" not in page and "Recent activity" not in page


def test_users_list__is_in_french(french, account):
    page = _page(french, f"/accounts/{account.id}/members")
    assert "Créer des utilisateurs depuis un classeur" in page and "Dernière connexion" in page
    assert "Propriétaire du compte" in page and "Administrateur du compte" in page, "system roles by their French names"
    assert "Tous les rôles" in page and "Auditeurs" in page
    assert "1–2 sur 2 personnes" in page and "Pour les personnes sélectionnées" in page
    assert "Exporter tout le monde" + NBSP + ":" in page
    assert "Account Owner" not in page and "Last log-in" not in page


def test_role_page__is_in_french(french, account):
    owner_role = db.session.execute(db.select(Role).where(Role.system_key == "owner")).scalar_one()
    page = _page(french, f"/accounts/{account.id}/roles/{owner_role.id}")
    assert "<h1>Propriétaire du compte" in page and "système" in page
    assert "Tout dans le compte, y compris le supprimer." in page
    assert "Portée" + NBSP + ": Compte" in page and "Supprimer le compte" in page and "Qui le détient" in page
    roles = _page(french, f"/accounts/{account.id}/roles")
    assert "Nouveau rôle de boîte aux lettres" in roles and "Parcourir tous les droits" in roles
    assert "Délégué de la boîte aux lettres" in roles and "1 membre" in roles


def test_role_copy__is_named_in_the_copiers_language(french, account):
    owner_role = db.session.execute(db.select(Role).where(Role.system_key == "owner")).scalar_one()
    response = french.post(f"/accounts/{account.id}/roles/{owner_role.id}/copy")
    assert response.status_code == 302
    copy = db.session.execute(db.select(Role).where(Role.account_id == account.id,
                                                    Role.name.like("Copie de%"))).scalar_one()
    assert copy.name == "Copie de Propriétaire du compte" and copy.description.startswith("Tout dans le compte")
    assert owner_role.name == "Account Owner", "the system role keeps its English name in the database"


def test_permission_picker__is_in_french_and_finds_words_without_accents(french, account):
    page = _page(french, f"/accounts/{account.id}/roles/new?scope=account")
    assert "Nouveau rôle de compte" in page and "Rechercher un droit" in page and "Tous les groupes" in page
    assert "Droits (0 sélectionné)" in page and "Consulter le journal d’audit" in page
    assert '<option value="Members">Membres</option>' in page, "groups keep their key, shown in French"
    response = french.post(f"/accounts/{account.id}/roles/new", data={
        "scope": "account", "name": "Tri", "permission": ["audit.view", "members.view"], "q": "boite",
        "action": "filter"})
    picker = response.get_data(as_text=True)
    assert "perm-mailboxes.view" in picker and "perm-domains.view" not in picker
    assert "Droits (2 sélectionnés, dont 2 hors du filtre)" in picker
    catalogue = _page(french, f"/accounts/{account.id}/permissions?q=supprimer")
    assert "Catalogue des droits" in catalogue and "account.delete" in catalogue and "audit.view" not in catalogue


def test_audit_log__is_in_french(french, account):
    page = _page(french, f"/accounts/{account.id}/audit")
    assert "Journal d’audit" in page and "Type d’action" in page and "Toutes les actions" in page
    assert "Rôle créé" in page and "<code>role.create</code>" in page and "Compte créé" in page
    assert "Rôles" in page and "Jetons d’API" in page, "families of actions in French"
    wrong = _page(french, f"/accounts/{account.id}/audit?since=hier")
    assert "« hier »" not in wrong and "«" + NBSP + "hier" + NBSP + "» n’est pas une date" in wrong


def test_api_tokens_page__is_in_french(french, owner, account):
    tokens.create(owner, account, name="export nocturne", scopes={"domains:read", "audit:read"}, expires_at=None)
    db.session.commit()
    page = _page(french, f"/accounts/{account.id}/settings/tokens")
    assert "Paramètres du compte" in page and "Jetons d’API" in page and "Nouveau jeton" in page
    assert "Domaines" + NBSP + ": lecture" in page and "Journal d’audit" + NBSP + ": lecture" in page
    assert "Actif" in page and "jamais" in page and "Créer le jeton" in page and "Portées" in page
    assert "Domaines" + NBSP + ": </span>modification" in page
    assert "API tokens" not in page


@pytest.fixture
def token(make, owner, account):
    """A token whose maker chose no language: the request's Accept-Language decides."""
    _, raw = tokens.create(owner, account, name="script", scopes={"domains:write", "mailboxes:write"},
                           expires_at=None)
    db.session.commit()
    return {"Authorization": f"Bearer {raw}"}


def test_api_problem__in_french_when_the_request_asks_for_it(client, account, token):
    url = f"/api/v1/accounts/{account.id}/domains/999999"
    french = client.get(url, headers={**token, "Accept-Language": "fr"})
    assert french.status_code == 404 and french.mimetype == "application/problem+json"
    assert french.get_json()["title"] == "Introuvable"
    assert french.get_json()["detail"] == "Ce domaine n’existe pas dans ce compte."
    english = client.get(url, headers=token).get_json()
    assert english["title"] == "Not found" and english["detail"] == "No such domain in this account."


def test_api_problem__names_each_field_in_french(client, account, token):
    response = client.post(f"/api/v1/accounts/{account.id}/mailboxes", json={"kind": "shared"},
                           headers={**token, "Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    body = response.get_json()
    assert response.status_code == 422 and body["title"] == "Requête invalide"
    assert body["detail"] == "Certains champs ne sont pas valides."
    assert {"field": "body.local_part", "message": "Obligatoire."} in body["errors"]
    refused = client.get(f"/api/v1/accounts/{account.id}/domains", headers={"Authorization": "Bearer nope",
                                                                             "Accept-Language": "fr"})
    assert refused.status_code == 401 and refused.get_json()["title"] == "Non authentifié"


def test_list_counts__agree_with_their_number_in_french(french, account):
    """One of a kind is singular, two are plural, in every list's pager and the Users bulk choice."""
    two = _page(french, f"/accounts/{account.id}/members")
    assert "1–2 sur 2 personnes" in two and "Les 2 personnes, pas seulement celles cochées" in two
    one = _page(french, f"/accounts/{account.id}/members?q=bob")
    assert "1–1 sur 1 personne<" in one
    assert "Toute la liste (1 résultat), cochée ou non" in one
