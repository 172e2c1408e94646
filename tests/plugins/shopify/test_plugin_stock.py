"""Stock push from the WMS to the Shopify sandbox over HTTP, through the core's debounced push job: each
test asserts Shopify's quantities afterwards (read back from the sandbox)."""

import pytest
from flask import current_app

from plugins.shopify import orders as shopify_orders
from plugins.shopify import stock
from tests.factories import ProductFactory, WarehouseFactory, bin_of
from tests.framework.conftest import run_jobs, run_through_window
from wms.core.models import Order, WarehouseLevel
from wms.core.services import inventory
from wms.core.services import orders as order_service
from wms.extensions import db
from wms.jobs import stock_push
from wms.plugins.models import RemoteLevel

from .conftest import SHOP, connect_store, control_post, map_product, shopify_available

OTHER_SHOP = "second-winery.myshopify.com"


@pytest.fixture
def app_config(redis_url):
    return {"WMS_PLUGINS": ["plugins.shopify"], "REDIS_URL": redis_url, "WMS_RELAY_ON_COMMIT": True,
            "WMS_PUSH_WINDOW_SECONDS": 1, "WMS_RETRY_BACKOFF": (1, 1, 1)}


@pytest.fixture
def cellar(app):
    warehouse = WarehouseFactory(code="CEL")
    db.session.commit()
    return warehouse


def receive(product, warehouse, quantity):
    inventory.receive(product, bin_of(warehouse), quantity)
    db.session.commit()


def settle():
    run_through_window(current_app._get_current_object())


def available(product, warehouse):
    return db.session.get(WarehouseLevel, (product.id, warehouse.id), populate_existing=True).available


def test_absolute_mode_sets_shopify_to_the_wms_quantity(shopify_active, sandbox, server, cellar):
    store = connect_store(sandbox, server, warehouses=[cellar], stock_sync=True, stock_mode="absolute")
    wines = [ProductFactory() for _ in range(3)]
    db.session.commit()
    mappings = [map_product(server, store, wine, stock=40) for wine in wines]
    for quantity, wine in zip((7, 0, 12), wines):
        if quantity:
            receive(wine, cellar, quantity)
    inventory.receive(wines[1], bin_of(cellar), 3)
    db.session.commit()
    settle()
    assert [shopify_available(server, SHOP, m) for m in mappings] == [7, 3, 12]
    assert shopify_available(server, SHOP, mappings[0], location_index=1) == 40  # unmapped location untouched
    level = db.session.get(RemoteLevel, (store.id, wines[0].id, store.locations[0].remote_id))
    assert (level.status, level.pushed_quantity, level.remote_quantity) == ("synced", 7, 7)


def test_delta_mode_adds_only_the_change_to_what_shopify_has(shopify_active, sandbox, server, cellar):
    store = connect_store(sandbox, server, warehouses=[cellar], stock_sync=True, stock_mode="delta")
    wine = ProductFactory()
    db.session.commit()
    receive(wine, cellar, 20)                     # before the mapping: the WMS holds 20, Shopify 50
    mapping = map_product(server, store, wine, stock=50)
    assert stock.record_baselines(store) == 1
    receive(wine, cellar, 6)
    inventory.adjust(wine, bin_of(cellar), -2, "damaged")
    db.session.commit()
    settle()
    assert shopify_available(server, SHOP, mapping) == 54
    level = db.session.get(RemoteLevel, (store.id, wine.id, store.locations[0].remote_id))
    assert (level.pushed_quantity, level.remote_quantity) == (24, 54)


def test_two_stores_with_different_modes(shopify_active, sandbox, server, cellar):
    absolute = connect_store(sandbox, server, name="Absolute shop", warehouses=[cellar], stock_sync=True,
                             stock_mode="absolute")
    delta = connect_store(sandbox, server, shop=OTHER_SHOP, name="Delta shop", warehouses=[cellar], stock_sync=True,
                          stock_mode="delta")
    wine = ProductFactory()
    db.session.commit()
    in_absolute = map_product(server, absolute, wine, stock=30)
    in_delta = map_product(server, delta, wine, stock=30, shop=OTHER_SHOP)
    stock.record_baselines(delta)
    receive(wine, cellar, 9)
    settle()
    assert shopify_available(server, SHOP, in_absolute) == 9
    assert shopify_available(server, OTHER_SHOP, in_delta) == 39


