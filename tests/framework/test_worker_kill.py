"""A worker SIGKILLed in the middle of a push: after another worker starts, the push completes and the
remote matches the WMS. Real worker processes, a real Redis, the sandbox over HTTP."""

import os
import signal
import threading

import pytest

from tests.conftest import TEST_DATABASE_URL
from tests.factories import bin_of
from tests.framework.conftest import make_store
from wms.core.models import WarehouseLevel
from wms.core.services import inventory
from tests.worker_processes import start_worker as start_process, wait_until, worker_env
from wms.extensions import db



def start_worker(app, log_path):
    env = worker_env(app, WMS_PUSH_WINDOW_SECONDS=1, WMS_RUNNING_TIMEOUT=3, WMS_QUEUED_TIMEOUT=5, WMS_JOB_TIMEOUT=60)
    return start_process(env, log_path)


@pytest.mark.slow
def test_push_survives_a_killed_worker(app, warehouse, products, active_plugin, sandbox, tmp_path):
    if not TEST_DATABASE_URL:
        assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    make_store("Shop", sandbox.url, warehouse, products)
    state = sandbox.app.sandbox
    state["hold"] = threading.Event()
    inventory.receive(products[0], bin_of(warehouse), 9)
    db.session.commit()
    db.session.close()

    log_path = tmp_path / "worker.log"
    first = start_worker(app, log_path)
    try:
        wait_until(lambda: state["inflight"] >= 1, 40, "the first worker to start the push")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    state["hold"].set()            # the push the killed worker had started never lands
    state["hold"] = None
    assert state["levels"] == {}

    second = start_worker(app, log_path)
    try:
        wait_until(lambda: state["levels"].get(f"{products[0].sku}@loc-1") == 9, 60,
                   f"the second worker to finish the push (log: {log_path.read_text()[-2000:]})")
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=20)
    level = db.session.get(WarehouseLevel, (products[0].id, warehouse.id), populate_existing=True)
    assert state["levels"] == {f"{products[0].sku}@loc-1": level.available}
