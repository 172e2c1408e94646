"""Sync products: every WooCommerce product and variation becomes (or updates) the WMS product with
its SKU, and is mapped to the store.

* Everything is read first (drafts included: variations are listed per parent, never from the
  parent's `variations` array, which omits drafts), then written in one pass.
* Matching is by SKU, case-insensitive: an existing WMS product is updated (name, price, weight),
  never duplicated; a new SKU creates a product. A variable product's parent is not a product in
  the WMS (its variations are); items without a SKU cannot be matched and are listed as skipped.
* A mapping, once made, is never changed by a later sync; a conflict (the SKU moved to another
  WooCommerce item) is reported instead.
* Drafts are synced and reported as drafts that will not sell until published in WooCommerce.
* Progress (phase and counts) is written to the store's state record as it goes; the calls show in
  the activity log page by page.
"""

import queue
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from decimal import Decimal, InvalidOperation

from flask import current_app
from sqlalchemy import insert, select, update

from wms.core.models import Product
from wms.core.models._base import utcnow
from wms.core.services.catalog import SKU_PATTERN
from wms.extensions import db
from wms.plugins.models import ProductMapping, SyncRecord

from . import store as woo_store
from .client import PLUGIN, catalog_item

SYNC_TOPIC = "woocommerce.sync_products"
FETCH_THREADS = 8
PROGRESS_EVERY = 50            # variable products read between progress updates
UNMAPPED_TYPES = ("variable", "grouped", "external")
GRAMS_PER_UNIT = {"kg": Decimal("1000"), "g": Decimal("1"), "lbs": Decimal("453.59237"), "oz": Decimal("28.349523125")}
MAX_LISTED = 50                # drafts, skipped items and conflicts named in the result


def product_object_type(store):
    return f"product@{store.id}"


# -- reading ---------------------------------------------------------------------------------------

class Reader:
    """Reads the catalogue with FETCH_THREADS calls in flight: product pages after the first, and the
    variations of each variable product as its page arrives. Each thread borrows one of a few clients
    (made here, so each keeps its HTTPS connection) and logs its calls in an app context of its own."""

    def __init__(self, store, progress):
        self.app = current_app._get_current_object()
        self.clients = queue.Queue()
        for _ in range(FETCH_THREADS):
            self.clients.put(woo_store.make_client(store))
        self.progress = progress
        self.products, self.variations = [], []
        self.variable_total = self.variable_read = 0

    def call(self, method, *args):
        client = self.clients.get()
        try:
            with self.app.app_context():
                return getattr(client, method)(*args)
        finally:
            self.clients.put(client)

    def read(self):
        first, pages = self.call("products_page", 1)
        with ThreadPoolExecutor(max_workers=FETCH_THREADS) as pool:
            pending = {pool.submit(self.call, "products_page", page): "page" for page in range(2, pages + 1)}
            pending.update(self.take_page(pool, first))
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    kind = pending.pop(future)
                    if kind == "page":
                        pending.update(self.take_page(pool, future.result()[0]))
                    else:
                        self.take_variations(future.result())
        self.products.sort(key=lambda item: item.id)
        self.variations.sort(key=lambda item: item.id)
        return self.products, self.variations

    def take_page(self, pool, raw_products):
        items = [catalog_item(raw, "product") for raw in raw_products]
        self.products.extend(items)
        parents = [item.id for item in items if item.type == "variable"]
        self.variable_total += len(parents)
        return {pool.submit(self.call, "iter_variation_list", pid): "variations" for pid in parents}

    def take_variations(self, raw_variations):
        self.variations.extend(catalog_item(raw, "variation") for raw in raw_variations)
        self.variable_read += 1
        if self.variable_read % PROGRESS_EVERY == 0:
            self.progress(phase="reading variations", products_read=len(self.products),
                          variable_read=self.variable_read, variable_total=self.variable_total,
                          variations_read=len(self.variations))


def fetch_catalog(store, progress):
    """All products and variations as CatalogItems, drafts included."""
    client = woo_store.make_client(store)
    if client.has_all_variations_route():
        products = [catalog_item(raw, "product") for raw in client.iter_products()]
        progress(phase="reading variations", products_read=len(products))
        return products, [catalog_item(raw, "variation") for raw in client.iter_all_variations()]
    return Reader(store, progress).read()


# -- writing ---------------------------------------------------------------------------------------

