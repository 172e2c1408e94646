"""Shopify stock push: 10,000 movements over 2,000 products and 3 locations replayed against the sandbox.

    python bench/shopify_push.py [--movements 10000] [--products 2000] [--window 1] [--rate 400]
                                 [--mode absolute|delta]

The WMS (SQLite in a temporary folder) has three warehouses, each mapped to one location of a sandbox
shop, and 2,000 products mapped to the shop's variants. After one initial push (not counted), the
movements (receipts and adjustments on random product-warehouses) are posted at `--rate` per second
while the outbox work runs in the same loop as the worker runs it: stock.changed marks products dirty
and opens the store's window (`--window` seconds, 1 s here so the run is short); the stock.push job at
the window's end pushes every changed product.

Prints the API calls made, the minimum possible (per window: changed product-locations / 250, rounded
up), what a connector making one call per changed product-location would make, and the p50/p99 time
from a movement's commit to the end of the push that carried it to Shopify. Checks that every
product-location in the sandbox equals the WMS's available. Goals: calls <= 1.05 x the minimum;
p99 <= window + 2 s.
"""

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import select  # noqa: E402

from bench.figures import figure  # noqa: E402
from plugins.shopify import connection, stock  # noqa: E402
from plugins.shopify.sandbox import create_app as create_sandbox  # noqa: E402
from wms import create_app  # noqa: E402
from wms.core.models import OutboxMessage, Product, WarehouseLevel  # noqa: E402
from wms.core.models._base import utcnow  # noqa: E402
from wms.core.services import catalog, inventory  # noqa: E402
from wms.extensions import db  # noqa: E402
from wms.jobs import runner, stock_push  # noqa: E402
from wms.plugins.models import ProductMapping, Store, StoreLocation  # noqa: E402
from wms.plugins.settings import encrypt, state_for  # noqa: E402
from wms.sandbox.harness import SandboxServer  # noqa: E402

SHOP = "bench-winery.myshopify.com"
CLIENT_ID, CLIENT_SECRET = "wms-bench-app", "shpss_bench_secret"
INITIAL_STOCK = 50


def set_up(server, products, mode, window, locations=("Napa Cellar", "Sonoma Cellar", "Paso Robles Cellar")):
    """A connected store with one warehouse per location, `products` products mapped to its variants."""
    state = state_for("shopify")
    state.is_active = True
    state.settings = {"client_id": CLIENT_ID, "app_url": "http://127.0.0.1:5000"}
    state.secrets = encrypt({"client_secret": CLIENT_SECRET})
    sandbox = server.app.sandbox
    shop = sandbox.shops[SHOP]
    shop.set_locations(list(locations))
    shop.seed_catalog(products, stock=0, sku_prefix="BENCH")
    warehouses = [catalog.create_warehouse(f"W{n}", f"Cellar {n}") for n in range(len(locations))]
    db.session.flush()
    token = sandbox.create_token(SHOP)
    store = Store(plugin="shopify", name="Bench shop", remote_address=f"https://{SHOP}", status="connected",
                  settings={"stock_sync": True, "stock_mode": mode, "push_window_seconds": window})
    db.session.add(store)
    db.session.flush()
    connection.remember(store, shop=SHOP, api_base_url=f"{server.url}/shops/{SHOP}")
    connection.save_credentials(store, {"access_token": token.value, "refresh_token": token.refresh_token,
                                        "expires_at": token.expires_at})
    for warehouse, location in zip(warehouses, shop.locations.values()):
        store.locations.append(StoreLocation(remote_id=f"gid://shopify/Location/{location.id}",
                                             remote_name=location.name,
                                             warehouse_id=warehouse.id, is_default=not store.locations,
                                             shipping_process_id=warehouse.shipping_processes[0].id))
    for variant in shop.variants.values():
        product = catalog.create_product({"sku": variant.sku, "name": f"Wine {variant.sku}", "retail_price": "20"})
        db.session.flush()
        db.session.add(ProductMapping(store_id=store.id, product_id=product.id, remote_sku=variant.sku,
                                      remote_variant_id=f"gid://shopify/ProductVariant/{variant.id}",
                                      remote_inventory_id=f"gid://shopify/InventoryItem/{variant.inventory_item_id}"))
    db.session.commit()
    return store, warehouses


def bins(warehouses):
    from wms.core.models import Location
    from wms.core.models.warehouses import LocationUsage
    return {w.id: db.session.scalar(select(Location).where(Location.warehouse_id == w.id,
                                                           Location.usage == LocationUsage.INTERNAL.value)
                                    .order_by(Location.id)) for w in warehouses}


def run_due():
    """Run every outbox message that is due, as the worker would; returns the stock.push runs as
    (started, finished) times."""
    pushes = []
    while True:
        changes = db.session.scalars(select(OutboxMessage).where(
            OutboxMessage.status == "pending", OutboxMessage.topic == "stock.changed",
            OutboxMessage.available_at <= utcnow()).order_by(OutboxMessage.id)).all()
        if changes:  # the relay handles these in bulk
            stock_push.stock_changed(changes)
            for message in changes:
                message.status, message.finished_at = "done", utcnow()
            db.session.commit()
        due = db.session.execute(select(OutboxMessage.id, OutboxMessage.topic).where(
            OutboxMessage.status == "pending", OutboxMessage.available_at <= utcnow()).order_by(OutboxMessage.id)).all()
        if not due:
            return pushes
        for message_id, topic in due:
            started = time.time()
            runner.run(message_id)
            if topic == "stock.push":
                pushes.append((started, time.time()))


