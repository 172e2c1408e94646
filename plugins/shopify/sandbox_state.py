"""In-memory state of the Shopify sandbox: shops, catalog, stock, orders, webhooks.

Records are small dataclasses; the GraphQL views in `sandbox_resolvers.py` read them. Every
method that changes a shop is called with `Sandbox.lock` held (the HTTP layer takes it).
"""

import base64
import copy
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import count

import requests

from . import proposals
from .sandbox_schema import LeakyBucket, contract_dir

QUANTITY_NAMES = ("available", "committed", "damaged", "incoming", "on_hand", "quality_control",
                  "reserved", "safety_stock")
# Names that make up on_hand besides `available` (shopify.dev inventory states).
UNAVAILABLE_NAMES = ("committed", "damaged", "quality_control", "reserved", "safety_stock")
SET_NAMES = ("available", "on_hand")
MAX_QUANTITY = 1_000_000_000


def now_iso():
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def gid(kind, number):
    return f"gid://shopify/{kind}/{number}"


def parse_gid(value, kind):
    """The number of a `gid://shopify/{kind}/{n}`, or None for anything else."""
    prefix = f"gid://shopify/{kind}/"
    if not isinstance(value, str) or not value.startswith(prefix):
        return None
    tail = value[len(prefix):].split("?")[0]
    return int(tail) if tail.isdigit() else None


def gid_kind(value):
    if not isinstance(value, str) or not value.startswith("gid://shopify/"):
        return None
    return value[len("gid://shopify/"):].split("/")[0]


def level_gid(item_id, location_id):
    return f"gid://shopify/InventoryLevel/{location_id}?inventory_item_id={item_id}"


def webhook_hmac(secret, body):
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def money(amount):
    return f"{float(amount):.2f}"


# -- records ---------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Location:
    id: int
    name: str
    is_active: bool = True
    fulfills_online_orders: bool = True
    ships_inventory: bool = True
    address: dict = field(default_factory=dict)
    created_at: str = field(default_factory=now_iso)


@dataclass(slots=True)
class Product:
    id: int
    title: str
    handle: str
    vendor: str = ""
    product_type: str = ""
    status: str = "ACTIVE"
    tags: list = field(default_factory=list)
    variant_ids: list = field(default_factory=list)
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass(slots=True)
class Variant:
    id: int
    product_id: int
    inventory_item_id: int
    title: str
    sku: str | None
    barcode: str | None
    price: str
    position: int = 1
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass(slots=True)
class InventoryItem:
    id: int
    variant_id: int
    sku: str | None
    tracked: bool = True
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass(slots=True)
class Level:
    item_id: int
    location_id: int
    quantities: dict
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)

    @property
    def id(self):
        """The cursor identity of a level (it has no number of its own)."""
        return f"{self.item_id}:{self.location_id}"


@dataclass(slots=True)
class LineItem:
    id: int
    order_id: int
    variant_id: int | None
    sku: str | None
    title: str
    variant_title: str | None
    quantity: int
    price: str


@dataclass(slots=True)
class FulfillmentOrderLine:
    id: int
    line_item_id: int
    total_quantity: int
    remaining_quantity: int


@dataclass(slots=True)
class FulfillmentOrder:
    id: int
    order_id: int
    location_id: int
    lines: list
    status: str = "OPEN"
    fulfillment_ids: list = field(default_factory=list)
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass(slots=True)
class FulfillmentLine:
    id: int
    line_item_id: int
    quantity: int


@dataclass(slots=True)
class Fulfillment:
    id: int
    order_id: int
    location_id: int
    name: str
    fulfillment_order_ids: list
    lines: list
    tracking: list
    notify_customer: bool
    status: str = "SUCCESS"
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass(slots=True)
class ReturnLine:
    id: int
    fulfillment_line_item_id: int
    quantity: int
    return_reason: str
    customer_note: str | None = None


@dataclass(slots=True)
class Return:
    id: int
    order_id: int
    name: str
    lines: list
    status: str
    created_at: str = field(default_factory=now_iso)
    request_approved_at: str | None = None
    closed_at: str | None = None
    decline_reason: str | None = None


@dataclass(slots=True)
class Order:
    id: int
    number: int
    email: str
    line_item_ids: list
    shipping_address: dict
    customer: dict
    financial_status: str = "PAID"
    tags: list = field(default_factory=list)
    note: str | None = None
    test: bool = True
    cancelled_at: str | None = None
    cancel_reason: str | None = None
    closed_at: str | None = None
    fulfillment_order_ids: list = field(default_factory=list)
    fulfillment_ids: list = field(default_factory=list)
    return_ids: list = field(default_factory=list)
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)

    @property
    def name(self):
        return f"#{self.number}"


