"""Mail-in-a-Box quirks: form bodies only, text sent as text/html, archive on remove
(when the user has mail), the box's address rules, quota strings."""

from __future__ import annotations

import pytest
import requests

from portal.backends.base import BackendNotFound, PermanentBackendError, TransientBackendError
from portal.backends.mailinabox import (GIB, MIB, NOT_LOWERCASE, RESERVED, RESERVED_ALIAS, MailInABoxBackend,
                                        quota_bytes_from_text, quota_text)


def _posts(emulator, path: str) -> list:
    return [r for r in emulator.requests if r.method == "POST" and r.path == f"/admin/mail/{path}"]


def test_bodies__are_form_encoded_because_the_box_reads_json_as_empty(mailinabox):
    mailinabox.backend.create_mailbox(mailinabox.spec(quota_bytes=GIB, admin=True))

    (request,) = _posts(mailinabox.emulator, "users/add")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form()["email"] == f"jane.doe@{mailinabox.domain}"
    assert request.form()["quota"] == "1G"
    assert request.form()["privileges"] == "admin"
    as_json = requests.post(
        mailinabox.emulator.url + "/admin/mail/users/add",
        json={"email": "x@example.test", "password": "long-enough-pw"},
        auth=("admin@box.test", "miab-admin-secret"),
        timeout=1,
    )
    assert (as_json.status_code, as_json.text) == (400, "No email address provided.")


def test_remove__archives_and_adding_again_restores(mailinabox):
    address = mailinabox.backend.create_mailbox(mailinabox.spec()).address
    mailinabox.emulator.deliver(address)

    mailinabox.backend.delete_mailbox(address)
    archived = mailinabox.backend.get_mailbox(address)
    restored = mailinabox.backend.create_mailbox(mailinabox.spec())

    assert archived.active is False and archived.extra["archived"] is True
    assert mailinabox.emulator.users[address]["status"] == "active"
    assert restored.created is True
    assert mailinabox.backend.get_mailbox(address).active is True
    assert [m.address for m in mailinabox.backend.list_mailboxes(mailinabox.domain)] == [address]


def test_existing_user__is_found_not_recreated(mailinabox):
    mailinabox.backend.create_mailbox(mailinabox.spec())

    retry = mailinabox.backend.create_mailbox(mailinabox.spec())

    assert retry.created is False
    assert _posts(mailinabox.emulator, "users/add")[-1].form()["email"] == retry.address


def test_refused_credentials__are_permanent_and_never_quoted(mailinabox):
    backend = mailinabox.open(password="wrong-box-password")

    with pytest.raises(PermanentBackendError) as caught:
        backend.create_mailbox(mailinabox.spec())

    assert caught.value.code == "auth"
    assert "Incorrect email address or password." in caught.value.message
    assert "wrong-box-password" not in str(caught.value) + repr(caught.value) + repr(backend)


def test_not_a_user__is_not_found(mailinabox):
    with pytest.raises(BackendNotFound) as caught:
        mailinabox.backend.reset_password(f"ghost@{mailinabox.domain}")

    assert "That's not a user" in caught.value.message


def test_reset_password__sets_a_generated_password(mailinabox):
    address = mailinabox.backend.create_mailbox(mailinabox.spec()).address

    password = mailinabox.backend.reset_password(address)

    assert mailinabox.emulator.users[address]["password"] == password
    assert len(password) >= 16


def test_set_admin__adds_and_removes_the_admin_privilege(mailinabox):
    address = mailinabox.backend.create_mailbox(mailinabox.spec()).address

    mailinabox.backend.set_admin(address, True)
    assert mailinabox.emulator.users[address]["privileges"] == ["admin"]
    mailinabox.backend.set_admin(address, False)

    assert mailinabox.emulator.users[address]["privileges"] == []
    assert _posts(mailinabox.emulator, "users/privileges/remove")[0].form() == {
        "email": address, "privilege": "admin"}


def test_add_alias__refuses_an_alias_that_forwards_elsewhere(mailinabox):
    jane = mailinabox.backend.create_mailbox(mailinabox.spec()).address
    john = mailinabox.backend.create_mailbox(mailinabox.spec("john")).address
    mailinabox.backend.add_alias(jane, f"team@{mailinabox.domain}")

    with pytest.raises(PermanentBackendError) as caught:
        mailinabox.backend.add_alias(john, f"team@{mailinabox.domain}")

    assert "forwards elsewhere" in caught.value.message
    assert mailinabox.emulator.forwards_to(f"team@{mailinabox.domain}") == [jane]


