"""Tables the plugin framework keeps: plugin state, stores and their mappings, sync state, the
activity log of remote calls, and received webhooks."""

from wms.core.models._base import TimestampMixin, utcnow
from wms.extensions import db

STORE_STATUSES = ("pending", "connected", "disconnected", "token_issue")
SYNC_STATUSES = ("pending", "synced", "failed", "not_required", "voided")


class PluginState(db.Model):
    """Whether a registered plugin is active, and its plugin-wide settings (secrets encrypted)."""

    name = db.Column(db.String(64), primary_key=True)
    is_active = db.Column(db.Boolean, nullable=False, default=False)
    settings = db.Column(db.JSON, nullable=False, default=dict)
    secrets = db.Column(db.Text)            # Fernet token of a JSON object
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)


class Store(TimestampMixin, db.Model):
    """One storefront connected through a marketplace plugin (a Shopify shop, a WooCommerce site)."""

    id = db.Column(db.Integer, primary_key=True)
    plugin = db.Column(db.String(64), nullable=False, index=True)
    name = db.Column(db.String(120), nullable=False)
    remote_address = db.Column(db.String(255), nullable=False, default="")
    status = db.Column(db.String(20), nullable=False, default="pending")
    status_message = db.Column(db.String(1000))
    settings = db.Column(db.JSON, nullable=False, default=dict)
    credentials = db.Column(db.Text)        # Fernet token of a JSON object; never shown back in full
    push_due_at = db.Column(db.DateTime)    # set while a stock push window is open
    push_started_at = db.Column(db.DateTime)  # set while a stock push of this store runs (a lease)

    locations = db.relationship("StoreLocation", back_populates="store", order_by="StoreLocation.id",
                                cascade="all, delete-orphan")

    __table_args__ = (
        db.UniqueConstraint("plugin", "name", name="uq_store_plugin_name"),
        db.CheckConstraint("status in ('pending', 'connected', 'disconnected', 'token_issue')", name="status"),
    )

    def setting(self, key, default=None):
        return (self.settings or {}).get(key, default)

    @property
    def default_location(self):
        return next((loc for loc in self.locations if loc.is_default), None)

    def __repr__(self):
        return f"<Store {self.plugin}:{self.name}>"


class StoreLocation(db.Model):
    """A remote location (a Shopify location, or the single stock of a WooCommerce site) mapped to a
    warehouse and a shipping process. One is the default for new orders."""

    id = db.Column(db.Integer, primary_key=True)
    store_id = db.Column(db.Integer, db.ForeignKey("store.id"), nullable=False, index=True)
    remote_id = db.Column(db.String(120), nullable=False)
    remote_name = db.Column(db.String(200), nullable=False, default="")
    warehouse_id = db.Column(db.Integer, db.ForeignKey("warehouse.id"))
    shipping_process_id = db.Column(db.Integer, db.ForeignKey("shipping_process.id"))
    is_default = db.Column(db.Boolean, nullable=False, default=False)

    store = db.relationship("Store", back_populates="locations")
    warehouse = db.relationship("Warehouse")
    shipping_process = db.relationship("ShippingProcess")

    __table_args__ = (db.UniqueConstraint("store_id", "remote_id", name="uq_store_location_remote"),)


class ProductMapping(db.Model):
    """A WMS product's identity in one store. Created by product sync; never changed by it afterwards."""

    id = db.Column(db.Integer, primary_key=True)
    store_id = db.Column(db.Integer, db.ForeignKey("store.id"), nullable=False, index=True)
    product_id = db.Column(db.Integer, db.ForeignKey("product.id"), nullable=False, index=True)
    remote_product_id = db.Column(db.String(120))
    remote_variant_id = db.Column(db.String(120))
    remote_inventory_id = db.Column(db.String(120))
    remote_sku = db.Column(db.String(64))
    matched_by = db.Column(db.String(20), nullable=False, default="sku")  # sku, barcode, created, manual
    data = db.Column(db.JSON, nullable=False, default=dict)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    product = db.relationship("Product")

    __table_args__ = (
        db.UniqueConstraint("store_id", "product_id", name="uq_product_mapping_product"),
        db.UniqueConstraint("store_id", "remote_variant_id", name="uq_product_mapping_variant"),
    )


