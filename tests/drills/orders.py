"""Orders in the fault drills: placed at the Shopify and WooCommerce sandboxes, brought into the WMS by
the sandboxes' own signed webhooks (some delivered twice) and by the plugins' reconciliation and poll
jobs, picked, packed and shipped in the WMS, and counted afterwards on both sides."""

import random
from dataclasses import dataclass

from sqlalchemy import func, select

from plugins.shopify import orders as shopify_orders
from plugins.woocommerce import orders as woo_orders
from tests.worker_processes import wait_until
from wms import outbox
from wms.core.models import LocationLevel, Order, OutboxMessage
from wms.core.services import orders as order_service
from wms.extensions import db

# Outbox topics that bring orders in or send their tracking back.
ORDER_TOPICS = ("webhook.received", "order.created", "order.routed", "order.cancelled", "shipment.status_changed",
                shopify_orders.RECONCILE_TOPIC, shopify_orders.RECONCILE_STORE_TOPIC, "shopify.create_fulfillment",
                woo_orders.POLL_TOPIC, woo_orders.TRACKING_TOPIC, woo_orders.MIRROR_TOPIC)
BILLING = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "address_1": "1 Vine St",
           "city": "Napa", "state": "CA", "postcode": "94558", "country": "US"}
SHOPIFY_API_VERSION = "2026-10"


@dataclass
class PlacedOrder:
    store: object       # the WMS Store the order belongs to
    remote_id: str      # its id at the sandbox


# -- at the sandboxes --------------------------------------------------------------------------------------
def place_orders(world, per_store, seed=30):
    """`per_store` orders at each store's sandbox, of one or two wines the WMS has in stock. No wine is in
    two orders, so every order is reserved in full and can ship."""
    rng = random.Random(seed)
    levels = world.wms_levels()
    wines = [p.sku for p in world.products if levels[p.sku] >= 3]
    rng.shuffle(wines)
    placed = []
    for store in world.stores:
        for _ in range(per_store):
            lines = [{"sku": wines.pop(), "quantity": rng.randint(1, 3)} for _ in range(rng.randint(1, 2))]
            placed.append(PlacedOrder(store, place_at_sandbox(world, store, lines)))
    return placed


def place_at_sandbox(world, store, lines):
    if store.plugin == "shopify":
        sandbox = world.shopify.app.sandbox
        shop = sandbox.shops[store.setting("shop")]
        with sandbox.lock:
            return str(shop.place_order(lines, location_id=shop.primary_location.id).id)
    # A paid checkout; the sandbox delivers its order.created and order.updated webhooks at once.
    return str(world.woo.app.sandbox.place_paid_order(lines, BILLING)["id"])


def point_woo_webhooks_at(world, wms_url):
    """The world connected WooCommerce with a public URL where nothing listens; now its webhooks reach
    the WMS served at `wms_url`."""
    sandbox = world.woo.app.sandbox
    with sandbox.lock:
        for webhook in sandbox.webhooks.values():
            path = "/webhooks/" + webhook["delivery_url"].split("/webhooks/", 1)[1]
            webhook.update(delivery_url=wms_url + path, status="active", failure_count=0)


def deliver_shopify_webhooks(world, placed, wms_url, topics, rng):
    """The Shopify sandbox's own signed deliveries of each topic for each of its orders, a third of
    them twice (same event id)."""
    sandbox = world.shopify.app.sandbox
    for order in placed:
        if order.store.plugin != "shopify":
            continue
        shop = sandbox.shops[order.store.setting("shop")]
        for topic in topics:
            with sandbox.lock:
                payload = sandbox.payloads.order(shop, shop.orders[int(order.remote_id)], topic)
            sandbox.webhooks.deliver(shop, topic, payload, f"{wms_url}/webhooks/shopify/{order.store.id}",
                                     SHOPIFY_API_VERSION, duplicates=int(rng.random() < 1 / 3))