def test_required_records__point_the_mx_at_the_box(mailinabox):
    assert mailinabox.backend.required_records("example.test")[0].value == "10 127.0.0.1."
    backend = mailinabox.open(mx_host="box.example.net")

    assert backend.required_records("example.test")[0].value == "10 box.example.net."


@pytest.mark.parametrize(("quota_bytes", "text"), [
    (None, "0"),
    (5 * GIB, "5G"),
    (1536 * MIB, "1536M"),
    (GIB + MIB, "1025M"),
    (MIB + 1, "2M"),
    (1, "1M"),
])
def test_quota_text__writes_exact_units_and_rounds_up_to_mebibytes(quota_bytes, text):
    assert quota_text(quota_bytes) == text


@pytest.mark.parametrize(("text", "quota_bytes"), [
    ("0", None),
    ("5G", 5 * GIB),
    ("5g", 5 * GIB),
    ("1536M", 1536 * MIB),
    ("1048576", 1048576),
])
def test_quota_bytes_from_text__reads_the_boxs_units(text, quota_bytes):
    assert quota_bytes_from_text(text) == quota_bytes


def test_quota_bytes_from_text__refuses_anything_else():
    with pytest.raises(ValueError):
        quota_bytes_from_text("1.5G")


# -- archive -------------------------------------------------------------------------


def test_create_mailbox__on_an_archived_address_restores_its_mail(mailinabox):
    first = mailinabox.backend.create_mailbox(mailinabox.spec())
    mailinabox.emulator.deliver(first.address, 3)
    mailinabox.backend.delete_mailbox(first.address)
    assert mailinabox.backend.get_mailbox(first.address).extra["archived"] is True

    restored = mailinabox.backend.create_mailbox(mailinabox.spec(quota_bytes=2 * GIB))

    assert restored.created is True
    assert restored.generated_password and restored.generated_password != first.generated_password
    assert mailinabox.emulator.users[first.address]["password"] == restored.generated_password
    assert mailinabox.emulator.folders[first.address] == 3
    mailbox = mailinabox.backend.get_mailbox(first.address)
    assert (mailbox.active, mailbox.extra["archived"], mailbox.quota_bytes) == (True, False, 2 * GIB)
    assert mailinabox.emulator.creations[first.address] == 2


# -- aliases -------------------------------------------------------------------------


def test_remove_alias__posts_the_address_form_encoded(mailinabox):
    address = mailinabox.backend.create_mailbox(mailinabox.spec()).address
    mailinabox.backend.add_alias(address, f"jd@{mailinabox.domain}")

    mailinabox.backend.remove_alias(address, f"jd@{mailinabox.domain}")
    mailinabox.backend.remove_alias(address, f"jd@{mailinabox.domain}")

    (request,) = _posts(mailinabox.emulator, "aliases/remove")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form() == {"address": f"jd@{mailinabox.domain}"}
    assert f"jd@{mailinabox.domain}" not in mailinabox.emulator.aliases


def test_remove_alias__from_a_shared_alias_keeps_the_others_and_the_senders(mailinabox):
    jane = mailinabox.backend.create_mailbox(mailinabox.spec()).address
    john = mailinabox.backend.create_mailbox(mailinabox.spec("john")).address
    mailinabox.emulator.aliases[f"team@{mailinabox.domain}"] = {"forwards_to": [jane, john],
                                                              "permitted_senders": [john]}
    assert mailinabox.backend.list_aliases(jane) == [f"team@{mailinabox.domain}"]

    mailinabox.backend.remove_alias(jane, f"team@{mailinabox.domain}")

    assert _posts(mailinabox.emulator, "aliases/add")[-1].form() == {
        "address": f"team@{mailinabox.domain}", "forwards_to": john, "permitted_senders": john,
        "update_if_exists": "1"}
    assert mailinabox.emulator.aliases[f"team@{mailinabox.domain}"] == {"forwards_to": [john],
                                                                      "permitted_senders": [john]}
    assert mailinabox.backend.list_aliases(jane) == []


def test_list_aliases__leaves_out_catch_alls(mailinabox):
    address = mailinabox.backend.create_mailbox(mailinabox.spec()).address
    mailinabox.backend.set_domain_settings(mailinabox.domain, {"catch_all": address})

    assert mailinabox.backend.list_aliases(address) == []


