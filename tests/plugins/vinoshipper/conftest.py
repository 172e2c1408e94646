import threading

import pytest
from flask import Flask, request

from plugins.vinoshipper.client import VinoshipperClient
from plugins.vinoshipper.sandbox import DEFAULT_API_KEY, DEFAULT_API_SECRET, create_app
from wms.sandbox.harness import SandboxServer

HANG_SECONDS = 1.0


@pytest.fixture
def start_sandbox():
    """Start a sandbox with a config; every one started is stopped at teardown."""
    servers = []

    def start(config=None):
        server = SandboxServer(create_app(config), hang_seconds=HANG_SECONDS).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def shared_server():
    server = SandboxServer(create_app(), hang_seconds=HANG_SECONDS).start()
    yield server
    server.stop()


@pytest.fixture
def server(shared_server):
    """The default sandbox, as new: one server for the session (a stop costs half a second)."""
    sandbox = shared_server.app.sandbox
    sandbox.flush_webhooks()
    sandbox.reset()
    shared_server.faults.clear()
    shared_server.faults.clear_calls()
    return shared_server


@pytest.fixture
def sandbox(server):
    return server.app.sandbox


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def records():
    return []


@pytest.fixture
def make_client(server, sleeps, records):
    def make(target=None, key=DEFAULT_API_KEY, secret=DEFAULT_API_SECRET, **options):
        options.setdefault("timeout", (2, 5))
        return VinoshipperClient(key, secret, base_url=(target or server).url, allow_private=True,
                                 recorder=records.append, sleep=sleeps.append, **options)
    return make


@pytest.fixture
def client(make_client):
    return make_client()


class WebhookReceiver:
    """A loopback endpoint that keeps every webhook it is sent: raw body and headers."""

    def __init__(self):
        self.received = []
        self._lock = threading.Lock()
        app = Flask(__name__)

        @app.post("/hooks/vinoshipper")
        def receive():
            with self._lock:
                self.received.append({"body": request.get_data(), "headers": dict(request.headers)})
            return "", 200

        self.server = SandboxServer(app)

    @property
    def url(self):
        return f"{self.server.url}/hooks/vinoshipper"


@pytest.fixture(scope="session")
def shared_receiver():
    hooks = WebhookReceiver()
    hooks.server.start()
    yield hooks
    hooks.server.stop()


@pytest.fixture
def receiver(shared_receiver):
    shared_receiver.received.clear()
    return shared_receiver


# -- the plugin in the app: settings pointing at the sandbox, real jobs on Redis ---------------------

@pytest.fixture
def app_config(redis_url):
    return {"WMS_PLUGINS": ["plugins.vinoshipper"], "REDIS_URL": redis_url, "WMS_RELAY_ON_COMMIT": True,
            "WMS_RETRY_BACKOFF": (1, 1, 1), "VINOSHIPPER_BACKOFF_SECONDS": 0.01}


@pytest.fixture
def configure(app, server):
    """configure(**settings): save the plugin's settings (secrets encrypted) and activate it."""
    from wms.extensions import db
    from wms.plugins.manager import plugin_host
    from wms.plugins.settings import encrypt, state_for

    def configure(states=("CA", "OR"), api_key=DEFAULT_API_KEY, api_secret=DEFAULT_API_SECRET,
                  webhook_secret=None, base_url=None, **values):
        plugin = plugin_host().get("vinoshipper")
        state = state_for("vinoshipper")
        settings = {s.key: s.default for s in plugin.settings if not s.is_secret}
        settings.update(base_url=base_url or server.url, states=list(states), **values)
        state.settings = settings
        state.secrets = encrypt({k: v for k, v in {"api_key": api_key, "api_secret": api_secret,
                                                   "webhook_secret": webhook_secret}.items() if v})
        plugin_host().set_active("vinoshipper", True)
        db.session.commit()
        return plugin
    return configure


@pytest.fixture
def vs_plugin(configure):
    return configure()


@pytest.fixture
def stocked(app):
    """A warehouse whose bin holds the sandbox's registered wines; returns (warehouse, {sku: product})."""
    from tests.factories import ProductFactory, WarehouseFactory, bin_of
    from wms.core.services import inventory
    from wms.extensions import db

    warehouse = WarehouseFactory(code="MAIN", name="Main cellar", bins=("A-01",))
    products = {sku: ProductFactory(sku=sku, name=name, bottle_size_ml=ml) for sku, name, ml in (
        ("CAB21-750", "Estate Cabernet Sauvignon", 750), ("CHARD22-750", "Reserve Chardonnay", 750),
        ("CAB21-1500", "Estate Cabernet Sauvignon Magnum", 1500))}
    db.session.flush()
    for product in products.values():
        inventory.receive(product, bin_of(warehouse), 100)
    db.session.commit()
    return warehouse, products


@pytest.fixture
def web(app, admin):
    """A Flask test client signed in as an admin (the module's `client` is the Vinoshipper client)."""
    from tests.conftest import login_as
    return login_as(app.test_client(), admin)
