"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from contextlib import contextmanager

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from portal.extensions import db


def _declared_for(dialect: str):
    """Alembic's ``include_object``: leave out what the models declare for another database only
    (``Index(...).ddl_if(dialect=...)``), as ``create_all`` does, and the tables the migrations
    make outside the models (as ``migrations/env.py`` does)."""
    from portal.audit.models import undeclared

    def include(item, name, type_, reflected, _compared_to) -> bool:
        if type_ == "table" and reflected and undeclared(name):
            return False  # SQLite's FTS5 search index (migration 0040), and the tables it keeps
        condition = getattr(item, "_ddl_if", None)
        return reflected or condition is None or condition.dialect in (None, dialect)

    return include


@contextmanager
def _database_of_its_own(database_url: str, smtp_sink, tmp_path):
    """An app on an empty database made for one test (a throwaway PostgreSQL database, dropped
    after it, or an SQLite file), for migrations to run on from the start."""
    import secrets
    from urllib.parse import urlsplit

    from sqlalchemy import create_engine, text

    from portal import create_app
    from tests.conftest import make_settings

    admin = None
    if database_url.startswith("postgresql"):
        name = f"portal_migration_{secrets.token_hex(4)}"
        admin = create_engine(urlsplit(database_url)._replace(path="/postgres").geturl(), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = urlsplit(database_url)._replace(path=f"/{name}").geturl()
    else:
        url = f"sqlite:///{tmp_path / 'migration.sqlite'}"
    try:
        yield create_app(make_settings(url, smtp_sink.url), environ={"PORTAL_TEST_INSTANCE_PATH": str(tmp_path)})
    finally:
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        f"WHERE datname = '{name}'"))
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            admin.dispose()


def test_migrations__upgrade_to_head_matches_the_models(app, migrated):
    """``migrated`` ran ``flask db upgrade`` on an empty database for this run."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "compare_type": True, "include_object": _declared_for(connection.dialect.name)})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_migrations__seed_the_system_roles(migrated):
    from portal.roles.catalogue import SYSTEM_BY_KEY

    assert migrated["system_roles"] == set(SYSTEM_BY_KEY)


def test_migrations_0025_0026__give_grants_their_account_and_memberships_their_address(database_url, smtp_sink,
                                                                                       tmp_path):
    """On a database of its own: grants made before 0025 get their membership's account; the
    database then refuses a grant whose account is not its membership's; memberships get their
    member's address (0026); down and up again keep every grant and membership."""
    import flask_migrate
    import pytest
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import IntegrityError

    with _database_of_its_own(database_url, smtp_sink, tmp_path) as app:
        with app.app_context():
            flask_migrate.upgrade(revision="0024_referencing_indexes")
            run = db.session.execute
            run(text("INSERT INTO accounts (id, name, created_at, self_registration, personal_mailboxes, "
                     "require_two_factor, default_locale, deprovisioned_mailboxes, search_text) VALUES "
                     "(1, 'A', CURRENT_TIMESTAMP, false, false, false, 'en', 'disable', 'a'), "
                     "(2, 'B', CURRENT_TIMESTAMP, false, false, false, 'en', 'disable', 'b')"))
            run(text("INSERT INTO users (id, email, name, is_superadmin, timezone, locale, created_at, is_corporate, "
                     "phone, search_text) VALUES (1, 'a@example.org', 'A', false, 'UTC', '', CURRENT_TIMESTAMP, "
                     "false, '', 'a'), (2, 'b@example.org', 'B', false, 'UTC', '', CURRENT_TIMESTAMP, false, '', 'b')"))
            run(text("INSERT INTO memberships (id, account_id, user_id, created_at) VALUES "
                     "(10, 1, 1, CURRENT_TIMESTAMP), (20, 2, 1, CURRENT_TIMESTAMP), (30, 2, 2, CURRENT_TIMESTAMP)"))
            owner = run(text("SELECT id FROM roles WHERE system_key = 'owner'")).scalar_one()
            run(text("INSERT INTO grants (id, membership_id, role_id, permission, created_at) VALUES "
                     f"(1, 10, {owner}, NULL, CURRENT_TIMESTAMP), (2, 20, {owner}, NULL, CURRENT_TIMESTAMP), "
                     "(3, 30, NULL, 'audit.view', CURRENT_TIMESTAMP)"))
            db.session.commit()

            flask_migrate.upgrade()
            assert run(text("SELECT id, account_id FROM grants ORDER BY id")).all() == [(1, 1), (2, 2), (3, 2)]
            # 0026: each membership gets its member's address.
            assert run(text("SELECT id, email FROM memberships ORDER BY id")).all() == [
                (10, "a@example.org"), (20, "a@example.org"), (30, "b@example.org")]
            with pytest.raises(IntegrityError):  # membership 30 is of account 2
                run(text("INSERT INTO grants (membership_id, account_id, permission, created_at) "
                         "VALUES (30, 1, 'roles.view', CURRENT_TIMESTAMP)"))
            db.session.rollback()
            run(text("DELETE FROM memberships WHERE id = 20"))
            assert run(text("SELECT id FROM grants ORDER BY id")).scalars().all() == [1, 3]
            db.session.commit()

            flask_migrate.downgrade(revision="0024_referencing_indexes")
            assert "account_id" not in {column["name"] for column in inspect(db.engine).get_columns("grants")}
            assert run(text("SELECT id, membership_id FROM grants ORDER BY id")).all() == [(1, 10), (3, 30)]
            db.session.commit()
            flask_migrate.upgrade()
            assert run(text("SELECT id, account_id FROM grants ORDER BY id")).all() == [(1, 1), (3, 2)]
            assert run(text("SELECT id, email FROM memberships ORDER BY id")).all() == [
                (10, "a@example.org"), (30, "b@example.org")]
            db.session.remove()
            db.engine.dispose()


