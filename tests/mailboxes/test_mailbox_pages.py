import pytest

from portal.extensions import db
from portal.mailboxes.models import Mailbox
from portal.roles.models import Role
from tests.mailboxes.conftest import enabled_domain


@pytest.fixture
def setting(client, auth, owner, account):
    domain = enabled_domain(owner, account)
    auth.login("owner@example.org")
    return client, account, domain


def test_new_mailbox_form__creates_and_lands_on_the_page_that_polls(setting, run_jobs):
    client, account, domain = setting
    response = client.post(f"/accounts/{account.id}/mailboxes/new", data={
        "local_part": "sales", "domain": domain.id, "kind": "shared", "owner": 0, "display_name": "Sales",
        "quota": 2, "quota_unit": "GB"})
    assert response.status_code == 302
    mailbox = db.session.execute(db.select(Mailbox)).scalar_one()
    assert mailbox.quota_bytes == 2 * 1024 ** 3
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Working…" in page and 'hx-trigger="load delay:1s"' in page
    # Without scripts: a link to reload, not a page that reloads itself (and loses what is typed)
    assert "Reload the page to see where it stands." in page and 'http-equiv="refresh"' not in page
    run_jobs()
    fragment = client.get(response.headers["Location"], headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="mailbox-live"')
    assert "Enabled" in fragment and "Created on the backend." in fragment and "2\u00a0GB" in fragment
    assert "Reveal the password once" in fragment


def test_new_mailbox_form__errors_keep_the_input(setting):
    client, account, domain = setting
    response = client.post(f"/accounts/{account.id}/mailboxes/new", data={
        "local_part": "Bad Name", "domain": domain.id, "kind": "personal", "owner": 0, "display_name": "Kept"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'value="Bad Name"' in page and 'value="Kept"' in page and "lower-case letters" in page


def test_mailbox_list__filters_by_status_and_domain_with_htmx(setting, run_jobs, owner):
    client, account, domain = setting
    from portal.mailboxes import services

    services.create_mailbox(owner, account, domain, "one")
    services.create_mailbox(owner, account, domain, "two")
    db.session.commit()
    run_jobs()
    services.create_mailbox(owner, account, domain, "three")
    db.session.commit()
    page = client.get(f"/accounts/{account.id}/mailboxes?status=provisioning",
                      headers={"HX-Request": "true"}).get_data(as_text=True)
    assert page.lstrip().startswith('<div id="mailbox-list"')
    assert "three@example.org" in page and "one@example.org" not in page


def test_member_without_mailbox_access__sees_only_their_mailboxes(client, auth, make, owner, account, run_jobs):
    domain = enabled_domain(owner, account)
    from portal.mailboxes import services

    jane = make.user("jane@example.org")
    make.member(account, jane)
    mine = services.create_mailbox(owner, account, domain, "jane", kind="personal", owner=jane)
    other = services.create_mailbox(owner, account, domain, "boss")
    db.session.commit()
    auth.login("jane@example.org")
    page = client.get(f"/accounts/{account.id}/mailboxes").get_data(as_text=True)
    assert "jane@example.org" in page and "boss@example.org" not in page
    assert client.get(f"/accounts/{account.id}/mailboxes/{mine.id}").status_code == 200
    assert client.get(f"/accounts/{account.id}/mailboxes/{other.id}").status_code == 403
    assert client.post(f"/accounts/{account.id}/mailboxes/{other.id}/disable").status_code == 403


def test_member_mailbox_tab__grants_a_mailbox_role_within_what_the_granter_holds(client, auth, make, owner, account):
    domain = enabled_domain(owner, account)
    from portal.mailboxes import services
    from portal.roles.services import mailbox_permissions

    mailbox = services.create_mailbox(owner, account, domain, "team")
    bob = make.member(account, make.user("bob@example.org"))
    jane = make.user("jane@example.org")
    jane_membership_id = make.member(account, jane).id
    delegate = db.session.execute(db.select(Role).where(Role.system_key == "mailbox_delegate")).scalar_one()
    mailbox_owner = db.session.execute(db.select(Role).where(Role.system_key == "mailbox_owner")).scalar_one()
    db.session.commit()
    auth.login("owner@example.org")
    url = f"/accounts/{account.id}/members/{bob.id}/mailboxes/{mailbox.id}/roles"
    assert client.post(url, data={"role_id": delegate.id}).status_code == 302
    assert mailbox_permissions(bob.user, account, mailbox.id) == {"mailbox.view", "mailbox.read", "mailbox.send_as"}
    page = client.get(f"/accounts/{account.id}/members/{bob.id}/mailboxes?mailbox={mailbox.id}").get_data(as_text=True)
    assert "Mailbox Delegate" in page
    # A way back to the mailbox, and the roles to add leave out the one held (a walkthrough).
    assert f'href="/accounts/{account.id}/mailboxes/{mailbox.id}">Go to the mailbox team@' in page
    choices = page[page.index('<select name="role_id"'):]
    choices = choices[:choices.index("</select>")]
    assert f'value="{delegate.id}"' not in choices and f'value="{mailbox_owner.id}"' in choices
    # "Show its access" with nothing typed or picked says what to do (a walkthrough: it did nothing).
    page = client.get(f"/accounts/{account.id}/members/{bob.id}/mailboxes?mailbox_q=").get_data(as_text=True)
    assert "Type part of a mailbox&#39;s address, then pick the mailbox" in page
    page = client.get(f"/accounts/{account.id}/mailboxes/{mailbox.id}").get_data(as_text=True)
    assert "bob@example.org" in page and "Mailbox Delegate" in page
    # From the mailbox, whom to give access to: each person found links to their access on it
    # (a walkthrough found no way there from the mailbox page).
    found = client.get(f"/accounts/{account.id}/mailboxes/{mailbox.id}", query_string={"person_q": "JANE"})
    assert f"/accounts/{account.id}/members/{jane_membership_id}/mailboxes?mailbox={mailbox.id}" in \
        found.get_data(as_text=True)
    assert "No member matches “nobody”" in client.get(f"/accounts/{account.id}/mailboxes/{mailbox.id}",
                                                     query_string={"person_q": "nobody"}).get_data(as_text=True)
    client.post("/logout")
    auth.login("bob@example.org")
    jane_membership = [m for m in account.memberships if m.user_id == jane.id][0]
    response = client.post(f"/accounts/{account.id}/members/{jane_membership.id}/mailboxes/{mailbox.id}/roles",
                           data={"role_id": mailbox_owner.id})
    assert response.status_code == 403
    # A delegate may neither grant access nor look up the account's people: no such form
    seen = client.get(f"/accounts/{account.id}/mailboxes/{mailbox.id}", query_string={"person_q": "jane"})
    assert seen.status_code == 200 and "Give someone access" not in seen.get_data(as_text=True)
    assert "jane@example.org" not in seen.get_data(as_text=True)


def test_delete_page__explains_when_the_backend_archives(setting, owner, run_jobs, app_environ):
    client, account, domain = setting
    from portal.mailboxes import services

    mailbox = services.create_mailbox(owner, account, domain, "team")
    db.session.commit()
    run_jobs()
    page = client.get(f"/accounts/{account.id}/mailboxes/{mailbox.id}/delete").get_data(as_text=True)
    assert "Delete the mailbox" in page
    assert client.post(f"/accounts/{account.id}/mailboxes/{mailbox.id}/delete").status_code == 302
    run_jobs()
    db.session.refresh(mailbox)
    assert mailbox.status == "deleted"


def test_mailbox_page__a_job_ending_while_the_page_is_read_is_followed_not_lost(setting, owner, app):
    """The mailbox is read, then whether a job runs for it. On PostgreSQL each statement sees what has
    committed by then: a job that ends between the two reads must not leave "Provisioning" on a page
    that has stopped looking (the browser test saw it now and then)."""
    from portal.mailboxes import services
    from tests.racing import jobs_finishing_midway

    client, account, domain = setting
    mailbox = services.create_mailbox(owner, account, domain, "team")
    db.session.commit()
    # Read now, as the request will hold it (the test client's requests share this session).
    url = f"/accounts/{account.id}/mailboxes/{mailbox.id}"
    assert mailbox.status == "provisioning"
    with jobs_finishing_midway(app) as finished:  # before the request's first statement
        page = client.get(url).get_data(as_text=True)
    assert finished, "the job did not run while the page was read"
    assert "Provisioning" in page  # the mailbox as read before the job ended
    assert 'id="mailbox-live" hx-get=' in page and 'hx-trigger="load delay:1s"' in page  # so the page looks again
    db.session.expire_all()  # the next request reads afresh
    followed = client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Enabled" in followed and "Created on the backend." in followed
    assert "hx-get=" not in followed.split(">", 1)[0]  # at rest: no more polling


def test_owner_picker__offers_only_yourself_to_someone_who_may_not_see_the_users(client, auth, make, owner, account):
    """The picker lists members' addresses and names: someone who may create mailboxes but not see
    the account's users finds only themself, and naming someone else as the owner is refused."""
    domain = enabled_domain(owner, account)
    elodie = make.user("elodie@example.org", name="Élodie Secret")
    make.member(account, elodie)
    creator = make.user("creator@example.org", name="Élodie Creator")
    make.member(account, creator, permissions=("mailboxes.create",))
    auth.login(creator.email)
    for text in ("élodie", "example.org", "elodie@example.org"):
        page = client.get(f"/accounts/{account.id}/mailboxes/pick-owner", query_string={"owner_q": text},
                          headers={"HX-Request": "true"}).get_data(as_text=True)
        assert f'value="{elodie.id}"' not in page and "Secret" not in page, text
    assert "creator@example.org" in client.get(f"/accounts/{account.id}/mailboxes/pick-owner",
                                               query_string={"owner_q": "élodie"},
                                               headers={"HX-Request": "true"}).get_data(as_text=True)
    found = client.post(f"/accounts/{account.id}/mailboxes/new",
                        data={"action": "find-owner", "owner_q": "example.org", "kind": "personal"})
    assert "elodie@example.org" not in found.get_data(as_text=True)
    refused = client.post(f"/accounts/{account.id}/mailboxes/new", data={
        "local_part": "elodie.box", "domain": domain.id, "kind": "personal", "owner": elodie.id})
    assert refused.status_code == 422
    assert "elodie@example.org" not in refused.get_data(as_text=True)
    assert db.session.execute(db.select(Mailbox)).first() is None
    mine = client.post(f"/accounts/{account.id}/mailboxes/new", data={
        "local_part": "creator.box", "domain": domain.id, "kind": "personal", "owner": creator.id})
    assert mine.status_code == 302
    assert db.session.execute(db.select(Mailbox.address)).scalar_one() == "creator.box@example.org"


def test_a_members_mailbox_access_is_shown_and_changed_only_by_someone_who_may_see_the_members(
        client, auth, make, owner, account, run_jobs):
    """Someone holding Mailbox Owner on their own mailbox, and nothing in the account, walked the
    membership ids through the member-access pages of that mailbox: each answer (or refusal)
    named the member and every mailbox they hold rights on."""
    from portal.roles.services import grant_mailbox_role, system_role
    from portal.tokens import services as tokens

    domain = enabled_domain(owner, account)
    from portal.mailboxes import services

    mallory = make.user("mallory@example.org")
    make.member(account, mallory)
    own = services.create_mailbox(owner, account, domain, "mallory.box", kind="personal", owner=mallory)
    ceo = services.create_mailbox(owner, account, domain, "secret.ceo")
    other = make.member(account, make.user("hidden.person@example.org", name="Hidden Person"))
    grant_mailbox_role(owner, account, other, ceo.id, system_role("mailbox_delegate"))
    db.session.commit()
    auth.login(mallory.email)
    base = f"/accounts/{account.id}/members/{other.id}/mailboxes/{own.id}"
    for method, path in (("get", "/advanced"), ("post", "/advanced"), ("post", "/roles"),
                         ("post", "/grants/999999/revoke")):
        answer = getattr(client, method)(base + path)
        page = answer.get_data(as_text=True)
        assert answer.status_code == 403, (method, path)
        assert "hidden.person@example.org" not in page and "secret.ceo" not in page, (method, path)
    # Through the API, someone who manages every mailbox but may not see the members.
    clerk = make.user("clerk@example.org")
    make.member(account, clerk, permissions=("mailboxes.create", "mailboxes.view", "mailboxes.manage"))
    _, raw = tokens.create(clerk, account, name="boxes", scopes={"mailboxes:write"}, expires_at=None)
    db.session.commit()
    api = f"/api/v1/accounts/{account.id}/members/{other.id}/mailboxes/{own.id}"
    headers = {"Authorization": f"Bearer {raw}"}
    granted = client.post(api + "/roles", headers=headers, json={"role_id": system_role("mailbox_delegate").id})
    assert granted.status_code == 403 and "hidden.person" not in granted.get_data(as_text=True)
    assert client.put(api + "/permissions", headers=headers, json={"permissions": []}).status_code == 403


def _give_access(account, mailbox, start: int, count: int) -> None:
    """``count`` more members holding a mailbox role on ``mailbox`` (every other one a single
    permission too), inserted in bulk as a large account has them."""
    from sqlalchemy import insert

    from portal.accounts.models import Membership
    from portal.auth.models import User
    from portal.roles.models import Grant
    from portal.roles.services import system_role
    from portal.timeutil import utcnow

    now = utcnow()
    people = db.session.execute(insert(User).returning(User.id, User.email), [{
        "email": f"holder{start + n:03d}@example.net", "name": "", "is_corporate": False, "timezone": "UTC",
        "phone": "", "created_at": now, "is_superadmin": False} for n in range(count)]).all()
    memberships = db.session.execute(insert(Membership).returning(Membership.id), [
        {"account_id": account.id, "user_id": user_id, "email": email, "created_at": now}
        for user_id, email in people]).scalars().all()
    roles = [system_role("mailbox_delegate").id, system_role("mailbox_owner").id]
    db.session.execute(insert(Grant.__table__), [
        {"membership_id": membership_id, "account_id": account.id, "role_id": roles[n % 2], "permission": None,
         "mailbox_id": mailbox.id, "created_at": now} for n, membership_id in enumerate(memberships)] + [
        {"membership_id": membership_id, "account_id": account.id, "role_id": None, "permission": "mailbox.read",
         "mailbox_id": mailbox.id, "created_at": now} for membership_id in memberships[::2]])
    db.session.commit()


def test_mailbox_page__shows_a_page_of_holders_in_as_many_statements_with_many_as_with_few(setting, owner):
    """A shared mailbox held by 10,000 members made 20,011 statements and rendered every one of
    them (1.2 MB, 3 s), again each time its status was polled."""
    from portal.mailboxes import services
    from tests.sql import on_each_statement

    client, account, domain = setting
    mailbox = services.create_mailbox(owner, account, domain, "team", kind="shared")
    db.session.commit()
    url = f"/accounts/{account.id}/mailboxes/{mailbox.id}"
    _give_access(account, mailbox, 0, 3)
    assert client.get(url).status_code == 200

    def statements_of(headers=None):
        # The test shares the app's session: forget what it holds, as a new request in production would.
        db.session.expunge_all()
        statements: list[str] = []
        with on_each_statement(statements.append):
            response = client.get(url, headers=headers or {})
        assert response.status_code == 200
        return statements, response.get_data(as_text=True)

    few, small = statements_of()
    few_live, _ = statements_of({"HX-Request": "true"})
    assert "holder002@example.net" in small and "Mailbox Delegate" in small and "Mailbox Owner" in small
    _give_access(account, mailbox, 3, 117)
    many, large = statements_of()
    many_live, fragment = statements_of({"HX-Request": "true"})
    assert len(many) == len(few), "\n".join(["FEW"] + few + ["MANY"] + many)
    assert len(many_live) == len(few_live), "\n".join(["FEW"] + few_live + ["MANY"] + many_live)
    for shown in (large, fragment):
        # The first 50 by address, how many there are, and a link to the next ones that works without scripts.
        assert shown.count("@example.net") == 50
        assert "holder049@example.net" in shown and "holder050@example.net" not in shown
        assert "1–50 of 120 people" in shown
        assert f'href="{url}?' in shown and "page=2" in shown
    second = client.get(url, query_string={"page": 2}).get_data(as_text=True)
    assert "51–100 of 120 people" in second
    assert "holder050@example.net" in second and "holder049@example.net" not in second
    # The status, polled while the mailbox is provisioned, stays on the page of holders shown.
    polled = second.split('id="mailbox-live"', 1)[1].split(">", 1)[0]
    assert 'hx-get="' in polled and "page=2" in polled


def test_member_mailbox_access__pages_what_they_hold_and_shows_the_viewer_only_what_they_may_see(
        client, auth, make, owner, account):
    """A member holding something on 121 mailboxes: the list says how many and pages them (the first
    100 were shown, unsaid); a viewer who may see one of them, the last by address, finds it (the
    first 100 were read, then those the viewer could not see taken out: none was left)."""
    from portal.roles.models import Grant
    from portal.roles.services import system_role

    domain = enabled_domain(owner, account)
    boxes = [Mailbox(account_id=account.id, domain_id=domain.id, local_part=f"box{n:03d}",
                     address=f"box{n:03d}@example.org", kind="shared", status="enabled") for n in range(121)]
    db.session.add_all(boxes)
    db.session.flush()
    holder = make.member(account, make.user("holder@example.org"))
    helper = make.member(account, make.user("helper@example.org"), permissions=("members.view",))
    delegate = system_role("mailbox_delegate")
    db.session.add_all(Grant(membership_id=holder.id, account_id=account.id, role_id=delegate.id, mailbox_id=box.id)
                       for box in boxes)
    db.session.add(Grant(membership_id=helper.id, account_id=account.id, role_id=system_role("mailbox_owner").id,
                         mailbox_id=boxes[-1].id))
    db.session.commit()
    url = f"/accounts/{account.id}/members/{holder.id}/mailboxes"

    auth.login("owner@example.org")
    page = client.get(url).get_data(as_text=True)
    assert "1–50 of 121 mailboxes" in page and "box000@example.org" in page and "box050@example.org" not in page
    fragment = client.get(f"{url}?page=3", headers={"HX-Request": "true", "HX-Target": "held-mailboxes"})
    text = fragment.get_data(as_text=True)
    assert text.lstrip().startswith('<section class="card" id="held-mailboxes"')
    assert "101–121 of 121 mailboxes" in text and "box120@example.org" in text and "box099@example.org" not in text
    assert "<nav class=\"tabs\"" not in text
    # A mailbox picked on page 3 keeps page 3, brings its roles into view and is marked as chosen.
    link = f'href="{url}?mailbox={boxes[120].id}&amp;sort=address&amp;dir=asc&amp;page=3#chosen-mailbox"'
    assert link in text
    chosen = client.get(f"{url}?mailbox={boxes[120].id}&page=3").get_data(as_text=True)
    assert 'aria-current="true"><strong>box120@example.org</strong>' in chosen and 'id="chosen-mailbox"' in chosen
    assert "101–121 of 121 mailboxes" in chosen
    nobody = make.member(account, make.user("nobody@example.org"))
    empty = client.get(f"/accounts/{account.id}/members/{nobody.id}/mailboxes").get_data(as_text=True)
    assert "<p class=\"muted\">No mailbox.</p>" in empty

    auth.logout()
    auth.login("helper@example.org")
    page = client.get(url).get_data(as_text=True)
    assert "box120@example.org" in page and "1–1 of 1 mailbox" in page
    assert "box000@example.org" not in page
    assert "None that you may see." in client.get(
        f"/accounts/{account.id}/members/{nobody.id}/mailboxes").get_data(as_text=True)


def test_received_by_name__a_tagged_name_counts_as_untagged_only_where_nothing_has_it(make, owner, account):
    """name+tag@ reaches name@'s mailbox where nothing has the tagged name, as mail servers deliver
    it; a tagged address with a mailbox of its own (its owner's login address) is not read by name@'s
    (a review: both were looked up, and jane+x@ counted as read by jane@'s readers)."""
    from portal.mailboxes.services import received_by_name

    domain = enabled_domain(owner, account)
    jane = make.user("jane+x@example.org")
    db.session.add_all([
        Mailbox(account_id=account.id, domain_id=domain.id, local_part="jane+x", address="jane+x@example.org",
                kind="personal", status="enabled", owner_id=jane.id),
        Mailbox(account_id=account.id, domain_id=domain.id, local_part="jane", address="jane@example.org",
                kind="shared", status="enabled")])
    db.session.commit()
    assert received_by_name(account.id, ["jane+x@example.org", "jane+y@example.org", "jane@example.org",
                                         "other+z@example.org"]) == {"jane+y@example.org", "jane@example.org"}


def test_member_mailbox_permissions__the_picker_asked_without_htmx_is_the_whole_page(client, auth, make, owner,
                                                                                    account):
    """The fuzz test: the permission picker's form sent without htmx (a search in it, no script)
    answered 500 once the page's list of mailboxes was paged: that list is now read for it too."""
    from portal.roles.models import Grant
    from portal.roles.services import system_role

    domain = enabled_domain(owner, account)
    box = Mailbox(account_id=account.id, domain_id=domain.id, local_part="desk", address="desk@example.org",
                  kind="shared", status="enabled")
    db.session.add(box)
    db.session.flush()
    holder = make.member(account, make.user("holder@example.org"))
    db.session.add(Grant(membership_id=holder.id, account_id=account.id, role_id=system_role("mailbox_delegate").id,
                         mailbox_id=box.id))
    db.session.commit()
    auth.login("owner@example.org")
    url = f"/accounts/{account.id}/members/{holder.id}/mailboxes/{box.id}/advanced"
    for answer in (client.post(url, data={"action": "filter", "q": "send"}), client.post(url, data={})):
        page = answer.get_data(as_text=True)
        assert answer.status_code == 200 and "1–1 of 1 mailbox" in page and 'id="chosen-mailbox"' in page
    fragment = client.post(url, data={"action": "filter"}, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<h1>" not in fragment
