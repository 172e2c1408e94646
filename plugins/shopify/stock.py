"""Stock push to Shopify: Absolute (`inventorySetQuantities`) or Delta (`inventoryAdjustQuantities`).

The core calls `push_stock(store, items)` once per grouping window with every changed product at every
mapped location. Each call carries up to 250 rows, `changeFromQuantity` (the quantity we last knew
Shopify had) and an `@idempotent` key.

Exactly once, even when the worker dies
    Before sending, the push writes a journal (one SyncRecord per store, object_type
    "shopify_stock_push"): its calls with their keys and rows, status "sending". A push that finds a
    journal still "sending" first replays those calls with the same keys: Shopify answers a key it has
    applied with its first answer and applies one it never saw, so a call lands once. Once sent, the
    journal keeps what each row left in Shopify, which is the baseline of the next Delta until the
    core has recorded it. So a retried Delta never counts a change twice.

Stale changeFromQuantity
    Shopify refuses a whole call when a row's changeFromQuantity no longer matches (a sale, an edit in
    the Shopify admin). The refused rows are re-read and sent again with the fresh quantity: Absolute
    still sets the WMS value, Delta adds the same change on top of Shopify's new quantity. When the
    refusal's answer was lost, the client's retry of the key hears IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED:
    that call changed nothing either, so every row of it is re-read and sent again under a new key.

Delta baseline
    Delta sends "what changed since the last sync". A product-location pushed for the first time has no
    last sync: its first push only records where both sides stand (Shopify's quantity is kept), and
    every later change is sent.

Delta and the store's own orders
    Shopify lowers its available when it takes an order; the WMS lowers its own when it reserves that
    order. So Delta counts from the WMS available plus the units the WMS holds for (or has shipped to)
    this store's own orders: reserving, shipping or cancelling one of them sends nothing, while an order
    from anywhere else still moves Shopify. Baselines recorded before this rule counted from the plain
    available, so a product with such orders then gets one push of those units.
"""

import hashlib
import json

from sqlalchemy import func, select, update

from wms.extensions import db
from wms.plugins import PushResult
from wms.plugins.models import RemoteLevel, SyncRecord

from . import connection
from .client import MAX_ROWS_PER_CALL, ShopifyRejected, StaleQuantity, to_gid

JOURNAL = "shopify_stock_push"
STALE_RETRIES = 3
# Shopify's answer to a key whose first call it refused (a stale changeFromQuantity whose answer was lost).
PREVIOUS_ATTEMPT_FAILED = "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED"
REASON = "correction"


def level_key(inventory_item_id, location_id):
    return f"{to_gid('InventoryItem', inventory_item_id)}@{to_gid('Location', location_id)}"


def item_key(item):
    return level_key(item.mapping.remote_inventory_id, item.remote_location_id)


# -- the journal ---------------------------------------------------------------------------------------
def journal_for(store):
    record = db.session.scalar(select(SyncRecord).where(
        SyncRecord.plugin == "shopify", SyncRecord.object_type == JOURNAL, SyncRecord.object_id == store.id))
    if record is None:
        record = SyncRecord(plugin="shopify", store_id=store.id, object_type=JOURNAL, object_id=store.id,
                            status="synced", data={"seq": 0, "calls": [], "applied": {}})
        db.session.add(record)
    db.session.commit()  # no write transaction stays open across the calls to Shopify
    return record


def save_journal(journal, status, message=None, **data):
    journal.status = status
    journal.data = {**(journal.data or {}), **data}
    journal.message = message
    db.session.commit()


