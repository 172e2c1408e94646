"""One WooCommerce store in the WMS: its settings, its client, its bookkeeping, connecting it and its
webhook subscriptions.

Bookkeeping that no admin edits (webhook ids, poll times, catalogue sync progress, the shared
customer) lives in the store's state record, `SyncRecord(object_type="store", object_id=store.id)`:
the core's store settings form rewrites `Store.settings` from the declared settings only.
"""

import os
import secrets
from datetime import datetime

from flask import current_app
from sqlalchemy import select, update

from wms.core.models._base import utcnow
from wms.extensions import db
from wms.integrations.errors import RemoteAuthError
from wms.plugins.models import Store, SyncRecord
from wms.plugins.settings import decrypt, deployment_option, encrypt

from .client import PLUGIN, WooClient

WEBHOOK_TOPICS = ("order.created", "order.updated")
PAID_STATUSES = ("processing", "completed")
PULL_MINUTES_RANGE = (5, 15)
DEFAULT_PULL_MINUTES = 10
DEFAULT_POLL_MINUTES = 10
CA_FILE_CONFIG = "WOOCOMMERCE_CA_FILE"
DEMO_TLS_FOLDER = "woocommerce-sandbox-tls"


# -- settings -----------------------------------------------------------------------------------

def woo_stores(connected_only=True):
    query = select(Store).where(Store.plugin == PLUGIN).order_by(Store.id)
    if connected_only:
        query = query.where(Store.status == "connected")
    return db.session.scalars(query).all()


def stock_authority(store):
    return store.setting("stock_authority") or "wms"


def woo_is_authority(store):
    return stock_authority(store) == "woocommerce"


def pull_minutes(store):
    low, high = PULL_MINUTES_RANGE
    return min(high, max(low, int(store.setting("stock_pull_minutes") or DEFAULT_PULL_MINUTES)))


def poll_minutes(store):
    return max(1, int(store.setting("order_poll_minutes") or DEFAULT_POLL_MINUTES))


def order_statuses(store):
    return list(store.setting("order_statuses") or PAID_STATUSES)


def credentials(store):
    return decrypt(store.credentials)


def sync_push_flag(store):
    """The core pushes stock to stores whose `stock_sync` is on: on exactly when the WMS is the authority."""
    wanted = not woo_is_authority(store)
    if bool(store.setting("stock_sync")) != wanted:
        store.settings = {**(store.settings or {}), "stock_sync": wanted}
    return wanted


# -- the client -----------------------------------------------------------------------------------

def ca_bundle():
    """What verifies the store's certificate: the system CAs, or a CA file given in config (tests) or
    made by the demo sandbox. Verification is never switched off."""
    configured = deployment_option(CA_FILE_CONFIG)
    if configured:
        return configured
    if current_app.config.get("WMS_DEMO"):
        demo_ca = os.path.join(current_app.instance_path, DEMO_TLS_FOLDER, "woocommerce-sandbox-ca.pem")
        if os.path.exists(demo_ca):
            return demo_ca
    return True


def make_client(store, **options):
    keys = credentials(store)
    options.setdefault("timeout", deployment_option("WOOCOMMERCE_TIMEOUT", (5, 30)))
    options.setdefault("verify", ca_bundle())
    if "WOOCOMMERCE_SLEEP" in current_app.config:
        options.setdefault("sleep", current_app.config["WOOCOMMERCE_SLEEP"])
    return WooClient(store.remote_address, keys.get("consumer_key", ""), keys.get("consumer_secret", ""),
                     query_string_auth=bool(store.setting("query_string_auth")), store_id=store.id, **options)


# -- the state record ----------------------------------------------------------------------------------

def state_record(store):
    record = db.session.scalar(select(SyncRecord).where(
        SyncRecord.plugin == PLUGIN, SyncRecord.object_type == "store", SyncRecord.object_id == store.id))
    if record is None:
        record = SyncRecord(plugin=PLUGIN, store_id=store.id, object_type="store", object_id=store.id,
                            status="pending", data={}, message="Not connected yet.")
        db.session.add(record)
        db.session.flush()
    return record


def state(store):
    return dict(state_record(store).data or {})


def save_state(store, **values):
    record = state_record(store)
    record.data = {**(record.data or {}), **values}
    return record.data