def test_migrations_0027_0028__proven_addresses_and_given_mailbox_passwords(database_url, smtp_sink, tmp_path):
    """0027: a profile confirmed before it counts as proven, unless the audit log shows it onboarded
    through a link (shown to an administrator) and never proven since. 0028: a mailbox whose password
    the audit log shows revealed to someone other than its holder names them."""
    import flask_migrate
    from sqlalchemy import text

    with _database_of_its_own(database_url, smtp_sink, tmp_path) as app:
        with app.app_context():
            flask_migrate.upgrade(revision="0026_membership_email")
            run = db.session.execute
            people = [(1, "confirmed@example.org", True), (2, "onboarded@example.org", True),
                      (3, "onboarded-then-reset@example.org", True), (4, "unconfirmed@example.org", False),
                      (5, "helper@example.org", True)]
            for user_id, email, verified in people:
                run(text("INSERT INTO users (id, email, name, is_superadmin, timezone, locale, created_at, "
                         "is_corporate, phone, search_text, email_verified_at) VALUES (:id, :email, '', false, 'UTC', "
                         "'', CURRENT_TIMESTAMP, false, '', :search, " + ("CURRENT_TIMESTAMP" if verified else "NULL")
                         + ")"), {"id": user_id, "email": email, "search": email})
            run(text("INSERT INTO accounts (id, name, created_at, self_registration, personal_mailboxes, "
                     "require_two_factor, default_locale, deprovisioned_mailboxes, search_text) VALUES "
                     "(1, 'A', CURRENT_TIMESTAMP, false, false, false, 'en', 'disable', 'a')"))
            run(text("INSERT INTO domains (id, account_id, name, connection, status, status_reason, challenge, "
                     "verified_by_hand, created_at, failed_checks, records, backend_checks) VALUES (1, 1, "
                     "'example.org', 'local', 'enabled', '', 'c', false, CURRENT_TIMESTAMP, 0, '[]', '[]')"))
            for mailbox_id, local in ((1, "onboarded"), (2, "confirmed"), (3, "team")):
                run(text("INSERT INTO mailboxes (id, account_id, domain_id, local_part, address, kind, first_name, "
                         "last_name, display_name, status, status_reason, want_active, created_at, updated_at) VALUES "
                         "(:id, 1, 1, :local, :address, 'shared', '', '', '', 'enabled', '', true, CURRENT_TIMESTAMP, "
                         "CURRENT_TIMESTAMP)"), {"id": mailbox_id, "local": local, "address": f"{local}@example.org"})
            events = [("user.onboarded", 2, "user", 2), ("user.onboarded", 3, "user", 3),
                      ("user.reset_password", 3, "user", 3),
                      # Mailbox 1: the helper saw its password last; 2: its holder did, after the helper.
                      ("mailbox.reveal_password", 1, "mailbox", 1), ("mailbox.reveal_password", 5, "mailbox", 1),
                      ("mailbox.reveal_password", 5, "mailbox", 2), ("mailbox.reveal_password", 1, "mailbox", 2)]
            for number, (action, actor, target_type, target) in enumerate(events):
                run(text("INSERT INTO audit_events (at, actor_id, actor_label, action, target_type, target_id, "
                         "target_label, source, ip, user_agent, details, family) VALUES (:at, :actor, '', :action, "
                         ":type, :target, '', 'web', '', '', '{}', '')"),
                    {"at": f"2026-01-01 00:00:{number:02d}", "actor": actor, "action": action, "type": target_type,
                     "target": str(target)})
            db.session.commit()

            flask_migrate.upgrade()
            proven = dict(run(text("SELECT id, address_proven_at IS NOT NULL FROM users")).all())
            assert proven == {1: True, 2: False, 3: True, 4: False, 5: True}
            given = dict(run(text("SELECT id, password_given_to_id FROM mailboxes")).all())
            # Mailbox 2 is confirmed@'s own: its holder revealing it gave it to nobody.
            assert given == {1: 5, 2: None, 3: None}
            db.session.remove()
            db.engine.dispose()


