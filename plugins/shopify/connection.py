"""How the plugin reaches one connected shop: `client_for(store)` gives a ShopifyClient with the
store's tokens, refreshing an expiring token before it lapses and saving every new token pair.

Store fields the plugin uses
    Store.remote_address   "https://<shop>.myshopify.com"
    Store.credentials      encrypted JSON {"access_token", "refresh_token", "expires_at"} (epoch seconds)
    Store.settings         see STORE_SETTING_KEYS

The core's store page saves only the settings a plugin declares, so what the plugin writes itself
(tokens, the shop, the sandbox address, the reconciliation cursor) is also kept in one SyncRecord per
store (object_type "shopify_connection") and read from there when the store's copy is missing;
`restore(store)` (run on wms_store_saved) puts it back on the store.
"""

import time
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select

from wms.extensions import db
from wms.integrations.errors import RemoteAuthError, TransientRemoteError
from wms.plugins.models import SyncRecord
from wms.plugins.settings import decrypt, deployment_option, encrypt

from .client import ShopifyClient

PLUGIN = "shopify"
CONNECTION_RECORD = "shopify_connection"
WRITTEN_KEYS = ("shop", "api_base_url", "scopes", "webhooks", "orders_checked_at")
REFRESH_MARGIN_SECONDS = 300  # refresh this long before the access token expires

# Keys of Store.settings this plugin reads and writes (the admin edits the first group on the store page).
STORE_SETTING_KEYS = {
    "stock_sync": "bool: push stock to Shopify (off until the admin enables it)",
    "stock_mode": "'absolute' (overwrite Shopify's available) or 'delta' (send only the change)",
    "push_window_seconds": "int: the grouping window of stock pushes (the app's default when empty)",
    "order_status": "which orders to import: 'any', 'open' (not cancelled or closed)",
    "financial_status": "list of Shopify financial statuses to import (empty: all)",
    "fulfillment_status": "list of Shopify fulfillment statuses to import (empty: all)",
    "notify_customer": "bool: Shopify emails the customer when a shipment's tracking is sent",
    "return_sync": "bool: import Shopify returns as expected returns (off by default)",
    "auto_close": "bool: close the return and the order in Shopify once the return is received",
    # written by the plugin
    "shop": "the shop's myshopify domain",
    "api_base_url": "demo and test only: the sandbox address serving this shop",
    "scopes": "the access scopes the shop granted",
    "webhooks": "the webhook topics subscribed, and where to",
    "orders_checked_at": "ISO time up to which reconciliation has read updated orders",
}


def connection_record(store, create=False):
    record = db.session.scalar(select(SyncRecord).where(
        SyncRecord.plugin == PLUGIN, SyncRecord.object_type == CONNECTION_RECORD, SyncRecord.object_id == store.id))
    if record is None and create:
        record = SyncRecord(plugin=PLUGIN, store_id=store.id, object_type=CONNECTION_RECORD, object_id=store.id,
                            status="synced", data={}, message="Connection details of the Shopify store.")
        db.session.add(record)
    return record


def written(store, key, default=None):
    """A value the plugin wrote for the store (see WRITTEN_KEYS)."""
    value = store.setting(key)
    if value is None:
        record = connection_record(store)
        value = (record.data or {}).get(key) if record else None
    return default if value is None else value


def remember(store, **values):
    """Write plugin-owned values on the store and in its connection record (flushes, does not commit)."""
    unknown = set(values) - set(WRITTEN_KEYS)
    if unknown:
        raise ValueError(f"not a plugin-written store key: {sorted(unknown)}")
    store.settings = {**(store.settings or {}), **values}
    record = connection_record(store, create=True)
    record.data = {**(record.data or {}), **values}
    db.session.flush()


def stored_credentials(store):
    credentials = decrypt(store.credentials)
    if not credentials.get("access_token"):
        record = connection_record(store)
        credentials = decrypt((record.data or {}).get("credentials")) if record else {}
    return credentials


def save_credentials(store, credentials):
    token = encrypt(credentials)
    store.credentials = token
    record = connection_record(store, create=True)
    record.data = {**(record.data or {}), "credentials": token}
    db.session.flush()


def restore(store):
    """Put the plugin-written settings and tokens back on a store whose settings were saved."""
    record = connection_record(store)
    if record is None:
        return False
    data = record.data or {}
    missing = {k: data[k] for k in WRITTEN_KEYS if k in data and store.setting(k) is None}
    if missing:
        store.settings = {**(store.settings or {}), **missing}
    lost_tokens = bool(data.get("credentials")) and not decrypt(store.credentials).get("access_token")
    if lost_tokens:
        store.credentials = data["credentials"]
    return bool(missing) or lost_tokens


def shop_domain(store):
    """The myshopify domain of the store ("winery.myshopify.com")."""
    return written(store, "shop") or urlsplit(store.remote_address or "").hostname or ""


def base_url_for(store):
    """Where the shop's Admin API answers: the sandbox in demo and test, else https://{shop}."""
    sandbox_url = written(store, "api_base_url")
    if sandbox_url and local_remotes_allowed():
        return sandbox_url.rstrip("/")
    return f"https://{shop_domain(store)}"


