"""Debounced stock push, per store.

A stock change marks the store's mapped products dirty (change_seq + 1) and, if no window is open,
opens one: `push_due_at` is set and a `stock.push` message is emitted for the end of the window.
Changes inside the window only mark products dirty. The push clears the window first (so a change
during the push opens the next one), reads the *current* levels of every dirty product, hands them
to the store's plugin in one call (the plugin batches as its API allows), and records what the remote
now holds. Retrying a push is harmless: it always sends current values. One push per store runs at a
time (a lease on the store row), so an older push can never land after a newer one.
"""

from datetime import timedelta

from flask import current_app
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from wms import outbox
from wms.core.models import Product, WarehouseLevel
from wms.core.models._base import utcnow
from wms.extensions import db
from wms.plugins.base import StockPushItem
from wms.plugins.manager import plugin_host
from wms.plugins.models import ProductMapping, RemoteLevel, StockPushState, Store

RETRY_WHILE_BUSY_SECONDS = 1


def pushing_stores():
    """Stores whose plugin is active, that are connected and have stock sync switched on."""
    host = plugin_host()
    active = host.active_names()
    stores = db.session.scalars(select(Store).where(Store.plugin.in_(active), Store.status == "connected")).all()
    return [s for s in stores if s.setting("stock_sync") and host.get(s.plugin).kind == "marketplace"]


def stock_changed(messages):
    """Handle a batch of stock.changed messages: mark dirty, open windows, tell the plugins."""
    product_ids = sorted({p for m in messages for p in m.payload.get("product_ids", [])})
    warehouse_ids = sorted({w for m in messages for w in m.payload.get("warehouse_ids", [])})
    for store in pushing_stores():
        mapped_warehouses = {loc.warehouse_id for loc in store.locations if loc.warehouse_id}
        if not mapped_warehouses & set(warehouse_ids):
            continue
        mapped = db.session.scalars(select(ProductMapping.product_id).where(
            ProductMapping.store_id == store.id, ProductMapping.product_id.in_(product_ids))).all()
        if mapped:
            mark_dirty(store, mapped)
    plugin_host().hooks.wms_stock_changed(product_ids=product_ids, warehouse_ids=warehouse_ids)


def mark_dirty(store, product_ids, window_seconds=None):
    """Mark products as changed for `store` and open its push window (after `window_seconds`, or the
    store's window by default)."""
    now = utcnow()
    # One statement that adds 1 where the row is: two drains can run at once, and a count read first
    # and written back later could go below what a push has meanwhile recorded as pushed.
    table = StockPushState.__table__
    statement = _insert()(table).on_conflict_do_update(
        index_elements=["store_id", "product_id"],
        set_={"change_seq": table.c.change_seq + 1, "changed_at": now})
    rows = [{"store_id": store.id, "product_id": product_id, "change_seq": 1, "pushed_seq": 0, "changed_at": now}
            for product_id in product_ids]
    if rows:
        db.session.execute(statement, rows)
    open_window(store, window_seconds)


def window_seconds(store):
    return float(store.setting("push_window_seconds") or current_app.config["WMS_PUSH_WINDOW_SECONDS"])


def open_window(store, seconds=None):
    """Open the store's push window unless one is open; returns True when this call opened it."""
    seconds = window_seconds(store) if seconds is None else seconds
    due = utcnow() + timedelta(seconds=seconds)
    opened = db.session.execute(update(Store).where(Store.id == store.id, Store.push_due_at.is_(None))
                                .values(push_due_at=due)).rowcount
    if opened:
        outbox.emit("stock.push", {"store_id": store.id}, delay_seconds=seconds)
    return bool(opened)


def push_store(store_id):
    claimed_at = claim_push(store_id)
    if claimed_at is None:
        # Another push of this store is running; try again in a moment (the window stays open).
        outbox.emit("stock.push", {"store_id": store_id}, delay_seconds=RETRY_WHILE_BUSY_SECONDS)
        db.session.commit()
        return 0
    try:
        return push_claimed(store_id)
    finally:
        db.session.rollback()
        db.session.execute(update(Store).where(Store.id == store_id, Store.push_started_at == claimed_at)
                           .values(push_started_at=None))
        db.session.commit()


def claim_push(store_id):
    """Take the store's push lease, or return None while another push holds it. Two overlapping pushes
    could land in either order and leave the store showing the older quantity; a push whose worker
    died frees the store when its message counts as lost (the running timeout)."""
    from .runner import running_timeout
    now = utcnow()
    lease = timedelta(seconds=running_timeout())
    taken = db.session.execute(update(Store).where(
        Store.id == store_id, or_(Store.push_started_at.is_(None), Store.push_started_at < now - lease))
        .values(push_started_at=now)).rowcount
    db.session.commit()
    return now if taken else None


