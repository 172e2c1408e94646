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


# -- the plugin in the app: settings pointing at the sandbox, WMS products matching its seed --------

from decimal import Decimal  # noqa: E402

from tests.framework.conftest import run_jobs  # noqa: E402,F401 - re-exported for the plugin tests
from wms.core.services import orders as order_service  # noqa: E402
from wms.extensions import db  # noqa: E402
from wms.plugins import settings as plugin_settings  # noqa: E402
from wms.plugins.manager import plugin_host  # noqa: E402
from wms.plugins.models import Store  # noqa: E402

CUSTOMER = "ABC Wine Company"
PRICE_LIST = "Retail"
STORAGE_AREA_ID = 7
# (sku, WMS product name = the Vintrace description, price in the Retail price list)
WMS_WINES = [("CHARD-21", "2021 Chardonnay 750ml", "32.00"), ("CAB-20", "2020 Cabernet 750ml", "45.00"),
             ("ROSE-23", "2023 Rosé 750ml", "24.00")]
EXTRA_VINTRACE_PRODUCTS = [
    {"code": "20CAB/750", "sku": "CAB-20", "description": "2020 Cabernet 750ml", "quantity": 60,
     "prices": {"Retail": "45.00"}},
    {"code": "23ROSE/750", "sku": "ROSE-23", "description": "2023 Rosé 750ml", "quantity": 60,
     "prices": {"Retail": "24.00"}},
]


def run_jobs_now(app, rounds=20):
    """Like `run_jobs`, but without RQ's scheduler: retries scheduled by the backoff stay waiting, so a
    test can look at the state after the first attempt whatever the machine's speed."""
    from rq import SimpleWorker

    from sqlalchemy import func, select

    from wms.core.models import OutboxMessage
    from wms.core.models._base import utcnow
    from wms.jobs import tasks
    from wms.jobs.connection import get_queue, get_redis
    for _ in range(rounds):
        tasks.drain()
        SimpleWorker([get_queue(app)], connection=get_redis(app)).work(burst=True, with_scheduler=False)
        db.session.expire_all()
        pending = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status == "pending", OutboxMessage.available_at <= utcnow()))
        if not pending and len(get_queue(app)) == 0:
            return
    raise AssertionError("jobs did not settle")


@pytest.fixture
def app_config(redis_url):
    return {"WMS_PLUGINS": ["plugins.vintrace"], "REDIS_URL": redis_url, "WMS_RELAY_ON_COMMIT": True,
            "WMS_RETRY_BACKOFF": (1, 1, 1), "VINTRACE_TIMEOUT": CLIENT_TIMEOUT}


@pytest.fixture
def vintrace_url(server):
    return f"{server.url}/{CUSTOMER_CODE}/"


def save_settings(**values):
    """Store settings as the Vintrace Settings page does after its checks passed."""
    from plugins.vintrace import sync
    state = plugin_settings.state_for("vintrace")
    plain = {k: v for k, v in values.items() if k != "api_key"}
    state.settings = {**plain, sync.VERIFIED_KEY: sync.verified_marker(plain)}
    state.secrets = plugin_settings.encrypt({"api_key": values.get("api_key", API_KEY)})
    db.session.commit()


@pytest.fixture
def active(app):
    plugin_host().set_active("vintrace", True)
    db.session.commit()
    return plugin_host().get("vintrace")


@pytest.fixture
def configured(active, seeded, vintrace_url, warehouse):
    for product in EXTRA_VINTRACE_PRODUCTS:
        seeded.add_product(product["code"], sku=product["sku"], description=product["description"],
                           quantity=product["quantity"], prices=product["prices"])
    save_settings(base_url=vintrace_url, customer_name=CUSTOMER, price_list=PRICE_LIST,
                  storage_area_id=STORAGE_AREA_ID)
    return active


@pytest.fixture
def wines(app):
    from tests.factories import ProductFactory
    made = {sku: ProductFactory(sku=sku, name=name, retail_price=Decimal(price)) for sku, name, price in WMS_WINES}
    db.session.commit()
    return made


@pytest.fixture
def shop(app):
    store = Store(plugin="shopify", name="Cellar door shop", remote_address="https://cellar.example", status="connected")
    db.session.add(store)
    db.session.commit()
    return store


def store_order(store, number, lines, **details):
    """An order as a store plugin creates it: lines of (sku, quantity, price[, name])."""
    order = order_service.create_order(order_service.OrderInput(
        number=number, source=store.plugin if store else "manual", store_id=store.id if store else None,
        remote_id=number.lstrip("#") if store else None, unknown_sku="hold",
        lines=[order_service.LineInput(sku=l[0], quantity=l[1], unit_price=l[2], name=l[3] if len(l) > 3 else "")
               for l in lines],
        details={"customer_name": "Avery Chen", **details}))
    db.session.commit()
    return order