# -- the push --------------------------------------------------------------------------------------------
class Push:
    """One window's push for one store."""

    def __init__(self, store, items):
        self.store = store
        self.items, self.unlinked = [], []
        for item in items:
            linked = item.mapping is not None and item.mapping.remote_inventory_id
            (self.items if linked else self.unlinked).append(item)
        self.mode = store.setting("stock_mode") or "delta"
        self.own = own_order_units(store, [i.product_id for i in self.items]) if self.mode == "delta" else {}
        self.warehouse_of = {loc.remote_id: loc.warehouse_id for loc in store.locations}
        self.client = connection.client_for(store)
        self.journal = journal_for(store)
        self.results = {}      # level key -> (status, Shopify's quantity, message)
        self.applied = {}      # level key -> {"target": quantity counted from, "remote": Shopify's after}

    def run(self):
        known = self.recover()
        rows = self.plan(known)
        if rows:
            self.send(rows)
        save_journal(self.journal, "synced", applied=self.applied_of_this_window(known),
                     message=f"Last push: {len(rows)} row(s) in {self.mode} mode.")
        return self.all_results()

    # What Shopify holds, as far as we know, before this window
    def recover(self):
        """{level key: {"target", "remote"}} the previous push left in Shopify (replaying it if it was cut off)."""
        data = self.journal.data or {}
        applied = dict(data.get("applied") or {})
        if self.journal.status == "pending":
            for call in data.get("calls", []):
                applied.update(self.replay(call))
            save_journal(self.journal, "synced", applied=applied, calls=[],
                         message="Replayed a push that was cut off.")
        return applied

    def replay(self, call):
        try:
            changes = self.mutate(call["rows"], call["key"])
        except ShopifyRejected:  # stale, or refused the first time: a refused call changed nothing
            return {}
        return self.applied_rows(call["rows"], changes)

    def target(self, item):
        """The quantity this push counts from (see "Delta and the store's own orders")."""
        return item.quantity + self.own.get((item.product_id, self.warehouse_of.get(item.remote_location_id)), 0)

    def baseline(self, item, known):
        """(pushed quantity, remote quantity) this window starts from."""
        previous = known.get(item_key(item))
        if previous is not None:
            return previous["target"], previous["remote"]
        return item.pushed_quantity, item.remote_quantity

    # What to send
    def plan(self, known):
        unknown_remote = [i for i in self.items if self.baseline(i, known)[1] is None]
        fresh = self.read_levels(unknown_remote)
        rows = []
        for item in self.items:
            pushed, remote = self.baseline(item, known)
            if remote is None:
                remote = fresh.get(item_key(item))
            if remote is None:
                self.fail(item, "Not stocked at this Shopify location: activate the product's inventory at "
                                "the location in Shopify (Products → Inventory), or unmap the location.")
                continue
            row = self.row_for(item, pushed, remote)
            if row is None:
                self.succeed(item, remote)
            else:
                rows.append(row)
        return rows

    def row_for(self, item, pushed, remote):
        base = {"key": item_key(item), "inventory_item_id": to_gid("InventoryItem", item.mapping.remote_inventory_id),
                "location_id": to_gid("Location", item.remote_location_id), "change_from": remote,
                "target": self.target(item)}
        if self.mode == "absolute":
            return None if remote == item.quantity else dict(base, quantity=item.quantity)
        if pushed is None or base["target"] == pushed:
            return None  # Delta: the first sight records the baseline; no change, nothing to send
        return dict(base, delta=base["target"] - pushed)

    def read_levels(self, items):
        """{level key: Shopify's available} for items whose remote quantity we do not know."""
        if not items:
            return {}
        levels = self.client.inventory_levels(sorted({to_gid("InventoryItem", i.mapping.remote_inventory_id)
                                                      for i in items}),
                                              sorted({to_gid("Location", i.remote_location_id) for i in items}),
                                              names=("available",))
        return {level_key(lv["inventory_item_id"], lv["location_id"]): lv["quantities"].get("available")
                for lv in levels}

    # Sending
    def send(self, rows):
        seq = int((self.journal.data or {}).get("seq", 0)) + 1
        calls = [{"key": self.call_key(seq, index, chunk), "rows": chunk}
                 for index, chunk in enumerate(chunks(rows))]
        save_journal(self.journal, "pending", seq=seq, calls=calls, message="Push in progress.")
        for index, call in enumerate(calls):
            self.send_call(seq, index, call, calls)

    def call_key(self, seq, index, rows, attempt=0):
        digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:20]
        return f"wms-{self.store.id}-{seq}-{index}-{attempt}-{digest}"

    def send_call(self, seq, index, call, calls):
        rows = call["rows"]
        for attempt in range(STALE_RETRIES + 1):
            try:
                changes = self.mutate(rows, call["key"])
            except StaleQuantity as exc:
                rows = self.refreshed(rows, exc.items, attempt)
            except ShopifyRejected as exc:
                if exc.code == PREVIOUS_ATTEMPT_FAILED:   # that call changed nothing: read all rows again
                    rows = self.refreshed(rows, [], attempt)
                else:
                    rows = self.without_refused(rows, exc)
            else:
                self.record_applied(rows, changes)
                return
            if not rows:
                return
            call.update(key=self.call_key(seq, index, rows, attempt + 1), rows=rows)
            save_journal(self.journal, "pending", calls=calls)
        for row in rows:
            self.fail_row(row, "Shopify's quantity kept changing while the WMS pushed; the next push retries.")

    def mutate(self, rows, key):
        uri = f"gid://wms/StockPush/{self.store.id}"
        if self.mode == "absolute":
            return self.client.set_quantities(rows, reason=REASON, reference_document_uri=uri, idempotency_key=key)
        return self.client.adjust_quantities(rows, reason=REASON, reference_document_uri=uri, idempotency_key=key)

    def refreshed(self, rows, stale, attempt):
        """The rows again, the stale ones with Shopify's quantity as it is now (Absolute drops rows that
        already match)."""
        stale_keys = {level_key(s["inventory_item_id"], s["location_id"]) for s in stale if s["inventory_item_id"]}
        if not stale_keys:  # Shopify did not say which rows: re-read them all
            stale_keys = {row["key"] for row in rows}
        current = self.read_levels_by_key([r for r in rows if r["key"] in stale_keys])
        again = []
        for row in rows:
            if row["key"] not in stale_keys:
                again.append(row)
                continue
            remote = current.get(row["key"])
            if remote is None:
                self.fail_row(row, "No longer stocked at this Shopify location.")
            elif self.mode == "absolute" and remote == row["quantity"]:
                self.succeed_row(row, remote)
            else:
                again.append(dict(row, change_from=remote))
        return again

    def read_levels_by_key(self, rows):
        if not rows:
            return {}
        levels = self.client.inventory_levels(sorted({r["inventory_item_id"] for r in rows}),
                                              sorted({r["location_id"] for r in rows}), names=("available",))
        return {level_key(lv["inventory_item_id"], lv["location_id"]): lv["quantities"].get("available")
                for lv in levels}

    def without_refused(self, rows, exc):
        """Fail the rows Shopify named in its userErrors; the others are sent again (a call is all or nothing)."""
        refused = {}
        for error in exc.user_errors:
            field = error.get("field") or []
            if len(field) > 2 and str(field[2]).isdigit() and int(field[2]) < len(rows):
                refused[int(field[2])] = error.get("message") or exc.message
        if not refused:
            for row in rows:
                self.fail_row(row, exc.message)
            return []
        for index, message in refused.items():
            self.fail_row(rows[index], f"Shopify refused it: {message}")
        return [row for index, row in enumerate(rows) if index not in refused]

    # Results
    def applied_rows(self, rows, changes):
        after = {level_key(c["inventory_item_id"], c["location_id"]): c["quantity_after"]
                 for c in changes if c["name"] == "available"}
        applied = {}
        for row in rows:
            remote = after.get(row["key"])
            if remote is None:  # nothing changed in Shopify for this row
                remote = row["quantity"] if self.mode == "absolute" else row["change_from"] + row["delta"]
            applied[row["key"]] = {"target": row["target"], "remote": remote}
        return applied

    def record_applied(self, rows, changes):
        for key, value in self.applied_rows(rows, changes).items():
            self.applied[key] = value
            self.results[key] = ("ok", value["remote"], None)

    def succeed(self, item, remote):
        """Nothing to send: Shopify already holds what it should (or, in Delta, the baseline is set)."""
        self.results[item_key(item)] = ("ok", remote, None)
        self.applied[item_key(item)] = {"target": self.target(item), "remote": remote}

    def succeed_row(self, row, remote):
        self.applied[row["key"]] = {"target": row["target"], "remote": remote}
        self.results[row["key"]] = ("ok", remote, None)

    def fail(self, item, message):
        self.results[item_key(item)] = ("failed", None, message)

    def fail_row(self, row, message):
        self.results[row["key"]] = ("failed", None, message)

    def applied_of_this_window(self, known):
        """Baselines to keep: this window's, plus earlier ones of products still waiting to be recorded."""
        keys = {item_key(i) for i in self.items}
        return {**{k: v for k, v in known.items() if k in keys}, **self.applied}

    def all_results(self):
        results = []
        for item in self.items:
            status, remote, message = self.results.get(item_key(item), ("failed", None, "Not pushed."))
            results.append(PushResult(item.product_id, item.remote_location_id, status == "ok",
                                      remote_quantity=remote, message=message, pushed_quantity=self.target(item)))
        for item in self.unlinked:
            results.append(PushResult(item.product_id, item.remote_location_id, False, message=(
                "Not linked to a Shopify inventory item: run Sync Products for this store.")))
        return results


