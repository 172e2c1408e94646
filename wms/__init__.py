"""Winery WMS: the application factory."""

import os
import secrets

from flask import Flask

from . import config as wms_config
from .extensions import csrf, db, login_manager, migrate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(config=None):
    """Build the app. `config` (a dict) overrides the environment, which overrides the defaults."""
    config = config or {}
    app = Flask(__name__, instance_relative_config=True, instance_path=config.get("WMS_INSTANCE_PATH")
                or os.environ.get("WMS_INSTANCE_PATH") or None,
                template_folder=os.path.join(ROOT, "templates"), static_folder=os.path.join(ROOT, "static"))
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(wms_config.DEFAULTS)
    app.config.update({k: v for k, v in wms_config.from_environment(app.instance_path).items() if v is not None})
    app.config.update(config)
    _ensure_secret(app, "SECRET_KEY", "secret_key")

    from .database import init_database
    init_database(app)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)

    from .web import init_web
    init_web(app)
    from .plugins.manager import init_plugins
    init_plugins(app)
    from .jobs import relay  # noqa: F401 - registers the after-commit relay of outbox messages
    from .cli import init_cli
    init_cli(app)

    if app.config.get("WMS_AUTO_UPGRADE_DB") and not app.config.get("TESTING"):
        from .database import upgrade_on_start
        upgrade_on_start(app)
    return app


def _ensure_secret(app, key, filename):
    """Use the configured secret, or one kept in the instance folder (created on first start)."""
    if app.config.get(key):
        return
    path = os.path.join(app.instance_path, filename)
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    with open(path) as fh:
        app.config[key] = fh.read().strip()
