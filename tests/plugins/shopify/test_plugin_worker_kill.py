"""A worker SIGKILLed after Shopify applied a Delta push but before the WMS recorded it: the next worker
replays the push with the same @idempotent key, so Shopify ends with the change counted once. Real
worker processes, a real Redis, the sandbox over HTTP."""

import io
import os
import signal
import threading

import pytest

from plugins.shopify import stock
from tests.factories import ProductFactory, WarehouseFactory, bin_of
from wms.core.services import inventory
from tests.worker_processes import start_worker as start_process, wait_until, worker_env
from wms.extensions import db
from wms.plugins.models import RemoteLevel
from wms.sandbox.harness import SandboxServer

from .conftest import SHOP, connect_store, map_product, shopify_available



@pytest.fixture
def app_config(redis_url):
    return {"WMS_PLUGINS": ["plugins.shopify"], "REDIS_URL": redis_url, "WMS_RELAY_ON_COMMIT": True,
            "WMS_PUSH_WINDOW_SECONDS": 1}


class HoldAfterApplying:
    """WSGI middleware: lets a stock mutation through to the sandbox, then keeps its answer back until
    released (the worker that sent it is killed meanwhile, so the answer is never read)."""

    def __init__(self, app):
        self.app = app
        self.applied = threading.Event()
        self.release = threading.Event()
        self.holding = True

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        answer = list(self.app(environ, start_response))
        if self.holding and b"inventoryAdjustQuantities" in body:
            self.holding = False
            self.applied.set()
            self.release.wait(60)
        return answer


def start_worker(app, log_path):
    env = worker_env(app, WMS_PUSH_WINDOW_SECONDS=1, WMS_RUNNING_TIMEOUT=3, WMS_QUEUED_TIMEOUT=5, WMS_JOB_TIMEOUT=60)
    return start_process(env, log_path)


def recorded(store, product):
    db.session.expire_all()
    level = db.session.get(RemoteLevel, (store.id, product.id, store.locations[0].remote_id))
    db.session.rollback()
    return level is not None and level.pushed_quantity == 5


@pytest.mark.slow
def test_delta_push_survives_a_killed_worker(app, shopify_active, sandbox_app, sandbox, tmp_path):
    held = HoldAfterApplying(sandbox_app)
    with SandboxServer(held) as server:
        cellar = WarehouseFactory(code="CEL")
        wine = ProductFactory()
        db.session.commit()
        store = connect_store(sandbox, server, warehouses=[cellar], stock_sync=True, stock_mode="delta")
        mapping = map_product(server, store, wine, stock=10)
        assert stock.record_baselines(store) == 1
        inventory.receive(wine, bin_of(cellar), 5)
        db.session.commit()
        db.session.close()

        log_path = tmp_path / "worker.log"
        first = start_worker(app, log_path)
        try:
            wait_until(held.applied.is_set, 60, f"the first push (log: {log_path})")
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
            held.release.set()
        assert shopify_available(server, SHOP, mapping) == 15
        assert not recorded(store, wine)

        second = start_worker(app, log_path)
        try:
            wait_until(lambda: recorded(store, wine), 60,
                       f"the second worker to finish the push (log: {log_path.read_text()[-3000:]})")
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(timeout=20)
        assert shopify_available(server, SHOP, mapping) == 15
