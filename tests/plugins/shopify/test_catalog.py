"""Product sync against the sandbox over real HTTP: Sync Products on the Product Mapping page, the jobs,
and the end state in the WMS (mappings, products, no stock) and in the activity log."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from plugins.shopify import catalog
from tests.conftest import login_as
from tests.factories import ProductFactory
from tests.framework.conftest import run_jobs
from wms.core.models import OutboxMessage, Product, StockMovement
from wms.extensions import db
from wms.plugins.models import ActivityLog, ProductMapping, SyncRecord

from .stores import activate_plugin, connected_store


@pytest.fixture
def app_config(redis_url):
    return {"WMS_PLUGINS": ["plugins.shopify"], "REDIS_URL": redis_url, "WMS_RELAY_ON_COMMIT": True,
            "WMS_RETRY_BACKOFF": (1, 1, 1)}


@pytest.fixture
def store(app, server, sandbox, shop_url):
    activate_plugin()
    return connected_store(sandbox, shop_url)


@pytest.fixture
def web(app, admin):
    return login_as(app.test_client(), admin)


def add_variants(shop, title, *variants):
    """A sandbox product with `variants` ({sku, barcode, price, title}); returns their sandbox records."""
    product = shop.add_product(title, list(variants), stock=7)
    return [shop.variants[v] for v in product.variant_ids]


def gid(variant):
    return f"gid://shopify/ProductVariant/{variant.id}"


def sync(app, web, store):
    answer = web.post(f"/plugins/shopify/stores/{store.id}/catalog/sync", follow_redirects=True)
    assert answer.status_code == 200, answer.text
    run_jobs(app)
    return answer


def mapping_of(store, variant):
    return db.session.scalar(select(ProductMapping).where(ProductMapping.store_id == store.id,
                                                          ProductMapping.remote_variant_id == gid(variant)))


def record_of(store):
    db.session.expire_all()
    return catalog.progress_record(store)


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_sync_maps_by_sku_then_barcode_and_creates_the_rest_with_no_stock(app, web, store, shop):
    cabernet = ProductFactory(sku="CAB-2019", barcode="0850001000017", name="Estate Cabernet")
    merlot = ProductFactory(sku="MER-WMS-20", barcode="0850001000024", name="Merlot 2020")
    pinot = ProductFactory(sku="PINOT-21", barcode=None, name="Pinot Noir")
    db.session.add(ProductMapping(store_id=store.id, product_id=pinot.id, remote_sku="PINOT-21", matched_by="manual",
                                  remote_variant_id="gid://shopify/ProductVariant/1",
                                  remote_product_id="gid://shopify/Product/1"))
    db.session.commit()
    [by_sku] = add_variants(shop, "Cabernet", {"sku": "cab-2019 ", "barcode": "999000111"})  # case and space
    [by_barcode] = add_variants(shop, "Merlot", {"sku": "MERLOT-20", "barcode": "0850001000024"})
    [new_red, new_white] = add_variants(shop, "Field Blend", {"sku": "BLEND-22", "barcode": "0850001000031",
                                                              "price": "31.50", "title": "750 ml"},
                                        {"sku": "WHITE-22", "price": "19.00", "title": "375 ml"})
    dup_a, dup_b = add_variants(shop, "Rosé", {"sku": "ROSE-23", "title": "A"}, {"sku": "ROSE-23", "title": "B"})
    [mapped_elsewhere] = add_variants(shop, "Pinot", {"sku": "PINOT-21"})
    [no_sku] = add_variants(shop, "Gift card", {"sku": None})
    [bad_sku] = add_variants(shop, "Odd", {"sku": "has spaces in it"})

    page = sync(app, web, store)
    assert "Sync Products started" in page.text

    assert mapping_of(store, by_sku).product_id == cabernet.id and mapping_of(store, by_sku).matched_by == "sku"
    assert mapping_of(store, by_barcode).product_id == merlot.id
    assert mapping_of(store, by_barcode).matched_by == "barcode"
    blend = db.session.scalar(select(Product).where(Product.sku == "BLEND-22"))
    assert (blend.name, blend.barcode, blend.retail_price) == ("Field Blend - 750 ml", "0850001000031",
                                                               Decimal("31.50"))
    created = mapping_of(store, new_red)
    assert created.product_id == blend.id and created.matched_by == "created"
    assert created.remote_product_id == f"gid://shopify/Product/{new_red.product_id}"
    assert created.remote_inventory_id == f"gid://shopify/InventoryItem/{new_red.inventory_item_id}"
    assert mapping_of(store, new_white).product.sku == "WHITE-22"
    for unmapped in (dup_a, dup_b, mapped_elsewhere, no_sku, bad_sku):
        assert mapping_of(store, unmapped) is None
    assert db.session.scalar(select(func.count()).select_from(Product).where(Product.sku == "ROSE-23")) == 0
    assert count(StockMovement) == 0  # stock is never touched

    record = record_of(store)
    assert record.status == "synced"
    assert record.data["counts"] == {"matched": 2, "created": 2, "conflicts": 3, "skipped": 2, "unchanged": 0}
    conflicts = {row["variant_id"]: row["message"] for row in record.data["conflicts"]}
    assert "SKU ROSE-23 is on 2 Shopify variants" in conflicts[gid(dup_a)] and gid(dup_b) in conflicts
    assert "already mapped to Shopify variant gid://shopify/ProductVariant/1" in conflicts[gid(mapped_elsewhere)]
    skipped = {row["variant_id"]: row["message"] for row in record.data["skipped"]}
    assert "No SKU in Shopify" in skipped[gid(no_sku)] and "not a valid WMS SKU" in skipped[gid(bad_sku)]
    [summary] = db.session.scalars(select(ActivityLog).where(ActivityLog.method == "SYNC")).all()
    assert summary.store_id == store.id and summary.status == 200
    assert summary.path == "Product sync: 2 matched, 2 created, 3 conflicts, 2 skipped, 0 already mapped"

    page = web.get(f"/plugins/shopify/stores/{store.id}/catalog")
    assert page.status_code == 200
    for text in ("SKU ROSE-23 is on 2 Shopify variants", "BLEND-22", "No SKU in Shopify", 'id="count-created">2<'):
        assert text in page.text


def test_second_run_changes_nothing_and_keeps_a_mapping_whose_sku_changed(app, web, store, shop):
    syrah = ProductFactory(sku="SYRAH-19", barcode=None, name="Syrah")
    db.session.commit()
    [mapped] = add_variants(shop, "Syrah", {"sku": "SYRAH-19"})
    [created] = add_variants(shop, "Grenache", {"sku": "GREN-20", "barcode": "0850001000048"})
    sync(app, web, store)
    products, mappings = count(Product), count(ProductMapping)
    first = {m.remote_variant_id: (m.id, m.product_id) for m in db.session.scalars(select(ProductMapping))}

    mapped.sku = shop.items[mapped.inventory_item_id].sku = "SYRAH-19-RESERVE"  # renamed in Shopify
    sync(app, web, store)

    assert (count(Product), count(ProductMapping)) == (products, mappings)
    assert {m.remote_variant_id: (m.id, m.product_id) for m in db.session.scalars(select(ProductMapping))} == first
    kept = mapping_of(store, mapped)
    assert kept.product_id == syrah.id and kept.remote_sku == "SYRAH-19"
    assert db.session.scalar(select(Product).where(Product.sku == "SYRAH-19-RESERVE")) is None
    assert mapping_of(store, created).product.sku == "GREN-20"
    assert record_of(store).data["counts"] == {"matched": 0, "created": 0, "conflicts": 0, "skipped": 0,
                                               "unchanged": 2}


def test_progress_endpoint_follows_a_run(app, web, store, shop):
    add_variants(shop, "Cabernet", {"sku": "CAB-1"}, {"sku": "CAB-2"})
    url = f"/plugins/shopify/stores/{store.id}/catalog/progress"
    assert web.get(url).get_json()["state"] == "idle"
    web.post(f"/plugins/shopify/stores/{store.id}/catalog/sync")
    queued = web.get(url).get_json()
    assert (queued["state"], queued["phase"]) == ("running", "queued")
    page = web.get(f"/plugins/shopify/stores/{store.id}/catalog")
    assert 'data-state="running"' in page.text and "Waiting for a worker" in page.text
    run_jobs(app)
    done = web.get(url).get_json()
    assert (done["state"], done["phase"], done["total"], done["processed"]) == ("done", "done", 2, 2)
    assert done["counts"]["created"] == 2


def test_a_second_run_is_refused_while_one_is_going_on(app, web, store, shop):
    add_variants(shop, "Cabernet", {"sku": "CAB-1"})
    web.post(f"/plugins/shopify/stores/{store.id}/catalog/sync")
    again = web.post(f"/plugins/shopify/stores/{store.id}/catalog/sync", follow_redirects=True)
    assert "is running already" in again.text
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.topic == catalog.SYNC_TOPIC)) == 1
    run_jobs(app)
    assert record_of(store).status == "synced" and count(ProductMapping) == 1
    web.post(f"/plugins/shopify/stores/{store.id}/catalog/sync")  # finished: a new run may start
    run_jobs(app)
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.topic == catalog.SYNC_TOPIC, OutboxMessage.status == "done")) == 2


def test_a_refused_export_is_visible_and_can_be_started_again(app, web, store, shop, sandbox, shop_url):
    from wms.plugins import settings as plugin_settings
    add_variants(shop, "Cabernet", {"sku": "CAB-1"})
    no_products = sandbox.create_token(shop.domain, scopes=["read_orders", "read_inventory"])
    store.credentials = plugin_settings.encrypt({"access_token": no_products.value})
    db.session.commit()
    sync(app, web, store)
    record = record_of(store)
    assert record.status == "failed" and "read_products" in record.message
    assert "Press Sync Products to try again" in record.message
    [summary] = db.session.scalars(select(ActivityLog).where(ActivityLog.method == "SYNC")).all()
    assert summary.status is None and "read_products" in summary.error
    assert "read_products" in web.get(f"/plugins/shopify/stores/{store.id}/catalog").text
    assert count(ProductMapping) == 0

    store.credentials = plugin_settings.encrypt({"access_token": sandbox.create_token(shop.domain).value})
    db.session.commit()
    sync(app, web, store)
    assert record_of(store).status == "synced" and count(ProductMapping) == 1


def test_a_long_export_is_followed_by_poll_jobs(app, web, store, shop, sandbox):
    sandbox.config["bulk_operation_seconds"] = 3.0   # the export outlasts the job's own wait, even on a busy machine
    app.config.update(SHOPIFY_BULK_WAIT_SECONDS=0.3, SHOPIFY_BULK_POLL_SECONDS=0)
    add_variants(shop, "Cabernet", {"sku": "CAB-1"})
    sync(app, web, store)
    assert record_of(store).status == "synced" and count(ProductMapping) == 1
    polls = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.topic == catalog.POLL_TOPIC, OutboxMessage.status == "done"))
    assert polls >= 1


def test_a_catalog_of_several_chunks(app, web, store, server, shop):
    from .test_sandbox_client import control
    control(server, "POST", f"/shops/{shop.domain}/seed", {"products": 1200, "variants_per_product": 2, "stock": 4})
    ProductFactory(sku="SKU-000007-2", barcode=None, name="Known wine")
    db.session.commit()
    sync(app, web, store)
    record = record_of(store)
    assert record.data["counts"] == {"matched": 1, "created": 2399, "conflicts": 0, "skipped": 0, "unchanged": 0}
    assert count(ProductMapping) == 2400 and count(Product) == 2400
    assert len(record.data["created"]) == catalog.LIST_LIMIT
    assert count(StockMovement) == 0


def test_pages_need_an_admin_and_a_shopify_store(app, store, operator):
    web = login_as(app.test_client(), operator)
    assert web.get(f"/plugins/shopify/stores/{store.id}/catalog").status_code == 403
    assert web.post(f"/plugins/shopify/stores/{store.id}/catalog/sync").status_code == 403
    assert web.get(f"/plugins/shopify/stores/{store.id}/catalog/progress").status_code == 403
    assert web.get(f"/plugins/shopify/stores/{store.id}/returns").status_code == 200  # operators receive returns
    assert web.get(f"/plugins/shopify/stores/{store.id + 99}/returns").status_code == 404


def test_a_store_that_is_not_connected_cannot_sync(app, web, store):
    store.status = "disconnected"
    db.session.commit()
    page = web.post(f"/plugins/shopify/stores/{store.id}/catalog/sync", follow_redirects=True)
    assert "is not connected to Shopify" in page.text
    assert count(SyncRecord) == 0 and count(OutboxMessage) == 0


def test_a_run_that_breaks_halfway_is_retried_and_ends_without_duplicates(app, web, store, shop, monkeypatch):
    from wms.jobs import runner
    for n in range(5):
        add_variants(shop, f"Wine {n}", {"sku": f"W-{n}-A"}, {"sku": f"W-{n}-B"})
    monkeypatch.setattr(catalog, "CHUNK_SIZE", 4)
    real_map, calls = catalog.Mapper._map, []

    def breaks_on_the_second_chunk(self, variants):
        calls.append(len(variants))
        if len(calls) == 2:
            raise ConnectionResetError("the database went away")
        return real_map(self, variants)
    monkeypatch.setattr(catalog.Mapper, "_map", breaks_on_the_second_chunk)

    sync(app, web, store)
    record = record_of(store)
    assert record.status == "failed" and "retried automatically" in record.message
    assert count(ProductMapping) == 4  # the first chunk went through
    [message] = db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == catalog.SYNC_TOPIC)).all()
    assert message.status == "queued"
    assert runner.run(message.id) == "done"

    record = record_of(store)
    assert record.status == "synced"
    assert record.data["counts"] == {"matched": 0, "created": 6, "conflicts": 0, "skipped": 0, "unchanged": 4}
    assert count(ProductMapping) == 10 and count(Product) == 10
