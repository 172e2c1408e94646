"""A worker SIGKILLed in the middle of a push: after another worker starts, the push completes and the
remote matches the WMS. Real worker processes, a real Redis, the sandbox over HTTP."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import TEST_DATABASE_URL
from tests.factories import bin_of
from tests.framework.conftest import make_store
from wms.core.models import WarehouseLevel
from wms.core.services import inventory
from wms.extensions import db

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start_worker(app, log_path):
    env = dict(os.environ,
               WMS_DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=app.config["REDIS_URL"],
               WMS_PLUGINS="tests.framework.sample_plugin", WMS_ENCRYPTION_KEYS=app.config["WMS_ENCRYPTION_KEYS"],
               WMS_INSTANCE_PATH=app.config["WMS_INSTANCE_PATH"], WMS_SECRET_KEY="test-secret",
               WMS_AUTO_UPGRADE_DB="0", WMS_ALLOW_PRIVATE_REMOTES="1", WMS_PUSH_WINDOW_SECONDS="1",
               WMS_SWEEP_SECONDS="1", WMS_RUNNING_TIMEOUT="3", WMS_QUEUED_TIMEOUT="5", WMS_JOB_TIMEOUT="60")
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "wms", "worker"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until(condition, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


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