def test_stale_change_from_quantity_is_read_again_and_retried(shopify_active, sandbox, server, cellar):
    store = connect_store(sandbox, server, warehouses=[cellar], stock_sync=True, stock_mode="delta")
    wines = [ProductFactory() for _ in range(2)]
    db.session.commit()
    mappings = [map_product(server, store, wine, stock=10) for wine in wines]
    stock.record_baselines(store)
    location_id = store.locations[0].remote_id.rsplit("/", 1)[-1]
    # A sale in Shopify that the WMS has not heard of: our changeFromQuantity (10) is now stale.
    item_id = mappings[0].remote_inventory_id.rsplit("/", 1)[-1]
    control_post(server, f"shops/{SHOP}/levels", {"inventory_item_id": item_id, "location_id": int(location_id),
                                                  "quantity": 8})
    receive(wines[0], cellar, 5)
    receive(wines[1], cellar, 4)
    settle()
    assert shopify_available(server, SHOP, mappings[0]) == 13      # Shopify's 8 plus our +5
    assert shopify_available(server, SHOP, mappings[1]) == 14
    assert {r.status for r in db.session.query(RemoteLevel).filter_by(store_id=store.id)} == {"synced"}


def test_a_retried_delta_push_does_not_count_twice(shopify_active, sandbox, server, cellar):
    store = connect_store(sandbox, server, warehouses=[cellar], stock_sync=True, stock_mode="delta")
    wine = ProductFactory()
    db.session.commit()
    mapping = map_product(server, store, wine, stock=10)
    stock.record_baselines(store)
    receive(wine, cellar, 5)
    items = stock_push.build_items(store, [wine.id])
    db.session.commit()
    # The push lands in Shopify, then the worker dies before the WMS records it ...
    stock.push_stock(store, items)
    assert shopify_available(server, SHOP, mapping) == 15
    db.session.expire_all()
    # ... so the job runs again with the same, unrecorded, items; and then the regular window push.
    stock.push_stock(store, stock_push.build_items(store, [wine.id]))
    settle()
    assert shopify_available(server, SHOP, mapping) == 15
    receive(wine, cellar, 1)
    settle()
    assert shopify_available(server, SHOP, mapping) == 16


def test_a_push_cut_off_mid_call_is_replayed_with_its_key(shopify_active, sandbox, server, cellar):
    store = connect_store(sandbox, server, warehouses=[cellar], stock_sync=True, stock_mode="delta")
    wine = ProductFactory()
    db.session.commit()
    mapping = map_product(server, store, wine, stock=10)
    stock.record_baselines(store)
    receive(wine, cellar, 5)
    push = stock.Push(store, stock_push.build_items(store, [wine.id]))
    rows = push.plan(push.recover())
    seq = 1
    calls = [{"key": push.call_key(seq, 0, rows), "rows": rows}]
    stock.save_journal(push.journal, "pending", seq=seq, calls=calls)
    push.mutate(rows, calls[0]["key"])           # Shopify applied it; the answer never came back
    assert shopify_available(server, SHOP, mapping) == 15
    settle()             # the push runs again, replaying the cut-off call first
    assert shopify_available(server, SHOP, mapping) == 15
    assert available(wine, cellar) == 5


def test_throttled_and_429_bursts_still_converge(shopify_active, sandbox, server, cellar):
    store = connect_store(sandbox, server, warehouses=[cellar], stock_sync=True, stock_mode="absolute")
    wines = [ProductFactory() for _ in range(260)]
    db.session.commit()
    mappings = [map_product(server, store, wine, stock=1) for wine in wines]
    for index, wine in enumerate(wines):
        inventory.receive(wine, bin_of(cellar), index % 7 + 2)
    db.session.commit()
    # An empty bucket (every call must wait for it), THROTTLED answers, and two 429s on top.
    control_post(server, f"shops/{SHOP}/bucket", {"maximum": 1000, "restore_rate": 500, "available": 0})
    server.faults.inject("429", count=2, path="/shops")
    settle()
    run_jobs(current_app._get_current_object())
    assert [shopify_available(server, SHOP, m) for m in mappings[:5]] == [2, 3, 4, 5, 6]
    assert shopify_available(server, SHOP, mappings[-1]) == 259 % 7 + 2
    assert db.session.query(RemoteLevel).filter_by(store_id=store.id, status="synced").count() == 260
    assert server.faults.faults_served["429"] == 2