def money(text):
    try:
        value = Decimal(str(text))
    except (InvalidOperation, TypeError):
        return None
    return value.quantize(Decimal("0.01")) if value.is_finite() and value >= 0 else None


def grams(weight_text, unit):
    try:
        value = Decimal(str(weight_text))
    except (InvalidOperation, TypeError):
        return None
    if not value.is_finite() or value <= 0:
        return None
    return max(1, int((value * GRAMS_PER_UNIT.get(unit, Decimal("1000"))).to_integral_value()))


def item_fields(item, unit):
    """The WMS product fields WooCommerce decides: name, price, weight."""
    fields = {"name": (item.name or item.sku)[:255]}
    price = money(item.regular_price or item.price)
    if price is not None:
        fields["retail_price"] = price
    weight = grams(item.raw.get("weight"), unit)
    if weight is not None:
        fields["weight_grams"] = weight
    return fields


class Result:
    def __init__(self):
        self.counts = {"created": 0, "updated": 0, "unchanged": 0, "mapped": 0, "drafts": 0, "skipped": 0,
                       "conflicts": 0}
        self.drafts, self.skipped, self.conflicts = [], [], []
        self.created_ids = set()

    def note(self, kind, text):
        self.counts[kind] += 1
        listed = {"drafts": self.drafts, "skipped": self.skipped, "conflicts": self.conflicts}[kind]
        if len(listed) < MAX_LISTED:
            listed.append(text)

    def as_dict(self):
        return {**self.counts, "draft_items": self.drafts, "skipped_items": self.skipped,
                "conflict_items": self.conflicts}


def sellable_items(products, variations, result):
    """The items that become WMS products; the others are reported."""
    items = []
    for item in products + variations:
        if item.kind == "product" and item.type in UNMAPPED_TYPES:
            continue
        if not item.sku:
            result.note("skipped", f"{item.name or item.kind} (id {item.id}): no SKU, so it cannot be matched")
            continue
        if not SKU_PATTERN.match(item.sku):
            result.note("skipped", f"{item.sku} (id {item.id}): not a valid WMS SKU (letters, digits, . _ - /)")
            continue
        items.append(item)
    return items


def write_catalog(store, items, result):
    """Update changed products, then insert new products, mappings and sync records in bulk
    (executemany statements: 5,000+ items in seconds)."""
    unit = store.setting("weight_unit") or "kg"
    ids = update_existing(items, unit, result)
    ids.update(insert_new(items, ids, unit, result))
    mappings = db.session.execute(select(ProductMapping.product_id, ProductMapping.remote_variant_id).where(
        ProductMapping.store_id == store.id)).all()
    by_product = {product_id: remote_id for product_id, remote_id in mappings}
    by_remote = {remote_id: product_id for product_id, remote_id in mappings}
    new_mappings = [row for item in items
                    if (row := mapping_row(store, ids[item.sku.lower()], item, by_product, by_remote, result))]
    if new_mappings:
        db.session.execute(insert(ProductMapping), new_mappings)
    write_records(store, items, ids)


def update_existing(items, unit, result):
    """{lower-cased sku: product id} of the products that exist; their changed fields are written."""
    wanted = {item.sku.lower(): item for item in items}
    ids = {}
    for product in db.session.scalars(select(Product)):
        item = wanted.get(product.sku.lower())
        if item is None:
            continue
        ids[product.sku.lower()] = product.id
        changed = {k: v for k, v in item_fields(item, unit).items() if getattr(product, k) != v}
        for key, value in changed.items():
            setattr(product, key, value)
        result.counts["updated" if changed else "unchanged"] += 1
    db.session.flush()
    return ids


def insert_new(items, known, unit, result):
    rows = [new_product_row(item, unit) for item in items if item.sku.lower() not in known]
    if not rows:
        return {}
    created = db.session.execute(insert(Product).returning(Product.id, Product.sku), rows).all()
    result.counts["created"] += len(created)
    result.created_ids = {product_id for product_id, _ in created}
    return {sku.lower(): product_id for product_id, sku in created}


def new_product_row(item, unit):
    """Every row with the same keys, as one executemany statement needs."""
    fields = item_fields(item, unit)
    return {"sku": item.sku, "name": fields["name"], "retail_price": fields.get("retail_price", Decimal("0.00")),
            "weight_grams": fields.get("weight_grams")}


