"""Stock both ways.

WMS is the authority (`push_stock`, called by the core's debounced push): every dirty product is
sent through the batch endpoints, 100 items a call, variations batched per parent.
* Absolute: `stock_quantity` = what the WMS says the store may sell.
* Delta: `inventory_delta` = the change since the last push, so sales WooCommerce made meanwhile are
  not overwritten. Changes WooCommerce made itself are not sent back: the units of its own orders
  (and of orders mirrored into it, which it lowers its stock for) are counted per mapping in
  `data["woo_applied"]` when the WMS reserves them, and added back to the delta. The first push of a
  product, and the one after a push whose outcome is unknown, is Absolute.

WooCommerce is the authority (`pull_stock`, every N minutes and by Sync stock): WooCommerce's
`stock_quantity` is what it can still sell, already lowered for its own orders and for mirrored
ones. The mapped warehouse's on hand is brought, by `sync` movements in the ledger, to that number
plus the unshipped units of the open WMS orders WooCommerce has counted. So the WMS available
(on hand minus everything reserved) is WooCommerce's stock minus what open WMS orders from
elsewhere hold, and nothing oversells.
"""

from uuid import uuid4

from sqlalchemy import select

from wms.core.models import Location, LocationLevel, LocationUsage, Order, OrderLine, Product, WarehouseLevel
from wms.core.services import inventory
from wms.core.services import orders as order_service
from wms.core.services.inventory import Move
from wms.extensions import db
from wms.integrations.errors import PermanentRemoteError, RemoteError, TransientRemoteError
from wms.plugins import PushResult
from wms.plugins.manager import plugin_host
from wms.plugins.models import ProductMapping, Store, SyncRecord

from . import store as woo_store
from .client import PLUGIN, StockPriceUpdate

PULL_TOPIC = "woocommerce.pull_stock"
OPEN_ORDER_STATUSES = ("open", "on_hold", "picking", "packed")


# -- push (WMS authority) ------------------------------------------------------------------------

def is_variation(mapping):
    return mapping.remote_product_id not in (None, "", mapping.remote_variant_id)


def update_for(item, delta_mode):
    mapping = item.mapping
    parent_id = int(mapping.remote_product_id) if is_variation(mapping) else 0
    data = mapping.data or {}
    if delta_mode and item.pushed_quantity is not None and not data.get("push_uncertain"):
        delta = item.quantity - item.pushed_quantity + int(data.get("woo_applied") or 0)
        return StockPriceUpdate(id=int(mapping.remote_variant_id), parent_id=parent_id, inventory_delta=delta)
    return StockPriceUpdate(id=int(mapping.remote_variant_id), parent_id=parent_id,
                            stock_quantity=item.quantity, manage_stock=True)


def push_stock(store, items):
    """Publish `items` (StockPushItems); one PushResult each."""
    delta_mode = store.setting("stock_mode") == "delta"
    updates = [update_for(item, delta_mode) for item in items]
    results = [None] * len(items)
    absolute = [n for n, u in enumerate(updates) if u.inventory_delta is None]
    deltas = [n for n, u in enumerate(updates) if u.inventory_delta is not None]
    client = woo_store.make_client(store)
    for positions, idempotent in ((absolute, True), (deltas, False)):
        if positions:
            send(client, items, updates, positions, idempotent, results)
    settle_counters(items, updates, results)
    return results


def send(client, items, updates, positions, idempotent, results):
    try:
        answers = client.batch_update([updates[n] for n in positions], idempotent=idempotent)
    except TransientRemoteError as exc:
        for n in positions:
            results[n] = PushResult(items[n].product_id, items[n].remote_location_id, False,
                                    message=f"{exc.message} The next push sends the full quantity.")
            mark_uncertain(items[n].mapping)
        return
    for n, answer in zip(positions, answers):
        item = items[n]
        if answer.ok:
            remote = (answer.item or {}).get("stock_quantity")
            results[n] = PushResult(item.product_id, item.remote_location_id, True, remote_quantity=remote)
        else:
            results[n] = PushResult(item.product_id, item.remote_location_id, False,
                                    message=f"WooCommerce refused: {answer.error_code}: {answer.error_message}")


def mark_uncertain(mapping):
    mapping.data = {**(mapping.data or {}), "push_uncertain": True}


