"""Fault drills: stock keeps flowing to two Shopify stores and one WooCommerce store while workers are
killed, Redis goes away, and the stores misbehave. Afterwards every remote level equals the WMS level.
While the stores misbehave, orders also come in from all three and some ship: each is created once and
told its tracking once.

Real worker processes (`flask wms worker`), a real Redis, the sandboxes over HTTP(S)."""

import random
import time

import pytest
from sqlalchemy import func, select

from wms.core.models import OutboxMessage, StockMovement
from wms.extensions import db

from . import orders
from .workers import Killer, WorkerPool, outbox_counts, wait_until_settled
from .world import post_movements

pytestmark = [pytest.mark.drill, pytest.mark.slow]

MOVEMENTS = 10_000
SETTLE_SECONDS = 300
ORDERS_PER_STORE = 20
# Short job retries for the drill that fails calls on purpose (the default schedule waits up to an hour).
QUICK_RETRIES = "1,2,4,8,15,30,30,30"


def worker_extra(tls, **extra):
    return {"WMS_WOOCOMMERCE_CA_FILE": tls[1], "WMS_SHOPIFY_TIMEOUT": "2,3", "WMS_WOOCOMMERCE_TIMEOUT": "2,3",
            **extra}


def report(title, world, kinds, pool, extra=""):
    """Prints the drill's counts; returns (levels lost, stock and order work given up, duplicates)."""
    counts = outbox_counts()
    pushes = sum(n for (topic, status), (n, _) in counts.items() if topic == "stock.push" and status == "done")
    retries = sum(max(attempts - n, 0) for (topic, status), (n, attempts) in counts.items())
    # Stock or order work that gave up is a level left wrong or an order (or its tracking) missing; other
    # work given up is listed below and waits for its Retry button.
    gave_up = orders.given_up_order_work() + sum(n for (topic, status), (n, _) in counts.items()
                                                 if status in ("failed", "dead") and topic.startswith("stock."))
    lost = len(world.mismatches())
    duplicated_orders, duplicated_tracking = orders.duplicated_orders(), orders.duplicated_tracking(world)
    movements = db.session.scalar(select(func.count()).select_from(StockMovement))
    print(f"\n[{title}] movements {movements} ({kinds}), pushes {pushes}, retries {retries}, "
          f"given up {gave_up}, workers killed {pool.kills}{extra}, lost {lost}, "
          f"duplicated {duplicated_orders + duplicated_tracking} "
          f"(orders {duplicated_orders}, fulfillments/tracking {duplicated_tracking})")
    for message in db.session.scalars(select(OutboxMessage).where(OutboxMessage.status.in_(("failed", "dead")))):
        print(f"  given up: {message.topic} {message.payload}: {message.last_error}")
    return lost, gave_up, duplicated_orders + duplicated_tracking


def test_workers_killed_twenty_times(world, app, tls, tmp_path):
    pool = WorkerPool(app, 2, tmp_path / "workers.log", **worker_extra(tls)).start()
    killer = Killer(pool, times=20, seconds=40)
    try:
        killer.start()
        kinds = post_movements(world, MOVEMENTS)
        killer.join()
        wait_until_settled(SETTLE_SECONDS, pool)
    finally:
        killer.stop_event.set()
        pool.stop()
    lost, gave_up, _ = report("workers killed", world, kinds, pool)
    assert pool.kills == 20
    assert world.mismatches() == [] and lost == 0 and gave_up == 0


def test_redis_down_for_thirty_seconds(world, app, tls, tmp_path, drill_redis):
    pool = WorkerPool(app, 2, tmp_path / "workers.log", **worker_extra(tls)).start()
    try:
        kinds = post_movements(world, MOVEMENTS // 2, seed=11)
        drill_redis.stop()
        started = time.monotonic()
        more = post_movements(world, MOVEMENTS // 2, seed=12)     # commits go on without Redis
        time.sleep(max(0.0, 30 - (time.monotonic() - started)))
        drill_redis.start()
        wait_until_settled(SETTLE_SECONDS, pool)
        assert all(p.poll() is None for p in pool.processes), "a worker died with Redis"
    finally:
        pool.stop()
    kinds = {k: kinds[k] + more[k] for k in kinds}
    lost, gave_up, _ = report("Redis down 30 s", world, kinds, pool)
    assert world.mismatches() == [] and lost == 0 and gave_up == 0


def test_stores_failing_one_call_in_five(world, app, tls, tmp_path, shopify_server, woo_server, live_server):
    for server, seed in ((shopify_server, 1), (woo_server, 2)):
        server.faults.set_rate(0.2, seed=seed)
        server.faults.hang_does_work = True    # a hang: the store did the work, the answer never came
    rng = random.Random(3)
    pool = WorkerPool(app, 2, tmp_path / "workers.log", **worker_extra(tls, WMS_RETRY_BACKOFF=QUICK_RETRIES)).start()
    try:
        kinds = post_movements(world, MOVEMENTS, seed=13)
        orders.point_woo_webhooks_at(world, live_server)
        placed = orders.place_orders(world, ORDERS_PER_STORE)
        orders.deliver_shopify_webhooks(world, placed, live_server, ("orders/create", "orders/paid"), rng)
        orders.redeliver_woo_webhooks(world, rng)
        orders.queue_order_imports(world)
        orders.wait_for_orders(placed, SETTLE_SECONDS)
        shipped = orders.ship_some(world, placed, 0.5, rng)
        # Later news of every order, some of it twice, while the fulfillments are on their way.
        orders.deliver_shopify_webhooks(world, placed, live_server, ("orders/updated",), rng)
        orders.redeliver_woo_webhooks(world, rng)
        orders.queue_order_imports(world)
        orders.wait_for_webhook_deliveries(world)
        wait_until_settled(SETTLE_SECONDS, pool)
        for server in (shopify_server, woo_server):
            server.faults.clear()
    finally:
        pool.stop()
    faults = sum(1 for s in (shopify_server, woo_server) for c in s.faults.calls if c.get("fault"))
    in_wms = {(o.store.name, o.remote_id): len(orders.wms_orders(o)) for o in placed}
    told = {(o.store.name, o.remote_id): orders.tracking_sent(world, o) for o in placed}
    should_be_told = {(o.store.name, o.remote_id): 1 if o in shipped else 0 for o in placed}
    lost, gave_up, duplicated = report(
        "stores failing 20%", world, kinds, pool,
        f", faults served {faults}, orders placed {len(placed)}, created {sum(1 for n in in_wms.values() if n)}, "
        f"shipped {len(shipped)}, fulfillments/tracking sent {sum(told.values())}")
    assert faults > 0
    assert world.mismatches() == [] and lost == 0 and gave_up == 0 and duplicated == 0
    assert {key: n for key, n in in_wms.items() if n != 1} == {}, "every sandbox order is one WMS order"
    assert told == should_be_told, "every shipped order fulfilled (or its tracking sent) once, no other"
    assert all(orders.woo_status(world, o) == "completed" for o in shipped if o.store.plugin == "woocommerce")