def local_remotes_allowed():
    config = current_app.config
    return bool(config.get("TESTING") or config.get("WMS_DEMO") or config.get("WMS_ALLOW_PRIVATE_REMOTES"))


def app_credentials():
    """(client id, client secret) of the Shopify app, from the plugin's settings."""
    from wms.plugins.manager import plugin_host
    config = plugin_host().get(PLUGIN).config()
    return config.get("client_id") or "", config.get("client_secret") or ""


def client_for(store, **options):
    """A client for `store`, with a live access token (refreshed first when it expires soon).

    A refresh that Shopify refuses marks the store "token_issue" and raises TransientRemoteError so the
    job is retried (and succeeds once the admin reconnects the store).
    """
    client_id, client_secret = app_credentials()
    credentials = stored_credentials(store)
    options.setdefault("timeout", deployment_option("SHOPIFY_TIMEOUT", (5, 30)))
    client = StoreClient(store, shop_domain(store), credentials.get("access_token"), client_id=client_id,
                         client_secret=client_secret, refresh_token=credentials.get("refresh_token"),
                         base_url=base_url_for(store), store_id=store.id,
                         allow_private=local_remotes_allowed(), **options)
    expires_at = credentials.get("expires_at")
    if client.refresh_token and expires_at and expires_at - time.time() < REFRESH_MARGIN_SECONDS:
        client.refresh_access_token()
    return client


def save_tokens(store, tokens):
    """Store a new token pair at once: Shopify's refresh tokens work only once, so losing one to a
    rolled-back job would lock the store out."""
    credentials = stored_credentials(store)
    credentials.update(access_token=tokens.access_token, expires_at=tokens.expires_at)
    if tokens.refresh_token:
        credentials["refresh_token"] = tokens.refresh_token
    save_credentials(store, credentials)
    if store.status == "token_issue":
        store.status, store.status_message = "connected", None
    db.session.commit()


def mark_token_issue(store, message):
    store.status = "token_issue"
    store.status_message = message[:1000]
    db.session.commit()


class StoreClient(ShopifyClient):
    """A ShopifyClient bound to one Store: new tokens are saved, refused refreshes are made visible."""

    def __init__(self, store, shop, access_token, **options):
        super().__init__(shop, access_token, on_tokens=lambda tokens: save_tokens(store, tokens), **options)
        self.store = store

    def refresh_access_token(self):
        try:
            return super().refresh_access_token()
        except RemoteAuthError as exc:
            message = (f"Shopify refused to renew the access token ({exc.message}). Reconnect the store "
                       "(Add Store with the same shop domain) to authorise the app again.")
            mark_token_issue(self.store, message)
            raise TransientRemoteError(message, status=exc.status, code="token_issue") from exc


# -- the app's addresses ---------------------------------------------------------------------------------
def app_url():
    """The public address of this WMS, as Shopify must reach it (callbacks, webhooks)."""
    from wms.plugins.manager import plugin_host
    configured = plugin_host().get(PLUGIN).config().get("app_url")
    return (configured or current_app.config.get("WMS_PUBLIC_URL") or "").rstrip("/")


def callback_url():
    return f"{app_url()}/plugins/shopify/oauth/callback"


def webhook_url(store):
    return f"{app_url()}/webhooks/shopify/{store.id}"


def compliance_url():
    return f"{app_url()}/plugins/shopify/webhooks/compliance"


# -- webhook subscriptions (a remote write, so an outbox job) ---------------------------------------------
SUBSCRIBE_TOPIC = "shopify.subscribe_webhooks"
ORDER_TOPICS = ("orders/create", "orders/updated", "orders/paid", "orders/cancelled")
RETURN_TOPICS = ("returns/request", "returns/approve", "returns/decline", "returns/close")
APP_TOPICS = ("app/uninstalled",)


def wanted_topics(store):
    topics = ORDER_TOPICS + APP_TOPICS
    return topics + RETURN_TOPICS if store.setting("return_sync") else topics


def subscribe_job(payload):
    from wms.plugins.models import Store
    store = db.session.get(Store, payload["store_id"])
    if store is None or store.status not in ("connected", "token_issue"):
        return
    uri = webhook_url(store)
    subscribed = client_for(store).subscribe_webhooks({topic: uri for topic in wanted_topics(store)})
    remember(store, webhooks=sorted({s["topic"] for s in subscribed}))


def store_saved(store):
    """After the store page saved the settings: keep the connection, and subscribe what return sync needs."""
    from wms import outbox
    restore(store)
    if store.status == "connected":
        outbox.emit(SUBSCRIBE_TOPIC, {"store_id": store.id})


# -- connecting a store by OAuth -----------------------------------------------------------------------------
OAUTH_RECORD = "shopify_oauth"
STATE_LIFETIME_SECONDS = 600
SCOPES = ("read_products", "write_products", "read_inventory", "write_inventory", "read_locations",
          "read_orders", "write_orders", "read_merchant_managed_fulfillment_orders",
          "write_merchant_managed_fulfillment_orders", "read_returns", "write_returns")