def levels_moved_in_shopify(store, product_ids):
    """Shopify changed its own available for an order (committed units when it took it, gave them back
    when it was cancelled). What the WMS last knew of those levels is stale: a push that compared the
    WMS figure with it could skip a level that is wrong. Forget it, so the next push reads Shopify
    first, and ask for that push."""
    from wms.jobs import stock_push
    if not product_ids or not store.setting("stock_sync"):
        return
    db.session.execute(update(RemoteLevel).where(RemoteLevel.store_id == store.id,
                                                 RemoteLevel.product_id.in_(product_ids))
                       .values(remote_quantity=None))
    journal = db.session.scalar(select(SyncRecord).where(
        SyncRecord.plugin == "shopify", SyncRecord.object_type == JOURNAL, SyncRecord.object_id == store.id))
    if journal is not None:   # the last push's record of what it left, which a push reads first
        from wms.plugins.models import ProductMapping
        moved = {to_gid("InventoryItem", m.remote_inventory_id) for m in db.session.scalars(select(ProductMapping).where(
            ProductMapping.store_id == store.id, ProductMapping.product_id.in_(product_ids))) if m.remote_inventory_id}
        applied = (journal.data or {}).get("applied") or {}
        journal.data = {**journal.data, "applied": {k: v for k, v in applied.items() if k.split("@")[0] not in moved}}
    stock_push.mark_dirty(store, sorted(set(product_ids)))


