"""``flask --app app portal ...`` commands."""

from __future__ import annotations

import signal

import click
from flask import current_app
from flask.cli import AppGroup

from portal.audit.services import SOURCE_CLI
from portal.config import MOST_WORKER_SLOTS, most_worker_slots
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
@click.option("--concurrency", type=click.IntRange(1, MOST_WORKER_SLOTS), default=None,
              help="Jobs run at once (default PORTAL_WORKER_CONCURRENCY).")
def worker(concurrency: int | None) -> None:
    """Run background jobs until stopped (SIGTERM or Ctrl-C finishes running jobs first)."""
    from portal.jobs.worker import Worker

    settings = current_app.config["PORTAL"]
    if concurrency is not None and concurrency > most_worker_slots(settings):
        # Its slots would wait for a connection, and past the pool's timeout fail their jobs.
        raise click.BadParameter(
            f"{concurrency} slots need more database connections than this process keeps: "
            f"PORTAL_WORKER_CONCURRENCY={settings['WORKER_CONCURRENCY']} sizes its pool for at most "
            f"{most_worker_slots(settings)}. Set PORTAL_WORKER_CONCURRENCY={concurrency} instead.",
            param_hint="--concurrency")
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


@portal_cli.command("reset-two-factor")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reset_two_factor(email: str, yes: bool) -> None:
    """Remove one person's second factors (authenticator app, passkeys, recovery codes) and end
    their sessions, for someone who lost every factor; they are told by e-mail."""
    from portal.auth.services import find_user
    from portal.security.services import reset_by_operator

    user = find_user(email.strip())
    if user is None:
        raise click.ClickException(f"No profile has the address {email.strip()}.")
    if not yes:
        click.confirm(f"Reset the two-factor sign-in of {user.email} and end their sessions?", abort=True)
    removed = reset_by_operator(user)
    db.session.commit()
    click.echo(f"Two-factor sign-in of {user.email} reset: {removed['app']} authenticator app, "
               f"{removed['passkeys']} passkey(s), {removed['recovery_codes']} recovery code(s) removed. "
               "They log in with their password alone and set it up again.")


@portal_cli.command("release-mailbox")
@click.argument("address")
@click.option("--connection", default=None, help="The backend connection (needed when several remember it).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def release_mailbox(address: str, connection: str | None, yes: bool) -> None:
    """Let the account that now holds its domain adopt, or create, a mailbox a deleted account left
    on its backend with its mail (for instance when that organisation handed its mail over)."""
    from portal.mailboxes.models import ReleasedMailbox

    query = db.select(ReleasedMailbox).where(ReleasedMailbox.address == address.strip().lower())
    if connection:
        query = query.where(ReleasedMailbox.connection == connection)
    found = db.session.execute(query).scalars().all()
    if not found:
        raise click.ClickException(f"No deleted account left {address.strip()} on a backend.")
    if len(found) > 1:
        raise click.ClickException("Several connections remember it: choose one with --connection "
                                   f"({', '.join(sorted(row.connection for row in found))}).")
    row = found[0]
    if not yes:
        click.confirm(f"Let the account holding its domain take {row.address} on {row.connection}, with the mail "
                      f"the account {row.account_name!r} left in it?", abort=True)
    from portal.audit.services import record

    record("mailbox.release", target_label=row.address, source="cli", connection=row.connection,
           left_by=row.account_name)
    db.session.delete(row)
    db.session.commit()
    click.echo(f"{row.address} on {row.connection} is released: the account holding its domain may adopt it.")
