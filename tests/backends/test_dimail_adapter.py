"""dimail quirks: tokens, 500 on duplicates, domain checks and specs, and what
the real dimail does (reference/OBSERVED.md) in both the versions the
emulator reproduces."""

from __future__ import annotations

import pytest
import requests

from portal.backends.base import (BackendNotFound, ChangeNotKept, MailboxSpec, PermanentBackendError,
                                  TransientBackendError, Unsupported)
from portal.backends.dimail import DimailBackend
from tests.servers.emu_common import Reply
from tests.servers.emu_dimail import DimailEmulator


def _token_requests(emulator) -> int:
    return sum(1 for request in emulator.requests if request.path == "/token/")


def test_expired_token__is_refreshed_once_and_the_call_succeeds(dimail):
    address = dimail.backend.create_mailbox(dimail.spec()).address
    dimail.emulator.expire_tokens()
    before = _token_requests(dimail.emulator)

    mailbox = dimail.backend.get_mailbox(address)

    assert mailbox is not None
    assert _token_requests(dimail.emulator) == before + 1
    refused = [r for r in dimail.emulator.requests if r.path.endswith("/jane.doe") and r.method == "GET"]
    assert len(refused) == 2


def test_refused_fresh_token__fails_permanently_after_one_refresh(dimail):
    dimail.emulator.issue_valid_tokens = False

    with pytest.raises(PermanentBackendError) as caught:
        dimail.backend.get_mailbox(f"jane.doe@{dimail.domain}")

    assert caught.value.code == "auth"
    assert _token_requests(dimail.emulator) == 2


def test_wrong_api_password__fails_permanently_without_retrying(dimail):
    backend = dimail.open(password="wrong-dimail-password")

    with pytest.raises(PermanentBackendError) as caught:
        backend.list_mailboxes(dimail.domain)

    assert caught.value.code == "auth"
    assert caught.value.message == "dimail refused the credentials (HTTP 403): Permission denied"
    assert "wrong-dimail-password" not in str(caught.value) + repr(caught.value) + repr(backend)
    assert _token_requests(dimail.emulator) == 1


def test_tokens__never_appear_in_errors(dimail):
    dimail.backend.create_mailbox(dimail.spec())
    dimail.emulator.faults.fail_5xx()

    with pytest.raises(TransientBackendError) as caught:
        dimail.backend.list_mailboxes(dimail.domain)

    assert not any(token in caught.value.message for token in dimail.emulator.tokens)


def test_ensure_domain__sends_features_delivery_and_context(dimail):
    backend = dimail.open(context_name="shared-context")

    backend.ensure_domain("other.test")

    request = next(r for r in dimail.emulator.requests if r.path == "/domains/" and b"other.test" in r.body)
    assert request.json() == {"name": "other.test", "context_name": "shared-context",
                              "features": ["webmail", "mailbox", "alias"], "delivery": "virtual"}
    assert dimail.emulator.domains[dimail.domain]["context_name"] == dimail.domain


def test_check_domain__an_external_failure_needs_the_owner(dimail):
    dimail.emulator.fail_check(dimail.domain, "mx", "The MX must be mx.dimail.test.")
    dimail.emulator.fail_check(dimail.domain, "cert", "No certificate yet")

    check = dimail.backend.check_domain(dimail.domain)

    assert check.state == "external_failed"
    mx = next(result for result in check.checks if result.name == "mx")
    assert (mx.ok, mx.internal, mx.messages) == (False, False, ["The MX must be mx.dimail.test."])
    assert {result.name for result in check.checks} >= {"domain_exist", "spf", "dkim", "postfix", "ox", "cert"}


def test_fix_domain__repairs_internal_failures(dimail):
    dimail.emulator.fail_check(dimail.domain, "cert", "No certificate yet")
    assert dimail.backend.check_domain(dimail.domain).state == "internal_failed"

    fixed = dimail.backend.fix_domain(dimail.domain)

    assert fixed.state == "ok"
    assert any(r.path == f"/domains/{dimail.domain}/fix/" for r in dimail.emulator.requests)


