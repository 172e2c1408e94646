"""Product sync: map a shop's variants to WMS products, by SKU, then by barcode.

The admin presses Sync Products; `start_sync` claims the store's progress record (one run at a
time) and emits `shopify.catalog_sync`. The job starts Shopify's bulk export of every variant and
waits for it; a long export is handed to `shopify.catalog_poll` jobs, so no job outlives the worker's
time limit. The finished JSONL is streamed to a temporary file, read once to count SKUs and barcodes
(a SKU on two variants is a conflict whichever comes first), then mapped in chunks:

* a variant that is mapped already stays as it is, even when its SKU changed in Shopify;
* a variant whose SKU (case-insensitive) is a WMS product's SKU is mapped to it, unless that product
  is mapped to another variant of the store (a conflict);
* else a variant whose barcode is a WMS product's barcode is mapped to it, with the same rule, and
  unless another variant carries that product's SKU (which wins);
* else the variant becomes a new WMS product with no stock; a variant with no usable SKU is skipped.

Nothing here posts a stock movement, and no existing mapping is ever updated. Progress and the
result lists live in a SyncRecord (object_type "shopify_catalog", object_id = store id); the
outcome is also one row of the activity log.
"""

import json
import re
import tempfile
import time
import uuid
from collections import Counter, namedtuple
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from flask import current_app
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from wms import outbox
from wms.core.errors import ServiceError
from wms.core.models import Product
from wms.core.models._base import utcnow
from wms.core.services.catalog import SKU_PATTERN
from wms.extensions import db
from wms.integrations.errors import PermanentRemoteError, RemoteError, RemoteRejected, TransientRemoteError
from wms.integrations.http import CallRecord
from wms.plugins.activity import record_call
from wms.plugins.models import ProductMapping, Store, SyncRecord

from .client import ShopifyRejected

PLUGIN = "shopify"
RECORD_TYPE = "shopify_catalog"
SYNC_TOPIC = "shopify.catalog_sync"
POLL_TOPIC = "shopify.catalog_poll"
CHUNK_SIZE = 1000
LIST_LIMIT = 500            # entries kept per result list; the counts are always complete
STALE_AFTER = timedelta(minutes=15)  # a run that reported nothing for this long has died
BARCODE_PATTERN = re.compile(r"[0-9A-Za-z\-]{4,64}")  # what the WMS accepts as a barcode
DEFAULT_WAIT_SECONDS = 20   # how long a job waits for the export before handing over to a poll job
DEFAULT_POLL_SECONDS = 10
COUNT_KEYS = ("matched", "created", "conflicts", "skipped", "unchanged")
LIST_KEYS = ("matched", "created", "conflicts", "skipped")
ProductRow = namedtuple("ProductRow", "id sku barcode")


# -- the progress record --------------------------------------------------------------------------------
def progress_record(store):
    return db.session.scalar(select(SyncRecord).where(
        SyncRecord.plugin == PLUGIN, SyncRecord.object_type == RECORD_TYPE, SyncRecord.object_id == store.id))


def is_running(record):
    return (record is not None and record.status == "pending"
            and record.updated_at is not None and utcnow() - record.updated_at < STALE_AFTER)


def progress(store):
    """What the Product Mapping page shows and polls: state, phase, counts, message."""
    record = progress_record(store)
    if record is None:
        return {"state": "idle", "phase": None, "total": None, "processed": 0, "counts": {}, "message": None}
    data = record.data or {}
    state = {"pending": "running", "synced": "done", "failed": "failed"}.get(record.status, record.status)
    if record.status == "pending" and not is_running(record):
        state = "stalled"
    return {"state": state, "phase": data.get("phase"), "total": data.get("total"),
            "processed": data.get("processed", 0), "counts": data.get("counts", {}),
            "exported": data.get("exported"), "message": record.message, "run_id": data.get("run_id"),
            "started_at": data.get("started_at"), "finished_at": data.get("finished_at")}


