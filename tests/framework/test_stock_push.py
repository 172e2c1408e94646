"""The debounced stock push over a real Redis and a sandbox over HTTP: one push per store per window,
current levels, nothing lost while Redis is down, and no secret in the activity log."""

import time

import requests
from sqlalchemy import select

from tests.factories import ProductFactory, bin_of
from tests.framework.conftest import make_store, run_jobs, run_through_window, wait_for_windows
from tests.framework.sample_sandbox import TOKEN
from wms.core.models import OutboxMessage, WarehouseLevel
from wms.core.services import inventory
from wms.extensions import db
from wms.plugins.models import ActivityLog


def remote(sandbox):
    return requests.get(f"{sandbox.url}/levels", timeout=5).json()


def wms_available(product, warehouse):
    level = db.session.get(WarehouseLevel, (product.id, warehouse.id), populate_existing=True)
    return level.available if level else 0


def test_thousand_movements_in_one_window_make_one_push_per_store(app, warehouse, active_plugin):
    from wms.sandbox.harness import SandboxServer
    from tests.framework import sample_sandbox
    products = [ProductFactory() for _ in range(50)]
    db.session.commit()
    sandboxes = [SandboxServer(sample_sandbox.create_app()).start() for _ in range(2)]
    try:
        for index, sandbox in enumerate(sandboxes):
            make_store(f"Store {index}", sandbox.url, warehouse, products)
        bins = [bin_of(warehouse, "A-01"), bin_of(warehouse, "A-02")]
        for batch in range(10):
            for i in range(100):
                inventory.receive(products[(batch * 100 + i) % 50], bins[i % 2], 1 + i % 3)
            db.session.commit()
        run_jobs(app)
        assert [remote(s)["pushes"] for s in sandboxes] == [0, 0]     # the window is still open
        wait_for_windows(app)
        run_jobs(app)
        for sandbox in sandboxes:
            seen = remote(sandbox)
            assert seen["pushes"] == 1 and seen["items_pushed"] == 50
            assert seen["levels"] == {f"{p.sku}@loc-1": wms_available(p, warehouse) for p in products}
        pushes = db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "stock.push")).all()
        assert len(pushes) == 2 and {m.status for m in pushes} == {"done"}
    finally:
        for sandbox in sandboxes:
            sandbox.stop()


def test_a_movement_committed_while_redis_is_down_is_pushed_once_it_is_back(
        app, warehouse, products, active_plugin, sandbox, redis_server):
    make_store("Shop", sandbox.url, warehouse, products)
    redis_server.stop()
    inventory.receive(products[0], bin_of(warehouse), 7)
    db.session.commit()                       # the relay cannot reach Redis: nothing is queued
    redis_server.start()
    assert remote(sandbox)["pushes"] == 0
    from wms.jobs.sweep import run_sweep
    run_sweep()                               # what the worker's sweep thread does every few seconds
    wait_for_windows(app)
    run_jobs(app)
    seen = remote(sandbox)
    assert seen["levels"] == {f"{products[0].sku}@loc-1": 7}
    assert seen["pushes"] == 1
    run_sweep()
    run_jobs(app)
    assert remote(sandbox)["pushes"] == 1     # once


def test_changes_during_a_push_open_the_next_window(app, warehouse, products, active_plugin, sandbox):
    make_store("Shop", sandbox.url, warehouse, products)
    inventory.receive(products[0], bin_of(warehouse), 3)
    db.session.commit()
    run_through_window(app)
    inventory.receive(products[0], bin_of(warehouse), 2)
    db.session.commit()
    run_through_window(app)
    seen = remote(sandbox)
    assert seen["pushes"] == 2 and seen["levels"] == {f"{products[0].sku}@loc-1": 5}


def test_activity_log_holds_no_credential(app, warehouse, products, active_plugin, sandbox):
    make_store("Shop", sandbox.url, warehouse, products)
    inventory.receive(products[0], bin_of(warehouse), 3)
    db.session.commit()
    run_through_window(app)
    rows = db.session.scalars(select(ActivityLog)).all()
    assert rows and rows[0].method == "POST" and rows[0].path == "/levels" and rows[0].status == 200
    for row in rows:
        assert TOKEN not in " ".join(str(v) for v in (row.path, row.error, row.method))


