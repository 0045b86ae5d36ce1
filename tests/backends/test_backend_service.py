"""What pages learn of a connection: its adapter's declared capabilities, narrowed by what the worker
discovered on the server (backend_states), read once per request."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from portal.backends import service as backends
from portal.backends.dimail import DimailBackend
from portal.backends.models import BackendState
from portal.domains.models import ENABLED, Domain
from portal.extensions import db
from tests.emulated import dimail_environ
from tests.servers.emu_dimail import DimailEmulator


@pytest.fixture
def public():
    with DimailEmulator(mode="public") as emulator:
        yield emulator


@pytest.fixture
def app_environ(public):
    return dimail_environ(public, "corp")


@pytest.fixture
def statements(app):
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    yield seen
    event.remove(db.engine, "before_cursor_execute", count)


def test_capabilities__are_the_declared_ones_until_the_worker_learns_otherwise(app):
    assert backends.capabilities("corp") == DimailBackend.capabilities


def test_discovered__records_what_the_server_offers_and_pages_read_it(app, account, public):
    domain = Domain(account_id=account.id, name="corp.example", connection="corp", status=ENABLED)

    backends.discovered(domain)
    db.session.commit()

    state = db.session.get(BackendState, "corp")
    assert state.capabilities["domain_check"] is False and state.capabilities["mailbox_disable"] is False
    capabilities = backends.capabilities("corp")
    assert not capabilities.domain_check and not capabilities.can_reset_password
    assert capabilities.mailbox_create and capabilities.mailbox_aliases
    assert capabilities.notes["domain_check"].startswith("This dimail has no domain check")


def test_discovered__an_upgraded_server_gets_its_capabilities_back(app, account, public):
    domain = Domain(account_id=account.id, name="corp.example", connection="corp", status=ENABLED)
    backends.discovered(domain)
    db.session.commit()
    upgraded = DimailEmulator(mode="current")
    public.routes, public.mode, public.openapi = upgraded.routes, "current", upgraded.openapi
    backends.adapter("corp")._offer = None  # a new connection, as after a restart

    backends.discovered(domain)
    db.session.commit()

    assert backends.capabilities("corp") == DimailBackend.capabilities
    assert backends.capabilities("corp").notes == DimailBackend.capabilities.notes


def test_capabilities__a_record_from_another_version_never_breaks_a_page(app):
    db.session.add(BackendState(connection="corp", capabilities={"mailbox_disable": False, "teleport": True},
                                notes={"teleport": "Beam me up.", "mailbox_disable": "Not here."}))
    db.session.commit()

    capabilities = backends.capabilities("corp")

    assert capabilities.mailbox_disable is False and capabilities.domain_check is True
    assert capabilities.notes["mailbox_disable"] == "Not here." and "teleport" not in capabilities.notes


def test_capabilities__one_query_per_request_however_often_it_is_asked(app, statements):
    with app.test_request_context("/"):
        statements.clear()
        first, again = backends.capabilities("corp"), backends.capabilities("corp")
        backends.capabilities("local")

    assert first == again
    assert sum("backend_states" in statement for statement in statements) == 1


def test_capabilities__the_domain_page_reads_them_with_one_query(app, client, auth, owner, account, statements):
    domain = Domain(account_id=account.id, name="corp.example", connection="corp", status=ENABLED)
    db.session.add(domain)
    db.session.add(BackendState(connection="corp", capabilities={"domain_check": False}, notes={}))
    db.session.commit()
    auth.login("owner@example.org")
    statements.clear()

    page = client.get(f"/accounts/{account.id}/domains/{domain.id}")

    assert page.status_code == 200
    assert sum("backend_states" in statement for statement in statements) == 1
