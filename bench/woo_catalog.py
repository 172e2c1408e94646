"""WooCommerce product sync and stock push against the sandbox over HTTPS, with added latency.

    python bench/woo_catalog.py [--products 5000] [--latency-ms 50] [--push 2000]

The sandbox runs in a child process (its own interpreter, so it does not compete with the sync for
the GIL), serves HTTPS with a throwaway CA and is seeded with the products, 20% of them variable with
4 variations each; every REST request then waits `--latency-ms` before it is answered. The WMS side
(SQLite in a temporary folder) runs Sync products as the worker runs it: products page by page, then
the variations of each variable product (8 at a time; one listing on WooCommerce 10.3+), then one
write pass. Prints the seconds for a first sync and for a second one that finds everything mapped
(goal: under 20 s), then pushes stock for `--push` mapped items in Absolute mode and prints the batch
calls made beside the minimum: 100 items a call, variations batched per parent product.
"""

import argparse
import math
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONSUMER_KEY, CONSUMER_SECRET = "ck_" + "b" * 40, "cs_" + "c" * 40
GOAL_SECONDS = 20


def serve_sandbox(folder, products, latency_ms, pipe):
    """The child process: a seeded HTTPS sandbox on loopback, until the parent says stop."""
    import logging

    from plugins.woocommerce.sandbox import create_app, make_tls
    from wms.sandbox.harness import SandboxServer
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    context, _ = make_tls(folder)
    sandbox_app = create_app({"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET})
    seeded = sandbox_app.sandbox.seed_products(products, variable_share=0.2, variations_per_product=4)
    sandbox_app.sandbox.set_latency(latency_ms)
    with SandboxServer(sandbox_app, ssl_context=context) as server:
        pipe.send((server.url, seeded))
        pipe.recv()


def calls(url, ca_path, clear=False):
    """The sandbox's call log (then emptied, with `clear`)."""
    import requests
    logged = requests.get(f"{url}/_sandbox/calls", verify=ca_path, timeout=60).json()["calls"]
    if clear:
        requests.delete(f"{url}/_sandbox/calls", verify=ca_path, timeout=60)
    return logged


def make_app(folder, ca_path):
    from wms import create_app
    return create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/wms.sqlite", "WMS_AUTO_UPGRADE_DB": False,
                       "SECRET_KEY": "bench", "TESTING": True, "WMS_PLUGINS": ["plugins.woocommerce"],
                       "WMS_ALLOW_PRIVATE_REMOTES": True, "WMS_RELAY_ON_COMMIT": False,
                       "WMS_LOAD_ENTRYPOINTS": False, "WMS_INSTANCE_PATH": os.path.join(folder, "instance"),
                       "WMS_ENCRYPTION_KEYS": "xTjXOm0ynpkErt9_9ObsrlJrNzlCQ5y2Ly5l5JnP0lU=",
                       "REDIS_URL": "unix:///nonexistent/redis.sock", "WOOCOMMERCE_CA_FILE": ca_path})