def test_required_records__come_from_the_spec_with_full_names(dimail):
    records = dimail.backend.required_records(dimail.domain)

    assert [(r.name, r.type) for r in records] == [
        (dimail.domain, "MX"),
        (dimail.domain, "TXT"),
        (f"imap.{dimail.domain}", "CNAME"),
        (f"dimail._domainkey.{dimail.domain}", "TXT"),
    ]
    assert records[1].purpose.startswith("SPF")
    assert records[3].purpose.startswith("DKIM")


def test_validation_error__is_readable_with_hints(dimail, monkeypatch):
    # FastAPI's answer to a request it cannot validate, as BACKENDS.md records it.
    monkeypatch.setattr(dimail.emulator, "_create_mailbox", lambda domain, local_part, request: Reply.json(
        {"detail": [{"type": "value_error", "loc": ["path", "user_name"], "msg": "Value error, invalid mailbox name",
                     "input": local_part}]}, 422))

    with pytest.raises(PermanentBackendError) as caught:
        dimail.backend.create_mailbox(dimail.spec(local_part="bad-name"))

    assert caught.value.hints == {"path.user_name": "Value error, invalid mailbox name"}
    assert "path.user_name: Value error, invalid mailbox name" in caught.value.message
    assert "HTTP 422" in caught.value.message


def test_create_mailbox__on_an_unknown_domain_is_not_found(dimail):
    spec = MailboxSpec.for_address("jane@unknown.test", first_name="Jane")

    with pytest.raises(BackendNotFound) as caught:
        dimail.backend.create_mailbox(spec)

    assert "unknown.test" in caught.value.message


def test_create_mailbox__a_real_server_error_stays_transient(dimail):
    dimail.backend.health()
    dimail.emulator.faults.fail_5xx(1)

    with pytest.raises(TransientBackendError):
        dimail.backend.create_mailbox(dimail.spec())

    assert dimail.emulator.creations[f"jane.doe@{dimail.domain}"] == 0


@pytest.mark.parametrize(("fields", "expected"), [
    ({}, {"givenName": "contact", "surName": "contact", "displayName": "contact"}),
    ({"display_name": "Marie Sklodowska Curie"},
     {"givenName": "Marie", "surName": "Sklodowska Curie", "displayName": "Marie Sklodowska Curie"}),
    ({"first_name": "Ada", "last_name": "Lovelace"},
     {"givenName": "Ada", "surName": "Lovelace", "displayName": "Ada Lovelace"}),
])
def test_create_mailbox__always_sends_the_three_required_names(dimail, fields, expected):
    spec = dimail.spec("contact", **{"first_name": "", "last_name": "", **fields})

    dimail.backend.create_mailbox(spec)

    request = next(r for r in dimail.emulator.requests if r.method == "POST" and "/mailboxes/" in r.path)
    assert request.json() == expected


def test_list_mailboxes__marks_the_context_administrator_as_a_system_mailbox(any_dimail):
    dimail = any_dimail
    address = dimail.backend.create_mailbox(dimail.spec()).address
    dimail.backend.add_alias(address, f"jd@{dimail.domain}")

    listed = {m.address: m for m in dimail.backend.list_mailboxes(dimail.domain)}

    assert sorted(listed) == [address, f"oxadmin@{dimail.domain}"]
    assert listed[f"oxadmin@{dimail.domain}"].system is True
    assert listed[address].system is False and listed[address].active is True
    assert dimail.backend.get_mailbox(f"oxadmin@{dimail.domain}").system is True
    assert dimail.emulator.aliases == {f"jd@{dimail.domain}": [address]}


def test_create_mailbox__reports_dimails_generated_password(dimail):
    result = dimail.backend.create_mailbox(dimail.spec(password="ignored-by-dimail"))

    assert result.generated_password == dimail.emulator.mailboxes[result.address]["password"]


# -- aliases -------------------------------------------------------------------------