class StockPushState(db.Model):
    """Per store and product: has stock changed since the last successful push? (change_seq > pushed_seq)"""

    store_id = db.Column(db.Integer, db.ForeignKey("store.id"), primary_key=True)
    product_id = db.Column(db.Integer, db.ForeignKey("product.id"), primary_key=True)
    change_seq = db.Column(db.Integer, nullable=False, default=0)
    pushed_seq = db.Column(db.Integer, nullable=False, default=0)
    changed_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class RemoteLevel(db.Model):
    """What we last sent for a product at a remote location, and what the remote then held."""

    store_id = db.Column(db.Integer, db.ForeignKey("store.id"), primary_key=True)
    product_id = db.Column(db.Integer, db.ForeignKey("product.id"), primary_key=True)
    remote_location_id = db.Column(db.String(120), primary_key=True)
    pushed_quantity = db.Column(db.Integer)   # what Delta counts from: the WMS available pushed (or the plugin's figure)
    remote_quantity = db.Column(db.Integer)   # the remote's available after that push, as far as we know
    pushed_at = db.Column(db.DateTime)
    status = db.Column(db.String(20), nullable=False, default="synced")
    message = db.Column(db.String(1000))


class SyncRecord(TimestampMixin, db.Model):
    """The sync state of one object with one remote system (an order at Vintrace, a product at WineDirect)."""

    id = db.Column(db.Integer, primary_key=True)
    plugin = db.Column(db.String(64), nullable=False)
    store_id = db.Column(db.Integer, db.ForeignKey("store.id"))
    object_type = db.Column(db.String(40), nullable=False)
    object_id = db.Column(db.Integer, nullable=False)
    status = db.Column(db.String(20), nullable=False, default="pending", index=True)
    message = db.Column(db.String(2000))
    remote_reference = db.Column(db.String(200))
    attempts = db.Column(db.Integer, nullable=False, default=0)
    synced_at = db.Column(db.DateTime)
    data = db.Column(db.JSON, nullable=False, default=dict)

    __table_args__ = (
        db.UniqueConstraint("plugin", "object_type", "object_id", name="uq_sync_record_object"),
        db.CheckConstraint("status in ('pending', 'synced', 'failed', 'not_required', 'voided')", name="status"),
    )


class ActivityLog(db.Model):
    """One call to a remote API. Never holds a credential, token, header or body."""

    id = db.Column(db.Integer, primary_key=True)
    at = db.Column(db.DateTime, nullable=False, default=utcnow, index=True)
    plugin = db.Column(db.String(64), nullable=False, index=True)
    store_id = db.Column(db.Integer, index=True)
    method = db.Column(db.String(10), nullable=False)
    path = db.Column(db.String(1000), nullable=False)
    status = db.Column(db.Integer)
    duration_ms = db.Column(db.Float, nullable=False, default=0)
    error = db.Column(db.String(1000))


class WebhookEvent(db.Model):
    """A verified webhook delivery, stored before it is answered; processed by a job."""

    id = db.Column(db.Integer, primary_key=True)
    plugin = db.Column(db.String(64), nullable=False)
    store_id = db.Column(db.Integer, db.ForeignKey("store.id"), nullable=False)
    topic = db.Column(db.String(120), nullable=False)
    delivery_id = db.Column(db.String(200), nullable=False)
    received_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    payload = db.Column(db.Text, nullable=False)
    status = db.Column(db.String(20), nullable=False, default="received")
    processed_at = db.Column(db.DateTime)
    error = db.Column(db.String(2000))

    __table_args__ = (
        db.UniqueConstraint("plugin", "store_id", "delivery_id", name="uq_webhook_event_delivery"),
    )


class ScheduledRun(db.Model):
    """When each periodic job last ran, so the scheduler starts each one once per interval."""

    name = db.Column(db.String(120), primary_key=True)
    last_run_at = db.Column(db.DateTime)