def test_a_failing_remote_is_retried_with_backoff_and_ends_right(app, warehouse, products, active_plugin, sandbox):
    make_store("Shop", sandbox.url, warehouse, products)
    sandbox.faults.inject("500", count=2, path="/levels")
    inventory.receive(products[1], bin_of(warehouse), 4)
    db.session.commit()
    run_jobs(app)
    wait_for_windows(app)
    state = sandbox.app.sandbox               # read in process: a GET would also meet the injected faults
    for _ in range(6):
        run_jobs(app)
        if state["levels"]:
            break
        time.sleep(1.1)                       # the test config's backoff is 1 s
    assert state["levels"] == {f"{products[1].sku}@loc-1": 4}
    push = db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "stock.push")).one()
    assert push.status == "done" and push.attempts == 3
    errors = db.session.scalars(select(ActivityLog.status).where(ActivityLog.status == 500)).all()
    assert len(errors) == 2


def test_a_commit_queues_the_relay_without_any_sweep(app, warehouse, products, active_plugin, sandbox):
    from rq import SimpleWorker

    from wms.jobs.connection import get_queue, get_redis
    make_store("Shop", sandbox.url, warehouse, products)
    queue = get_queue(app)
    assert queue.count == 0
    inventory.receive(products[2], bin_of(warehouse), 6)
    db.session.commit()
    deadline = time.time() + 5                            # the relay thread queues it right after the commit
    while queue.count == 0 and time.time() < deadline:
        time.sleep(0.01)
    assert queue.count == 1                               # the drain job, queued by the commit itself
    SimpleWorker([queue], connection=get_redis(app)).work(burst=True, with_scheduler=True)
    wait_for_windows(app)
    SimpleWorker([queue], connection=get_redis(app)).work(burst=True, with_scheduler=True)
    assert remote(sandbox)["levels"] == {f"{products[2].sku}@loc-1": 6}


def test_a_push_waits_while_another_push_of_the_store_runs(app, warehouse, products, active_plugin, sandbox):
    from wms.core.models._base import utcnow
    from wms.jobs.stock_push import push_store
    from wms.plugins.models import Store
    store = make_store("Shop", sandbox.url, warehouse, products)
    inventory.receive(products[0], bin_of(warehouse), 4)
    db.session.commit()
    run_jobs(app)
    store.push_started_at = utcnow()          # another worker is pushing this store
    db.session.commit()
    assert push_store(store.id) == 0
    assert remote(sandbox)["pushes"] == 0
    retry = db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "stock.push")
                               .order_by(OutboxMessage.id.desc())).first()
    assert retry.status == "pending" and retry.available_at > utcnow()

    db.session.get(Store, store.id).push_started_at = None    # that push finished
    db.session.commit()
    run_through_window(app)
    assert remote(sandbox)["levels"] == {f"{products[0].sku}@loc-1": 4}
    assert db.session.get(Store, store.id, populate_existing=True).push_started_at is None


def test_a_drain_that_read_the_counter_earlier_never_winds_it_back(app, warehouse, products, active_plugin, sandbox):
    # Two drains run at once (a worker's sweep and a drain job). One has read the product's counter;
    # meanwhile the other marks the product and a push records it. The first one's mark must still
    # leave the product dirty.
    from wms.jobs import stock_push
    from wms.plugins.models import StockPushState
    store = make_store("Shop", sandbox.url, warehouse, products)
    product_id = products[0].id
    stock_push.mark_dirty(store, [product_id])
    db.session.commit()
    read_earlier = db.session.get(StockPushState, (store.id, product_id))
    assert read_earlier.change_seq == 1
    with db.engine.begin() as other_drain:
        other_drain.execute(StockPushState.__table__.update().values(change_seq=5, pushed_seq=5))
    stock_push.mark_dirty(store, [product_id])
    db.session.commit()
    state = db.session.get(StockPushState, (store.id, product_id), populate_existing=True)
    assert (state.change_seq, state.pushed_seq) == (6, 5)