def own_order_units(store, product_ids):
    """{(product id, warehouse id): units reserved for or shipped to the store's own orders}."""
    from wms.core.models import Order, OrderLine, Reservation
    if not product_ids:
        return {}
    reserved = (select(Reservation.product_id, Reservation.warehouse_id, func.sum(Reservation.quantity))
                .join(OrderLine, OrderLine.id == Reservation.order_line_id)
                .join(Order, Order.id == OrderLine.order_id)
                .where(Order.store_id == store.id, Reservation.status == "active",
                       Reservation.product_id.in_(product_ids))
                .group_by(Reservation.product_id, Reservation.warehouse_id))
    shipped = (select(OrderLine.product_id, Order.warehouse_id, func.sum(OrderLine.quantity_shipped))
               .join(Order, Order.id == OrderLine.order_id)
               .where(Order.store_id == store.id, OrderLine.quantity_shipped > 0,
                      OrderLine.product_id.in_(product_ids))
               .group_by(OrderLine.product_id, Order.warehouse_id))
    units = {}
    for statement in (reserved, shipped):
        for product_id, warehouse_id, quantity in db.session.execute(statement):
            units[(product_id, warehouse_id)] = units.get((product_id, warehouse_id), 0) + int(quantity or 0)
    return units


def chunks(rows):
    return [rows[start:start + MAX_ROWS_PER_CALL] for start in range(0, len(rows), MAX_ROWS_PER_CALL)]


def push_stock(store, items):
    """Push `items` (StockPushItem) to the store; returns one PushResult per item. A transient failure
    propagates (the core retries the job; the journal makes the retry land each call once)."""
    return Push(store, items).run()


# -- Delta baselines -----------------------------------------------------------------------------------------
def record_baselines(store):
    """For Delta stores: note where both sides stand for every mapped product-location never pushed, so the
    next change is sent in full (run when stock sync is switched on and by the periodic reconciliation).
    Returns how many baselines were recorded."""
    from wms.core.models import WarehouseLevel
    from wms.plugins.models import ProductMapping
    if store.setting("stock_mode", "delta") != "delta" or not store.setting("stock_sync"):
        return 0
    locations = [loc for loc in store.locations if loc.warehouse_id]
    known = {(r.product_id, r.remote_location_id) for r in db.session.scalars(
        select(RemoteLevel).where(RemoteLevel.store_id == store.id))}
    mappings = db.session.scalars(select(ProductMapping).where(
        ProductMapping.store_id == store.id, ProductMapping.remote_inventory_id.is_not(None))).all()
    missing = [(m, loc) for m in mappings for loc in locations if (m.product_id, loc.remote_id) not in known]
    if not missing:
        return 0
    db.session.commit()  # no transaction open across the remote read
    client = connection.client_for(store)
    remote = {}
    for start in range(0, len(missing), 1000):
        part = missing[start:start + 1000]
        levels = client.inventory_levels(sorted({to_gid("InventoryItem", m.remote_inventory_id) for m, _ in part}),
                                         sorted({to_gid("Location", loc.remote_id) for _, loc in part}),
                                         names=("available",))
        remote.update({level_key(lv["inventory_item_id"], lv["location_id"]): lv["quantities"].get("available")
                       for lv in levels})
    available = {(lv.product_id, lv.warehouse_id): lv.available for lv in db.session.scalars(
        select(WarehouseLevel).where(WarehouseLevel.product_id.in_({m.product_id for m, _ in missing})))}
    own = own_order_units(store, sorted({m.product_id for m, _ in missing}))
    count = 0
    for mapping, location in missing:
        shopify = remote.get(level_key(mapping.remote_inventory_id, location.remote_id))
        if shopify is None or db.session.get(RemoteLevel, (store.id, mapping.product_id, location.remote_id)):
            continue
        key = (mapping.product_id, location.warehouse_id)
        counted_from = max(available.get(key, 0), 0) + own.get(key, 0)
        db.session.add(RemoteLevel(store_id=store.id, product_id=mapping.product_id,
                                   remote_location_id=location.remote_id, pushed_quantity=counted_from,
                                   remote_quantity=shopify, status="synced",
                                   message="Delta baseline: Shopify's quantity kept; later changes are sent."))
        count += 1
    db.session.commit()
    return count