def write_state_now(store_id, **values):
    """Update the state record in its own short transaction, so a page sees it while a long job runs."""
    with db.engine.begin() as connection:
        row = connection.execute(select(SyncRecord.id, SyncRecord.data).where(
            SyncRecord.plugin == PLUGIN, SyncRecord.object_type == "store",
            SyncRecord.object_id == store_id)).first()
        if row is None:
            return
        connection.execute(update(SyncRecord).where(SyncRecord.id == row.id)
                           .values(data={**(row.data or {}), **values}, updated_at=utcnow()))


def now_text():
    return utcnow().isoformat(timespec="seconds")


def parse_time(text):
    return datetime.fromisoformat(text) if text else None


# -- connecting ----------------------------------------------------------------------------------

def webhook_url(store):
    """The core's webhook intake for this store on the app's public address (jobs have no request)."""
    base = current_app.config.get("WMS_PUBLIC_URL", "").rstrip("/")
    return f"{base}/webhooks/{PLUGIN}/{store.id}"


def webhook_secret(store):
    """The store's signing secret, made on first connect and kept with its credentials."""
    keys = credentials(store)
    if not keys.get("webhook_secret"):
        keys["webhook_secret"] = secrets.token_urlsafe(32)
        store.credentials = encrypt(keys)
    return keys["webhook_secret"]


def connect(store):
    """Test Connection: store info, write permission, then our webhook subscriptions. Returns the
    message for the admin; raises the client's error (with its message and fix) on failure.

    Every remote call happens before the session writes anything, so no transaction stays open."""
    client = make_client(store)
    check = client.check_connection()
    secret = webhook_secret(store)
    db.session.commit()
    hooks = ensure_webhooks(client, webhook_url(store), secret)
    info = check.store
    save_state(store, wc_version=info.wc_version, wp_version=info.wp_version, currency=info.currency,
               product_count=check.product_count, connected_at=now_text(), webhooks=hooks,
               webhooks_checked_at=now_text())
    record = state_record(store)
    record.status, record.message = "synced", None
    sync_push_flag(store)
    return (f"WooCommerce {info.wc_version} on WordPress {info.wp_version}, {check.product_count} products, "
            f"currency {info.currency or '?'}; the key can read and write; "
            f"{len(hooks)} webhook subscription(s) for {', '.join(WEBHOOK_TOPICS)}.")


def ensure_webhooks(client, delivery_url, secret):
    """One active subscription per topic to our delivery URL: existing ones are kept (their secret
    updated), missing ones created. Returns [{id, topic, status}]."""
    ours = {w.topic: w for w in client.list_webhooks() if w.delivery_url == delivery_url}
    kept = []
    for topic in WEBHOOK_TOPICS:
        hook = ours.get(topic)
        if hook is None:
            hook = client.create_webhook(topic, delivery_url, secret, name=f"WMS {topic}")
        else:
            client.update_webhook(hook.id, {"secret": secret})
        kept.append({"id": hook.id, "topic": hook.topic, "status": hook.status})
    return kept


def refresh_webhooks(store):
    """Read the status of our subscriptions (WooCommerce disables one after repeated failed deliveries)."""
    client = make_client(store)
    known = {h["id"] for h in state(store).get("webhooks", [])}
    db.session.commit()
    hooks = [{"id": w.id, "topic": w.topic, "status": w.status} for w in client.list_webhooks()
             if w.id in known or w.delivery_url == webhook_url(store)]
    save_state(store, webhooks=hooks, webhooks_checked_at=now_text())
    return hooks


def reenable_webhooks(store):
    """Set every subscription of ours that is not active back to active. Returns the topics re-enabled."""
    client = make_client(store)
    hooks = refresh_webhooks(store)
    db.session.commit()
    enabled = []
    for hook in hooks:
        if hook["status"] != "active":
            client.set_webhook_status(hook["id"], "active")
            hook["status"] = "active"
            enabled.append(hook["topic"])
    save_state(store, webhooks=hooks, webhooks_checked_at=now_text())
    return enabled


def note_failure(store, error):
    """A failed call: the store moves to token_issue (keys) or disconnected, with the message."""
    store.status = "token_issue" if isinstance(error, RemoteAuthError) else "disconnected"
    store.status_message = error.message[:1000]
    record = state_record(store)
    record.status, record.message = "failed", error.message[:2000]
