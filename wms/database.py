"""Database set-up: SQLite pragmas, and upgrading the schema on start-up."""

import fcntl
import os

from sqlalchemy import event

from .extensions import db


def init_database(app):
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("postgres://"):
        uri = "postgresql://" + uri[len("postgres://"):]
    if uri.startswith("postgresql://"):
        uri = "postgresql+psycopg://" + uri[len("postgresql://"):]
    app.config["SQLALCHEMY_DATABASE_URI"] = uri
    if uri.startswith("sqlite"):
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options.setdefault("connect_args", {"timeout": 30})
        options["pool_pre_ping"] = False   # a database file has no server connection to lose
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    db.init_app(app)
    if uri.startswith("sqlite"):
        with app.app_context():
            event.listen(db.engine, "connect", _sqlite_pragmas)


def _sqlite_pragmas(dbapi_connection, _record):
    """WAL lets readers run beside the one writer; a busy writer is waited for, not failed."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def upgrade_on_start(app):
    """Bring an empty or older database to the current schema. A file lock in the instance folder keeps
    two processes starting at once (web and worker) from migrating together."""
    from flask_migrate import upgrade

    lock_path = os.path.join(app.instance_path, "migrate.lock")
    with open(lock_path, "w") as lock_file, app.app_context():
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            upgrade()
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
