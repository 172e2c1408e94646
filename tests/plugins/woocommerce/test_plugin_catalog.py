"""Sync products: every product and variation, drafts reported, matched by SKU, never duplicated."""

from decimal import Decimal

from sqlalchemy import func, select

from plugins.woocommerce import store as woo_store
from tests.factories import ProductFactory
from wms.core.models import Product
from wms.extensions import db
from wms.plugins.models import ActivityLog, ProductMapping, Store, SyncRecord

from .conftest import jobs


def sync(web, app, shop):
    response = web.post(f"/plugins/woocommerce/stores/{shop.id}/sync-products", follow_redirects=True)
    assert "Product sync started" in response.get_data(as_text=True)
    queued = web.get(f"/plugins/woocommerce/stores/{shop.id}").get_data(as_text=True)
    assert 'data-refresh-seconds="2"' in queued and "Queued" in queued
    jobs(app)
    return woo_store.state(db.session.get(Store, shop.id))["catalog"]


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def seed_wines(store):
    cab = store.add_product(name="Estate Cabernet 2021", sku="CAB-2021", regular_price="68.00", weight="1.4",
                            manage_stock=True, stock_quantity=12)
    draft = store.add_product(name="Reserve Syrah 2020", sku="SYR-2020", regular_price="58.00", status="draft")
    parent = store.add_product(name="Rosé", sku="ROSE", type="variable")
    small = store.add_variation(parent, sku="ROSE-375", regular_price="14.00", weight="0.8", manage_stock=True,
                                stock_quantity=5, attributes=[{"name": "Size", "option": "375ml"}])
    hidden = store.add_variation(parent, sku="ROSE-1500", regular_price="52.00", status="draft",
                                 attributes=[{"name": "Size", "option": "1500ml"}])
    nosku = store.add_product(name="Gift card", regular_price="50.00")
    return {"cab": cab, "draft": draft, "parent": parent, "small": small, "hidden": hidden, "nosku": nosku}


def test_sync_reads_everything_reports_drafts_and_maps_by_sku(web, app, shop, store):
    ids = seed_wines(store)
    catalog = sync(web, app, shop)
    assert catalog["phase"] == "done"
    result = catalog["result"]
    assert (catalog["products_read"], catalog["variations_read"]) == (4, 2)
    assert (result["created"], result["drafts"], result["skipped"], result["conflicts"]) == (4, 2, 1, 0)
    assert any("ROSE-1500" in text and "will not sell" in text for text in result["draft_items"])
    assert any("Gift card" in text and "no SKU" in text for text in result["skipped_items"])
    products = {p.sku: p for p in db.session.scalars(select(Product))}
    assert sorted(products) == ["CAB-2021", "ROSE-1500", "ROSE-375", "SYR-2020"]  # the variable parent is not one
    assert products["CAB-2021"].retail_price == Decimal("68.00") and products["CAB-2021"].weight_grams == 1400
    assert products["ROSE-375"].weight_grams == 800
    mappings = {m.remote_sku: m for m in db.session.scalars(select(ProductMapping))}
    assert (mappings["ROSE-375"].remote_product_id, mappings["ROSE-375"].remote_variant_id) == (
        str(ids["parent"]), str(ids["small"]))
    assert mappings["CAB-2021"].remote_product_id == mappings["CAB-2021"].remote_variant_id == str(ids["cab"])
    draft_record = db.session.scalar(select(SyncRecord).where(
        SyncRecord.object_type == f"product@{shop.id}", SyncRecord.object_id == products["ROSE-1500"].id))
    assert draft_record.data["draft"] is True and "will not sell" in draft_record.message
    page = web.get(f"/plugins/woocommerce/stores/{shop.id}").get_data(as_text=True)
    assert "Done" in page and "2 drafts (will not sell)" in page and "ROSE-1500" in page
    paths = [c.path for c in db.session.scalars(select(ActivityLog).where(ActivityLog.store_id == shop.id))]
    assert any(p.startswith("/wp-json/wc/v3/products/") and "/variations" in p for p in paths)


def test_second_sync_updates_and_adds_without_duplicates(web, app, shop, store):
    ids = seed_wines(store)
    sync(web, app, shop)
    before = count(Product), count(ProductMapping)
    with store.lock:
        store.products[ids["cab"]]["regular_price"] = "72.00"
    store.add_product(name="Old Vine Zinfandel", sku="ZIN-2021", regular_price="34.00")
    catalog = sync(web, app, shop)
    result = catalog["result"]
    assert (result["created"], result["updated"]) == (1, 1)
    assert (count(Product), count(ProductMapping)) == (before[0] + 1, before[1] + 1)
    assert db.session.scalar(select(Product).where(Product.sku == "CAB-2021")).retail_price == Decimal("72.00")


def test_existing_wms_product_is_matched_by_sku_not_duplicated(web, app, shop, store):
    existing = ProductFactory(sku="cab-2021", name="Estate Cab", retail_price=Decimal("60.00"))
    db.session.commit()
    seed_wines(store)
    sync(web, app, shop)
    assert db.session.scalar(select(func.count()).select_from(Product).where(
        func.lower(Product.sku) == "cab-2021")) == 1
    mapping = db.session.scalar(select(ProductMapping).where(ProductMapping.product_id == existing.id))
    assert mapping.matched_by == "sku"
    assert db.session.get(Product, existing.id).retail_price == Decimal("68.00")


def test_sku_moved_to_another_item_keeps_the_mapping_and_reports_a_conflict(web, app, shop, store):
    ids = seed_wines(store)
    sync(web, app, shop)
    with store.lock:
        store.set_sku(store.products[ids["cab"]], "CAB-OLD")
    store.add_product(name="Estate Cabernet 2021 (new)", sku="CAB-2021", regular_price="70.00")
    result = sync(web, app, shop)["result"]
    assert result["conflicts"] == 2  # the old item under its new SKU, and the new item with the old SKU
    assert all("mapping was kept" in text for text in result["conflict_items"])
    product = db.session.scalar(select(Product).where(Product.sku == "CAB-2021"))
    mapping = db.session.scalar(select(ProductMapping).where(ProductMapping.product_id == product.id))
    assert mapping.remote_variant_id == str(ids["cab"])


def test_all_variations_route_on_woocommerce_10_3(web, app, shop, store, sandbox):
    store.set_version("10.3.0")
    seed_wines(store)
    catalog = sync(web, app, shop)
    assert catalog["variations_read"] == 2
    assert any(c["path"] == "/wp-json/wc/v3/variations" for c in sandbox.faults.calls)


def test_a_failed_sync_says_why_and_can_run_again(web, app, shop, store):
    seed_wines(store)
    store.set_permalinks("plain")
    catalog = sync(web, app, shop)
    assert catalog["phase"] == "failed" and "Permalinks" in catalog["error"]
    page = web.get(f"/plugins/woocommerce/stores/{shop.id}").get_data(as_text=True)
    assert "Failed" in page and "data-refresh-seconds" not in page
    store.set_permalinks("pretty")
    assert sync(web, app, shop)["phase"] == "done"
    assert count(Product) == 4


def test_product_page_shows_the_sync_status_and_drafts(web, app, shop, store):
    seed_wines(store)
    sync(web, app, shop)
    draft = db.session.scalar(select(Product).where(Product.sku == "SYR-2020"))
    page = web.get(f"/products/{draft.id}").get_data(as_text=True)
    assert "WooCommerce" in page and "SYNCED" in page and "draft: will not sell" in page
