"""Base classes for plugins, and the small value types hooks return.

A plugin is one instance of a subclass of `MarketplacePlugin` (stores that sell: Shopify,
WooCommerce) or `FulfillmentPlugin` (partners that ship or record orders: WineDirect, Vintrace,
Vinoshipper). It declares its settings; the admin pages are rendered from those declarations.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from . import hookimpl


@dataclass(frozen=True)
class Setting:
    """One setting. type: string, secret, text, url, int, bool, choice, multichoice."""

    key: str
    label: str
    type: str = "string"
    help: str = ""
    required: bool = False
    default: object = None
    choices: tuple = ()          # ((value, label), ...) for choice and multichoice

    @property
    def is_secret(self):
        return self.type == "secret"


@dataclass(frozen=True)
class MenuItem:
    endpoint: str
    label: str
    order: int = 100


@dataclass
class Panel:
    """A block on a core page: a title and HTML rendered by the plugin (from its own template)."""

    title: str
    html: str
    order: int = 100


@dataclass(frozen=True)
class ScheduledJob:
    """Every `interval_seconds`, emit outbox `topic` with `payload`."""

    name: str
    topic: str
    interval_seconds: int
    payload: dict = field(default_factory=dict)


@dataclass
class StockPushItem:
    """One quantity to publish: a product at one remote location of a store."""

    product_id: int
    sku: str
    mapping: object                  # ProductMapping
    remote_location_id: str
    quantity: int                    # what the store should show as available
    pushed_quantity: int | None      # what we pushed last time (None: never)
    remote_quantity: int | None      # what the remote held after that, as far as we know


@dataclass
class PushResult:
    product_id: int
    remote_location_id: str
    ok: bool
    remote_quantity: int | None = None
    message: str | None = None
    pushed_quantity: int | None = None   # what the next push counts from, when not the item's quantity


class WMSPlugin(ABC):
    name = ""
    title = ""
    kind = "other"
    description = ""
    settings = ()            # plugin-wide settings (PluginState)
    store_settings = ()      # per-store settings (Store.settings)
    guide_template = None    # e.g. "shopify/guide.html"
    settings_template = None # a richer settings page of its own, if any
    blueprint = None
    sandbox = None           # "module:factory" of its sandbox WSGI app, served in demo mode

    @hookimpl
    def wms_blueprints(self):
        return [self.blueprint] if self.blueprint is not None else []

    def config(self):
        """Plugin-wide settings with defaults applied and secrets decrypted."""
        from .settings import plugin_config
        return plugin_config(self)

    @abstractmethod
    def test_connection(self, store=None):
        """Return (ok, message) after one real call to the remote API."""

    def __repr__(self):
        return f"<plugin {self.name}>"


class MarketplacePlugin(WMSPlugin):
    """A storefront: stores, product mapping, order intake, stock push, tracking back."""

    kind = "marketplace"
    add_store_endpoint = None   # an endpoint of the plugin's own blueprint that starts connecting a store
    stock_modes = (("absolute", "Absolute: overwrite the store's available"),
                   ("delta", "Delta: send only the change since the last sync"))

    @abstractmethod
    def push_stock(self, store, items):
        """Publish `items` (a list of StockPushItem, batched as the API allows); return PushResults."""

    def remote_locations(self, store):
        """Return [(remote_id, name)] of the store's stock locations."""
        return [("default", "Store stock")]

    @abstractmethod
    def verify_webhook(self, store, headers, body):
        """True when the raw `body` is signed by the store (constant-time comparison)."""

    @abstractmethod
    def webhook_delivery(self, store, headers, body):
        """Return (topic, delivery id) for deduplication, or None for a delivery to acknowledge and drop."""

    @abstractmethod
    def handle_webhook(self, store, event):
        """Process a stored WebhookEvent. Runs in a worker; must be idempotent."""

    def tag_order(self, store, order, tags, note=None):
        """Add `tags` (and `note`, if given) to the store's copy of `order` (outbox topic
        `order.tag_requested`). Runs in a worker; must be idempotent. Return False when the store
        has no way to carry tags."""
        return False

    def tag_product(self, store, mapping, tags, remove_tags=()):
        """Add `tags` to, and remove `remove_tags` from, the store's product behind `mapping`
        (outbox topic `product.tag_requested`). Runs in a worker; must be idempotent. Return False
        when the store has no way to carry tags."""
        return False


class FulfillmentPlugin(WMSPlugin):
    """A partner that takes orders routed to its shipping process (or records them)."""

    kind = "fulfillment"

    def handles(self, shipping_process):
        return shipping_process is not None and shipping_process.handler == self.name
