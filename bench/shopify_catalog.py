"""Shopify product sync: 50,000 variants from the sandbox mapped to WMS products.

    python bench/shopify_catalog.py [--products 10000] [--variants-per-product 5]

The sandbox runs in a child process (so its own catalog does not count toward this process's memory)
and seeds the shop. The WMS side (SQLite in a temporary folder) already holds some products: one in
ten variants matches one by SKU and one in fifty by barcode; the rest become new products. Sync
Products then runs as the worker runs it (the outbox jobs, in-process): bulk export, streamed JSONL,
chunked bulk inserts. Prints the elapsed seconds and this process's peak resident memory, for the
first run and for a second run that finds everything mapped. Goal: under 60 s and under 300 MB.
"""

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SHOP = "bench-winery.myshopify.com"
CLIENT_ID, CLIENT_SECRET = "wms-bench-app", "shpss_bench_secret"


def serve_sandbox(products, per_product, pipe):
    """The child process: a seeded sandbox on loopback, until the parent says stop."""
    import logging

    import requests

    from plugins.shopify.sandbox import create_app as create_sandbox
    from wms.sandbox.harness import SandboxServer
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    sandbox_app = create_sandbox({"apps": {CLIENT_ID: CLIENT_SECRET}, "shops": [SHOP]})
    with SandboxServer(sandbox_app) as server:
        seeded = requests.post(f"{server.url}/_sandbox/shopify/shops/{SHOP}/seed", timeout=600,
                               json={"products": products, "variants_per_product": per_product, "stock": 1}).json()
        token = sandbox_app.sandbox.create_token(SHOP).value
        pipe.send((server.url, token, seeded["variants"]))
        pipe.recv()


def existing_products(total_products, per_product):
    """WMS products the sync should find: every tenth variant by SKU, every fiftieth by barcode."""
    from decimal import Decimal

    from sqlalchemy import insert

    from wms.core.models import Product
    from wms.extensions import db
    rows = []
    for number in range(1, total_products + 1):
        for v in range(1, per_product + 1):
            index = (number - 1) * per_product + v
            if index % 10 == 0:
                rows.append({"sku": f"SKU-{number:06d}-{v}", "name": f"Known {index}", "retail_price": Decimal("18")})
            elif index % 50 == 1:
                rows.append({"sku": f"WMS-{index}", "barcode": f"{number:08d}{v:04d}", "name": f"Known {index}",
                             "retail_price": Decimal("18")})
    db.session.execute(insert(Product), rows)
    db.session.commit()
    return len(rows)


def run_outbox():
    """Every pending outbox message, run as the worker runs it, until none is left."""
    from sqlalchemy import select, update

    from wms.core.models import OutboxMessage
    from wms.core.models._base import utcnow
    from wms.extensions import db
    from wms.jobs import runner
    while True:
        db.session.execute(update(OutboxMessage).where(OutboxMessage.topic == "stock.changed",
                                                       OutboxMessage.status == "pending").values(status="done"))
        db.session.commit()
        ids = db.session.scalars(select(OutboxMessage.id).where(
            OutboxMessage.status == "pending", OutboxMessage.available_at <= utcnow()).order_by(OutboxMessage.id)).all()
        if not ids:
            return
        for message_id in ids:
            runner.run(message_id)


def timed_sync(store):
    from plugins.shopify import catalog
    from wms.extensions import db
    started = time.perf_counter()
    catalog.start_sync(store)
    db.session.commit()
    run_outbox()
    elapsed = time.perf_counter() - started
    db.session.expire_all()
    record = catalog.progress_record(store)
    return elapsed, record


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--variants-per-product", type=int, default=5)
    args = parser.parse_args()
    context = multiprocessing.get_context("fork")  # before this process starts any thread
    ours, theirs = context.Pipe()
    child = context.Process(target=serve_sandbox, args=(args.products, args.variants_per_product, theirs),
                            daemon=True)
    child.start()
    sandbox_url, token, variants = ours.recv()

    from sqlalchemy import func, select

    from bench.figures import figure
    from wms import create_app
    from wms.core.models import Product, StockMovement
    from wms.extensions import db
    from wms.plugins.models import ProductMapping, Store
    from wms.plugins.settings import encrypt, state_for
    folder = tempfile.mkdtemp(prefix="wms-bench-shopify-")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/wms.sqlite", "WMS_AUTO_UPGRADE_DB": False,
                      "SECRET_KEY": "bench", "TESTING": True, "WMS_PLUGINS": ["plugins.shopify"],
                      "WMS_ALLOW_PRIVATE_REMOTES": True, "WMS_RELAY_ON_COMMIT": False, "WMS_LOAD_ENTRYPOINTS": False,
                      "WMS_INSTANCE_PATH": os.path.join(folder, "instance"),
                      "WMS_ENCRYPTION_KEYS": "xTjXOm0ynpkErt9_9ObsrlJrNzlCQ5y2Ly5l5JnP0lU=",
                      "REDIS_URL": "unix:///nonexistent/redis.sock", "SHOPIFY_BULK_WAIT_SECONDS": 600})
    try:
        with app.app_context():
            db.create_all()
            state = state_for("shopify")
            state.is_active, state.settings = True, {"client_id": CLIENT_ID}
            state.secrets = encrypt({"client_secret": CLIENT_SECRET})
            store = Store(plugin="shopify", name="Bench shop", remote_address=f"https://{SHOP}", status="connected",
                          credentials=encrypt({"access_token": token}),
                          settings={"shop": SHOP, "api_base_url": f"{sandbox_url}/shops/{SHOP}"})
            db.session.add(store)
            db.session.commit()
            known = existing_products(args.products, args.variants_per_product)
            print(f"sandbox: {variants:,} variants; WMS: {known:,} products before the sync")

            first, record = timed_sync(store)
            counts = record.data["counts"]
            print(f"first run:  {first:6.1f} s  ({record.status}: {record.message})")
            mappings = db.session.scalar(select(func.count()).select_from(ProductMapping))
            products = db.session.scalar(select(func.count()).select_from(Product))
            movements = db.session.scalar(select(func.count()).select_from(StockMovement))
            second, record = timed_sync(store)
            print(f"second run: {second:6.1f} s  ({record.status}: {record.message})")
            print(f"mappings: {mappings:,}; WMS products: {products:,}; stock movements: {movements}")
            rss = peak_rss_mb()
            print(f"peak resident memory of the WMS process: {rss:.0f} MB")
            ok = (record.status == "synced" and mappings == variants and counts["created"] + counts["matched"]
                  == variants and first < 60 and rss < 300 and movements == 0)
            print("goal (under 60 s, under 300 MB, every variant mapped, no stock change):", "met" if ok else "MISSED")
            figure("shopify_catalog", f"Sync Products: {variants:,} variants mapped from the sandbox",
                   f"{first:.1f} s first run, {second:.1f} s second, {rss:.0f} MB peak, {movements} stock movements",
                   "< 60 s, < 300 MB", ok, "-")
            return 0 if ok else 1
    finally:
        ours.send("stop")
        child.join(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