class InstallRefused(Exception):
    """The OAuth callback cannot connect the store; `message` says why, for the admin."""

    def __init__(self, message, store=None):
        super().__init__(message)
        self.message = message
        self.store = store


def _digest(text):
    import hashlib
    return hashlib.sha256(str(text).encode()).hexdigest()


def _oauth_record(store_id):
    return db.session.scalar(select(SyncRecord).where(
        SyncRecord.plugin == PLUGIN, SyncRecord.object_type == OAUTH_RECORD, SyncRecord.object_id == store_id))


def start_install(store, user_id, session_binding):
    """Remember a new single-use state for `store` (replacing an earlier attempt); return the authorize URL.

    The state is bound to the admin's browser session (`session_binding`, a random value kept in the
    session) and user, and lives STATE_LIFETIME_SECONDS.
    """
    from .client import authorize_url, new_state
    nonce = new_state()
    record = _oauth_record(store.id)
    if record is None:
        record = SyncRecord(plugin=PLUGIN, store_id=store.id, object_type=OAUTH_RECORD, object_id=store.id)
        db.session.add(record)
    record.status, record.message = "pending", "Waiting for the shop owner to install the app in Shopify."
    record.data = {"nonce": _digest(nonce), "binding": _digest(session_binding), "user_id": user_id,
                   "expires_at": time.time() + STATE_LIFETIME_SECONDS}
    db.session.flush()
    client_id, _ = app_credentials()
    return authorize_url(shop_domain(store), client_id, SCOPES, callback_url(), f"{store.id}.{nonce}",
                         base_url=base_url_for(store))


def _claim_state(state, user_id, session_binding):
    """The store whose install `state` is for; the state is used up whatever happens next."""
    import hmac
    from wms.plugins.models import Store
    store_part, _, nonce = str(state or "").partition(".")
    record = _oauth_record(int(store_part)) if store_part.isdigit() else None
    data = (record.data or {}) if record else {}
    if record is None or record.status != "pending" or not hmac.compare_digest(data.get("nonce", ""), _digest(nonce)):
        raise InstallRefused("This Shopify authorisation link was already used or is unknown. Start again with "
                             "Add Store.")
    record.status, record.data = "voided", {}
    record.message = "Authorisation link used."
    db.session.commit()
    store = db.session.get(Store, record.object_id)
    if data.get("expires_at", 0) < time.time():
        raise InstallRefused("The Shopify authorisation took too long (over 10 minutes). Start again with "
                             "Add Store.", store)
    if not hmac.compare_digest(data.get("binding", ""), _digest(session_binding or "")) or \
            data.get("user_id") != user_id:
        raise InstallRefused("This Shopify authorisation was started in another browser session. Sign in and "
                             "start again with Add Store from this browser.", store)
    return store


def finish_install(query, user_id, session_binding):
    """Verify the OAuth callback, exchange the code for an expiring offline token, read the locations
    and queue the webhook subscriptions. Returns the connected store; raises InstallRefused."""
    from .client import OAuthCallbackRejected, verify_callback
    store = _claim_state(query.get("state"), user_id, session_binding)
    client_id, secret = app_credentials()
    try:
        shop = verify_callback(query, secret, expected_state=query.get("state"))
    except OAuthCallbackRejected as exc:
        raise InstallRefused(exc.message, store) from exc
    if shop != shop_domain(store):
        raise InstallRefused(f"Shopify answered for {shop}, but this authorisation was for "
                             f"{shop_domain(store)}.", store)
    client = ShopifyClient(shop, client_id=client_id, client_secret=secret, base_url=base_url_for(store),
                           store_id=store.id, allow_private=local_remotes_allowed())
    try:
        tokens = client.exchange_code(query.get("code", ""))
        locations = client.list_locations()
    except RemoteAuthError as exc:
        raise InstallRefused(exc.message, store) from exc
    save_credentials(store, {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
                             "expires_at": tokens.expires_at})
    from datetime import datetime, timezone
    checked = written(store, "orders_checked_at") or datetime.now(timezone.utc).isoformat()
    remember(store, scopes=list(tokens.scopes), orders_checked_at=checked)  # reconcile from the first install on
    store.status, store.status_message = "connected", None
    add_locations(store, locations)
    from wms import outbox
    outbox.emit(SUBSCRIBE_TOPIC, {"store_id": store.id})
    db.session.commit()
    return store


def add_locations(store, locations):
    """List the shop's locations on the store (new ones unmapped; known ones renamed)."""
    from wms.plugins.models import StoreLocation
    known = {loc.remote_id: loc for loc in store.locations}
    for location in locations:
        name = location["name"] + ("" if location["is_active"] else " (inactive)")
        if location["id"] in known:
            known[location["id"]].remote_name = name[:200]
        else:
            store.locations.append(StoreLocation(remote_id=location["id"], remote_name=name[:200]))
    db.session.flush()