def push_claimed(store_id):
    db.session.execute(update(Store).where(Store.id == store_id).values(push_due_at=None))
    db.session.commit()
    store = db.session.get(Store, store_id)
    if store is None or store not in pushing_stores():
        return 0
    states = db.session.scalars(select(StockPushState).where(
        StockPushState.store_id == store_id, StockPushState.change_seq > StockPushState.pushed_seq)).all()
    seen = {s.product_id: s.change_seq for s in states}
    items = build_items(store, sorted(seen))
    db.session.commit()     # no transaction stays open across the remote calls
    results = plugin_host().plugin_for(store).push_stock(store, items) if items else []
    record_results(store, items, results, seen)
    return len(items)


def build_items(store, product_ids):
    """What each dirty product should show at each mapped remote location, from current levels."""
    host = plugin_host()
    mappings = {m.product_id: m for m in db.session.scalars(select(ProductMapping).where(
        ProductMapping.store_id == store.id, ProductMapping.product_id.in_(product_ids)))}
    locations = [loc for loc in store.locations if loc.warehouse_id]
    levels = {(product_id, warehouse_id): available for product_id, warehouse_id, available in db.session.execute(
        select(WarehouseLevel.product_id, WarehouseLevel.warehouse_id,
               WarehouseLevel.on_hand - WarehouseLevel.committed)
        .where(WarehouseLevel.product_id.in_(product_ids)))}
    previous = {(r.product_id, r.remote_location_id): r for r in db.session.scalars(select(RemoteLevel).where(
        RemoteLevel.store_id == store.id, RemoteLevel.product_id.in_(product_ids)))}
    products = {p.id: p for p in db.session.scalars(select(Product).where(Product.id.in_(product_ids)))}
    available_to_sell = host.hooks.wms_available_to_sell   # the active plugins, read once per push
    items = []
    for product_id in product_ids:
        mapping = mappings.get(product_id)
        if mapping is None:
            continue
        for location in locations:
            available = levels.get((product_id, location.warehouse_id), 0)
            quantity = available_to_sell(store=store, product=products[product_id], location=location,
                                         available=available)
            last = previous.get((product_id, location.remote_id))
            items.append(StockPushItem(product_id=product_id, sku=products[product_id].sku, mapping=mapping,
                                       remote_location_id=location.remote_id, quantity=int(quantity),
                                       pushed_quantity=last.pushed_quantity if last else None,
                                       remote_quantity=last.remote_quantity if last else None))
    return items


def record_results(store, items, results, seen):
    """What each item left at the remote, and which changes are now pushed: a few statements, each run
    for many rows, since a window can carry thousands of product-locations."""
    now = utcnow()
    by_key = {(r.product_id, r.remote_location_id): r for r in results}
    synced, failed = [], []
    for item in items:
        row = {"store_id": store.id, "product_id": item.product_id, "remote_location_id": item.remote_location_id}
        result = by_key.get((item.product_id, item.remote_location_id))
        if result is not None and result.ok:
            pushed = item.quantity if result.pushed_quantity is None else result.pushed_quantity
            synced.append(dict(row, pushed_quantity=pushed, remote_quantity=result.remote_quantity,
                               status="synced", message=None, pushed_at=now))
        else:
            message = result.message if result else "The plugin returned no result for this item."
            failed.append(dict(row, pushed_quantity=None, remote_quantity=None, status="failed",
                               message=message[:1000], pushed_at=None))
    connection = db.session.connection()
    if synced:
        connection.execute(_upsert_levels(("pushed_quantity", "remote_quantity", "status", "message", "pushed_at")),
                           synced)
    if failed:   # what the remote held before is still the best knowledge of it
        connection.execute(_upsert_levels(("status", "message")), failed)
    if seen:
        table = StockPushState.__table__
        connection.execute(update(table).where(
            table.c.store_id == store.id, table.c.product_id == bindparam("pid"), table.c.pushed_seq < bindparam("seq"))
            .values(pushed_seq=bindparam("seq")), [{"pid": p, "seq": q} for p, q in seen.items()])
    db.session.commit()


def _insert():
    """The dialect's INSERT, which has ON CONFLICT DO UPDATE (the same on SQLite and PostgreSQL)."""
    return postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _upsert_levels(columns):
    statement = _insert()(RemoteLevel.__table__)
    return statement.on_conflict_do_update(
        index_elements=["store_id", "product_id", "remote_location_id"],
        set_={name: statement.excluded[name] for name in columns})
