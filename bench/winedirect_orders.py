"""WineDirect order push: routed orders submitted to the WineDirect sandbox and confirmed.

    python bench/winedirect_orders.py [--orders 5000]

Creates the orders routed to the WineDirect Paso Robles process (SQLite in a temporary folder), then
runs the outbox work in-process (the same handlers the RQ worker runs: order.routed -> the plugin's
hook -> winedirect.submit_orders, batched up to 100 per SubmitOrders call after the look-up that
prevents duplicates -> winedirect.order_status). An order counts as confirmed when its SyncRecord is
synced with WineDirect's order number. Prints orders per second and API calls per order, and checks
the sandbox holds each order exactly once.
"""

import argparse
import os
import sys
import tempfile
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import select, update  # noqa: E402

from plugins.winedirect import sync  # noqa: E402
from plugins.winedirect.sandbox import DEFAULT_CONFIG, create_app as create_sandbox  # noqa: E402
from bench.figures import figure  # noqa: E402
from wms import create_app  # noqa: E402
from wms.core.models import OutboxMessage  # noqa: E402
from wms.core.services import catalog, orders  # noqa: E402
from wms.extensions import db  # noqa: E402
from wms.jobs import runner  # noqa: E402
from wms.plugins.models import SyncRecord  # noqa: E402
from wms.plugins.settings import encrypt, state_for  # noqa: E402
from wms.sandbox.harness import SandboxServer  # noqa: E402

SKU = "BENCH-CAB"


def set_up(server):
    state = state_for("winedirect")
    state.is_active = True
    state.settings = {"api_url": server.url, "username": DEFAULT_CONFIG["username"],
                      "account_name": DEFAULT_CONFIG["account_name"], "account_number": DEFAULT_CONFIG["account_number"],
                      "supplier_name": DEFAULT_CONFIG["supplier_name"], "supplier_id": DEFAULT_CONFIG["supplier_id"],
                      "default_warehouse": "PSO", "default_shipping_method": "UPSGROUND", "inventory_auto_sync": False}
    state.secrets = encrypt({"password": DEFAULT_CONFIG["password"]})
    db.session.commit()
    sync.set_up_warehouses(sync.client().list_warehouses())
    catalog.create_product({"sku": SKU, "name": "Bench Cabernet", "brand": "Bench Cellars",
                            "appellation": "Paso Robles", "alcohol_pct": "14.5", "retail_price": "40"})
    db.session.commit()
    sync.sync_products_job({})
    db.session.commit()
    server.app.sandbox.seed_inventory("PSO", SKU, 10_000_000)
    server.app.sandbox.seed_inventory("PSO", SKU, 10_000_000, "CLUB")  # club orders draw from it


def place(count):
    warehouse = next(w for w in sync.winedirect_warehouses() if w.code == "WD-PSO")
    process = next(p for p in warehouse.shipping_processes if p.handler == "winedirect")
    for n in range(count):
        orders.create_order(orders.OrderInput(
            number=f"B{n:06d}", lines=[orders.LineInput(SKU, 1 + n % 3)], warehouse=warehouse,
            shipping_process=process, details={"ship_name": f"Customer {n}", "ship_address1": f"{n} Vine St",
                                               "ship_city": "Napa", "ship_state": "CA", "ship_postal_code": "94558",
                                               "is_club": n % 5 == 0}))
        if n % 500 == 499:
            db.session.commit()
    db.session.commit()


def drain():
    """Run every pending outbox message with the worker's runner until none is left."""
    ran = 0
    while True:
        db.session.execute(update(OutboxMessage).where(OutboxMessage.topic == "stock.changed",
                                                       OutboxMessage.status == "pending").values(status="done"))
        db.session.commit()
        ids = db.session.scalars(select(OutboxMessage.id).where(OutboxMessage.status == "pending")
                                 .order_by(OutboxMessage.id)).all()
        if not ids:
            return ran
        for message_id in ids:
            runner.run(message_id)
            ran += 1


def endpoint(path):
    path = path.split("?")[0]
    if path.startswith("/api/v1/Orders/Detail/"):
        return "/api/v1/Orders/Detail/{account}/{orderNumber}"
    if path.startswith("/api/v1/Orders/") and path != "/api/v1/Orders/SubmitOrders":
        return "/api/v1/Orders/{orderNumber}"
    return path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=5000)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="wms-bench-wd-")
    server = SandboxServer(create_sandbox({"auto_process": True})).start()
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/wms.sqlite", "WMS_AUTO_UPGRADE_DB": False,
                      "SECRET_KEY": "bench", "TESTING": True, "WMS_PLUGINS": ["plugins.winedirect"],
                      "WMS_ALLOW_PRIVATE_REMOTES": True, "WMS_RELAY_ON_COMMIT": False, "WMS_LOAD_ENTRYPOINTS": False,
                      "WMS_INSTANCE_PATH": os.path.join(folder, "instance"),
                      "WMS_ENCRYPTION_KEYS": "xTjXOm0ynpkErt9_9ObsrlJrNzlCQ5y2Ly5l5JnP0lU=",
                      "REDIS_URL": "unix:///nonexistent/redis.sock"})
    try:
        with app.app_context():
            db.create_all()
            set_up(server)
            place(args.orders)
            server.faults.clear_calls()
            started = time.perf_counter()
            messages = drain()
            elapsed = time.perf_counter() - started
            calls = [c for c in server.faults.calls if not c["path"].startswith("/_sandbox/")]
            statuses = Counter(db.session.scalars(select(SyncRecord.status).where(
                SyncRecord.plugin == "winedirect", SyncRecord.object_type == "order")))
            confirmed = db.session.scalar(select(db.func.count()).select_from(SyncRecord).where(
                SyncRecord.plugin == "winedirect", SyncRecord.object_type == "order", SyncRecord.status == "synced",
                SyncRecord.remote_reference.like("WD%")))
        records = server.app.sandbox.order_records()
        per_number = Counter(r["submittedNumber"] for r in records)
        by_path = Counter(f"{c['method']} {endpoint(c['path'])}" for c in calls)
        print(f"orders: {args.orders}, confirmed: {confirmed}, sync records: {dict(statuses)}")
        print(f"at WineDirect: {len(records)} orders, duplicates: {sum(1 for n in per_number.values() if n > 1)}")
        print(f"outbox messages run: {messages} in {elapsed:.1f} s")
        print(f"orders per second (submitted and confirmed): {confirmed / elapsed:.1f}")
        print(f"API calls: {len(calls)}, per order: {len(calls) / max(confirmed, 1):.2f}")
        for path, count in by_path.most_common():
            print(f"  {count:6d}  {path}")
        ok = confirmed == args.orders and len(records) == args.orders and all(n == 1 for n in per_number.values())
        print("OK" if ok else "FAILED: not every order was confirmed exactly once")
        duplicates = sum(1 for n in per_number.values() if n > 1)
        figure("winedirect_orders", f"{args.orders:,} routed orders submitted and confirmed",
               f"{confirmed / elapsed:.1f} orders/s, {len(calls) / max(confirmed, 1):.2f} API calls per order, "
               f"{duplicates} duplicates", "every order once", ok,
               "WineDirect has no duplicate protection: a resubmitted order lands in Needing Action")
        return 0 if ok else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