def set_up(url):
    from plugins.woocommerce.plugin import plugin
    from wms.core.services import catalog
    from wms.extensions import db
    from wms.plugins.manager import plugin_host
    from wms.plugins.models import Store, StoreLocation
    from wms.plugins.settings import encrypt
    plugin_host().set_active("woocommerce", True)
    warehouse = catalog.create_warehouse("NAPA", "Napa cellar", bins=("A-01",))
    settings = {s.key: s.default for s in plugin.store_settings if not s.is_secret}
    store = Store(plugin="woocommerce", name="Bench shop", remote_address=url, status="connected",
                  settings={**settings, "stock_sync": True},
                  credentials=encrypt({"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET}))
    store.locations.append(StoreLocation(remote_id="default", remote_name="Store stock", warehouse_id=warehouse.id,
                                         shipping_process_id=warehouse.shipping_processes[0].id, is_default=True))
    db.session.add(store)
    db.session.commit()
    return store.id


def timed_sync(store_id):
    from plugins.woocommerce import catalog
    from wms.extensions import db
    from wms.plugins.models import Store
    started = time.perf_counter()
    summary = catalog.sync_products(db.session.get(Store, store_id))
    db.session.commit()
    return time.perf_counter() - started, summary


def push_items(store_id, count):
    from sqlalchemy import select

    from wms.extensions import db
    from wms.plugins import StockPushItem
    from wms.plugins.models import ProductMapping
    simple = ProductMapping.remote_product_id == ProductMapping.remote_variant_id
    half = count // 2   # half simple products, half variations (4 per parent)
    mappings = [*db.session.scalars(select(ProductMapping).where(ProductMapping.store_id == store_id, simple)
                                    .order_by(ProductMapping.id).limit(half)),
                *db.session.scalars(select(ProductMapping).where(ProductMapping.store_id == store_id, ~simple)
                                    .order_by(ProductMapping.id).limit(count - half))]
    return [StockPushItem(product_id=m.product_id, sku=m.remote_sku, mapping=m, remote_location_id="default",
                          quantity=7, pushed_quantity=None, remote_quantity=None) for m in mappings]


def minimum_calls(items):
    from plugins.woocommerce.stock import is_variation
    per_parent = Counter(i.mapping.remote_product_id if is_variation(i.mapping) else "" for i in items)
    return sum(math.ceil(n / 100) for n in per_parent.values()), per_parent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--push", type=int, default=2000)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="wms-bench-woo-")
    ca_path = os.path.join(folder, "woocommerce-sandbox-ca.pem")
    parent_end, child_end = multiprocessing.Pipe()
    child = multiprocessing.Process(target=serve_sandbox, args=(folder, args.products, args.latency_ms, child_end))
    child.start()
    try:
        url, seeded = parent_end.recv()
        app = make_app(folder, ca_path)
        from bench.figures import figure
        from plugins.woocommerce.plugin import plugin
        from wms.extensions import db
        from wms.plugins.models import Store
        with app.app_context():
            db.create_all()
            store_id = set_up(url)
            calls(url, ca_path, clear=True)
            first, summary = timed_sync(store_id)
            sync_calls = len(calls(url, ca_path, clear=True))
            second, again = timed_sync(store_id)
            result = summary["result"]
            print(f"catalogue: {seeded['products']} products ({seeded['products'] // 5} variable) and "
                  f"{seeded['variations']} variations, {args.latency_ms} ms added to every request")
            print(f"first sync:  {first:6.1f} s (goal < {GOAL_SECONDS} s), {sync_calls} API calls, "
                  f"{result['created']} products created, {result['mapped']} mapped")
            print(f"second sync: {second:6.1f} s, {again['result']['unchanged']} unchanged, "
                  f"{again['result']['created']} created")
            items = push_items(store_id, args.push)
            minimum, per_parent = minimum_calls(items)
            calls(url, ca_path, clear=True)
            started = time.perf_counter()
            results = plugin.push_stock(db.session.get(Store, store_id), items)
            pushed = time.perf_counter() - started
            batch_calls = [c for c in calls(url, ca_path) if c["path"].endswith("/batch")]
            ok_items = sum(1 for r in results if r.ok)
            print(f"stock push of {len(items)} items ({per_parent.get('', 0)} products, "
                  f"{len(items) - per_parent.get('', 0)} variations of {len(per_parent) - ('' in per_parent)} "
                  f"parents): {len(batch_calls)} batch calls, minimum {minimum}; {ok_items} ok, {pushed:.1f} s")
        met = first < GOAL_SECONDS and again["result"]["created"] == 0
        figure("woo_catalog", f"Sync products: {seeded['products']:,} products + {seeded['variations']:,} "
               f"variations, {args.latency_ms} ms latency", f"{first:.1f} s first, {second:.1f} s second",
               f"< {GOAL_SECONDS} s", met, "Odoo sync: one call per variable product, one at a time")
        figure("woo_catalog", f"Stock push of {len(items):,} items", f"{len(batch_calls)} calls (minimum {minimum})",
               "the minimum", len(batch_calls) == minimum, "woocommerce_fusion: one PUT per item")
        return 0 if met and len(batch_calls) == minimum and ok_items == len(items) else 1
    finally:
        parent_end.send("stop")
        child.join(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
