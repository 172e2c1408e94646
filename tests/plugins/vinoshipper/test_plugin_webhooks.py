"""Vinoshipper's webhooks reach the WMS over real HTTP (the app on a live server, CSRF on), are stored
once as outbox work and processed by a job that fetches the order and applies its status."""

import pytest
import requests
from sqlalchemy import select

from plugins.vinoshipper import sync
from tests.framework.conftest import run_jobs
from wms.core.models import OutboxMessage, Shipment
from wms.extensions import db
from wms.plugins.models import SyncRecord

from .helpers import place_order

SECRET = "whsec-wms-test-0123456789"


@pytest.fixture
def app_config(redis_url):
    return {"WMS_PLUGINS": ["plugins.vinoshipper"], "REDIS_URL": redis_url, "WMS_RELAY_ON_COMMIT": True,
            "WMS_RETRY_BACKOFF": (1, 1, 1), "WTF_CSRF_ENABLED": True}


def refreshes():
    db.session.expire_all()
    return db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == sync.TOPIC_REFRESH)
                              .order_by(OutboxMessage.id)).all()


def test_signed_webhooks_bring_tracking_back_and_duplicates_change_nothing(
        app, configure, stocked, sandbox, live_server):  # noqa: F811
    configure(webhook_secret=SECRET)
    order = place_order("WMS-W1")
    run_jobs(app)
    sandbox.set_webhook(f"{live_server}/plugins/vinoshipper/webhook", SECRET)

    sandbox.advance("WMS-W1", "SHIPPED")        # label created, then shipped: two events
    assert sandbox.flush_webhooks()
    assert [d["status"] for d in sandbox.deliveries] == [200, 200]
    assert all(d["signature"] for d in sandbox.deliveries)
    assert [m.payload["event"] for m in refreshes()] == ["UPDATED", "TRACKING_NUMBER_ADDED"]
    run_jobs(app)

    shipments = db.session.scalars(select(Shipment).where(Shipment.order_id == order.id)).all()
    assert len(shipments) == 1 and shipments[0].source == "vinoshipper"
    numbers = [p["trackingNumber"] for p in sandbox.orders("WMS-W1")[0]["shipping"]["packages"]]
    assert shipments[0].tracking_number == ", ".join(numbers)

    # The same delivery twice before it is processed is stored once.
    sandbox.send_webhook("WMS-W1", "TRACKING_NUMBER_ADDED")
    sandbox.send_webhook("WMS-W1", "TRACKING_NUMBER_ADDED")
    assert sandbox.flush_webhooks()
    assert [d["status"] for d in sandbox.deliveries[2:]] == [200, 200]
    assert len(refreshes()) == 3
    run_jobs(app)
    assert len(db.session.scalars(select(Shipment)).all()) == 1
    changes = db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "shipment.status_changed")).all()
    assert len(changes) == 1

    sandbox.advance("WMS-W1")                   # delivered
    assert sandbox.flush_webhooks()
    run_jobs(app)
    db.session.expire_all()
    assert db.session.get(Shipment, shipments[0].id).status == "delivered"


def test_the_secret_in_the_url_is_accepted_and_anything_else_refused(
        app, configure, stocked, sandbox, live_server):  # noqa: F811
    url = f"{live_server}/plugins/vinoshipper/webhook"
    body = {"identifier": "WMS-W2", "subject": "ORDER", "event": "UPDATED"}

    configure()                                 # no webhook secret: webhooks are off
    assert requests.post(url, json=body, timeout=5).status_code == 404

    configure(webhook_secret=SECRET)
    order = place_order("WMS-W2")
    run_jobs(app)
    sandbox.set_webhook(f"{url}?token={SECRET}")   # Vinoshipper's form takes a URL only
    sandbox.void("WMS-W2", "Customer called Vinoshipper")
    assert sandbox.flush_webhooks()
    assert sandbox.deliveries[-1]["status"] == 200 and sandbox.deliveries[-1]["signature"] is None
    run_jobs(app)
    db.session.expire_all()
    record = db.session.scalar(select(SyncRecord).where(SyncRecord.object_id == order.id))
    assert record.status == "voided" and "Customer called Vinoshipper" in record.message

    before = len(refreshes())
    assert requests.post(url, json=body, timeout=5).status_code == 401
    assert requests.post(f"{url}?token=wrong", json=body, timeout=5).status_code == 401
    assert requests.post(url, json=body, headers={"X-Vinoshipper-Hmac-Sha256": "bm9wZQ=="},
                         timeout=5).status_code == 401
    assert requests.post(f"{url}?token={SECRET}", data=b"not json", timeout=5).status_code == 400
    unknown = requests.post(f"{url}?token={SECRET}", json={**body, "identifier": "NOT-OURS"}, timeout=5)
    assert unknown.status_code == 200 and "ignored" in unknown.json()
    assert len(refreshes()) == before