def _alias_requests(emulator, method: str) -> list:
    return [r for r in emulator.requests if r.method == method and "/aliases/" in r.path]


def test_add_alias__takes_dimails_200_and_409_as_success(dimail):
    address = dimail.backend.create_mailbox(dimail.spec()).address

    dimail.backend.add_alias(address, f"jd@{dimail.domain}")
    dimail.backend.add_alias(address, f"jd@{dimail.domain}")

    posts = _alias_requests(dimail.emulator, "POST")
    assert [p.json() for p in posts] == [{"user_name": "jd", "destination": address}] * 2
    assert dimail.emulator.aliases == {f"jd@{dimail.domain}": [address]}


def test_add_alias__never_adds_a_second_destination(dimail):
    jane = dimail.backend.create_mailbox(dimail.spec()).address
    john = dimail.backend.create_mailbox(dimail.spec("john")).address
    dimail.backend.add_alias(jane, f"team@{dimail.domain}")

    with pytest.raises(PermanentBackendError) as caught:
        dimail.backend.add_alias(john, f"team@{dimail.domain}")

    assert caught.value.code == "already_exists"
    assert f"already delivers to {jane}" in caught.value.message
    assert len(_alias_requests(dimail.emulator, "POST")) == 1


def test_list_aliases__reads_the_domains_pairs_for_this_destination(dimail):
    jane = dimail.backend.create_mailbox(dimail.spec()).address
    dimail.emulator.aliases.update({f"jd@{dimail.domain}": [jane], f"all@{dimail.domain}": ["x@else.test", jane],
                                    f"other@{dimail.domain}": ["x@else.test"]})

    assert dimail.backend.list_aliases(jane) == [f"all@{dimail.domain}", f"jd@{dimail.domain}"]


def test_remove_alias__deletes_the_pair_and_takes_404_as_gone(dimail):
    jane = dimail.backend.create_mailbox(dimail.spec()).address
    dimail.emulator.aliases[f"all@{dimail.domain}"] = ["x@else.test", jane]

    dimail.backend.remove_alias(jane, f"all@{dimail.domain}")
    dimail.backend.remove_alias(jane, f"all@{dimail.domain}")

    deletes = _alias_requests(dimail.emulator, "DELETE")
    assert [d.path for d in deletes] == [f"/domains/{dimail.domain}/aliases/all/jane.doe%40{dimail.domain}"] * 2
    assert dimail.emulator.aliases == {f"all@{dimail.domain}": ["x@else.test"]}


def test_remove_alias__under_a_wrong_url_is_not_taken_as_gone(dimail):
    backend = dimail.open(url=dimail.emulator.url + "/v9")

    with pytest.raises(PermanentBackendError) as caught:
        backend.remove_alias(f"jane.doe@{dimail.domain}", f"jd@{dimail.domain}")

    assert "HTTP 404" in caught.value.message and not isinstance(caught.value, BackendNotFound)


def test_add_alias__on_a_domain_dimail_does_not_serve_is_refused_not_silently_taken(any_dimail):
    dimail = any_dimail
    jane = dimail.backend.create_mailbox(dimail.spec()).address

    with pytest.raises(BackendNotFound) as caught:
        dimail.backend.add_alias(jane, "jd@not-served.test")

    assert caught.value.message == ("dimail does not serve not-served.test: an alias there would receive no mail; "
                                    "set the domain up on dimail first")
    assert _alias_requests(dimail.emulator, "POST") == []
    # What dimail itself does with such an alias: it takes it.
    taken = requests.post(f"{dimail.emulator.url}/domains/not-served.test/aliases/",
                          json={"user_name": "jd", "destination": jane},
                          headers={"Authorization": f"Bearer {next(iter(dimail.emulator.tokens))}"}, timeout=1)
    assert (taken.status_code, taken.json()) == (200, {"username": "jd", "domain": "not-served.test",
                                                      "destination": jane})


