import pytest
import requests

from plugins.winedirect.client import WineDirectClient
from plugins.winedirect.sandbox import DEFAULT_CONFIG, create_app
from wms.sandbox.harness import SandboxServer

from .builders import wine


@pytest.fixture(scope="module")
def shared_server():
    """One server per module (stopping one costs half a second); each test resets its state."""
    server = SandboxServer(create_app(), hang_seconds=0.5).start()
    yield server
    server.stop()


@pytest.fixture
def make_server(shared_server):
    def start(config=None):
        shared_server.app.sandbox.reset(config)
        return shared_server

    shared_server.faults.clear()
    shared_server.faults.clear_calls()
    yield start
    shared_server.faults.clear()  # releases a request still hanging


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def sleeps():
    """The waits the client asked for, instead of sleeping them."""
    return []


@pytest.fixture
def records():
    return []


@pytest.fixture
def make_client(server, sleeps, records):
    def build(target=None, **overrides):
        options = {
            "username": DEFAULT_CONFIG["username"], "password": DEFAULT_CONFIG["password"],
            "account_number": DEFAULT_CONFIG["account_number"], "supplier_id": DEFAULT_CONFIG["supplier_id"],
            "allow_private": True, "timeout": (2, 2), "sleep": sleeps.append, "recorder": records.append,
            "max_retry_wait": 5.0, "backoff": 0.01,
        }
        options.update(overrides)
        return WineDirectClient((target or server).url, **options)

    return build


@pytest.fixture
def client(make_client):
    return make_client()


class Control:
    """The sandbox's control routes, over HTTP."""

    def __init__(self, server):
        self.base = f"{server.url}/_sandbox/winedirect"

    def post(self, path, body=None):
        response = requests.post(f"{self.base}/{path}", json=body or {}, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def get(self, path, **params):
        response = requests.get(f"{self.base}/{path}", params=params, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def seed(self, sku, on_hand, warehouse="PSO", sub_inventory="PRIMARY"):
        return self.post("inventory", {"warehouseCode": warehouse, "sku": sku, "onHand": on_hand,
                                       "subInventoryCode": sub_inventory})

    def orders(self, order_number=None):
        params = {"orderNumber": order_number} if order_number else {}
        return self.get("orders", **params)["orders"]


@pytest.fixture
def control(server):
    return Control(server)


@pytest.fixture
def stocked(client, control):
    """One product set up at WineDirect with 120 bottles at Paso Robles."""
    client.upsert_product(wine())
    control.seed("CAB21-750", 120, "PSO")
    return "CAB21-750"


# --- the plugin in the app -------------------------------------------------------------------
@pytest.fixture
def app_config(redis_url):
    return {"WMS_PLUGINS": ["plugins.winedirect"], "REDIS_URL": redis_url, "WMS_RELAY_ON_COMMIT": True,
            "WMS_RETRY_BACKOFF": (1, 1, 1), "WINEDIRECT_HTTP_TIMEOUT": (2, 1)}


def plugin_settings(url, **changes):
    values = {"api_url": url, "username": DEFAULT_CONFIG["username"], "account_name": DEFAULT_CONFIG["account_name"],
              "account_number": DEFAULT_CONFIG["account_number"], "supplier_name": DEFAULT_CONFIG["supplier_name"],
              "supplier_id": DEFAULT_CONFIG["supplier_id"], "default_warehouse": "PSO",
              "default_shipping_method": "UPSGROUND", "packing_slip_template": "", "inventory_auto_sync": True,
              "inventory_sync_minutes": 60, "shipment_sync_minutes": 15}
    values.update(changes)
    return values


def configure(url, password=DEFAULT_CONFIG["password"], **changes):
    from plugins.winedirect import sync
    from wms.extensions import db
    from wms.plugins.settings import encrypt, state_for
    sync._CLIENTS.clear()
    state = state_for("winedirect")
    state.is_active = True
    state.settings = plugin_settings(url, **changes)
    state.secrets = encrypt({"password": password})
    db.session.commit()


@pytest.fixture
def wd(app, make_server):
    """The plugin active, its settings pointing at a fresh sandbox that accepts orders at once."""
    server = make_server({"auto_process": True})
    configure(server.url)
    return server


@pytest.fixture
def wd_warehouses(wd, admin_client):
    response = admin_client.post("/plugins/winedirect/warehouses/setup")
    assert response.status_code == 302, response.text
    from plugins.winedirect import sync
    return {sync.wd_code(w): w for w in sync.winedirect_warehouses()}