def settle_counters(items, updates, results):
    """After a successful push the units WooCommerce applied itself are accounted for."""
    for item, update, result in zip(items, updates, results):
        if result is None or not result.ok:
            continue
        data = dict(item.mapping.data or {})
        if update.inventory_delta is not None:
            data["woo_applied"] = int(data.get("woo_applied") or 0) - (update.inventory_delta - (
                item.quantity - item.pushed_quantity))
        else:
            data["woo_applied"] = 0
        data.pop("push_uncertain", None)
        item.mapping.data = data


def count_woo_applied(store, product_id, units):
    """WooCommerce lowered (units > 0) or raised its stock itself for an order the WMS also reserves."""
    if not units or woo_store.woo_is_authority(store):
        return
    mapping = db.session.scalar(select(ProductMapping).where(
        ProductMapping.store_id == store.id, ProductMapping.product_id == product_id).with_for_update())
    if mapping is not None:
        data = dict(mapping.data or {})
        data["woo_applied"] = int(data.get("woo_applied") or 0) + int(units)
        mapping.data = data


def repush_after_woo_change(store, product_ids):
    """WooCommerce changed its stock itself for an order (lowered for a mirror, raised for a cancel): let
    the next push put the WMS figure back. Delta needs it too: when the WMS's own change was pushed
    before WooCommerce made its change, only the next push accounts for it."""
    if store.setting("stock_sync") and product_ids:
        from wms.jobs import stock_push
        stock_push.mark_dirty(store, sorted(set(product_ids)))


# -- pull (WooCommerce authority) ----------------------------------------------------------------

def mapped_stock(store):
    """{product_id: WooCommerce stock} for mapped items whose stock WooCommerce manages, plus notes
    for the ones it does not."""
    mappings = db.session.scalars(select(ProductMapping).where(ProductMapping.store_id == store.id)).all()
    client = woo_store.make_client(store)
    by_remote = {m.remote_variant_id: m for m in mappings}
    products = [m for m in mappings if not is_variation(m)]
    variations = {}
    for m in mappings:
        if is_variation(m):
            variations.setdefault(m.remote_product_id, []).append(m)
    db.session.commit()
    raw_items = []
    for start in range(0, len(products), 100):
        ids = ",".join(m.remote_variant_id for m in products[start:start + 100])
        raw_items.extend(client.iter_products(include=ids, fields=("id", "sku", "manage_stock", "stock_quantity")))
    for parent_id, members in variations.items():
        for start in range(0, len(members), 100):
            ids = ",".join(m.remote_variant_id for m in members[start:start + 100])
            raw_items.extend(client.iter_variations(int(parent_id), include=ids))
    stock, untracked = {}, []
    for raw in raw_items:
        mapping = by_remote.get(str(raw["id"]))
        if mapping is None:
            continue
        if raw.get("manage_stock") is True and raw.get("stock_quantity") is not None:
            stock[mapping.product_id] = int(raw["stock_quantity"])
        else:
            untracked.append(raw.get("sku") or str(raw["id"]))
    return stock, untracked


def mirrored_order_ids(store):
    return select(SyncRecord.object_id).where(
        SyncRecord.plugin == PLUGIN, SyncRecord.object_type == f"order@{store.id}", SyncRecord.status == "synced")


def counted_by_woo(store, warehouse_id, product_ids):
    """{product_id: unshipped units of open WMS orders WooCommerce has lowered its stock for}."""
    rows = db.session.execute(
        select(OrderLine.product_id, OrderLine.quantity, OrderLine.quantity_shipped)
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.warehouse_id == warehouse_id, Order.status.in_(OPEN_ORDER_STATUSES),
               OrderLine.product_id.in_(product_ids),
               (Order.store_id == store.id) | Order.id.in_(mirrored_order_ids(store)))).all()
    counted = {}
    for product_id, quantity, shipped in rows:
        counted[product_id] = counted.get(product_id, 0) + quantity - shipped
    return counted


def bins_with_stock(product_id, warehouse_id):
    return db.session.execute(
        select(Location, LocationLevel.on_hand).join(LocationLevel, LocationLevel.location_id == Location.id)
        .where(LocationLevel.product_id == product_id, Location.warehouse_id == warehouse_id,
               Location.usage == LocationUsage.INTERNAL.value, LocationLevel.on_hand > 0)
        .order_by(LocationLevel.on_hand.desc(), Location.id)).all()