def test_domain_settings_and_protocols__are_explained_as_unsupported(dimail):
    rows = {label: (supported, text) for label, supported, text in dimail.backend.capabilities.describe()}

    assert rows["Domain settings"][0] is False and "Open-XChange" in rows["Domain settings"][1]
    assert rows["Protocol switches"][0] is False
    assert rows["Removes aliases"] == (True, "An alias can be taken off a mailbox again.")


# -- versions: what the connected dimail offers -----------------------------------------------


def _openapi_requests(emulator) -> int:
    return sum(1 for request in emulator.requests if request.path == "/openapi.json")


def test_discover__the_public_dimail_has_no_checks_spec_reset_or_disabling(dimail_public):
    capabilities = dimail_public.backend.discover()

    assert not capabilities.domain_check and not capabilities.domain_fix and not capabilities.dns_spec
    assert not capabilities.mailbox_password_reset and not capabilities.can_reset_password
    assert not capabilities.mailbox_disable
    assert capabilities.mailbox_create and capabilities.mailbox_aliases and capabilities.mailbox_delete
    rows = {label: (supported, text) for label, supported, text in capabilities.describe()}
    assert rows["Checks domains"] == (False, "This dimail has no domain check (no /domains/{domain}/check route): "
                                             "the portal checks the domain's DNS records itself.")
    assert rows["Disables mailboxes"][0] is False and "ignores \"active\"" in rows["Disables mailboxes"][1]
    assert dimail_public.backend.capabilities == capabilities
    assert DimailBackend.capabilities.domain_check  # the class still declares the most dimail can do


def test_discover__the_current_dimail_has_them_all(dimail):
    capabilities = dimail.backend.discover()

    assert capabilities == DimailBackend.capabilities
    assert capabilities.domain_check and capabilities.mailbox_password_reset and capabilities.mailbox_disable


def test_discover__reads_the_openapi_document_once_per_connection(any_dimail):
    dimail = any_dimail
    address = dimail.backend.create_mailbox(dimail.spec()).address
    dimail.backend.required_records(dimail.domain)
    dimail.backend.discover()
    if dimail.backend.capabilities.domain_check:
        dimail.backend.check_domain(dimail.domain)

    assert dimail.backend.get_mailbox(address) is not None
    assert _openapi_requests(dimail.emulator) == 1


def test_route_gone__a_404_not_found_reads_the_document_again_and_refuses_as_unsupported(dimail):
    dimail.backend.discover()
    address = dimail.backend.create_mailbox(dimail.spec()).address
    # The server is replaced by the public version under the adapter's feet.
    downgraded = DimailEmulator(mode="public")
    dimail.emulator.routes, dimail.emulator.mode = downgraded.routes, "public"

    with pytest.raises(Unsupported) as checking:
        dimail.backend.check_domain(dimail.domain)
    with pytest.raises(Unsupported) as resetting:
        dimail.backend.reset_password(address)

    assert checking.value.message.startswith("dimail (Open-XChange) cannot check domains. This dimail has no domain")
    assert "no reset_password route" in resetting.value.message
    assert _openapi_requests(dimail.emulator) == 2
    assert dimail.backend.capabilities.domain_check is False


def test_route_gone__under_a_wrong_url_is_an_error_naming_the_url_not_unsupported(dimail):
    backend = dimail.open(url=dimail.emulator.url + "/v9")

    with pytest.raises(PermanentBackendError) as caught:
        backend.discover()

    assert not isinstance(caught.value, Unsupported)
    assert "/v9/openapi.json (HTTP 404)" in caught.value.message


def test_required_records__without_a_spec_route_come_from_the_connections_settings(dimail_public):
    backend = dimail_public.open(mx_host="mx.ox.example.net", spf_include="_spf.ox.example.net")
    backend.discover()

    records = backend.required_records(dimail_public.domain)

    assert [(r.name, r.type, r.value) for r in records] == [
        (dimail_public.domain, "MX", "10 mx.ox.example.net."),
        (dimail_public.domain, "TXT", "v=spf1 include:_spf.ox.example.net ~all"),
    ]
    assert not any(r.path.endswith("/spec/") for r in dimail_public.emulator.requests)