# -- domain settings -------------------------------------------------------------------


def test_catch_all__is_the_alias_at_domain(mailinabox):
    address = mailinabox.backend.create_mailbox(mailinabox.spec()).address
    john = mailinabox.backend.create_mailbox(mailinabox.spec("john")).address

    mailinabox.backend.set_domain_settings(mailinabox.domain, {"catch_all": address})
    mailinabox.backend.set_domain_settings(mailinabox.domain, {"catch_all": address})
    mailinabox.backend.set_domain_settings(mailinabox.domain, {"catch_all": john})
    moved = mailinabox.emulator.forwards_to(f"@{mailinabox.domain}")
    mailinabox.backend.set_domain_settings(mailinabox.domain, {"catch_all": ""})

    assert moved == [john]
    assert [r.form()["address"] for r in _posts(mailinabox.emulator, "aliases/add")] == [
        f"@{mailinabox.domain}"] * 2
    assert f"@{mailinabox.domain}" not in mailinabox.emulator.aliases
    assert mailinabox.backend.get_domain_settings(mailinabox.domain) == {"catch_all": None, "domain_aliases": []}


def test_domain_aliases__forward_at_other_to_at_domain(mailinabox):
    mailinabox.backend.set_domain_settings(mailinabox.domain, {"domain_aliases": ["old-name.net", "typo.net"]})
    mailinabox.backend.set_domain_settings(mailinabox.domain, {"domain_aliases": ["old-name.net", "brand.net"]})

    assert {alias: entry["forwards_to"] for alias, entry in mailinabox.emulator.aliases.items()
            if alias.startswith("@")} == {
        "@old-name.net": [f"@{mailinabox.domain}"], "@brand.net": [f"@{mailinabox.domain}"]}
    assert mailinabox.backend.get_domain_settings(mailinabox.domain)["domain_aliases"] == [
        "brand.net", "old-name.net"]


def test_domain_aliases__refuse_a_name_that_already_forwards_elsewhere(mailinabox):
    mailinabox.emulator.aliases["@taken.net"] = {"forwards_to": ["@other.net"], "permitted_senders": None}

    with pytest.raises(PermanentBackendError) as caught:
        mailinabox.backend.set_domain_settings(mailinabox.domain, {"domain_aliases": ["taken.net"]})

    assert caught.value.hints == {"domain_aliases": "taken.net already forward elsewhere"}
    assert mailinabox.emulator.forwards_to("@taken.net") == ["@other.net"]


def test_catch_all__of_a_domain_that_is_itself_an_alias_is_refused(mailinabox):
    mailinabox.emulator.aliases[f"@{mailinabox.domain}"] = {"forwards_to": ["@main.net"],
                                                          "permitted_senders": None}

    with pytest.raises(PermanentBackendError) as caught:
        mailinabox.backend.set_domain_settings(mailinabox.domain, {"catch_all": f"jane@{mailinabox.domain}"})

    assert caught.value.hints == {"catch_all": f"{mailinabox.domain} is a domain alias of main.net"}
    assert mailinabox.backend.get_domain_settings(mailinabox.domain)["catch_all"] is None


def test_domain_settings__are_only_the_catch_all_and_domain_aliases():
    assert [s.key for s in MailInABoxBackend.domain_settings()] == ["catch_all", "domain_aliases"]


# -- what the real box does (reference/OBSERVED.md) --------------------------------------


def test_messages__sent_as_text_html_are_the_boxs_own_words(mailinabox):
    mailinabox.backend.create_mailbox(mailinabox.spec())
    (refused,) = [r for r in _posts(mailinabox.emulator, "users/add")]
    answer = requests.post(mailinabox.emulator.url + "/admin/mail/users/add", data=refused.form(),
                           auth=("admin@box.test", "miab-admin-secret"), timeout=1)
    assert answer.headers["content-type"] == "text/html; charset=utf-8"

    with pytest.raises(PermanentBackendError) as caught:
        mailinabox.backend.set_quota(f"ghost@{mailinabox.domain}", GIB)

    assert caught.value.message == f"Mail-in-a-Box: That's not a user (ghost@{mailinabox.domain})."
    assert answer.text == "User already exists."