def start_sync(store):
    """Claim the store's progress record and queue the sync job; the caller commits.

    Raises ServiceError when the store cannot sync or a run is going on already."""
    if store.plugin != PLUGIN:
        raise ServiceError("not_shopify", f"{store.name} is not a Shopify store.")
    if store.status != "connected":
        raise ServiceError("not_connected", f"{store.name} is not connected to Shopify ({store.status}); "
                           "connect it before syncing products.")
    run_id = uuid.uuid4().hex
    data = {"run_id": run_id, "phase": "queued", "started_at": _now_text(), "processed": 0, "total": None,
            "counts": dict.fromkeys(COUNT_KEYS, 0)}
    if not _claim(store, data):
        record = progress_record(store)
        started = (record.data or {}).get("started_at", "")
        raise ServiceError("sync_running", f"A product sync of {store.name} is running already (started "
                           f"{started} UTC). Wait for it to finish; its progress shows on this page.")
    outbox.emit(SYNC_TOPIC, {"store_id": store.id, "run_id": run_id}, dedupe_key=f"shopify:catalog:{run_id}")
    return run_id


def _claim(store, data):
    """Atomically mark the record running: two clicks at once start one run, not two."""
    record = progress_record(store)
    if record is None:
        try:
            with db.session.begin_nested():
                db.session.add(SyncRecord(plugin=PLUGIN, store_id=store.id, object_type=RECORD_TYPE,
                                          object_id=store.id, status="pending", data=data, message=None))
            return True
        except IntegrityError:
            return False  # another request created it a moment ago and runs
    claimed = db.session.execute(
        update(SyncRecord).where(SyncRecord.id == record.id, or_(
            SyncRecord.status != "pending", SyncRecord.updated_at < utcnow() - STALE_AFTER))
        .values(status="pending", data=data, message=None, attempts=SyncRecord.attempts + 1,
                updated_at=utcnow()))
    db.session.expire(record)
    return claimed.rowcount == 1


def _save(record, message=None, status=None, **changes):
    record.data = {**(record.data or {}), **changes}
    record.message = message
    if status:
        record.status = status
    record.updated_at = utcnow()  # also the heartbeat that tells a live run from a dead one
    db.session.commit()


def _now_text():
    return utcnow().strftime("%Y-%m-%d %H:%M:%S")


# -- jobs ---------------------------------------------------------------------------------------------
def sync_job(payload):
    """Start (or, after a crash, pick up) the bulk export of the store's variants, then wait for it."""
    store, record = _current_run(payload)
    if record is None:
        return
    with _failure_recorded(store, record):
        client = _client(store)
        operation_id = _export_for_run(client, record)
        _wait_for_export(store, record, client, operation_id, payload.get("polls", 0))


def poll_job(payload):
    store, record = _current_run(payload)
    if record is None:
        return
    with _failure_recorded(store, record):
        client = _client(store)
        _wait_for_export(store, record, client, record.data["operation_id"], payload.get("polls", 0))


JOB_HANDLERS = {SYNC_TOPIC: sync_job, POLL_TOPIC: poll_job}


def _client(store):
    from .connection import client_for
    return client_for(store)


def _current_run(payload):
    """(store, record) when the payload's run is the store's current, unfinished run; else (store, None)."""
    store = db.session.get(Store, payload["store_id"])
    record = progress_record(store) if store is not None else None
    if record is None or (record.data or {}).get("run_id") != payload["run_id"]:
        return store, None  # a newer run replaced this one
    if record.status == "synced":
        return store, None  # finished already: a repeated job changes nothing
    return store, record


class _failure_recorded:
    """Make a failed run visible on its record and in the activity log, then let the runner retry it
    (transient errors and bugs) or stop (Shopify refused: the admin presses Sync Products again)."""

    def __init__(self, store, record):
        self.store, self.record = store, record
        self.started = time.perf_counter()

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, traceback):
        if exc is None:
            return False
        db.session.rollback()
        record = db.session.get(SyncRecord, self.record.id)
        text = exc.message if isinstance(exc, RemoteError) else f"{exc.__class__.__name__}: {exc}"
        after = (" Press Sync Products to try again." if isinstance(exc, PermanentRemoteError)
                 else " It is retried automatically.")
        message = f"Product sync failed: {text}{after}"[:2000]
        _save(record, message=message, status="failed", phase="failed", finished_at=_now_text())
        _log_summary(self.store, record, self.started, error=message)
        return False


