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