@dataclass(slots=True)
class WebhookSubscription:
    id: int
    topic: str
    uri: str
    api_version: str
    format: str = "JSON"
    filter: str | None = None
    include_fields: list = field(default_factory=list)
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass(slots=True)
class BulkOperation:
    id: int
    query: str
    status: str = "CREATED"
    type: str = "QUERY"
    created_at: str = field(default_factory=now_iso)
    completed_at: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    error_code: str | None = None
    result: bytes | None = None


@dataclass
class App:
    client_id: str
    client_secret: str
    compliance_uri: str | None = None  # customers/redact, shop/redact, customers/data_request (app TOML)


@dataclass
class Token:
    value: str
    shop: str
    client_id: str
    scopes: tuple
    expires_at: float | None = None
    refresh_token: str | None = None
    refresh_expires_at: float | None = None
    revoked: bool = False

    def usable(self, at=None):
        at = time.time() if at is None else at
        return not self.revoked and (self.expires_at is None or at < self.expires_at)


class UserFacingError(Exception):
    """A refusal that a control route answers with 400/404 and this message."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


# -- a shop ---------------------------------------------------------------------------------------------
class Shop:
    def __init__(self, sandbox, domain, name=None, bucket=None):
        self.sandbox = sandbox
        self.domain = domain
        self.id = sandbox.next_id()
        self.name = name or domain.split(".")[0].replace("-", " ").title()
        self.email = f"owner@{domain}"
        self.currency = "USD"
        self.created_at = now_iso()
        self.locations: dict[int, Location] = {}
        self.products: dict[int, Product] = {}
        self.variants: dict[int, Variant] = {}
        self.items: dict[int, InventoryItem] = {}
        self.levels: dict[tuple, Level] = {}
        self.levels_by_item: dict[int, list] = {}
        self.orders: dict[int, Order] = {}
        self.line_items: dict[int, LineItem] = {}
        self.fulfillment_orders: dict[int, FulfillmentOrder] = {}
        self.fulfillments: dict[int, Fulfillment] = {}
        self.fulfillment_lines: dict[int, tuple] = {}  # id -> (fulfillment_id, FulfillmentLine)
        self.returns: dict[int, Return] = {}
        self.subscriptions: dict[int, WebhookSubscription] = {}
        self.bulk_operations: dict[int, BulkOperation] = {}
        self.idempotency: dict[tuple, tuple] = {}  # (client_id, key) -> (fingerprint, payload, at)
        self.adjustment_groups = 0
        self.order_numbers = count(1001)
        self.buckets: dict[str, LeakyBucket] = {}
        self.bucket_config = bucket or {}

    def bucket_for(self, client_id):
        if client_id not in self.buckets:
            self.buckets[client_id] = LeakyBucket(**self.bucket_config)
        return self.buckets[client_id]

    # -- locations -------------------------------------------------------------------------------------
    def set_locations(self, specs):
        """Replace the location list. Levels at removed locations go with them."""
        keep = {}
        for spec in specs:
            spec = {"name": spec} if isinstance(spec, str) else dict(spec)
            location_id = spec.get("id") or self.sandbox.next_id()
            keep[location_id] = Location(
                id=location_id, name=spec["name"], is_active=spec.get("is_active", True),
                fulfills_online_orders=spec.get("fulfills_online_orders", True),
                address=spec.get("address") or {"address1": "1 Cellar Lane", "city": "Napa",
                                                 "province": "California", "provinceCode": "CA",
                                                 "country": "United States", "countryCode": "US",
                                                 "zip": "94558"})
        self.locations = keep
        for key in [k for k in self.levels if k[1] not in keep]:
            level = self.levels.pop(key)
            self.levels_by_item[level.item_id].remove(level)
        return list(keep.values())

    @property
    def primary_location(self):
        return next(iter(self.locations.values()), None)

    # -- catalog ---------------------------------------------------------------------------------------
    def add_product(self, title, variants, vendor="Sandbox Winery", product_type="Wine", tags=(),
                    stock=None):
        """Create a product with variants [{sku, barcode, price, title}] stocked at every location."""
        product = Product(id=self.sandbox.next_id(), title=title, vendor=vendor, product_type=product_type,
                          handle=title.lower().replace(" ", "-"), tags=list(tags))
        self.products[product.id] = product
        for position, spec in enumerate(variants, start=1):
            self._add_variant(product, position, spec, stock)
        return product

    def _add_variant(self, product, position, spec, stock):
        variant_id, item_id = self.sandbox.next_id(), self.sandbox.next_id()
        sku = spec.get("sku")
        variant = Variant(id=variant_id, product_id=product.id, inventory_item_id=item_id,
                          title=spec.get("title", "Default Title"), sku=sku, barcode=spec.get("barcode"),
                          price=money(spec.get("price", "20.00")), position=position)
        self.variants[variant_id] = variant
        self.items[item_id] = InventoryItem(id=item_id, variant_id=variant_id, sku=sku,
                                            tracked=spec.get("tracked", True))
        product.variant_ids.append(variant_id)
        quantities = spec.get("stock", stock)
        for location_id in spec.get("location_ids", list(self.locations)):
            available = quantities.get(location_id, 0) if isinstance(quantities, dict) else (quantities or 0)
            self.activate(item_id, location_id, available)
        return variant

    def seed_catalog(self, products, variants_per_product=1, stock=10, sku_prefix="SKU"):
        """Create `products` products of `variants_per_product` variants each (fast: 50,000 in ~1 s)."""
        created = []
        for p in range(products):
            number = len(self.products) + 1
            specs = [{"sku": f"{sku_prefix}-{number:06d}-{v + 1}", "barcode": f"{number:08d}{v + 1:04d}",
                      "price": "18.00", "title": f"Vintage {2000 + v % 25}" if variants_per_product > 1
                      else "Default Title"} for v in range(variants_per_product)]
            created.append(self.add_product(f"Wine {number:06d}", specs, stock=stock))
        return created

    def activate(self, item_id, location_id, available=0):
        key = (item_id, location_id)
        if key not in self.levels:
            quantities = dict.fromkeys(QUANTITY_NAMES, 0)
            quantities["available"] = quantities["on_hand"] = int(available)
            level = Level(item_id=item_id, location_id=location_id, quantities=quantities)
            self.levels[key] = level
            self.levels_by_item.setdefault(item_id, []).append(level)
        return self.levels[key]

    def variant_by_sku(self, sku):
        return next((v for v in self.variants.values() if v.sku == sku), None)

    # -- stock -----------------------------------------------------------------------------------------
    def change_quantity(self, level, name, delta):
        """Apply a delta to one named quantity, keeping on_hand = available + unavailable."""
        level.quantities[name] += delta
        if name in UNAVAILABLE_NAMES or name == "available":
            level.quantities["on_hand"] += delta
        elif name == "on_hand":
            level.quantities["available"] += delta
        level.updated_at = now_iso()
        self.items[level.item_id].updated_at = level.updated_at

    def set_out_of_band(self, item_id, location_id, name, quantity):
        """Change a level as a merchant in the admin would (provokes a stale changeFromQuantity)."""
        level = self.levels.get((item_id, location_id))
        if level is None:
            raise UserFacingError("item not stocked at that location", 404)
        self.change_quantity(level, name, int(quantity) - level.quantities[name])
        self.emit_inventory_update(level)
        return level

    def emit_inventory_update(self, level):
        self.sandbox.webhooks.emit(self, "inventory_levels/update", {
            "inventory_item_id": level.item_id, "location_id": level.location_id,
            "available": level.quantities["available"], "updated_at": level.updated_at,
            "admin_graphql_api_id": level_gid(level.item_id, level.location_id)})

    def new_adjustment_group(self, reason, reference_uri, changes):
        self.adjustment_groups += 1
        return {"id": self.sandbox.next_id(), "reason": reason, "referenceDocumentUri": reference_uri,
                "createdAt": now_iso(), "changes": changes}

    # -- orders ----------------------------------------------------------------------------------------
    def place_order(self, lines, email="customer@example.com", location_id=None, financial_status="PAID",
                    shipping_address=None, tags=(), note=None):
        """Create an order; stock is committed at the assigned location; one fulfillment order each."""
        if not lines:
            raise UserFacingError("an order needs at least one line")
        order = Order(id=self.sandbox.next_id(), number=next(self.order_numbers), email=email,
                      line_item_ids=[], financial_status=financial_status.upper(), tags=list(tags),
                      note=note, shipping_address=shipping_address or _default_address(),
                      customer={"id": self.sandbox.next_id(), "email": email, "first_name": "Ada",
                                "last_name": "Lovelace"})
        by_location = {}
        for spec in lines:
            variant = self._variant_for(spec)
            quantity = int(spec.get("quantity", 1))
            if quantity < 1:
                raise UserFacingError("line quantity must be at least 1")
            product = self.products[variant.product_id]
            line = LineItem(id=self.sandbox.next_id(), order_id=order.id, variant_id=variant.id,
                            sku=variant.sku, title=product.title,
                            variant_title=None if variant.title == "Default Title" else variant.title,
                            quantity=quantity, price=variant.price)
            self.line_items[line.id] = line
            order.line_item_ids.append(line.id)
            where = spec.get("location_id") or location_id or self._assign_location(variant)
            if where not in self.locations:
                raise UserFacingError(f"unknown location {where}")
            level = self.activate(variant.inventory_item_id, where)
            level.quantities["available"] -= quantity
            level.quantities["committed"] += quantity
            level.updated_at = now_iso()
            by_location.setdefault(where, []).append(line)
        for where, location_lines in by_location.items():
            fo = FulfillmentOrder(id=self.sandbox.next_id(), order_id=order.id, location_id=where, lines=[
                FulfillmentOrderLine(id=self.sandbox.next_id(), line_item_id=line.id,
                                     total_quantity=line.quantity, remaining_quantity=line.quantity)
                for line in location_lines])
            self.fulfillment_orders[fo.id] = fo
            order.fulfillment_order_ids.append(fo.id)
        self.orders[order.id] = order
        return order

    def _variant_for(self, spec):
        variant = None
        if spec.get("variant_id"):
            variant = self.variants.get(int(spec["variant_id"]))
        elif spec.get("sku"):
            variant = self.variant_by_sku(spec["sku"])
        if variant is None:
            raise UserFacingError(f"no variant for order line {spec}")
        return variant

    def _assign_location(self, variant):
        """The first active location with enough available stock, else the first location."""
        for level in self.levels_by_item.get(variant.inventory_item_id, []):
            if self.locations[level.location_id].is_active and level.quantities["available"] > 0:
                return level.location_id
        if not self.locations:
            raise UserFacingError("the shop has no locations")
        return self.primary_location.id

    def touch_order(self, order):
        order.updated_at = now_iso()

    def order_fulfillment_status(self, order):
        lines = [line for fo_id in order.fulfillment_order_ids for line in self.fulfillment_orders[fo_id].lines]
        remaining = sum(line.remaining_quantity for line in lines)
        total = sum(line.total_quantity for line in lines)
        if total and remaining == 0:
            return "FULFILLED"
        if remaining < total:
            return "PARTIALLY_FULFILLED"
        return "UNFULFILLED"

    def cancel_order(self, order, reason="other"):
        order.cancelled_at = order.closed_at = now_iso()
        order.cancel_reason = reason
        for fo_id in order.fulfillment_order_ids:
            fo = self.fulfillment_orders[fo_id]
            for line in fo.lines:
                level = self.levels[(self._item_of_line(line.line_item_id), fo.location_id)]
                level.quantities["committed"] -= line.remaining_quantity
                level.quantities["available"] += line.remaining_quantity
                line.remaining_quantity = 0
            if fo.status in ("OPEN", "IN_PROGRESS"):
                fo.status = "CANCELLED" if not fo.fulfillment_ids else "CLOSED"
        self.touch_order(order)

    def _item_of_line(self, line_item_id):
        return self.variants[self.line_items[line_item_id].variant_id].inventory_item_id

    def fulfill(self, fulfillment_order_lines, tracking, notify_customer):
        """Ship [(fulfillment order, [(fo line, quantity)])]; all of one order and one location."""
        order_id = fulfillment_order_lines[0][0].order_id
        location_id = fulfillment_order_lines[0][0].location_id
        order = self.orders[order_id]
        fulfillment = Fulfillment(id=self.sandbox.next_id(), order_id=order_id, location_id=location_id,
                                  name=f"{order.name}-F{len(order.fulfillment_ids) + 1}",
                                  fulfillment_order_ids=[fo.id for fo, _ in fulfillment_order_lines],
                                  lines=[], tracking=tracking, notify_customer=notify_customer)
        for fo, picks in fulfillment_order_lines:
            for fo_line, quantity in picks:
                fo_line.remaining_quantity -= quantity
                level = self.levels[(self._item_of_line(fo_line.line_item_id), location_id)]
                level.quantities["committed"] -= quantity
                level.quantities["on_hand"] -= quantity
                level.updated_at = now_iso()
                line = FulfillmentLine(id=self.sandbox.next_id(), line_item_id=fo_line.line_item_id,
                                       quantity=quantity)
                fulfillment.lines.append(line)
                self.fulfillment_lines[line.id] = (fulfillment.id, line)
            fo.status = "CLOSED" if all(l.remaining_quantity == 0 for l in fo.lines) else "IN_PROGRESS"
            fo.fulfillment_ids.append(fulfillment.id)
            fo.updated_at = now_iso()
        self.fulfillments[fulfillment.id] = fulfillment
        order.fulfillment_ids.append(fulfillment.id)
        self.touch_order(order)
        return fulfillment

    # -- returns ---------------------------------------------------------------------------------------
    def request_return(self, order, lines, status="REQUESTED"):
        """lines: [(fulfillment line id, quantity, reason, note)]."""
        ret = Return(id=self.sandbox.next_id(), order_id=order.id,
                     name=f"{order.name}-R{len(order.return_ids) + 1}", status=status, lines=[
                         ReturnLine(id=self.sandbox.next_id(), fulfillment_line_item_id=fl_id, quantity=qty,
                                    return_reason=reason, customer_note=note)
                         for fl_id, qty, reason, note in lines])
        self.returns[ret.id] = ret
        order.return_ids.append(ret.id)
        self.touch_order(order)
        return ret

    def returnable_quantity(self, fulfillment_line_id):
        _, line = self.fulfillment_lines[fulfillment_line_id]
        taken = sum(rl.quantity for ret in self.returns.values() if ret.status not in ("DECLINED", "CANCELED")
                    for rl in ret.lines if rl.fulfillment_line_item_id == fulfillment_line_id)
        return line.quantity - taken


def _default_address():
    return {"first_name": "Ada", "last_name": "Lovelace", "name": "Ada Lovelace", "address1": "12 Vine St",
            "address2": None, "city": "Sonoma", "province": "California", "province_code": "CA",
            "zip": "95476", "country": "United States", "country_code": "US", "phone": "+17075550100",
            "company": None}


# -- webhook payloads (shapes from contracts/shopify/webhook-samples) ----------------------------------
class Payloads:
    def __init__(self, folder=None):
        self.folder = contract_dir(folder) / "webhook-samples"
        self._samples = {}

    def sample(self, topic):
        if topic not in self._samples:
            path = self.folder / f"{topic.replace('/', '_')}_2026-04_metadata.json"
            self._samples[topic] = json.loads(path.read_text())["response"] if path.is_file() else {}
        return copy.deepcopy(self._samples[topic])

    def order(self, shop, order, topic="orders/create"):
        body = self.sample(topic if topic.startswith("orders/") else "orders/create")
        template_line = (body.get("line_items") or [{}])[0]
        lines = [self._line(shop, shop.line_items[i], template_line) for i in order.line_item_ids]
        total = sum(float(line["price"]) * line["quantity"] for line in lines)
        status = shop.order_fulfillment_status(order)
        body.update({
            "id": order.id, "admin_graphql_api_id": gid("Order", order.id), "name": order.name,
            "number": order.number - 1000, "order_number": order.number, "email": order.email,
            "contact_email": order.email, "created_at": order.created_at, "updated_at": order.updated_at,
            "processed_at": order.created_at, "cancelled_at": order.cancelled_at,
            "cancel_reason": order.cancel_reason, "closed_at": order.closed_at, "confirmed": True,
            "test": order.test, "currency": shop.currency, "presentment_currency": shop.currency,
            "financial_status": order.financial_status.lower(),
            "fulfillment_status": {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}.get(status),
            "tags": ", ".join(order.tags), "note": order.note, "location_id": None, "source_name": "web",
            "line_items": lines, "shipping_address": order.shipping_address,
            "billing_address": order.shipping_address,
            "fulfillments": [self.fulfillment(shop, shop.fulfillments[f]) for f in order.fulfillment_ids],
            "refunds": [], "returns": [], "total_price": money(total), "subtotal_price": money(total),
            "current_total_price": money(total), "current_subtotal_price": money(total),
            "total_line_items_price": money(total), "total_tax": "0.00", "current_total_tax": "0.00",
            "total_discounts": "0.00", "total_price_set": _money_set(total, shop.currency),
            "subtotal_price_set": _money_set(total, shop.currency),
            "current_total_price_set": _money_set(total, shop.currency)})
        if isinstance(body.get("customer"), dict):
            body["customer"].update({"id": order.customer["id"], "email": order.email,
                                     "first_name": order.customer["first_name"],
                                     "last_name": order.customer["last_name"],
                                     "admin_graphql_api_id": gid("Customer", order.customer["id"])})
        return body

    def _line(self, shop, line, template):
        variant = shop.variants.get(line.variant_id)
        fulfilled = sum(fl.quantity for f_id, fl in shop.fulfillment_lines.values()
                        if fl.line_item_id == line.id)
        body = copy.deepcopy(template)
        body.update({"id": line.id, "admin_graphql_api_id": gid("LineItem", line.id), "sku": line.sku,
                     "variant_id": line.variant_id, "product_id": variant.product_id if variant else None,
                     "quantity": line.quantity, "current_quantity": line.quantity,
                     "fulfillable_quantity": line.quantity - fulfilled,
                     "fulfillment_status": "fulfilled" if fulfilled >= line.quantity else
                     ("partial" if fulfilled else None),
                     "name": line.title if not line.variant_title else f"{line.title} - {line.variant_title}",
                     "title": line.title, "variant_title": line.variant_title, "price": line.price,
                     "price_set": _money_set(line.price, shop.currency), "vendor": None,
                     "variant_inventory_management": "shopify", "product_exists": True})
        return body

    def fulfillment(self, shop, fulfillment):
        body = self.sample("fulfillments/create")
        tracking = fulfillment.tracking[0] if fulfillment.tracking else {}
        template_line = (body.get("line_items") or [{}])[0]
        body.update({
            "id": fulfillment.id, "admin_graphql_api_id": gid("Fulfillment", fulfillment.id),
            "order_id": fulfillment.order_id, "location_id": fulfillment.location_id, "name": fulfillment.name,
            "status": fulfillment.status.lower(), "created_at": fulfillment.created_at,
            "updated_at": fulfillment.updated_at, "tracking_company": tracking.get("company"),
            "tracking_number": tracking.get("number"), "tracking_url": tracking.get("url"),
            "tracking_numbers": [t["number"] for t in fulfillment.tracking if t.get("number")],
            "tracking_urls": [t["url"] for t in fulfillment.tracking if t.get("url")],
            "email": shop.orders[fulfillment.order_id].email,
            "line_items": [dict(self._line(shop, shop.line_items[fl.line_item_id], template_line),
                                quantity=fl.quantity) for fl in fulfillment.lines]})
        return body

    def refund(self, shop, order):
        body = self.sample("refunds/create")
        template = (body.get("refund_line_items") or [{}])[0]
        line_template = template.get("line_item", {})
        refund_id = shop.sandbox.next_id()
        body.update({"id": refund_id, "admin_graphql_api_id": gid("Refund", refund_id), "order_id": order.id,
                     "created_at": now_iso(), "processed_at": now_iso(), "return": None,
                     "refund_line_items": [
                         dict(copy.deepcopy(template), id=shop.sandbox.next_id(), line_item_id=line_id,
                              quantity=shop.line_items[line_id].quantity, restock_type="no_restock",
                              line_item=self._line(shop, shop.line_items[line_id], line_template))
                         for line_id in order.line_item_ids]})
        return body

    def return_request(self, shop, ret):
        body = self.sample("returns/request")
        body.update({"id": ret.id, "admin_graphql_api_id": gid("Return", ret.id), "status": ret.status.lower(),
                     "name": ret.name, "order": {"id": ret.order_id, "admin_graphql_api_id": gid("Order", ret.order_id)},
                     "total_return_line_items": sum(line.quantity for line in ret.lines),
                     "return_line_items": [
                         {"id": line.id, "admin_graphql_api_id": gid("ReturnLineItem", line.id),
                          "fulfillment_line_item": {"id": line.fulfillment_line_item_id,
                                                    "admin_graphql_api_id":
                                                        gid("FulfillmentLineItem", line.fulfillment_line_item_id)},
                          "quantity": line.quantity, "return_reason": line.return_reason.lower(),
                          "customer_note": line.customer_note} for line in ret.lines]})
        return body

    def shop(self, shop):
        body = self.sample("app/uninstalled")
        body.update({"id": shop.id, "name": shop.name, "email": shop.email, "domain": shop.domain,
                     "myshopify_domain": shop.domain, "customer_email": shop.email,
                     "created_at": shop.created_at, "updated_at": now_iso(), "currency": shop.currency,
                     "primary_location_id": shop.primary_location.id if shop.primary_location else None})
        return body

    def customers_redact(self, shop, email):
        orders = [o for o in shop.orders.values() if o.email == email]
        body = self.sample("customers/redact")
        body.update({"shop_id": shop.id, "shop_domain": shop.domain,
                     "customer": {"id": orders[0].customer["id"] if orders else shop.sandbox.next_id(),
                                  "email": email, "phone": None},
                     "orders_to_redact": [o.id for o in orders]})
        return body

    def shop_redact(self, shop):
        return dict(self.sample("shop/redact"), shop_id=shop.id, shop_domain=shop.domain)


def _money_set(amount, currency):
    value = {"amount": money(amount), "currency_code": currency}
    return {"shop_money": dict(value), "presentment_money": dict(value)}


# -- webhook delivery -----------------------------------------------------------------------------------
COMPLIANCE_TOPICS = ("customers/redact", "shop/redact", "customers/data_request")


@dataclass
class Delivery:
    webhook_id: str
    event_id: str
    topic: str
    uri: str
    shop: str
    body: bytes
    headers: dict
    attempts: list = field(default_factory=list)
    delivered: bool = False

    def summary(self):
        return {"webhook_id": self.webhook_id, "event_id": self.event_id, "topic": self.topic, "uri": self.uri,
                "shop": self.shop, "delivered": self.delivered, "attempts": list(self.attempts),
                "payload": json.loads(self.body)}


class WebhookDispatcher:
    """Signs and POSTs topic payloads; retries failures on a compressed schedule."""

    def __init__(self, sandbox, retries=proposals.WEBHOOK_RETRIES,
                 first_retry_seconds=proposals.WEBHOOK_FIRST_RETRY_SECONDS, timeout=(1.0, 5.0)):
        self.sandbox = sandbox
        self.retries = retries
        self.first_retry_seconds = first_retry_seconds
        self.timeout = timeout
        self.deliveries: list[Delivery] = []
        self._pending = 0
        self._idle = threading.Condition()
        self.http = requests.Session()

    def emit(self, shop, topic, payload, delay=0.0):
        """Deliver to every subscription of `topic` in `shop` (background, after `delay` s)."""
        enum_name = topic.upper().replace("/", "_")
        created = []
        for subscription in list(shop.subscriptions.values()):
            if subscription.topic == enum_name:
                created.append(self.deliver(shop, topic, payload, subscription.uri, subscription.api_version,
                                            delay=delay))
        return created

    def deliver(self, shop, topic, payload, uri, api_version, duplicates=0, delay=0.0, client_id=None):
        """One event to one address; `duplicates` extra deliveries carry the same event id."""
        app = self.sandbox.app(client_id)
        body = json.dumps(payload).encode()
        event_id = str(uuid.uuid4())
        created = []
        for copy_number in range(1 + int(duplicates)):
            headers = {
                "Content-Type": "application/json", "X-Shopify-Topic": topic,
                "X-Shopify-Hmac-Sha256": webhook_hmac(app.client_secret, body),
                "X-Shopify-Shop-Domain": shop.domain, "X-Shopify-API-Version": api_version,
                "X-Shopify-Webhook-Id": str(uuid.uuid4()), "X-Shopify-Event-Id": event_id,
                "X-Shopify-Triggered-At": datetime.now(timezone.utc).isoformat(),
                "User-Agent": "Shopify-Captain-Hook",
            }
            delivery = Delivery(webhook_id=headers["X-Shopify-Webhook-Id"], event_id=event_id, topic=topic,
                                uri=uri, shop=shop.domain, body=body, headers=headers)
            self.deliveries.append(delivery)
            created.append(delivery)
            self._start(delivery, delay)
        return created

    def _start(self, delivery, delay):
        with self._idle:
            self._pending += 1
        threading.Thread(target=self._run, args=(delivery, delay), daemon=True,
                         name=f"shopify-webhook-{delivery.webhook_id[:8]}").start()

    def _run(self, delivery, delay):
        try:
            if delay:
                time.sleep(delay)
            wait = self.first_retry_seconds
            for _attempt in range(1 + self.retries):
                if self._attempt(delivery):
                    return
                time.sleep(wait)
                wait *= 2
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _attempt(self, delivery):
        record = {"at": now_iso(), "status": None, "error": None}
        delivery.attempts.append(record)
        try:
            response = self.http.post(delivery.uri, data=delivery.body, headers=delivery.headers,
                                      timeout=self.timeout, allow_redirects=False)
            record["status"] = response.status_code
            delivery.delivered = 200 <= response.status_code < 300
        except requests.RequestException as exc:
            record["error"] = exc.__class__.__name__
        return delivery.delivered

    def wait_idle(self, timeout=10.0):
        """Block until no delivery is pending (or timeout); True when idle."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True


