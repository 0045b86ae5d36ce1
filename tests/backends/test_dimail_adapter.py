"""dimail quirks: tokens, 500 on duplicates, domain checks and specs."""

from __future__ import annotations

import pytest

from portal.backends.base import BackendNotFound, MailboxSpec, PermanentBackendError, TransientBackendError


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


def test_validation_error__is_readable_with_hints(dimail):
    with pytest.raises(PermanentBackendError) as caught:
        dimail.backend.create_mailbox(dimail.spec(local_part="Bad Name"))

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


def test_list_mailboxes__leaves_out_aliases(dimail):
    address = dimail.backend.create_mailbox(dimail.spec()).address
    dimail.backend.add_alias(address, f"jd@{dimail.domain}")

    listed = dimail.backend.list_mailboxes(dimail.domain)

    assert [m.address for m in listed] == [address]
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


def test_aliases__of_a_domain_dimail_refuses_are_an_auth_error(dimail):
    jane = dimail.backend.create_mailbox(dimail.spec()).address

    with pytest.raises(PermanentBackendError) as caught:
        dimail.backend.add_alias(jane, "jd@not-allowed.test")

    assert caught.value.code == "auth"
    assert "Permission denied" in caught.value.message
    assert not any(token in caught.value.message for token in dimail.emulator.tokens)


def test_domain_settings_and_protocols__are_explained_as_unsupported(dimail):
    rows = {label: (supported, text) for label, supported, text in dimail.backend.capabilities.describe()}

    assert rows["Domain settings"][0] is False and "Open-XChange" in rows["Domain settings"][1]
    assert rows["Protocol switches"][0] is False
    assert rows["Removes aliases"] == (True, "An alias can be taken off a mailbox again.")
