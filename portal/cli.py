"""``flask --app app portal ...`` commands."""

from __future__ import annotations

import signal

import click
from flask import current_app
from flask.cli import AppGroup

from portal.audit.services import SOURCE_CLI
from portal.extensions import db

portal_cli = AppGroup("portal", help="Operate the mail portal.")


@portal_cli.command("create-admin")
@click.option("--email", prompt=True)
@click.option("--name", default="", prompt="Name (optional)", show_default=False)
@click.password_option()
def create_admin(email: str, name: str, password: str) -> None:
    """Create an instance superadmin."""
    from portal.auth.services import AuthError, create_superadmin

    try:
        user = create_superadmin(email, name, password, source=SOURCE_CLI)
    except AuthError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Superadmin {user.email} created.")


@portal_cli.command("worker")
@click.option("--concurrency", type=int, default=None, help="Jobs run at once (default PORTAL_WORKER_CONCURRENCY).")
def worker(concurrency: int | None) -> None:
    """Run background jobs until stopped (SIGTERM or Ctrl-C finishes running jobs first)."""
    from portal.jobs.worker import Worker

    runner = Worker(current_app._get_current_object(), concurrency=concurrency)
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    click.echo(f"Worker {runner.name}: {runner.concurrency} slots. Stop with Ctrl-C.")
    try:
        runner.run_forever()
    except KeyboardInterrupt:
        runner.stop()


@portal_cli.command("sync-roles")
def sync_roles() -> None:
    """Create or update the system roles' rows (migrations do this too)."""
    from portal.roles.services import ensure_system_roles

    ensure_system_roles()
    db.session.commit()
    click.echo("System roles are in place.")