# -- the whole sandbox ----------------------------------------------------------------------------------
class Sandbox:
    """State of every fake shop plus the OAuth apps and tokens."""

    def __init__(self, config=None):
        config = dict(config or {})
        self.config = config
        self.lock = threading.RLock()
        self._ids = count(int(config.get("first_id", 2 ** 53 + 1)))  # ids past 2^53, as real ones are
        self.apps = {}
        for client_id, secret in (config.get("apps") or {"sandbox-client-id": "sandbox-client-secret"}).items():
            self.apps[client_id] = App(client_id, secret)
        self.default_client_id = next(iter(self.apps))
        self.token_lifetime = float(config.get("token_lifetime", 3600))
        self.refresh_lifetime = float(config.get("refresh_token_lifetime", 90 * 24 * 3600))
        self.require_expiring_tokens = bool(config.get("require_expiring_tokens", False))
        self.bucket_config = {"maximum": config.get("bucket_size", 2000.0),
                              "restore_rate": config.get("restore_rate", 100.0),
                              "clock": config.get("clock", time.monotonic)}
        self.shops: dict[str, Shop] = {}
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, Token] = {}
        self.codes: dict[str, dict] = {}
        self.payloads = Payloads(config.get("contract_dir"))
        self.webhooks = WebhookDispatcher(self, retries=int(config.get("webhook_retries", proposals.WEBHOOK_RETRIES)),
                                          first_retry_seconds=float(config.get(
                                              "webhook_first_retry_seconds", proposals.WEBHOOK_FIRST_RETRY_SECONDS)))
        for domain in config.get("shops", ["sandbox-winery.myshopify.com"]):
            self.add_shop(domain)

    def next_id(self):
        return next(self._ids)

    def app(self, client_id=None):
        return self.apps[client_id or self.default_client_id]

    def add_shop(self, domain, locations=("Main Cellar", "Tasting Room")):
        with self.lock:
            shop = Shop(self, domain, bucket=self.bucket_config)
            shop.set_locations(list(locations))
            self.shops[domain] = shop
            return shop

    def shop(self, domain):
        shop = self.shops.get(domain)
        if shop is None:
            raise UserFacingError(f"no sandbox shop {domain}", 404)
        return shop

    # -- tokens ----------------------------------------------------------------------------------------
    def issue_code(self, shop, client_id, scopes):
        code = secrets.token_hex(16)
        self.codes[code] = {"shop": shop, "client_id": client_id, "scopes": tuple(scopes), "at": time.time()}
        return code

    def issue_token(self, shop, client_id, scopes, expiring):
        token = Token(value="shpat_" + secrets.token_hex(16), shop=shop, client_id=client_id,
                      scopes=tuple(scopes))
        if expiring:
            token.expires_at = time.time() + self.token_lifetime
            token.refresh_token = "shprt_" + secrets.token_hex(16)
            token.refresh_expires_at = time.time() + self.refresh_lifetime
            self.refresh_tokens[token.refresh_token] = token
        self.tokens[token.value] = token
        return token

    def create_token(self, shop, scopes=None, expiring=True, client_id=None):
        """A token without the OAuth dance (for tests and the demo)."""
        scopes = scopes if scopes is not None else ALL_SCOPES
        with self.lock:
            return self.issue_token(shop, client_id or self.default_client_id, scopes, expiring)

    def expire_token(self, value):
        with self.lock:
            token = self.tokens.get(value)
            if token is None:
                raise UserFacingError("unknown token", 404)
            token.expires_at = time.time() - 1
            return token


ALL_SCOPES = ("read_products", "write_products", "read_inventory", "write_inventory", "read_locations",
              "read_orders", "write_orders", "read_all_orders", "read_merchant_managed_fulfillment_orders",
              "write_merchant_managed_fulfillment_orders", "read_returns", "write_returns")
