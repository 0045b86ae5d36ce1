import pytest

from portal.accounts.models import Account
from portal.backends import service as backends
from portal.domains import settings
from portal.domains.services import add_domain
from portal.extensions import db
from portal.mailboxes import services as mailboxes
from portal.mailboxes.models import Mailbox


def test_settings_tab__shows_only_what_the_backend_supports(domain, backend, client, auth):
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{domain.account_id}/domains/{domain.id}/settings").get_data(as_text=True)
    specs = settings.specs(domain)
    if not specs:
        assert "has no domain-wide settings" in page
        assert backend[0] in ("dimail", "odin")
        assert not backends.capabilities(domain.connection).domain_settings
        return
    for spec in specs:
        assert f'name="{spec.key}"' in page, spec.key
    if backend[0] == "mailinabox":
        assert 'name="spam_level"' not in page


@pytest.mark.parametrize("backend", ["local", "opensrs", "mailinabox"], indirect=True)
def test_settings__saved_validated_and_applied_on_the_backend(domain, backend, owner, run_jobs):
    specs = {spec.key: spec for spec in settings.specs(domain)}
    values = {}
    if "catch_all" in specs:
        values["catch_all"] = f"postmaster@{domain.name}"
    if "domain_aliases" in specs:
        # A domain alias routes another domain's mail here: it must be one of the account's own, proven.
        alias = add_domain(owner, db.session.get(Account, domain.account_id), "corp-alias.example.org", domain.connection)
        alias.verified_at = alias.created_at
        values["domain_aliases"] = [alias.name]
    if "max_users" in specs:
        values["max_users"] = 50
    if "spam_level" in specs:
        values["spam_level"] = "high"
    if "block_senders" in specs:
        values["block_senders"] = ["*@spam.example"]
    settings.save(owner, domain, values)
    db.session.commit()
    assert domain.settings_state == "pending"
    run_jobs()
    db.session.refresh(domain)
    assert domain.settings_state == "applied", domain.settings_message
    on_backend = backends.for_domain(domain).get_domain_settings(domain.name)
    for key, value in values.items():
        assert on_backend[key] == value, key


@pytest.mark.parametrize("backend", ["opensrs"], indirect=True)
def test_settings__the_backends_limits_are_enforced_before_queueing(domain, backend, owner):
    specs = {spec.key: spec for spec in settings.specs(domain)}
    too_many = [f"alias{n}.example" for n in range(specs["domain_aliases"].max_items + 1)]
    with pytest.raises(settings.SettingsInvalid) as refused:
        settings.save(owner, domain, {"domain_aliases": too_many})
    assert "domain_aliases" in refused.value.problems


@pytest.mark.parametrize("backend", ["opensrs"], indirect=True)
def test_settings__opensrs_refusal_is_shown_beside_the_field(domain, backend, owner, run_jobs, client, auth):
    emulator = backend[1]
    settings.save(owner, domain, {"catch_all": f"nobody@{domain.name}"})
    db.session.commit()
    emulator.forced_method_errors["change_domain"] = [
        (6, "Badly formatted attributes", {"catchall": "catch-all address must be an existing mailbox"})]
    run_jobs()
    db.session.refresh(domain)
    assert domain.settings_state == "failed"
    assert domain.settings_hints.get("catch_all")
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{domain.account_id}/domains/{domain.id}/settings").get_data(as_text=True)
    assert domain.settings_hints["catch_all"] in page


def test_mailbox_limit__creating_beyond_it_is_refused(domain, backend, owner, account):
    domain.settings = {"max_users": 1}
    db.session.commit()
    mailboxes.create_mailbox(owner, account, domain, "first")
    with pytest.raises(mailboxes.MailboxError, match="at most 1 mailbox"):
        mailboxes.create_mailbox(owner, account, domain, "second")
    assert db.session.execute(db.select(db.func.count()).select_from(Mailbox)).scalar_one() == 1


def test_settings__only_an_owner_sets_a_catch_all(domain, backend, owner, make):
    """A catch-all catches people's login addresses that have no mailbox, and password resets with
    them: a member who manages domains pointed it at a mailbox of theirs and could take over an
    administrator (found by an attacker-side review)."""
    if "catch_all" not in {spec.key for spec in settings.specs(domain)}:
        pytest.skip("this backend has no catch-all")
    account = db.session.get(Account, domain.account_id)
    manager = make.member(account, make.user("manager@example.org"), permissions=("domains.view", "domains.manage"))
    with pytest.raises(settings.SettingsInvalid) as refused:
        settings.save(manager.user, domain, {"catch_all": f"postmaster@{domain.name}"})
    assert refused.value.problems["catch_all"].startswith("Only an owner of the account can set a catch-all")
    db.session.rollback()
    settings.save(owner, domain, {"catch_all": f"postmaster@{domain.name}"})
    db.session.commit()
    # What an owner set stays when someone else saves the other settings as they are.
    settings.save(manager.user, domain, {"catch_all": f"postmaster@{domain.name}"})
    assert domain.settings["catch_all"] == f"postmaster@{domain.name}"


@pytest.mark.parametrize("backend", ["local"], indirect=True)
@pytest.mark.parametrize("typed, problem", [("1O0", "Enter a whole number."), ("12.5", "Enter a whole number."),
                                            ("-3", "Enter a whole number."),
                                            ("99999999999999", "That number is far too large.")])
def test_settings__a_number_typed_wrong_comes_back_as_typed(domain, backend, client, auth, typed, problem):
    """A review: the refused number came back empty, to be typed again rather than corrected."""
    import html

    auth.login("owner@example.org")
    url = f"/accounts/{domain.account_id}/domains/{domain.id}/settings"
    specs = {spec.key: spec for spec in settings.specs(domain)}
    number = next(key for key, spec in specs.items() if spec.kind == "int")
    answer = client.post(url, data={number: typed})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and html.escape(problem, quote=True) in page
    assert f'name="{number}" value="{typed}" aria-describedby="s-{number}-hint s-{number}-error" aria-invalid="true"' \
        in page and f'id="s-{number}-error">' in page
    db.session.refresh(domain)
    assert (domain.settings or {}).get(number) != typed