def test_required_records__a_dimail_reached_at_an_ip_needs_its_mail_host_named(dimail_public):
    """Without a spec route nor mx_host, the MX was the API's host: an IP address there made the
    record "10 127.0.0.1.", which no MX may be (the real dimail, run on loopback)."""
    backend = dimail_public.open(mx_host="")
    backend.discover()

    with pytest.raises(PermanentBackendError) as caught:
        backend.required_records(dimail_public.domain)

    assert caught.value.code == "config" and "set the connection's mx_host" in caught.value.message


def test_check_domain__the_public_dimail_is_not_asked(dimail_public):
    with pytest.raises(Unsupported):
        dimail_public.backend.check_domain(dimail_public.domain)
    with pytest.raises(Unsupported):
        dimail_public.backend.fix_domain(dimail_public.domain)

    assert not any(r.path.endswith(("/check", "/fix/")) for r in dimail_public.emulator.requests)


# -- disabling: the public dimail ignores "active" --------------------------------------------


def test_set_mailbox_active__the_public_dimail_is_not_asked_and_the_mailbox_stays_active(dimail_public):
    address = dimail_public.backend.create_mailbox(dimail_public.spec()).address

    with pytest.raises(Unsupported) as caught:
        dimail_public.backend.set_mailbox_active(address, False)

    assert "ignores \"active\"" in caught.value.message
    assert not any(r.method == "PATCH" for r in dimail_public.emulator.requests)
    assert dimail_public.backend.get_mailbox(address).active is True


def test_dimail__ignored_active_fails_with_clear_message(dimail_public):
    # A dimail whose OpenAPI document says PATCH takes "active", but which ignores it as the public one does.
    dimail_public.emulator.openapi = DimailEmulator(mode="current").openapi
    backend = dimail_public.open()
    assert backend.discover().mailbox_disable is True
    address = backend.create_mailbox(dimail_public.spec()).address

    with pytest.raises(ChangeNotKept) as caught:
        backend.set_mailbox_active(address, False)

    assert caught.value.active is True
    assert caught.value.message.startswith(
        f"dimail answered the change with success but did not keep it: {address} is still enabled.")
    assert backend.capabilities.mailbox_disable is False
    assert [r.json() for r in dimail_public.emulator.requests if r.method == "PATCH"] == [{"active": "no"}]
    with pytest.raises(Unsupported):
        backend.set_mailbox_active(address, False)


def test_set_mailbox_active__the_current_dimail_keeps_it_and_it_is_read_back(dimail):
    address = dimail.backend.create_mailbox(dimail.spec()).address

    dimail.backend.set_mailbox_active(address, False)

    assert dimail.emulator.mailboxes[address]["active"] == "no"
    methods = [r.method for r in dimail.emulator.requests if r.path.endswith("/jane.doe")]
    assert methods[-2:] == ["PATCH", "GET"]


# -- what dimail takes, refuses and says -------------------------------------------------------


def test_create_mailbox__upper_case_and_double_dots_are_taken_as_given(any_dimail):
    dimail = any_dimail
    spec = dimail.spec("Jane..Doe")

    assert DimailBackend.address_problem("Jane..Doe", dimail.domain) is None
    result = dimail.backend.create_mailbox(spec)

    assert result.created and result.address == f"Jane..Doe@{dimail.domain}"
    assert f"Jane..Doe@{dimail.domain}" in dimail.emulator.mailboxes
    assert dimail.backend.get_mailbox(f"jane..doe@{dimail.domain}") is None  # dimail's names are case-sensitive