def test_delete_mailbox__a_user_the_box_no_longer_has_counts_as_deleted(mailinabox):
    address = mailinabox.backend.create_mailbox(mailinabox.spec()).address
    requests.post(mailinabox.emulator.url + "/admin/mail/users/remove", data={"email": address},
                  auth=("admin@box.test", "miab-admin-secret"), timeout=1)

    mailinabox.backend.delete_mailbox(address)

    (_, again) = _posts(mailinabox.emulator, "users/remove")
    assert again.form() == {"email": address}
    assert mailinabox.backend.get_mailbox(address).extra["archived"] is True


def test_delete_mailbox__a_new_user_already_has_a_folder_so_removal_archives(mailinabox):
    # A real box makes the folder when it adds the user (its quota recalculation opens it).
    address = mailinabox.backend.create_mailbox(mailinabox.spec()).address

    mailinabox.backend.delete_mailbox(address)

    archived = mailinabox.backend.get_mailbox(address)
    assert (archived.active, archived.extra["archived"]) == (False, True)


def test_delete_mailbox__a_user_without_a_folder_is_gone_not_archived(mailinabox):
    mailinabox.emulator.folders_on_creation = False  # a user that never received mail, as once observed
    address = mailinabox.backend.create_mailbox(mailinabox.spec()).address

    mailinabox.backend.delete_mailbox(address)

    assert mailinabox.backend.get_mailbox(address) is None
    assert mailinabox.backend.list_mailboxes(mailinabox.domain) == []


def test_html_page__is_reported_as_a_page_not_quoted(mailinabox):
    backend = mailinabox.open(url=mailinabox.emulator.url + "/admin/mail/users")  # every path gets a slash more

    with pytest.raises(PermanentBackendError) as caught:
        backend.get_mailbox(f"jane@{mailinabox.domain}")

    assert caught.value.message == "Mail-in-a-Box rejected the request (HTTP 404): an HTML page"


def test_trailing_slash__on_an_api_path_is_the_boxs_html_404_page(mailinabox):
    answer = requests.get(mailinabox.emulator.url + "/admin/mail/users/", params={"format": "json"},
                          auth=("admin@box.test", "miab-admin-secret"), timeout=1)

    assert answer.status_code == 404
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.text.startswith("<!doctype html>")


@pytest.mark.parametrize(("local_part", "domain", "message"), [
    ("Jane", "example.org", NOT_LOWERCASE),
    ("jane+tag", "example.org", NOT_LOWERCASE),
    ("jane", "example.test", "Invalid email address."),
    ("jane", "box.localhost", "Invalid email address."),
    ("jane..doe", "example.org", "Invalid email address."),
    ("postmaster", "example.org", RESERVED),
    ("admin", "example.org", RESERVED),
    ("administrator", "example.org", RESERVED),
    ("hostmaster", "example.org", RESERVED),
    ("webmaster", "example.org", RESERVED),
    ("abuse", "example.org", RESERVED),
    ("abuse+reports", "example.org", NOT_LOWERCASE),
])
def test_address_problem__is_the_boxs_own_refusal(mailinabox, local_part, domain, message):
    problem = MailInABoxBackend.address_problem(local_part, domain)
    answer = requests.post(mailinabox.emulator.url + "/admin/mail/users/add",
                           data={"email": f"{local_part}@{domain}", "password": "long-enough-pw"},
                           auth=("admin@box.test", "miab-admin-secret"), timeout=1)

    assert problem == message
    assert (answer.status_code, answer.text) == (400, message)


def test_address_problem__accepts_what_the_box_accepts():
    for local_part in ("jane.doe", "j_doe", "jane-doe", "admins", "postmaster2"):
        assert MailInABoxBackend.address_problem(local_part, "example.org") is None


def test_create_mailbox__a_reserved_address_is_refused_before_any_call(mailinabox):
    requests_before = len(mailinabox.emulator.requests)

    with pytest.raises(PermanentBackendError) as caught:
        mailinabox.backend.create_mailbox(mailinabox.spec("postmaster"))

    assert caught.value.message == f"Mail-in-a-Box: {RESERVED}"
    assert len(mailinabox.emulator.requests) == requests_before