def api_calls(server):
    return [c for c in server.faults.calls if c["path"].endswith("/graphql.json")]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--movements", type=int, default=10_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--window", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=400.0, help="movements per second")
    parser.add_argument("--mode", choices=("absolute", "delta"), default="absolute")
    args = parser.parse_args()
    import logging
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    folder = tempfile.mkdtemp(prefix="wms-bench-shopify-")
    server = SandboxServer(create_sandbox({"apps": {CLIENT_ID: CLIENT_SECRET}, "shops": [SHOP]})).start()
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/wms.sqlite", "WMS_AUTO_UPGRADE_DB": False,
                      "SECRET_KEY": "bench", "TESTING": True, "WMS_PLUGINS": ["plugins.shopify"],
                      "WMS_ALLOW_PRIVATE_REMOTES": True, "WMS_RELAY_ON_COMMIT": False, "WMS_LOAD_ENTRYPOINTS": False,
                      "WMS_INSTANCE_PATH": os.path.join(folder, "instance"), "WMS_PUSH_WINDOW_SECONDS": args.window,
                      "WMS_ENCRYPTION_KEYS": "xTjXOm0ynpkErt9_9ObsrlJrNzlCQ5y2Ly5l5JnP0lU=",
                      "REDIS_URL": "unix:///nonexistent/redis.sock"})
    rng = random.Random(7)
    try:
        with app.app_context():
            db.create_all()
            store, warehouses = set_up(server, args.products, args.mode, args.window)
            products = db.session.scalars(select(Product).order_by(Product.id)).all()
            bin_of = bins(warehouses)
            # Initial stock and the first push (not counted): every product-location known on both sides.
            for product in products:
                for warehouse in warehouses:
                    inventory.receive(product, bin_of[warehouse.id], INITIAL_STOCK)
            db.session.commit()
            if args.mode == "delta":
                stock.record_baselines(store)
            deadline = time.time() + 60
            while db.session.scalar(select(db.func.count()).select_from(OutboxMessage).where(
                    OutboxMessage.status == "pending")) and time.time() < deadline:
                run_due()
                time.sleep(0.05)
            server.faults.clear_calls()

            pending = []        # (movement time, product id, warehouse id) not yet carried by a push
            latencies, windows = [], []
            started = time.time()
            posted = 0
            while posted < args.movements or pending:
                due_count = min(args.movements, int((time.time() - started) * args.rate)) - posted
                for _ in range(max(0, due_count)):
                    product = rng.choice(products)
                    warehouse = rng.choice(warehouses)
                    if rng.random() < 0.6:
                        inventory.receive(product, bin_of[warehouse.id], rng.randint(1, 6))
                    else:
                        inventory.adjust(product, bin_of[warehouse.id], -1, "damaged")
                    db.session.commit()
                    pending.append((time.time(), product.id, warehouse.id))
                    posted += 1
                for push_started, push_finished in run_due():
                    carried = [p for p in pending if p[0] <= push_started]
                    latencies += [push_finished - p[0] for p in carried]
                    windows.append({(p[1], p[2]) for p in carried})
                    pending = [p for p in pending if p[0] > push_started]
                time.sleep(0.01)
            elapsed = time.time() - started
            calls = api_calls(server)
            changed_per_window = [len(w) for w in windows]
            minimum = sum(math.ceil(n / 250) for n in changed_per_window if n)
            one_per_item = sum(changed_per_window)
            wms_levels = {(lv.product_id, lv.warehouse_id): lv.available
                          for lv in db.session.scalars(select(WarehouseLevel))}
            location_of = {loc.warehouse_id: int(loc.remote_id.rsplit("/", 1)[-1]) for loc in store.locations}
            item_of = {m.product_id: int(m.remote_inventory_id.rsplit("/", 1)[-1])
                       for m in db.session.scalars(select(ProductMapping))}
        levels = server.app.sandbox.shops[SHOP].levels
        # Delta keeps Shopify's own starting quantity (0) and adds the changes since the baseline (50 each).
        offset = INITIAL_STOCK if args.mode == "delta" else 0
        wrong = sum(1 for (product_id, warehouse_id), quantity in wms_levels.items()
                    if levels[(item_of[product_id], location_of[warehouse_id])].quantities["available"]
                    != quantity - offset)
        p50 = statistics.median(latencies)
        p99 = statistics.quantiles(latencies, n=100)[98]
        calls_ok = len(calls) <= 1.05 * minimum
        latency_ok = p99 <= args.window + 2
        print(f"mode: {args.mode}, window: {args.window:g} s, movements: {posted} over {elapsed:.1f} s "
              f"({args.products} products x 3 locations)")
        print(f"pushes: {len(windows)}, changed product-locations: {one_per_item}")
        print(f"API calls made: {len(calls)}   minimum possible: {minimum}   goal <= {1.05 * minimum:.0f}   "
              f"{'met' if calls_ok else 'NOT met'}")
        print(f"one call per changed product-location would make: {one_per_item} "
              f"(one per movement: {posted})")
        print(f"movement -> Shopify latency: p50 {p50:.2f} s, p99 {p99:.2f} s   goal p99 <= {args.window + 2:g} s   "
              f"{'met' if latency_ok else 'NOT met'}")
        print(f"sandbox levels differing from the WMS: {wrong} of {len(wms_levels)}")
        ok = calls_ok and latency_ok and wrong == 0
        print("OK" if ok else "FAILED")
        figure("shopify_push", f"{posted:,} movements, {args.products:,} products x 3 locations, {args.mode}",
               f"{len(calls)} calls (minimum {minimum}), p99 {p99:.2f} s", f"<= 1.05 x minimum, p99 <= "
               f"{args.window + 2:g} s", ok, f"one call per item: {one_per_item} calls")
        return 0 if ok else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