@pytest.mark.parametrize(("local_part", "words"), [
    ("x" * 129, "at most 128 characters"),
    ("a/b", "contains \"/\""),
    ("oxadmin", "Open-Xchange administrator"),
])
def test_address_problem__what_dimail_cannot_hold_is_refused_before_any_call(dimail, local_part, words):
    before = len(dimail.emulator.requests)

    with pytest.raises(PermanentBackendError) as caught:
        dimail.backend.create_mailbox(dimail.spec(local_part))

    assert words in DimailBackend.address_problem(local_part, dimail.domain)
    assert words in caught.value.message and caught.value.code == "invalid"
    assert len(dimail.emulator.requests) == before


def test_too_long_name__dimail_itself_fails_with_500_and_leaves_half_a_mailbox(dimail):
    token = dimail.backend._fetch_token()
    answer = requests.post(f"{dimail.emulator.url}/domains/{dimail.domain}/mailboxes/{'x' * 129}",
                           json={"givenName": "A", "surName": "B", "displayName": "A B"},
                           headers={"Authorization": f"Bearer {token}"}, timeout=1)

    assert (answer.status_code, answer.text) == (500, "Internal Server Error")
    leftover = next(m for m in dimail.backend.list_mailboxes(dimail.domain) if m.address.startswith("xxx"))
    assert leftover.extra["status"] == "broken" and not leftover.system


def test_create_mailbox__a_half_made_mailbox_is_a_clear_error_not_already_there(dimail):
    dimail.emulator.mailboxes[f"jane.doe@{dimail.domain}"] = {"givenName": "Jane", "surName": "Doe",
                                                              "displayName": "Jane Doe", "imap": False}

    with pytest.raises(PermanentBackendError) as caught:
        dimail.backend.create_mailbox(dimail.spec())

    assert "lists it as broken" in caught.value.message


def test_create_mailbox__the_display_name_dimail_ignores_on_creation_is_sent_after_it(any_dimail):
    """The real dimail stores "givenName surName" on creation and keeps a PATCHed displayName: the
    portal's name reaches it that way, and a mailbox without names is "contact", not "contact contact"."""
    dimail = any_dimail
    address = dimail.backend.create_mailbox(dimail.spec(display_name="The Countess", first_name="Ada",
                                                        last_name="Lovelace")).address
    shared = dimail.backend.create_mailbox(dimail.spec("contact", first_name="", last_name="")).address
    named = dimail.backend.create_mailbox(dimail.spec("grace", first_name="Grace", last_name="Hopper",
                                                      display_name="Grace Hopper")).address

    assert dimail.backend.get_mailbox(address).display_name == "The Countess"
    assert dimail.backend.get_mailbox(address).backend_id is None  # dimail's documents have no uuid
    assert dimail.backend.get_mailbox(shared).display_name == "contact"
    assert dimail.backend.get_mailbox(named).display_name == "Grace Hopper"
    patched = [r.path.rsplit("/", 1)[1] for r in dimail.emulator.requests if r.method == "PATCH"]
    assert patched == ["jane.doe", "contact"]  # "Grace Hopper" was kept on creation


def test_create_mailbox__a_refused_renaming_leaves_the_mailbox_made(dimail, monkeypatch):
    original = dimail.backend._user

    def refusing(method, path, **options):
        if method == "PATCH":
            return original("PATCH", path + "-nobody", **options)  # a 404 from the server
        return original(method, path, **options)

    monkeypatch.setattr(dimail.backend, "_user", refusing)
    result = dimail.backend.create_mailbox(dimail.spec(display_name="The Countess", first_name="Ada",
                                                       last_name="Lovelace"))

    assert result.created and result.generated_password
    assert dimail.backend.get_mailbox(result.address).display_name == "Ada Lovelace"


def test_broken__a_half_made_mailbox_is_not_deleted_as_gone_and_drift_sets_it_apart(dimail):
    """dimail answers 404 to deleting a mailbox it lists as broken, and keeps listing it."""
    address = f"half@{dimail.domain}"
    dimail.emulator.mailboxes[address] = {"givenName": "Half", "surName": "Made", "displayName": "Half Made",
                                          "imap": False}

    listed = next(m for m in dimail.backend.list_mailboxes(dimail.domain) if m.address == address)
    with pytest.raises(PermanentBackendError) as caught:
        dimail.backend.delete_mailbox(address)

    assert listed.extra["broken"] and not listed.system
    assert caught.value.code == "broken" and "lists it as broken" in caught.value.message
    admin = next(m for m in dimail.backend.list_mailboxes(dimail.domain) if m.system)
    assert not admin.extra["broken"]