def test_migration_0032__keeps_one_of_each_grant_and_refuses_another(database_url, smtp_sink, tmp_path):
    """Copies of a grant (two requests granting the same at once) are removed, the oldest kept; the
    database then refuses a copy, empty columns compared as equal; down and up keep every grant."""
    import flask_migrate
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from portal.accounts.models import Account, Membership
    from portal.domains.models import Domain

    with _database_of_its_own(database_url, smtp_sink, tmp_path) as app:
        with app.app_context():
            flask_migrate.upgrade(revision="0031_mailboxes_status_updated")
            run = db.session.execute
            db.session.add(Account(id=1, name="A"))
            # (Written out: the model has columns of later migrations.)
            run(text("INSERT INTO users (id, email, name, is_superadmin, timezone, locale, created_at, is_corporate, "
                     "phone, search_text) VALUES (1, 'a@example.org', 'A', false, 'UTC', '', CURRENT_TIMESTAMP, "
                     "false, '', 'a')"))
            db.session.flush()
            db.session.add_all([Membership(id=10, account_id=1, user_id=1, email="a@example.org"),
                                Domain(id=5, account_id=1, name="example.org", connection="local", status="enabled")])
            db.session.flush()
            run(text("INSERT INTO mailboxes (id, account_id, domain_id, local_part, address, kind, first_name, "
                     "last_name, display_name, status, status_reason, want_active, password_lost, backend_admin, "
                     "created_at, updated_at, search_text) VALUES (7, 1, 5, 'box', 'box@example.org', 'shared', '', "
                     "'', '', 'enabled', '', true, false, false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'box')"))
            db.session.flush()
            owner = run(text("SELECT id FROM roles WHERE system_key = 'owner'")).scalar_one()
            keeper = run(text("SELECT id FROM roles WHERE system_key = 'mailbox_owner'")).scalar_one()
            rows = [(1, owner, None, None), (2, owner, None, None), (3, None, "audit.view", None),
                    (4, None, "audit.view", None), (5, None, "audit.view", 7), (6, keeper, None, 7),
                    (7, keeper, None, 7), (8, None, "roles.view", None)]
            for grant_id, role_id, permission, mailbox_id in rows:
                run(text("INSERT INTO grants (id, membership_id, account_id, role_id, permission, mailbox_id, "
                         "created_at) VALUES (:id, 10, 1, :role, :permission, :mailbox, CURRENT_TIMESTAMP)"),
                    {"id": grant_id, "role": role_id, "permission": permission, "mailbox": mailbox_id})
            db.session.commit()

            flask_migrate.upgrade()
            assert run(text("SELECT id FROM grants ORDER BY id")).scalars().all() == [1, 3, 5, 6, 8]
            for role_id, permission, mailbox_id in ((owner, None, None), (None, "audit.view", None),
                                                    (None, "audit.view", 7), (keeper, None, 7)):
                with pytest.raises(IntegrityError, match="uq_grants_once"):
                    run(text("INSERT INTO grants (id, membership_id, account_id, role_id, permission, mailbox_id, "
                             "created_at) VALUES (20, 10, 1, :role, :permission, :mailbox, CURRENT_TIMESTAMP)"),
                        {"role": role_id, "permission": permission, "mailbox": mailbox_id})
                db.session.rollback()
            # What differs in one column is another grant.
            run(text("INSERT INTO grants (id, membership_id, account_id, role_id, mailbox_id, created_at) "
                     "VALUES (21, 10, 1, :role, NULL, CURRENT_TIMESTAMP)"), {"role": keeper})
            db.session.commit()

            flask_migrate.downgrade(revision="0031_mailboxes_status_updated")
            flask_migrate.upgrade()
            assert len(run(text("SELECT id FROM grants")).all()) == 6
            db.session.remove()
            db.engine.dispose()


def test_migration_0042__tokens_get_their_name_and_prefix_case_folded_and_lose_them_going_down(database_url,
                                                                                               smtp_sink, tmp_path):
    import flask_migrate
    from sqlalchemy import text

    from portal.accounts.models import Account

    with _database_of_its_own(database_url, smtp_sink, tmp_path) as app:
        with app.app_context():
            flask_migrate.upgrade(revision="0041_users_corporate_index")
            run = db.session.execute
            db.session.add(Account(id=1, name="A"))
            db.session.flush()
            for token_id, name in ((1, "Équipe ÖLÇÜ"), (2, "nightly")):
                run(text("INSERT INTO api_tokens (id, account_id, name, token_hash, prefix, scopes, allowed_networks, "
                         "created_at, last_used_ip, window_count) VALUES (:id, 1, :name, :hash, 'mpt_AbC', '[]', '[]', "
                         "CURRENT_TIMESTAMP, '', 0)"), {"id": token_id, "name": name, "hash": str(token_id) * 64})
            db.session.commit()
            flask_migrate.upgrade(revision="0042_token_search")
            assert run(text("SELECT search_text FROM api_tokens ORDER BY id")).scalars().all() == \
                ["équipe ölçü\nmpt_abc", "nightly\nmpt_abc"]
            db.session.commit()
            flask_migrate.downgrade(revision="0041_users_corporate_index")
            assert "search_text" not in {column["name"] for column in db.inspect(db.engine).get_columns("api_tokens")}
            db.session.remove()
            db.engine.dispose()
