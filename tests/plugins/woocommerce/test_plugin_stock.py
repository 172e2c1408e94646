"""Stock both ways: pushed from the WMS (Absolute, Delta; batched) or pulled from WooCommerce."""

from decimal import Decimal

from sqlalchemy import select

from plugins.woocommerce import catalog, orders, stock
from plugins.woocommerce import store as woo_store
from plugins.woocommerce.plugin import plugin
from tests.factories import bin_of
from wms.core.models import Order, Product, StockMovement, WarehouseLevel
from wms.core.services import inventory
from wms.core.services import orders as order_service
from wms.extensions import db
from wms.plugins.models import ProductMapping, Store

from .conftest import add_shop, connect, jobs


def woo_stock(store, sku):
    return next(r for r in store.stock_levels([sku]))["stock_quantity"]


def product(sku):
    return db.session.scalar(select(Product).where(Product.sku == sku))


def synced(shop, store, products=(("CAB", 0),), variations=()):
    """Products (sku, Woo stock) and variations of one parent, synced into the WMS."""
    for sku, quantity in products:
        store.add_product(name=sku, sku=sku, regular_price="20.00", manage_stock=True, stock_quantity=quantity)
    if variations:
        parent = store.add_product(name="Rosé", sku="ROSE", type="variable")
        for sku, quantity in variations:
            store.add_variation(parent, sku=sku, regular_price="15.00", manage_stock=True, stock_quantity=quantity)
    catalog.sync_products(db.session.get(Store, shop.id))
    db.session.commit()


def receive(warehouse, sku, quantity):
    inventory.receive(product(sku), bin_of(warehouse), quantity, reference="PO-1")
    db.session.commit()


def manual_order(warehouse, sku, quantity, number="M-1"):
    order = order_service.create_order(order_service.OrderInput(
        lines=[order_service.LineInput(sku=sku, quantity=quantity, unit_price=Decimal("20.00"))], number=number,
        warehouse=warehouse, shipping_process=warehouse.shipping_processes[0]))
    db.session.commit()
    return order


def test_absolute_push_sets_woo_stock_to_the_wms_available(app, shop, store, warehouse):
    synced(shop, store, products=(("CAB", 50),), variations=(("ROSE-375", 9), ("ROSE-750", 9)))
    receive(warehouse, "CAB", 24)
    receive(warehouse, "ROSE-375", 6)
    jobs(app)
    assert (woo_stock(store, "CAB"), woo_stock(store, "ROSE-375"), woo_stock(store, "ROSE-750")) == (24, 6, 9)
    manual_order(warehouse, "CAB", 4)
    jobs(app)
    assert woo_stock(store, "CAB") == 20


def test_push_batches_100_a_call_and_variations_per_parent(app, shop, store, warehouse, sandbox):
    store.seed_products(250, variable_share=0.2, variations_per_product=4)
    catalog.sync_products(db.session.get(Store, shop.id))
    db.session.commit()
    bins = bin_of(warehouse)
    for mapping in db.session.scalars(select(ProductMapping).where(ProductMapping.store_id == shop.id)):
        inventory.receive(mapping.product, bins, 3, reference="PO-1")
    db.session.commit()
    sandbox.faults.clear_calls()
    jobs(app)
    batches = [c["path"] for c in sandbox.faults.calls if c["path"].endswith("/batch")]
    # 200 simple products in 2 calls, and 4 variations of each of the 50 variable products in one call each
    assert batches.count("/wp-json/wc/v3/products/batch") == 2
    assert len([p for p in batches if "/variations/batch" in p]) == 50
    assert {r["stock_quantity"] for r in store.stock_levels() if r["sku"] and r["manage_stock"] is True} == {3}


def test_delta_keeps_woo_sales_and_does_not_send_its_own_orders_back(app, shop, store, warehouse):
    shop = db.session.get(Store, shop.id)
    shop.settings = {**shop.settings, "stock_mode": "delta"}
    db.session.commit()
    synced(shop, store, products=(("CAB", 0),))
    receive(warehouse, "CAB", 10)
    jobs(app)
    assert woo_stock(store, "CAB") == 10          # the first push is absolute
    woo_id = int(db.session.scalar(select(ProductMapping.remote_variant_id)))
    placed = store.place_paid_order([{"product_id": woo_id, "quantity": 2}])   # Woo lowers its stock: 8
    orders.import_order(db.session.get(Store, shop.id), placed)                # the WMS reserves 2
    db.session.commit()
    receive(warehouse, "CAB", 5)                                               # +5 in the cellar
    jobs(app)
    assert woo_stock(store, "CAB") == 13          # 8 + 5: the order is not taken off twice
    level = db.session.get(WarehouseLevel, (product("CAB").id, warehouse.id))
    assert level.available == 13


def test_failed_delta_push_is_not_repeated_as_a_delta(app, shop, store, warehouse, sandbox):
    shop = db.session.get(Store, shop.id)
    shop.settings = {**shop.settings, "stock_mode": "delta"}
    db.session.commit()
    synced(shop, store, products=(("CAB", 0),))
    receive(warehouse, "CAB", 10)
    jobs(app)
    sandbox.faults.inject("hang", count=1, path="/wp-json/wc/v3/products/batch")
    app.config["WOOCOMMERCE_TIMEOUT"] = (0.5, 0.3)
    receive(warehouse, "CAB", 5)
    jobs(app)
    mapping = db.session.scalar(select(ProductMapping))
    assert mapping.data.get("push_uncertain") is True
    app.config["WOOCOMMERCE_TIMEOUT"] = (2, 2)
    from wms.jobs import stock_push
    stock_push.mark_dirty(db.session.get(Store, shop.id), [mapping.product_id], window_seconds=0)
    db.session.commit()
    jobs(app)
    assert woo_stock(store, "CAB") == 15
    assert "push_uncertain" not in db.session.scalar(select(ProductMapping)).data


