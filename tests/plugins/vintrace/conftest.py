"""Fixtures: a fresh Vintrace sandbox on loopback per test, and a client pointed at it."""

import pytest

from plugins.vintrace.client import VintraceClient
from plugins.vintrace.sandbox import create_app
from wms.sandbox.harness import SandboxServer

API_KEY = "vt-test-token-5f2a9c"
CUSTOMER_CODE = "vinx2demo"
HANG_SECONDS = 2.0          # past the client's read timeout below, and no longer
CLIENT_TIMEOUT = (1.0, 0.5)

SEED = {
    "customers": [
        {"primeName": "ABC Wine Company", "email": "orders@abcwine.example", "isOrganization": True},
        {"primeName": "Smith", "givenName": "Adam", "isOrganization": False},
    ],
    "priceLists": [
        {"name": "Retail", "taxPolicy": "Tax Inclusive"},
        {"name": "Wholesale", "taxPolicy": "Tax Exclusive"},
        {"name": "Retail Club"},
    ],
    "products": [
        {"code": "21CHARD/750", "sku": "CHARD-21", "description": "2021 Chardonnay 750ml", "quantity": 120,
         "prices": {"Retail": "32.00", "Wholesale": "19.50"}},
        {"code": "20PINOT/12", "sku": "PINOT-20-CS", "description": "2020 Pinot Noir case", "unit": "x12",
         "quantity": 10, "prices": {"Wholesale": "330.00"}},
    ],
}


@pytest.fixture(scope="module")
def _served():
    """One app and server per module (stopping a server costs 0.5 s); state is reset per test."""
    app = create_app({"api_keys": [API_KEY], "customer_code": CUSTOMER_CODE, "hang_seconds": HANG_SECONDS})
    server = SandboxServer(app, hang_seconds=HANG_SECONDS).start()
    yield app, server
    server.stop()


@pytest.fixture
def sandbox_app(_served):
    return _served[0]


@pytest.fixture
def sandbox(sandbox_app):
    return sandbox_app.sandbox


@pytest.fixture
def server(_served):
    app, server = _served
    app.sandbox.reset()
    server.faults.clear()
    server.faults.clear_calls()
    yield server
    app.sandbox.clear_faults()  # releases answers still held by a "hang"
    server.faults.clear()
    app.sandbox.assert_no_spec_violations()  # an answer off the spec fails the test


@pytest.fixture
def seeded(sandbox, server):
    sandbox.seed(SEED)
    return sandbox


@pytest.fixture
def api_url(server):
    return f"{server.url}/{CUSTOMER_CODE}/api/v6"


@pytest.fixture
def records():
    return []


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(server, records, sleeps):
    return VintraceClient(f"{server.url}/{CUSTOMER_CODE}/", API_KEY, allow_private=True, timeout=CLIENT_TIMEOUT,
                          recorder=records.append, sleep=sleeps.append)