def test_delete_mailbox__one_dimail_does_not_have_is_already_deleted(any_dimail):
    dimail = any_dimail

    dimail.backend.delete_mailbox(f"ghost@{dimail.domain}")

    (request,) = [r for r in dimail.emulator.requests if r.method == "DELETE"]
    assert request.path == f"/domains/{dimail.domain}/mailboxes/ghost"


def test_create_mailbox__after_the_duplicates_500_the_next_create_goes_out_on_a_fresh_connection(any_dimail):
    dimail = any_dimail
    first = dimail.backend.create_mailbox(dimail.spec())
    token = dimail.backend._token
    duplicate = dimail.backend._http.send("POST", f"/domains/{dimail.domain}/mailboxes/jane.doe",
                                          json={"givenName": "J", "surName": "D", "displayName": "J D"},
                                          headers={"Authorization": f"Bearer {token}"})

    second = dimail.backend.create_mailbox(dimail.spec("john"))

    assert first.created and duplicate.status_code == 500 and second.created
    assert dimail.emulator.creations[f"john@{dimail.domain}"] == 1


def test_authentication__dimails_refusals_are_403_with_its_words(dimail):
    url = dimail.emulator.url
    no_bearer = requests.get(f"{url}/domains/{dimail.domain}/mailboxes/", timeout=1)
    bad_bearer = requests.get(f"{url}/domains/{dimail.domain}/mailboxes/", headers={"Authorization": "Bearer x"},
                              timeout=1)
    no_basic = requests.get(f"{url}/token/", timeout=1)

    assert (no_bearer.status_code, no_bearer.json()) == (403, {"detail": "Not authenticated"})
    assert (bad_bearer.status_code, bad_bearer.json()) == (403, {"detail": "Permission denied"})
    assert (no_basic.status_code, no_basic.json()) == (401, {"detail": "Not authenticated"})


def test_missing_trailing_slash__dimail_redirects_and_the_adapter_says_so(dimail):
    redirected = requests.post(f"{dimail.emulator.url}/domains", json={}, allow_redirects=False, timeout=1)
    listing = requests.get(f"{dimail.emulator.url}/domains/{dimail.domain}/mailboxes", allow_redirects=False,
                           timeout=1)
    backend = dimail.open()
    response = backend._http.send("GET", f"/domains/{dimail.domain}/mailboxes")

    assert (redirected.status_code, redirected.headers["location"]) == (307, f"{dimail.emulator.url}/domains/")
    assert listing.headers["location"] == f"{dimail.emulator.url}/domains/{dimail.domain}/mailboxes/"
    error = backend._http.error_for(response)
    assert isinstance(error, PermanentBackendError) and error.code == "redirected"
    assert f"redirected the request to {dimail.emulator.url}/domains/{dimail.domain}/mailboxes/" in error.message


def test_openapi__lists_exactly_the_routes_of_the_version(any_dimail):
    document = requests.get(f"{any_dimail.emulator.url}/openapi.json", timeout=1).json()

    optional = {"/domains/{domain_name}/check", "/domains/{domain_name}/fix/", "/domains/{domain_name}/spec/",
                "/domains/{domain_name}/mailboxes/{user_name}/reset_password/"}
    present = optional & set(document["paths"])
    assert present == (optional if any_dimail.emulator.mode == "current" else set())
    for path in optional - present:
        answer = requests.get(any_dimail.emulator.url + path.replace("{domain_name}", any_dimail.domain)
                              .replace("{user_name}", "x"), timeout=1)
        assert (answer.status_code, answer.json()) == (404, {"detail": "Not Found"})