def woo_authority(active, sandbox, warehouse):
    shop = add_shop(sandbox, warehouse, stock_authority="woocommerce")
    connect(shop)
    return shop


def pull(web, shop):
    response = web.post(f"/plugins/woocommerce/stores/{shop.id}/sync-stock", follow_redirects=True)
    return response.get_data(as_text=True)


def test_woo_authority_available_is_woo_stock_minus_wms_reservations(web, app, active, sandbox, store, warehouse):
    shop = woo_authority(active, sandbox, warehouse)
    assert db.session.get(Store, shop.id).setting("stock_sync") is False  # the WMS never pushes to this store
    synced(shop, store, products=(("CAB", 5),))
    assert "1 products read, 1 changed" in pull(web, shop)
    manual_order(warehouse, "CAB", 3)            # a bottle reservation the WMS made (5 on hand, 3 reserved)
    with store.lock:
        store.products[store.sku_owner["cab"]]["stock_quantity"] = 20
    pull(web, shop)
    shop = db.session.get(Store, shop.id)
    assert stock.sellable(shop, product("CAB")) == 20 - 3
    pull(web, shop)                              # pulling again changes nothing
    assert stock.sellable(db.session.get(Store, shop.id), product("CAB")) == 17
    movements = db.session.scalars(select(StockMovement).where(StockMovement.kind == "sync")).all()
    assert sum(m.quantity for m in movements) == 20 and {m.reference for m in movements} == {
        "woocommerce:Online shop"}
    assert woo_stock(store, "CAB") == 20         # WooCommerce's stock is left as it is


def test_woo_authority_does_not_deduct_its_own_orders_twice(web, app, active, sandbox, store, warehouse):
    shop = woo_authority(active, sandbox, warehouse)
    synced(shop, store, products=(("CAB", 20),))
    pull(web, shop)
    placed = store.place_paid_order([{"sku": "CAB", "quantity": 2}])   # Woo: 18
    orders.import_order(db.session.get(Store, shop.id), placed)
    db.session.commit()
    pull(web, shop)
    shop = db.session.get(Store, shop.id)
    level = db.session.get(WarehouseLevel, (product("CAB").id, warehouse.id))
    assert (level.on_hand, level.committed, stock.sellable(shop, product("CAB"))) == (20, 2, 18)


def test_pull_needs_a_mapped_location_and_skips_unmanaged_stock(web, app, active, sandbox, store, warehouse):
    shop = woo_authority(active, sandbox, warehouse)
    store.add_product(name="Tasting", sku="TASTE", regular_price="25.00")
    synced(shop, store, products=(("CAB", 4),))
    page = pull(web, shop)
    assert "1 products read" in page and "1 not stock-managed in WooCommerce" in page
    shop = db.session.get(Store, shop.id)
    shop.locations[0].warehouse_id = None
    db.session.commit()
    assert "Map the store&#39;s location to a warehouse" in pull(web, shop)


def test_sync_stock_refused_when_the_wms_is_the_authority(web, shop):
    assert "stock is pushed, not pulled" in pull(web, shop)


def test_scheduled_pull_and_poll_per_store_with_the_interval_kept_between_5_and_15(app, active, sandbox, warehouse):
    shop = woo_authority(active, sandbox, warehouse)
    shop.settings = {**shop.settings, "stock_pull_minutes": 60, "order_poll_minutes": 3}
    db.session.commit()
    jobs_by_name = {j.name: j for j in plugin.wms_scheduled_jobs()}
    assert jobs_by_name[f"woocommerce.stock.{shop.id}"].interval_seconds == 15 * 60
    assert jobs_by_name[f"woocommerce.orders.{shop.id}"].interval_seconds == 3 * 60
    shop.settings = {**shop.settings, "stock_pull_minutes": 1}
    db.session.commit()
    assert woo_store.pull_minutes(shop) == 5


def test_choosing_the_authority_on_the_core_store_page_turns_the_push_on_or_off(web, app, shop):
    form = {s.key: v for s in plugin.store_settings if not s.is_secret
            for v in [db.session.get(Store, shop.id).setting(s.key)] if v not in (None, False, [])}
    form.update(stock_authority="woocommerce", order_statuses=["processing", "completed"])
    response = web.post(f"/admin/stores/{shop.id}/settings", data=form)
    assert response.status_code == 302
    jobs(app)
    shop = db.session.get(Store, shop.id)
    assert shop.setting("stock_authority") == "woocommerce" and shop.setting("stock_sync") is False
    assert woo_store.credentials(shop).get("webhook_secret")       # a blank secret field keeps the secret


def test_pull_reserves_stock_for_woo_orders_waiting_on_hold(web, app, active, sandbox, store, warehouse):
    shop = woo_authority(active, sandbox, warehouse)
    synced(shop, store, products=(("CAB", 10),))
    placed = store.place_paid_order([{"sku": "CAB", "quantity": 2}])   # Woo: 8; the WMS has no stock yet
    orders.import_order(db.session.get(Store, shop.id), placed)
    db.session.commit()
    assert db.session.scalar(select(Order)).status == "on_hold"
    pull(web, shop)
    order = db.session.scalar(select(Order))
    assert order.status == "open"
    assert stock.sellable(db.session.get(Store, shop.id), product("CAB")) == 8