def first_bin(warehouse_id):
    return db.session.scalar(select(Location).where(
        Location.warehouse_id == warehouse_id, Location.usage == LocationUsage.INTERNAL.value,
        Location.is_active.is_(True)).order_by(Location.id))


def sync_moves(product, warehouse_id, difference, reference, key):
    """`sync` movements that change the warehouse's on hand by `difference`."""
    partner = inventory.virtual_location("partner")
    stocked = bins_with_stock(product.id, warehouse_id)
    if difference > 0:
        target = stocked[0][0] if stocked else first_bin(warehouse_id)
        return [Move(product, partner, target, difference, "sync", reference=reference,
                     idempotency_key=f"{key}:{target.id}")] if target else []
    moves, remaining = [], -difference
    for location, on_hand in stocked:
        take = min(on_hand, remaining)
        moves.append(Move(product, location, partner, take, "sync", reference=reference,
                          idempotency_key=f"{key}:{location.id}"))
        remaining -= take
        if remaining == 0:
            break
    return moves


def reserve_held_orders(store, warehouse_id):
    """Orders WooCommerce counted that wait on hold for stock: the pulled stock is theirs first."""
    held = db.session.scalars(select(Order).where(
        Order.warehouse_id == warehouse_id, Order.status == "on_hold",
        (Order.store_id == store.id) | Order.id.in_(mirrored_order_ids(store))).order_by(Order.id)).all()
    for order in held:
        order_service.release_hold(order)
    return sum(1 for order in held if order.status != "on_hold")


class PullRefused(PermanentRemoteError):
    """The store is not set up for a pull; the message says what to do."""


def pull_stock(store):
    """Bring the mapped warehouse in line with WooCommerce. Returns a summary dict."""
    location = store.default_location
    if location is None or location.warehouse_id is None:
        raise PullRefused("Map the store's location to a warehouse before syncing stock.")
    warehouse_id, store_id = location.warehouse_id, store.id
    stock, untracked = mapped_stock(store)
    run, run_id = woo_store.now_text(), uuid4().hex  # a rerun recomputes from current levels
    store = db.session.get(Store, store_id)
    counted = counted_by_woo(store, warehouse_id, list(stock))
    levels = {lv.product_id: lv.on_hand for lv in db.session.scalars(select(WarehouseLevel).where(
        WarehouseLevel.warehouse_id == warehouse_id, WarehouseLevel.product_id.in_(list(stock))))}
    products = {p.id: p for p in db.session.scalars(select(Product).where(Product.id.in_(list(stock))))}
    moves = []
    for product_id, woo_quantity in sorted(stock.items()):
        target = max(woo_quantity, 0) + counted.get(product_id, 0)
        difference = target - levels.get(product_id, 0)
        if difference:
            moves.extend(sync_moves(products[product_id], warehouse_id, difference,
                                    f"woocommerce:{store.name}"[:120],
                                    f"woocommerce:{store_id}:pull:{run_id}:{product_id}"))
    if moves:
        inventory.post(moves)
    released = reserve_held_orders(store, warehouse_id)
    summary = {"at": run, "released_holds": released, "products": len(stock), "changed": len({m.product.id for m in moves}),
               "untracked": untracked[:50], "untracked_count": len(untracked)}
    woo_store.save_state(store, stock_pull=summary)
    return summary


def pull_stock_job(payload):
    store = db.session.get(Store, payload["store_id"])
    if store is None or store.plugin != PLUGIN or not woo_store.woo_is_authority(store):
        return
    try:
        pull_stock(store)
    except RemoteError as exc:
        db.session.rollback()
        store = db.session.get(Store, payload["store_id"])
        woo_store.save_state(store, stock_pull={"at": woo_store.now_text(), "error": exc.message})
        db.session.commit()
        raise


def sellable(store, product):
    """What the WMS treats as sellable for this store: the mapped warehouse's available, through the
    same hook the stock push uses."""
    location = store.default_location
    if location is None or location.warehouse_id is None:
        return 0
    level = db.session.get(WarehouseLevel, (product.id, location.warehouse_id), populate_existing=True)
    available = level.available if level else 0
    return int(plugin_host().hooks.wms_available_to_sell(store=store, product=product, location=location,
                                                        available=available))