def redeliver_woo_webhooks(world, rng, share=1 / 3):
    """WooCommerce sends a share of its past order deliveries again, byte for byte."""
    sandbox = world.woo.app.sandbox
    past = [d for d in list(sandbox.deliveries) if d.get("delivery_id") and d["topic"].startswith("order.")]
    for delivery in rng.sample(past, round(len(past) * share)):
        sandbox.redeliver(delivery["delivery_id"])


def wait_for_webhook_deliveries(world, timeout=30):
    assert world.shopify.app.sandbox.webhooks.wait_idle(timeout), "Shopify webhook deliveries still pending"


# -- in the WMS --------------------------------------------------------------------------------------------
def queue_order_imports(world):
    """Now, what the schedules start every few minutes: Shopify's reconciliation, WooCommerce's poll."""
    outbox.emit(shopify_orders.RECONCILE_TOPIC, {})
    for store in world.stores:
        if store.plugin == "woocommerce":
            outbox.emit(woo_orders.POLL_TOPIC, {"store_id": store.id})
    db.session.commit()


def wms_orders(order):
    """The WMS orders of one placed order (one, when all is well)."""
    return db.session.scalars(select(Order).where(Order.store_id == order.store.id,
                                                  Order.remote_id == order.remote_id)).all()


def missing(placed):
    db.session.commit()   # a fresh read: the workers commit in other processes
    return [order for order in placed if not wms_orders(order)]


def wait_for_orders(placed, timeout):
    wait_until(lambda: not missing(placed), timeout, "every placed order in the WMS")


def ship_some(world, placed, share, rng):
    """Pick, pack and ship `share` of the placed orders in the WMS, each with its own tracking number."""
    shipped = rng.sample(placed, round(len(placed) * share))
    for order in shipped:
        [wms_order] = wms_orders(order)
        pick_and_pack(world, wms_order)
        number = f"1ZDRILL{wms_order.id:010d}"
        order_service.ship(wms_order, carrier="UPS", tracking_number=number,
                           tracking_url=f"https://www.ups.com/track?tracknum={number}")
        db.session.commit()
    return shipped


def pick_and_pack(world, wms_order):
    for line in wms_order.lines:
        left = line.quantity
        for where in world.bins:
            level = db.session.get(LocationLevel, (line.product_id, where.id), populate_existing=True)
            take = min(left, level.on_hand if level else 0)
            if take:
                order_service.pick(line, where, take)
                left -= take
    order_service.pack(wms_order)


# -- counts ------------------------------------------------------------------------------------------------
def duplicated_orders():
    """WMS orders beyond the first for one store order."""
    counts = db.session.execute(select(func.count()).select_from(Order).where(Order.remote_id.is_not(None))
                                .group_by(Order.store_id, Order.remote_id)).scalars()
    return sum(n - 1 for n in counts)


def tracking_sent(world, order):
    """How many times the store was told the order shipped: fulfillments in Shopify, tracking notes in
    WooCommerce."""
    if order.store.plugin == "shopify":
        shop = world.shopify.app.sandbox.shops[order.store.setting("shop")]
        return len(shop.orders[int(order.remote_id)].fulfillment_ids)
    return woo_tracking_notes(world.woo.app.sandbox, int(order.remote_id))


def woo_tracking_notes(sandbox, order_id):
    return sum(1 for note in sandbox.order_notes(order_id)
               if note["customer_note"] and note["note"].startswith("Your order has shipped"))


def duplicated_tracking(world):
    """Fulfillments (Shopify) and tracking notes (WooCommerce) beyond one per sandbox order."""
    counts = [len(o.fulfillment_ids) for shop in world.shopify.app.sandbox.shops.values()
              for o in list(shop.orders.values())]
    woo = world.woo.app.sandbox
    counts += [woo_tracking_notes(woo, order_id) for order_id in list(woo.orders)]
    return sum(max(n - 1, 0) for n in counts)


def woo_status(world, order):
    return world.woo.app.sandbox.order(int(order.remote_id))["status"]


def given_up_order_work():
    return db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.topic.in_(ORDER_TOPICS), OutboxMessage.status.in_(("failed", "dead"))))
