"""Fixtures for the plugin framework: the sample plugin, its sandbox over HTTP, stores, and running jobs
for real on Redis with RQ's SimpleWorker."""

import time

import pytest
from rq import SimpleWorker
from sqlalchemy import func, select

from tests.factories import ProductFactory
from tests.framework import sample_sandbox
from wms.core.models import OutboxMessage
from wms.core.models._base import utcnow
from wms.extensions import db
from wms.jobs import tasks
from wms.jobs.connection import get_queue, get_redis
from wms.plugins.manager import plugin_host
from wms.plugins.models import ProductMapping, Store, StoreLocation
from wms.plugins.settings import encrypt
from wms.sandbox.harness import SandboxServer


@pytest.fixture
def app_config(redis_url):
    return {"WMS_PLUGINS": ["tests.framework.sample_plugin"], "REDIS_URL": redis_url,
            "WMS_RELAY_ON_COMMIT": True, "WMS_PUSH_WINDOW_SECONDS": 2, "WMS_RETRY_BACKOFF": (1, 1, 1)}


@pytest.fixture
def sandbox():
    server = SandboxServer(sample_sandbox.create_app()).start()
    yield server
    server.stop()


@pytest.fixture
def active_plugin(app):
    plugin_host().set_active("sampleshop", True)
    db.session.commit()
    return plugin_host().get("sampleshop")


def make_store(name, url, warehouse, products, location_id="loc-1"):
    store = Store(plugin="sampleshop", name=name, remote_address=url, status="connected",
                  settings={"stock_sync": True}, credentials=encrypt({"token": sample_sandbox.TOKEN}))
    store.locations.append(StoreLocation(remote_id=location_id, remote_name="Main", warehouse_id=warehouse.id,
                                         shipping_process_id=warehouse.shipping_processes[0].id, is_default=True))
    db.session.add(store)
    db.session.flush()
    for product in products:
        db.session.add(ProductMapping(store_id=store.id, product_id=product.id, remote_variant_id=f"v-{product.id}",
                                      remote_sku=product.sku))
    db.session.commit()
    return store


@pytest.fixture
def products(app):
    items = [ProductFactory() for _ in range(5)]
    db.session.commit()
    return items


def due_messages():
    return db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.status.in_(("pending", "queued")), OutboxMessage.available_at <= utcnow()))


def run_jobs(app, rounds=20):
    """Drain the outbox and run every queued job (and every due scheduled job) until nothing is due."""
    for _ in range(rounds):
        tasks.drain()
        SimpleWorker([get_queue(app)], connection=get_redis(app)).work(burst=True, with_scheduler=True)
        db.session.expire_all()
        if not due_messages():
            return
    raise AssertionError("jobs did not settle")


def wait_for_windows(app, seconds=None):
    """Sleep until every open push window is due (the window is the product's debounce, not a test pause)."""
    db.session.expire_all()
    due = db.session.scalar(select(func.max(OutboxMessage.available_at)).where(
        OutboxMessage.topic == "stock.push", OutboxMessage.status.in_(("pending", "queued"))))
    if due is not None:
        time.sleep(max(0.0, (due - utcnow()).total_seconds()) + 0.3)


def run_through_window(app):
    """Run the jobs, let the open push windows close, and run the jobs they start."""
    run_jobs(app)
    wait_for_windows(app)
    run_jobs(app)
