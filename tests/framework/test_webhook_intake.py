"""Webhook intake: a delivery is verified, stored once and queued; which stores take deliveries is kept
per process for a few seconds (wms.web.webhook_targets), and a change made in this process applies at
once."""

import hashlib
import hmac
import json

from sqlalchemy import func, select, text

from tests.framework import sample_sandbox
from tests.framework.conftest import make_store
from wms.extensions import db
from wms.plugins.models import WebhookEvent
from wms.plugins.settings import encrypt
from wms.web import webhook_targets


def post(client, store, delivery, token=sample_sandbox.TOKEN):
    body = json.dumps({"id": delivery, "number": f"#{delivery}", "lines": []}).encode()
    signature = hmac.new(token.encode(), body, hashlib.sha256).hexdigest()
    return client.post(f"/webhooks/sampleshop/{store.id}", data=body, headers={
        "X-Sample-Signature": signature, "X-Sample-Topic": "order", "X-Sample-Delivery": f"d-{delivery}"})


def stored_events():
    return db.session.scalar(select(func.count()).select_from(WebhookEvent))


def test_a_delivery_is_stored_once_and_a_bad_signature_changes_nothing(app, client, active_plugin, warehouse,
                                                                        products):
    store = make_store("Intake", "http://127.0.0.1:9", warehouse, products)
    assert post(client, store, 1).get_json() == {"ok": True}
    assert post(client, store, 1).get_json() == {"ok": True, "duplicate": True}
    refused = post(client, store, 2, token="not-the-secret")
    assert refused.status_code == 401 and refused.get_json()["code"] == "bad_signature"
    assert stored_events() == 1


def test_deactivating_the_plugin_here_refuses_deliveries_at_once(app, client, active_plugin, warehouse, products):
    from wms.plugins.manager import plugin_host
    store = make_store("Intake", "http://127.0.0.1:9", warehouse, products)
    assert post(client, store, 1).status_code == 200
    plugin_host().set_active("sampleshop", False)
    db.session.commit()
    answer = post(client, store, 2)
    assert answer.status_code == 404 and answer.get_json()["code"] == "unknown_store"
    assert stored_events() == 1


def test_a_new_store_secret_saved_here_is_used_at_once(app, client, active_plugin, warehouse, products):
    store = make_store("Intake", "http://127.0.0.1:9", warehouse, products)
    assert post(client, store, 1).status_code == 200
    store.credentials = encrypt({"token": "rotated-secret"})
    db.session.commit()
    assert post(client, store, 2).status_code == 401
    assert post(client, store, 3, token="rotated-secret").status_code == 200


def test_a_change_made_by_another_process_applies_within_the_keep_time(app, client, active_plugin, warehouse,
                                                                       products, monkeypatch):
    store = make_store("Intake", "http://127.0.0.1:9", warehouse, products)
    assert post(client, store, 1).status_code == 200
    with db.engine.begin() as connection:   # as another process would: no ORM flush in this one
        connection.execute(text("UPDATE plugin_state SET is_active = false WHERE name = 'sampleshop'"))
    assert post(client, store, 2).status_code == 200     # still the kept copy
    later = webhook_targets.monotonic() + webhook_targets.KEEP_SECONDS + 1
    monkeypatch.setattr(webhook_targets, "monotonic", lambda: later)
    assert post(client, store, 3).status_code == 404
    assert stored_events() == 2