def test_items_shopify_does_not_stock_fail_visibly(shopify_active, sandbox, server, cellar):
    store = connect_store(sandbox, server, warehouses=[cellar], stock_sync=True, stock_mode="absolute")
    wine, unmapped = ProductFactory(), ProductFactory()
    db.session.commit()
    shop = sandbox.shops[SHOP]
    first_location = next(iter(shop.locations))
    created = control_post(server, f"shops/{SHOP}/products", {"title": "Rosé", "variants": [
        {"sku": wine.sku, "location_ids": [loc for loc in shop.locations if loc != first_location]}]})
    from wms.plugins.models import ProductMapping
    db.session.add(ProductMapping(store_id=store.id, product_id=wine.id, remote_sku=wine.sku,
                                  remote_variant_id=f"gid://shopify/ProductVariant/{created['variants'][0]['id']}",
                                  remote_inventory_id=f"gid://shopify/InventoryItem/"
                                                      f"{created['variants'][0]['inventory_item_id']}"))
    db.session.add(ProductMapping(store_id=store.id, product_id=unmapped.id, remote_sku=unmapped.sku,
                                  remote_variant_id="gid://shopify/ProductVariant/1"))
    db.session.commit()
    receive(wine, cellar, 3)
    receive(unmapped, cellar, 3)
    settle()
    failed = {r.product_id: r.message for r in db.session.query(RemoteLevel).filter_by(store_id=store.id)}
    assert "Not stocked at this Shopify location" in failed[wine.id]
    assert "run Sync Products" in failed[unmapped.id]


def one_mapped_wine(sandbox, server, cellar, mode):
    """A store with stock sync on in `mode` and one wine mapped to a Shopify variant."""
    store = connect_store(sandbox, server, warehouses=[cellar], stock_sync=True, stock_mode=mode)
    wine = ProductFactory()
    db.session.commit()
    return store, wine, map_product(server, store, wine)


def test_delta_mode_does_not_send_the_stores_own_orders_back(shopify_active, sandbox, server, cellar):
    # Shopify lowers its available for its own order; the WMS reserving, shipping or cancelling that
    # order must not move Shopify a second time. An order from elsewhere still does.
    store, wine, mapping = one_mapped_wine(sandbox, server, cellar, "delta")
    stock.record_baselines(store)
    receive(wine, cellar, 10)
    settle()
    shop = sandbox.shops[SHOP]
    with sandbox.lock:
        shipped, cancelled = (shop.place_order([{"sku": wine.sku, "quantity": n}]) for n in (3, 2))   # Shopify: 5
    shopify_orders.reconcile_store(store)
    settle()
    assert (shopify_available(server, SHOP, mapping), available(wine, cellar)) == (5, 5)

    order_service.ship(db.session.query(Order).filter_by(remote_id=str(shipped.id)).one(), carrier="UPS",
                       tracking_number="1Z999", auto_pick=True)
    db.session.commit()
    with sandbox.lock:
        shop.cancel_order(cancelled)                                                   # Shopify: 7
    shopify_orders.reconcile_store(store)
    settle()
    assert (shopify_available(server, SHOP, mapping), available(wine, cellar)) == (7, 7)

    order_service.create_order(order_service.OrderInput(lines=[order_service.LineInput(wine.sku, 4)]))
    db.session.commit()
    settle()
    assert (shopify_available(server, SHOP, mapping), available(wine, cellar)) == (3, 3)


def test_a_refused_push_whose_answer_was_lost_is_read_again_and_sent(shopify_active, sandbox, server, cellar):
    store, wine, mapping = one_mapped_wine(sandbox, server, cellar, "absolute")
    receive(wine, cellar, 10)
    settle()
    # A sale in Shopify the WMS has not heard of: the next push's changeFromQuantity (10) is stale, so
    # Shopify refuses it; and that answer is lost, so the client sends the call again with its key.
    location_id = int(store.locations[0].remote_id.rsplit("/", 1)[-1])
    control_post(server, f"shops/{SHOP}/levels", {"inventory_item_id": mapping.remote_inventory_id.rsplit("/", 1)[-1],
                                                  "location_id": location_id, "quantity": 8})
    server.faults.hang_does_work = True
    server.faults.inject("hang", path=f"/shops/{SHOP}/admin/api")
    receive(wine, cellar, 5)
    settle()
    assert shopify_available(server, SHOP, mapping) == 15
    level = db.session.get(RemoteLevel, (store.id, wine.id, store.locations[0].remote_id))
    assert (level.status, level.remote_quantity) == ("synced", 15)


def test_absolute_mode_corrects_a_level_the_stores_own_order_moved_when_the_wms_ends_where_it_was(
        shopify_active, sandbox, server, cellar):
    # Shopify takes 2 for its own order (10 -> 8); before the push, a receipt of 2 brings the WMS back to
    # the 10 it last pushed. Compared with what the WMS last knew (10) nothing would be sent, and Shopify
    # would keep 8.
    store, wine, mapping = one_mapped_wine(sandbox, server, cellar, "absolute")
    receive(wine, cellar, 10)
    settle()
    with sandbox.lock:
        sandbox.shops[SHOP].place_order([{"sku": wine.sku, "quantity": 2}])
    shopify_orders.reconcile_store(store)
    receive(wine, cellar, 2)
    settle()
    assert (shopify_available(server, SHOP, mapping), available(wine, cellar)) == (10, 10)
