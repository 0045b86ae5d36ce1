import pytest

from portal.domains.models import Domain
from portal.extensions import db
from portal.i18n import shown
from tests.domains.conftest import publish_local_mail_records, publish_ownership


@pytest.fixture
def signed_in(client, auth, account):
    auth.login("owner@example.org")
    return client


def test_add_form__creates_the_domain_and_shows_its_ownership_record(signed_in, account):
    response = signed_in.post(f"/accounts/{account.id}/domains/new", data={"name": "Example.org", "connection": "local"})
    assert response.status_code == 302
    domain = db.session.execute(db.select(Domain)).scalar_one()
    page = signed_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "_portal-challenge.example.org" in page and domain.challenge in page
    assert f'data-copy="{domain.challenge}"' in page
    assert "Checking…" in page and 'hx-trigger="load delay:1s"' in page


def test_add_form__bad_name_is_refused_with_what_was_typed(signed_in, account):
    response = signed_in.post(f"/accounts/{account.id}/domains/new", data={"name": "not a domain", "connection": "local"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'value="not a domain"' in page and "just the domain name" in page


def test_check_button__htmx_answers_the_live_block_and_is_throttled(signed_in, account, run_jobs, dns_zone):
    signed_in.post(f"/accounts/{account.id}/domains/new", data={"name": "example.org", "connection": "local"})
    domain = db.session.execute(db.select(Domain)).scalar_one()
    run_jobs()
    publish_ownership(dns_zone, domain)
    publish_local_mail_records(dns_zone, domain)
    url = f"/accounts/{account.id}/domains/{domain.id}/check"
    response = signed_in.post(url, headers={"HX-Request": "true"})
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200
    assert fragment.lstrip().startswith('<div id="domain-live"') and "<html" not in fragment
    assert "Checking…" in fragment
    run_jobs()
    fragment = signed_in.get(f"/accounts/{account.id}/domains/{domain.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Enabled" in fragment and 'hx-trigger="load delay:1s"' not in fragment
    response = signed_in.post(url, headers={"HX-Request": "true"})
    assert response.status_code == 200, "asking again too soon is no error: the check waits its turn"
    fragment = response.get_data(as_text=True)
    assert "alert-error" not in fragment
    # ... and the page says when it runs and follows it, on an enabled domain too (a walkthrough:
    # the second click answered the page unchanged, and its check's result was never shown).
    assert "Next check in" in fragment and 'hx-trigger="load delay:5s"' in fragment


def test_remove__needs_the_name_typed(signed_in, account):
    signed_in.post(f"/accounts/{account.id}/domains/new", data={"name": "example.org", "connection": "local"})
    domain = db.session.execute(db.select(Domain)).scalar_one()
    url = f"/accounts/{account.id}/domains/{domain.id}/remove"
    response = signed_in.post(url, data={"confirm": "example.com"})
    assert response.status_code == 422 and "Type example.org exactly" in response.get_data(as_text=True)
    assert signed_in.post(url, data={"confirm": "example.org"}).status_code == 302
    assert db.session.execute(db.select(Domain)).first() is None


def test_mark_verified__only_for_the_superadmin(signed_in, account, make, client):
    signed_in.post(f"/accounts/{account.id}/domains/new", data={"name": "example.org", "connection": "local"})
    domain = db.session.execute(db.select(Domain)).scalar_one()
    url = f"/accounts/{account.id}/domains/{domain.id}/verify"
    assert signed_in.post(url).status_code == 403
    make.user("root@example.net", superadmin=True)
    client.post("/logout")
    client.post("/login", data={"email": "root@example.net", "password": "correct horse battery"})
    assert client.post(url).status_code == 302
    db.session.refresh(domain)
    assert domain.verified_by_hand


def test_domain_page__explains_the_backends_capabilities(signed_in, account):
    signed_in.post(f"/accounts/{account.id}/domains/new", data={"name": "example.org", "connection": "local"})
    domain = db.session.execute(db.select(Domain)).scalar_one()
    page = signed_in.get(f"/accounts/{account.id}/domains/{domain.id}").get_data(as_text=True)
    from markupsafe import escape

    from portal.backends import service as backends

    for label, supported, explanation in backends.capabilities("local").describe():
        assert str(escape(explanation)) in page, label


def test_domains_list__answers_with_the_add_form(signed_in, account):
    response = signed_in.get(f"/accounts/{account.id}/domains")
    assert response.status_code == 200
    assert 'name="name"' in response.get_data(as_text=True)


def test_one_pass__every_record_is_shown_from_the_start_and_one_check_now_is_enough(
        signed_in, account, run_jobs, dns_zone):
    """Issue 11: the mail records are listed before ownership is proven, so an admin publishes
    everything at once; after one "Check now" the portal keeps checking until the domain is enabled."""
    from datetime import timedelta

    from portal.timeutil import utcnow

    signed_in.post(f"/accounts/{account.id}/domains/new", data={"name": "example.org", "connection": "local"})
    domain = db.session.execute(db.select(Domain)).scalar_one()
    run_jobs()
    page = signed_in.get(f"/accounts/{account.id}/domains/{domain.id}").get_data(as_text=True)
    assert "_portal-challenge.example.org" in page and "mail.example.org" in page and "v=spf1 mx ~all" in page
    # The host as DNS providers' forms ask for it, beside each full name (pasting the full name
    # there makes _portal-challenge.example.org.example.org).
    assert page.count("Host at most DNS providers:") == 3
    assert '<code>_portal-challenge</code> <button type="button" class="link copy" data-copy="_portal-challenge"' in page
    assert page.count("providers: <code>@</code>") == 2
    db.session.refresh(domain)
    assert [record["type"] for record in domain.records] == ["TXT", "MX", "TXT"]
    assert domain.status == "pending"

    signed_in.post(f"/accounts/{account.id}/domains/{domain.id}/check")
    run_jobs()
    fragment = signed_in.get(f"/accounts/{account.id}/domains/{domain.id}",
                             headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Next check in" in fragment and 'hx-trigger="load delay:5s"' in fragment, "the page keeps checking"

    publish_ownership(dns_zone, domain)
    publish_local_mail_records(dns_zone, domain)
    run_jobs(now=utcnow() + timedelta(seconds=30))  # the next watched check, with nobody clicking
    db.session.expire_all()
    domain = db.session.get(Domain, domain.id)
    assert domain.status == "enabled" and domain.verified_at is not None
    fragment = signed_in.get(f"/accounts/{account.id}/domains/{domain.id}",
                             headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Enabled" in fragment and "hx-trigger" not in fragment


def test_missing_record__says_what_was_found_instead(signed_in, account, run_jobs, dns_zone):
    signed_in.post(f"/accounts/{account.id}/domains/new", data={"name": "example.org", "connection": "local"})
    domain = db.session.execute(db.select(Domain)).scalar_one()
    publish_ownership(dns_zone, domain)
    dns_zone.set("example.org", "MX", ["10 old-mail.example.net"])
    run_jobs()
    db.session.refresh(domain)
    assert domain.status == "action_required"
    assert "MX example.org (found 10 old-mail.example.net instead)" in shown(domain.status_reason)
    assert "TXT example.org (nothing found)" in shown(domain.status_reason)


def test_domain_page__a_check_ending_while_the_page_is_read_is_shown_not_lost(signed_in, account, app, dns_zone):
    """The domain is read, then whether a check runs for it. On PostgreSQL each statement sees what has
    committed by then: a check that ends between the two reads must not leave "Pending" on a page that
    has stopped looking."""
    from tests.racing import jobs_finishing_midway

    signed_in.post(f"/accounts/{account.id}/domains/new", data={"name": "example.org", "connection": "local"})
    domain = db.session.execute(db.select(Domain)).scalar_one()
    publish_ownership(dns_zone, domain)
    publish_local_mail_records(dns_zone, domain)
    assert domain.status == "pending"  # read now, as the request will hold it (the client shares this session)
    url = f"/accounts/{account.id}/domains/{domain.id}"
    with jobs_finishing_midway(app) as finished:  # before the request's first statement
        page = signed_in.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert finished, "the check did not run while the page was read"
    status_line = page.split('class="status-line"', 1)[1].split("</p>", 1)[0]
    assert "Enabled" in status_line and "Pending" not in status_line
    assert "hx-get=" not in page.split(">", 1)[0]  # at rest: no more polling


def test_domains_list__an_empty_list_says_so_once(client, auth, owner, account):
    """A walkthrough: "No domain yet." then, below, "Nothing to show."; the pager's count stays for
    the announcement alone."""
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{account.id}/domains").get_data(as_text=True)
    assert "No domain yet." in page
    assert 'data-announce="domain-list-count" class="visually-hidden">Nothing to show.' in page
