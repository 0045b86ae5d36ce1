"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from portal.extensions import db


def _declared_for(dialect: str):
    """Alembic's ``include_object``: leave out what the models declare for another database only
    (``Index(...).ddl_if(dialect=...)``), as ``create_all`` does."""
    def include(item, _name, _type, reflected, _compared_to) -> bool:
        condition = getattr(item, "_ddl_if", None)
        return reflected or condition is None or condition.dialect in (None, dialect)

    return include


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
    import secrets
    from urllib.parse import urlsplit

    import flask_migrate
    import pytest
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.exc import IntegrityError

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
    app = create_app(make_settings(url, smtp_sink.url), environ={"PORTAL_TEST_INSTANCE_PATH": str(tmp_path)})
    try:
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
    finally:
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        f"WHERE datname = '{name}'"))
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            admin.dispose()