def _export_for_run(client, record):
    """The bulk operation of this run: the one it started before a crash, or a new one."""
    known = (record.data or {}).get("operation_id")
    if known:
        operation = client.bulk_operation(known)
        if operation and operation["status"] in ("CREATED", "RUNNING", "COMPLETED"):
            return known
    try:
        operation_id = client.start_bulk_variants()
    except ShopifyRejected as exc:
        if exc.code == "OPERATION_IN_PROGRESS":
            raise TransientRemoteError("Shopify is running another bulk export for this shop; the product "
                                       "sync starts when it has finished.", code=exc.code) from exc
        raise
    _save(record, status="pending", phase="exporting", operation_id=operation_id)
    return operation_id


def _wait_for_export(store, record, client, operation_id, polls):
    config = current_app.config
    deadline = time.monotonic() + float(config.get("SHOPIFY_BULK_WAIT_SECONDS", DEFAULT_WAIT_SECONDS))
    pause = 0.2
    while True:
        operation = client.bulk_operation(operation_id)
        if operation is None:
            raise RemoteRejected("Shopify no longer knows the bulk export of this run.", code="NOT_FOUND")
        if operation["status"] == "COMPLETED":
            return map_export(store, record, client, operation["url"])
        if operation["error_code"] == "ACCESS_DENIED":
            raise RemoteRejected("Shopify refused the bulk export (ACCESS_DENIED): the app needs the read_products "
                                 "access scope; reconnect the store to grant it.", code="ACCESS_DENIED")
        if operation["status"] not in ("CREATED", "RUNNING"):
            raise RemoteRejected(f"Shopify's bulk export ended {operation['status']}"
                                 + (f" ({operation['error_code']})" if operation["error_code"] else "") + ".",
                                 code=operation["error_code"])
        _save(record, status="pending", phase="exporting", exported=operation["object_count"])
        if time.monotonic() + pause > deadline:
            delay = float(config.get("SHOPIFY_BULK_POLL_SECONDS", DEFAULT_POLL_SECONDS))
            outbox.emit(POLL_TOPIC, {"store_id": store.id, "run_id": record.data["run_id"], "polls": polls + 1},
                        dedupe_key=f"shopify:catalog:{record.data['run_id']}:poll:{polls + 1}",
                        delay_seconds=delay)
            db.session.commit()
            return None
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


# -- mapping ------------------------------------------------------------------------------------------
def map_export(store, record, client, url):
    """Stream the export to disk, count its SKUs and barcodes, then map it chunk by chunk."""
    started = time.perf_counter()
    _save(record, status="pending", phase="downloading")
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as spool:
        skus, barcodes, total = Counter(), Counter(), 0
        for variant in (client.iter_bulk_variants(url) if url else ()):
            spool.write(json.dumps(variant, separators=(",", ":")) + "\n")
            skus[_key(variant.get("sku"))] += 1
            barcodes[_clean(variant.get("barcode"))] += 1
            total += 1
        spool.seek(0)
        _save(record, status="pending", phase="mapping", total=total, processed=0)
        mapper = Mapper(store, skus, barcodes)
        for chunk in _chunks(spool, CHUNK_SIZE):
            mapper.map_chunk(chunk)
            _save(record, status="pending", processed=mapper.processed, counts=dict(mapper.counts))
    counts = dict(mapper.counts)
    summary = summary_text(counts)
    _save(record, message=summary, status="synced", phase="done", counts=counts, processed=mapper.processed,
          finished_at=_now_text(), **mapper.lists)
    record.synced_at = utcnow()
    db.session.commit()
    _log_summary(store, record, started)
    # New mappings of a Delta store get their baseline now, so their next change is sent in full.
    from .stock import record_baselines
    record_baselines(store)
    return counts


