"""`flask wms run`: one command that starts Redis, a worker and the web server, and stops them together."""

import os
import signal
import subprocess
import sys
import time

import click
from sqlalchemy import select

from wms.core.models import User
from wms.extensions import db
from wms.jobs.connection import redis_url, stop_embedded


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run_everything(app, host, port, web_workers):
    signal.signal(signal.SIGTERM, _interrupt)   # stop everything on SIGTERM as on Ctrl-C
    signal.signal(signal.SIGINT, _interrupt)
    env = dict(os.environ, WMS_AUTO_UPGRADE_DB="0")
    embedded = not app.config.get("REDIS_URL")
    env["REDIS_URL"] = redis_url(app)          # starts the embedded server when none is configured
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    children = [
        subprocess.Popen(flask + ["wms", "worker"], env=env),
        *([subprocess.Popen(flask + ["wms", "sandboxes"], env=env)] if app.config.get("WMS_DEMO") else []),
        subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", str(web_workers), "-b", f"{host}:{port}",
                          "--access-logfile", "-", "--log-level", "warning", "wsgi:app"], env=env),
    ]
    _banner(app, host, port, embedded)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        click.echo("A process stopped; shutting down the others.", err=True)
    except KeyboardInterrupt:
        click.echo("\nStopping...")
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        if embedded:
            stop_embedded(app)


def _banner(app, host, port, embedded):
    with app.app_context():
        demo_admin = db.session.scalar(select(User).where(User.role == "admin").order_by(User.id))
    click.echo("")
    click.echo(f"  Winery WMS is running at http://{host}:{port}/")
    if demo_admin is not None and app.config.get("WMS_DEMO"):
        click.echo(f"  Sign in as {demo_admin.email} / winery-demo  (operator: operator@example.com / winery-demo)")
    click.echo(f"  Redis: {'embedded, in ' + app.instance_path if embedded else app.config['REDIS_URL']}")
    if app.config.get("WMS_DEMO"):
        click.echo("  Demo mode: activate a plugin (Admin > Plugins) and its sandbox starts on 127.0.0.1:51xx;")
        click.echo("  the plugin's pages show the sandbox address to use for a store.")
    click.echo("  Press Ctrl-C to stop.")
    click.echo("")
