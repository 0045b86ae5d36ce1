"""Alembic environment: the portal's models are the target; the app's engine is used."""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

config = context.config
if config.config_file_name and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

target_db = current_app.extensions["migrate"].db
config.set_main_option(
    "sqlalchemy.url", target_db.engine.url.render_as_string(hide_password=False).replace("%", "%%"))


def run_migrations_offline():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_db.metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    def skip_empty(context_, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    def include_object(item, name, type_, reflected, compare_to):
        # SQLite's FTS5 search index of the audit log (0040) and the tables it keeps are made by
        # the migrations, not declared by the models: autogenerate must not drop them.
        from portal.audit.models import undeclared

        return not (type_ == "table" and reflected and undeclared(name))

    options = dict(current_app.extensions["migrate"].configure_args)
    options.setdefault("process_revision_directives", skip_empty)
    options.setdefault("include_object", include_object)
    with target_db.engine.connect() as connection:
        # What a migration writes does not make kept pages stale (the processes are restarted after
        # it), and the data generation's table may not be there yet (portal.web.pagecache).
        from portal.web.pagecache import NOT_COUNTED

        connection.info[NOT_COUNTED] = True
        context.configure(connection=connection, target_metadata=target_db.metadata, **options)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