def summary_text(counts):
    return (f"{counts.get('matched', 0)} matched, {counts.get('created', 0)} created, "
            f"{counts.get('conflicts', 0)} conflicts, {counts.get('skipped', 0)} skipped, "
            f"{counts.get('unchanged', 0)} already mapped")


def _log_summary(store, record, started, error=None):
    record_call(CallRecord(plugin=PLUGIN, store_id=store.id, method="SYNC",
                           path=f"Product sync: {summary_text((record.data or {}).get('counts', {}))}",
                           status=None if error else 200,
                           duration_ms=round((time.perf_counter() - started) * 1000, 1), error=error))


def _chunks(spool, size):
    chunk = []
    for line in spool:
        chunk.append(json.loads(line))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _clean(value):
    return (value or "").strip()


def _key(sku):
    return _clean(sku).lower()


class Mapper:
    """Maps variants chunk by chunk; knows the whole export's SKU and barcode counts from the start."""

    def __init__(self, store, skus, barcodes):
        self.store = store
        self.skus, self.barcodes = skus, barcodes
        rows = db.session.execute(select(ProductMapping.remote_variant_id, ProductMapping.product_id)
                                  .where(ProductMapping.store_id == store.id)).all()
        self.mapped_variants = {variant for variant, _ in rows}
        self.variant_of_product = {product: variant for variant, product in rows}
        self.counts = Counter(dict.fromkeys(COUNT_KEYS, 0))
        self.lists = {key: [] for key in LIST_KEYS}
        self.processed = 0

    def map_chunk(self, variants):
        for attempt in (1, 2):
            try:
                self._map(variants)
                break
            except IntegrityError:
                # a product or mapping was created at the same moment by someone else: read again
                db.session.rollback()
                if attempt == 2:
                    raise
        self.processed += len(variants)

    def _map(self, variants):
        fresh = [v for v in variants if v["id"] not in self.mapped_variants]
        unchanged = len(variants) - len(fresh)
        by_sku = self._products(func.lower(Product.sku), {_key(v.get("sku")) for v in fresh} - {""})
        by_barcode = self._products(Product.barcode, {_clean(v.get("barcode")) for v in fresh} - {""})
        claimed, mappings, new_products, outcomes = {}, [], [], []
        for variant in fresh:
            kind, product, detail = self._decide(variant, by_sku, by_barcode, claimed)
            if kind in ("sku", "barcode"):
                claimed[product.id] = variant["id"]
                mappings.append(_mapping_row(self.store, variant, product.id, kind))
            elif kind == "created":
                new_products.append((variant, detail))
            outcomes.append((kind, variant, product, detail))
        created = self._create_products([row for _, row in new_products])
        for variant, row in new_products:
            mappings.append(_mapping_row(self.store, variant, created[row["sku"]], "created"))
        if mappings:
            db.session.execute(insert(ProductMapping), mappings)
        # only now, after the writes went through, does the chunk count
        for row in mappings:
            self.mapped_variants.add(row["remote_variant_id"])
            self.variant_of_product[row["product_id"]] = row["remote_variant_id"]
        self.counts["unchanged"] += unchanged
        for kind, variant, product, detail in outcomes:
            self._note(kind, variant, product, detail, created)

    def _products(self, column, values):
        """{value of `column`: ProductRow} for the given values, in bounded IN lists."""
        found, values = {}, sorted(values)
        for start in range(0, len(values), 500):
            query = select(column, Product.id, Product.sku, Product.barcode).where(
                column.in_(values[start:start + 500]))
            for key, product_id, sku, barcode in db.session.execute(query):
                found[key] = ProductRow(product_id, sku, barcode)
        return found

    def _decide(self, variant, by_sku, by_barcode, claimed):
        """("sku"|"barcode", product, None), ("created", None, product row), ("conflicts"|"skipped", None, why)."""
        sku, barcode = _clean(variant.get("sku")), _clean(variant.get("barcode"))
        if sku and self.skus[sku.lower()] > 1:
            return "conflicts", None, (f"SKU {sku} is on {self.skus[sku.lower()]} Shopify variants; give each "
                                       "variant its own SKU in Shopify, then sync again.")
        product = by_sku.get(sku.lower()) if sku else None
        if product is not None:
            return self._claim(product, "sku", claimed, f"SKU {sku}")
        product = by_barcode.get(barcode) if barcode else None
        if product is not None:
            if self.barcodes[barcode] > 1:
                return "conflicts", None, (f"Barcode {barcode} is on {self.barcodes[barcode]} Shopify variants; "
                                           "it cannot tell which one is WMS product " f"{product.sku}.")
            if self.skus[product.sku.lower()] and product.sku.lower() != sku.lower():
                return "conflicts", None, (f"Barcode {barcode} belongs to WMS product {product.sku}, whose SKU is "
                                           "on another Shopify variant.")
            return self._claim(product, "barcode", claimed, f"Barcode {barcode}")
        if not sku:
            return "skipped", None, "No SKU in Shopify; add one and sync again to map this variant."
        if not SKU_PATTERN.match(sku):
            return "skipped", None, (f"SKU {sku!r} is not a valid WMS SKU (letters, digits and . _ - / only, "
                                     "at most 64 characters).")
        return "created", None, self._new_product(variant, sku, barcode)

    def _claim(self, product, kind, claimed, what):
        other = self.variant_of_product.get(product.id) or claimed.get(product.id)
        if other is not None:
            return "conflicts", None, (f"{what} is WMS product {product.sku}, which is already mapped to Shopify "
                                       f"variant {other}; existing mappings are never changed.")
        return kind, product, None

    def _new_product(self, variant, sku, barcode):
        usable_barcode = barcode if (barcode and self.barcodes[barcode] == 1 and BARCODE_PATTERN.fullmatch(barcode)) \
            else None
        return {"sku": sku, "barcode": usable_barcode, "name": _product_name(variant),
                "retail_price": _price(variant.get("price"))}

    def _create_products(self, rows):
        """Insert the new products in one statement; returns {sku: product id}."""
        if not rows:
            return {}
        created = db.session.execute(insert(Product).returning(Product.id, Product.sku), rows).all()
        return {sku: product_id for product_id, sku in created}

    def _note(self, kind, variant, product, detail, created):
        key = {"sku": "matched", "barcode": "matched"}.get(kind, kind)
        self.counts[key] += 1
        if len(self.lists[key]) >= LIST_LIMIT:
            return
        entry = {"variant_id": variant["id"], "sku": variant.get("sku"), "barcode": variant.get("barcode"),
                 "title": _product_name(variant)}
        if kind in ("sku", "barcode"):
            entry.update(product_id=product.id, product_sku=product.sku, matched_by=kind)
        elif kind == "created":
            entry.update(product_id=created[detail["sku"]], product_sku=detail["sku"])
            if variant.get("barcode") and not detail["barcode"]:
                entry["note"] = f"Barcode {variant['barcode']} not copied (shared or not valid in the WMS)."
        else:
            entry["message"] = detail
        self.lists[key].append(entry)


def _mapping_row(store, variant, product_id, matched_by):
    return {"store_id": store.id, "product_id": product_id, "remote_product_id": variant.get("product_id"),
            "remote_variant_id": variant["id"], "remote_inventory_id": variant.get("inventory_item_id"),
            "remote_sku": (variant.get("sku") or None) and variant["sku"][:64], "matched_by": matched_by,
            "data": {"barcode": variant.get("barcode"), "title": _product_name(variant),
                     "tracked": variant.get("tracked")}, "created_at": utcnow()}


def _product_name(variant):
    title = _clean(variant.get("product_title")) or _clean(variant.get("sku")) or "Shopify product"
    option = _clean(variant.get("title"))
    if option and option != "Default Title":
        title = f"{title} - {option}"
    return title[:255]


def _price(value):
    try:
        price = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal("0.00")
    if not price.is_finite() or price < 0 or price > Decimal("1000000"):
        return Decimal("0.00")
    return price.quantize(Decimal("0.01"))
