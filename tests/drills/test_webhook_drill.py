"""Webhooks duplicated, reordered and delayed: every Shopify order is created once and ends in the
state of its latest version, whatever order its deliveries arrive in."""

import base64
import hashlib
import hmac
import json
import random

import pytest
from sqlalchemy import select

from tests.framework.conftest import run_jobs
from wms.core.models import Order
from wms.extensions import db
from wms.plugins.models import WebhookEvent

from . import world as drill_world

pytestmark = [pytest.mark.drill]

ORDERS = 30
SHOP = drill_world.SHOPS[0]


def payload(shopify_server, shop, order, topic, minute, **changes):
    body = shopify_server.app.sandbox.payloads.order(shop, order, topic)
    body.update(updated_at=f"2026-12-01T10:0{minute}:00-05:00", **changes)
    return topic, body


def delivery(store_id, topic, body, event_id):
    raw = json.dumps(body).encode()
    signature = base64.b64encode(hmac.new(drill_world.SHOPIFY_SECRET.encode(), raw, hashlib.sha256).digest())
    return f"/webhooks/shopify/{store_id}", raw, {
        "X-Shopify-Topic": topic, "X-Shopify-Event-Id": event_id, "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Hmac-Sha256": signature.decode(), "X-Shopify-API-Version": "2026-10",
        "Content-Type": "application/json"}


def messy(sends, rng):
    """A third of the deliveries twice, all in a random order."""
    sends = sends + [rng.choice(sends) for _ in range(len(sends) // 3)]
    rng.shuffle(sends)
    return sends


def post_all(client, sends):
    for path, body, headers in sends:
        assert client.post(path, data=body, headers=headers).status_code == 200


def test_duplicated_reordered_delayed_webhooks_make_one_order_each(app, client, world, shopify_server):
    store = world.stores[0]
    store.settings = {**store.settings, "order_status": "any"}
    db.session.commit()
    shop = shopify_server.app.sandbox.shops[SHOP]
    rng = random.Random(4)
    placed, first_news = [], []
    for n in range(ORDERS):
        order = shop.place_order([{"variant_id": shop.variant_by_sku(world.products[n].sku).id, "quantity": 1}])
        placed.append(order)
        for topic, body in (payload(shopify_server, shop, order, "orders/create", 0, financial_status="pending"),
                            payload(shopify_server, shop, order, "orders/paid", 1, financial_status="paid")):
            first_news.append(delivery(store.id, topic, body, f"{order.id}-{topic}"))
    first_news = messy(first_news, rng)
    half = len(first_news) // 2
    post_all(client, first_news[:half])
    run_jobs(app)

    cancelled = {str(o.id) for o in placed[::3]}           # cancelled in Shopify while news is still arriving
    later_news = list(first_news[half:])                    # late and stale: written before the cancels
    for order in placed[::3]:
        shop.cancel_order(order, "customer")
        topic, body = payload(shopify_server, shop, order, "orders/cancelled", 2)
        later_news.append(delivery(store.id, topic, body, f"{order.id}-{topic}"))
    post_all(client, messy(later_news, rng))
    run_jobs(app)

    db.session.expire_all()
    orders = db.session.scalars(select(Order).where(Order.store_id == store.id)).all()
    events = db.session.scalars(select(WebhookEvent)).all()
    by_remote = {}
    for o in orders:
        by_remote.setdefault(o.remote_id, []).append(o)
    still_open = {str(o.id) for o in placed} - cancelled
    duplicated = sum(len(v) - 1 for v in by_remote.values())
    print(f"\n[webhooks] deliveries {len(first_news) + len(later_news)}, events stored {len(events)}, "
          f"orders {len(orders)} ({len(still_open)} open in Shopify, {len(cancelled)} cancelled), "
          f"lost {len(still_open - set(by_remote))}, duplicated {duplicated}")
    assert duplicated == 0 and all(e.status == "processed" for e in events)
    assert {r for r, found in by_remote.items() if found[0].status != "cancelled"} == still_open
    # An order cancelled in Shopify is cancelled here, or was never taken in if the cancel came first.
    assert all(by_remote[r][0].status == "cancelled" for r in cancelled if r in by_remote)
    assert any(r in by_remote for r in cancelled)            # some were taken in before their cancel