def test_alias_problem__the_domain_control_aliases_are_for_the_boxs_administrators(mailinabox):
    jane = mailinabox.backend.create_mailbox(mailinabox.spec()).address
    answer = requests.post(mailinabox.emulator.url + "/admin/mail/aliases/add",
                           data={"address": f"abuse@{mailinabox.domain}", "forwards_to": jane},
                           auth=("admin@box.test", "miab-admin-secret"), timeout=1)

    assert MailInABoxBackend.alias_problem("abuse", mailinabox.domain) == RESERVED_ALIAS == answer.text
    assert MailInABoxBackend.alias_problem("Sales", mailinabox.domain) is None  # the box lower-cases aliases
    assert MailInABoxBackend.alias_problem("sales", "example.test") == "Invalid email address (sales@example.test)."
    with pytest.raises(PermanentBackendError):
        mailinabox.backend.add_alias(jane, f"abuse@{mailinabox.domain}")


def test_set_quota__a_decimal_quota_is_refused_by_the_box_in_its_words(mailinabox):
    address = mailinabox.backend.create_mailbox(mailinabox.spec()).address

    answer = requests.post(mailinabox.emulator.url + "/admin/mail/users/quota", data={"email": address,
                                                                                       "quota": "1.5G"},
                           auth=("admin@box.test", "miab-admin-secret"), timeout=1)
    mailinabox.backend.set_quota(address, 1536 * MIB)

    assert (answer.status_code, answer.text) == (400, "Quotas cannot contain spaces, commas, or decimal points.")
    assert _posts(mailinabox.emulator, "users/quota")[-1].form()["quota"] == "1536M"


def test_aliases__the_boxs_automatic_aliases_are_listed_as_auto_and_belong_to_no_mailbox(mailinabox):
    address = mailinabox.backend.create_mailbox(mailinabox.spec()).address
    listed = requests.get(mailinabox.emulator.url + "/admin/mail/aliases", params={"format": "json"},
                          auth=("admin@box.test", "miab-admin-secret"), timeout=1).json()
    automatic = sorted(entry["address"] for group in listed for entry in group["aliases"] if entry["auto"])

    assert automatic == sorted([f"{local}@{domain}" for local in ("abuse", "admin", "postmaster")
                                for domain in ("box.test", mailinabox.domain)] + ["hostmaster@box.test"])
    assert all("required" not in entry for group in listed for entry in group["aliases"])
    assert mailinabox.backend.list_aliases(address) == []
    # The box's automatic aliases all forward to administrator@, itself an alias of the first admin.
    assert mailinabox.backend.list_aliases("admin@box.test") == ["administrator@box.test"]
    assert mailinabox.backend.get_domain_settings(mailinabox.domain) == {"catch_all": None, "domain_aliases": []}


def test_refused_credentials__say_why_with_the_realm_and_a_reason(mailinabox):
    plain = requests.get(mailinabox.emulator.url + "/admin/mail/users", auth=("admin@box.test", "nope"), timeout=1)
    as_json = requests.get(mailinabox.emulator.url + "/admin/mail/users", auth=("admin@box.test", "nope"),
                           headers={"Accept": "application/json"}, timeout=1)
    anonymous = requests.get(mailinabox.emulator.url + "/admin/mail/users", timeout=1)

    assert (plain.status_code, plain.text) == (401, "Incorrect email address or password.\n")
    assert plain.headers["WWW-Authenticate"] == 'Basic realm="Mail-in-a-Box Management Server"'
    assert plain.headers["X-Reason"] == "Incorrect email address or password."
    assert as_json.json() == {"status": "error", "reason": "Incorrect email address or password."}
    assert anonymous.text == "Authorization header invalid.\n"


def test_success_lines__about_dns_come_only_when_the_mail_domains_change(mailinabox):
    first = requests.post(mailinabox.emulator.url + "/admin/mail/users/add",
                          data={"email": f"a@{mailinabox.domain}", "password": "long-enough-pw"},
                          auth=("admin@box.test", "miab-admin-secret"), timeout=1)
    second = requests.post(mailinabox.emulator.url + "/admin/mail/users/add",
                           data={"email": f"b@{mailinabox.domain}", "password": "long-enough-pw"},
                           auth=("admin@box.test", "miab-admin-secret"), timeout=1)

    assert first.text.startswith("mail user added\nupdated DNS: ")
    assert second.text == "mail user added\n"


def test_server_error__from_the_proxy_is_transient_and_the_page_is_not_quoted(mailinabox):
    mailinabox.emulator.faults.fail_5xx(1)

    with pytest.raises(TransientBackendError) as caught:
        mailinabox.backend.list_mailboxes(mailinabox.domain)

    assert caught.value.message == "Mail-in-a-Box failed with HTTP 503: an HTML page"
