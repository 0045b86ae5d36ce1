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