def mapping_row(store, product_id, item, by_product, by_remote, result):
    """A new mapping's row, or None when the product or the WooCommerce item is mapped already."""
    remote_id = str(item.id)
    mapped = by_product.get(product_id)
    if mapped is not None:
        if mapped != remote_id:
            result.note("conflicts", f"{item.sku}: mapped to WooCommerce item {mapped}, but item {remote_id} "
                                     "has this SKU now; the mapping was kept")
        return None
    if remote_id in by_remote:
        result.note("conflicts", f"{item.sku}: WooCommerce item {remote_id} is mapped to another WMS product "
                                 "(its SKU changed in WooCommerce); the mapping was kept")
        return None
    by_product[product_id], by_remote[remote_id] = remote_id, product_id
    result.counts["mapped"] += 1
    return {"store_id": store.id, "product_id": product_id, "remote_sku": item.sku,
            "remote_product_id": str(item.parent_id or item.id), "remote_variant_id": remote_id,
            "matched_by": "created" if product_id in result.created_ids else "sku", "data": {"kind": item.kind},
            "created_at": utcnow()}


def record_values(item):
    return {"status": "synced", "remote_reference": str(item.id), "synced_at": utcnow(),
            "message": "Draft in WooCommerce: it will not sell until it is published there." if item.is_draft else None,
            "data": {"kind": item.kind, "parent_id": item.parent_id, "status": item.status, "draft": item.is_draft,
                     "manage_stock": item.manage_stock, "stock_quantity": item.stock_quantity}}


def write_records(store, items, ids):
    """One SyncRecord per product and store: updated when it exists, inserted when not."""
    object_type = product_object_type(store)
    existing = dict(db.session.execute(select(SyncRecord.object_id, SyncRecord.id).where(
        SyncRecord.plugin == PLUGIN, SyncRecord.object_type == object_type)).all())
    updates, inserts = [], []
    for item in items:
        product_id = ids[item.sku.lower()]
        if product_id in existing:
            updates.append({"id": existing[product_id], "updated_at": utcnow(), **record_values(item)})
        else:
            inserts.append({"plugin": PLUGIN, "store_id": store.id, "object_type": object_type,
                            "object_id": product_id, "attempts": 0, "created_at": utcnow(), "updated_at": utcnow(),
                            **record_values(item)})
            existing[product_id] = None
    if updates:
        db.session.execute(update(SyncRecord), updates)
    if inserts:
        db.session.execute(insert(SyncRecord), inserts)


# -- the job ---------------------------------------------------------------------------------------

def sync_products(store):
    """Read the whole catalogue, write it, and record the outcome on the state record."""
    def progress(**values):
        woo_store.write_state_now(store.id, catalog={**current, **values})
        current.update(values)

    current = {"phase": "reading products", "started_at": woo_store.now_text(), "finished_at": None}
    woo_store.save_state(store, catalog=dict(current))
    db.session.commit()
    try:
        products, variations = fetch_catalog(store, progress)
    except Exception as exc:
        progress(phase="failed", finished_at=woo_store.now_text(), error=getattr(exc, "message", str(exc))[:1000])
        raise
    result = Result()
    for item in products + variations:
        if item.is_draft:
            result.note("drafts", f"{item.sku or item.name} (id {item.id}) is a draft in WooCommerce and will not "
                                  "sell until it is published")
    items = sellable_items(products, variations, result)
    progress(phase="writing", products_read=len(products), variations_read=len(variations), to_write=len(items),
             written=0)
    write_catalog(store, items, result)
    summary = {**current, "phase": "done", "finished_at": woo_store.now_text(), "written": len(items),
               "products_read": len(products), "variations_read": len(variations), "result": result.as_dict()}
    db.session.expire(woo_store.state_record(store))
    woo_store.save_state(store, catalog=summary)
    return summary


def sync_products_job(payload):
    from wms.plugins.models import Store
    store = db.session.get(Store, payload["store_id"])
    if store is None or store.plugin != PLUGIN:
        return
    sync_products(store)


def summary_text(catalog):
    result = catalog.get("result") or {}
    return (f"{catalog.get('products_read', 0)} products and {catalog.get('variations_read', 0)} variations read: "
            f"{result.get('created', 0)} created, {result.get('updated', 0)} updated, "
            f"{result.get('unchanged', 0)} unchanged, {result.get('drafts', 0)} drafts (will not sell), "
            f"{result.get('skipped', 0)} skipped, {result.get('conflicts', 0)} conflicts.")
