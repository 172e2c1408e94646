"""`flask --app wsgi wms ...` commands: users, level rebuild, demo data."""

import sys

import click
from flask.cli import AppGroup
from sqlalchemy import select

from wms.extensions import db

wms_cli = AppGroup("wms", help="Warehouse commands.")


def init_cli(app):
    app.cli.add_command(wms_cli)


@wms_cli.command("create-user")
@click.option("--email", required=True)
@click.option("--name", default="")
@click.option("--role", type=click.Choice(["admin", "operator"]), default="operator", show_default=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create_user(email, name, role, password):
    """Create a user (or reset an existing user's password and role)."""
    from wms.core.models import User

    email = email.strip().lower()
    if len(password) < 8:
        raise click.ClickException("The password needs at least 8 characters.")
    user = db.session.scalar(select(User).where(User.email == email))
    created = user is None
    if created:
        user = User(email=email, name=name or email.split("@")[0], role=role)
        db.session.add(user)
    else:
        user.role = role
        if name:
            user.name = name
    user.set_password(password)
    db.session.commit()
    click.echo(f"{'Created' if created else 'Updated'} {role} {email}.")


@wms_cli.command("rebuild-levels")
@click.option("--check", is_flag=True, help="Only report disagreements; change nothing.")
def rebuild_levels(check):
    """Recompute the level cache from the ledger and report any disagreement (exit 1 if any)."""
    from wms.core.services import rebuild

    problems = rebuild.compare() if check else rebuild.rebuild()
    if not check:
        db.session.commit()
    for problem in problems:
        click.echo(f"disagreement: {problem}")
    if problems:
        click.echo(f"{len(problems)} disagreement(s) {'found' if check else 'found and repaired'}.")
        sys.exit(1)
    click.echo("Level cache agrees with the ledger.")


@wms_cli.command("seed-demo")
@click.option("--admin-email", default="admin@example.com", show_default=True)
@click.option("--admin-password", default="winery-demo", show_default=True)
def seed_demo(admin_email, admin_password):
    """Create a first admin, an operator, warehouses, products and some stock and orders (once)."""
    from wms.demo import seed

    created = seed(admin_email, admin_password)
    click.echo("Demo data created." if created else "Demo data already present.")


def main():
    """Console entry point: `wms ...` is `flask --app wsgi ...`."""
    from flask.cli import FlaskGroup

    from wms import create_app

    FlaskGroup(create_app=lambda: create_app())(prog_name="wms")


@wms_cli.command("worker")
@click.option("--burst", is_flag=True, help="Run the jobs that are queued now, then exit.")
def worker(burst):
    """Run a background worker: RQ jobs, RQ's scheduler, and the outbox sweep."""
    from flask import current_app

    from wms.jobs.worker import run_worker

    run_worker(current_app._get_current_object(), burst=burst)


@wms_cli.command("sweep")
def sweep():
    """Run one sweep pass now: requeue lost work, reopen lost push windows, emit scheduled jobs."""
    from wms.jobs.sweep import run_sweep

    click.echo(run_sweep())


@wms_cli.command("sandboxes")
def sandboxes():
    """Serve the sandbox of every active plugin on loopback (demo mode), until stopped."""
    from flask import current_app

    from wms.sandbox.demo import serve_forever

    serve_forever(current_app._get_current_object())


@wms_cli.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--web-workers", default=2, show_default=True)
def run_all(host, port, web_workers):
    """Start everything on this machine: Redis (embedded unless REDIS_URL is set), a worker, and the web
    server (gunicorn). Ctrl-C stops them all."""
    from flask import current_app

    from wms.run import run_everything

    run_everything(current_app._get_current_object(), host, port, web_workers)
