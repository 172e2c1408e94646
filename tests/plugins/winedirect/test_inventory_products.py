"""Inventory pull, auto-sync schedule, product sync and store tags, the product panel, the dashboard."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.factories import ProductFactory
from tests.framework.conftest import run_jobs
from wms.core.models import OutboxMessage, StockMovement, WarehouseLevel
from wms.extensions import db
from wms.jobs.sweep import emit_scheduled_jobs
from wms.plugins.models import SyncRecord

from .test_plugin import _app, order_record, routed_order, seed_wine


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def server(wd):
    return wd


def level(product, warehouse):
    db.session.expire_all()
    row = db.session.get(WarehouseLevel, (product.id, warehouse.id))
    return (row.on_hand, row.committed) if row else (0, 0)


def test_sync_inventory_posts_sync_movements_per_warehouse(wd, control, wd_warehouses, admin_client):
    cab = ProductFactory(sku="CAB-2021")
    pinot = ProductFactory(sku="PN-2022", low_stock_threshold=10)
    db.session.commit()
    seed_wine(control, "CAB-2021", 120, "PSO")
    control.seed("CAB-2021", 30, "PSO", "CLUB")
    seed_wine(control, "PN-2022", 8, "SHW")
    control.seed("UNKNOWN-1", 5, "PSO")
    response = admin_client.post("/plugins/winedirect/sync/inventory", follow_redirects=True)
    assert "Sync Inventory started" in response.text
    run_jobs(_app())
    assert level(cab, wd_warehouses["PSO"]) == (150, 0)
    assert level(pinot, wd_warehouses["SHW"]) == (8, 0)
    movements = db.session.scalars(select(StockMovement).where(StockMovement.kind == "sync")).all()
    assert sorted((m.reference, m.quantity) for m in movements) == [
        ("winedirect:inventory:PSO", 150), ("winedirect:inventory:SHW", 8)]
    # stock.changed went out with the movements, so the change flows on to the stores
    assert db.session.scalar(select(OutboxMessage).where(OutboxMessage.topic == "stock.changed")) is not None
    # WineDirect's stock changes: the next sync posts only the difference, and a SKU gone is zeroed
    control.seed("CAB-2021", 100, "PSO")
    control.seed("PN-2022", 0, "SHW")
    admin_client.post("/plugins/winedirect/sync/inventory")
    run_jobs(_app())
    assert level(cab, wd_warehouses["PSO"]) == (130, 0)
    assert level(pinot, wd_warehouses["SHW"]) == (0, 0)
    page = admin_client.get("/plugins/winedirect/").text
    assert "UNKNOWN-1" in page  # SKUs WineDirect holds that the WMS does not know
    assert "low-stock-row" in page and "PN-2022" in page  # 0 available <= threshold 10
    assert 'id="stat-tracked">2<' in page


def test_auto_sync_schedule_follows_the_dashboard_setting(wd, admin_client):
    response = admin_client.post("/plugins/winedirect/auto-sync", data={"enabled": "1", "interval": "30"},
                                 follow_redirects=True)
    assert "on, every 30 minutes" in response.text
    from wms.plugins.manager import plugin_host
    jobs = {j.name: j for group in plugin_host().hooks.wms_scheduled_jobs() for j in group or []}
    assert jobs["winedirect.inventory"].interval_seconds == 1800
    assert jobs["winedirect.shipments"].topic == "winedirect.sync_shipments"
    assert emit_scheduled_jobs() == 2
    db.session.commit()
    topics = set(db.session.scalars(select(OutboxMessage.topic)))
    assert {"winedirect.sync_inventory", "winedirect.sync_shipments"} <= topics
    response = admin_client.post("/plugins/winedirect/auto-sync", data={"interval": "30"}, follow_redirects=True)
    assert "auto-sync is off" in response.text
    jobs = {j.name for group in plugin_host().hooks.wms_scheduled_jobs() for j in group or []}
    assert jobs == {"winedirect.shipments"}
    response = admin_client.post("/plugins/winedirect/auto-sync", data={"enabled": "1", "interval": "2"},
                                 follow_redirects=True)
    assert "between 5 and 1440" in response.text


def test_sync_products_creates_updates_and_refuses_incomplete_ones(wd, control, admin_client):
    good = ProductFactory(sku="CAB-2021", name="Estate Cabernet", retail_price=Decimal("42.00"))
    bare = ProductFactory(sku="ROSE-1", appellation="", alcohol_pct=None)
    db.session.commit()
    admin_client.post("/plugins/winedirect/sync/products")
    run_jobs(_app())
    detail = wd.app.sandbox.products["CAB-2021"]
    assert (detail["brandName"], detail["fancifulName"], detail["appellation"], detail["retailPrice"],
            detail["bottleSizeMl"], detail["unitsPerCase"]) == ("Hillside Cellars", "Estate Cabernet", "Napa Valley",
                                                               42.0, "750", "12")
    assert "ROSE-1" not in wd.app.sandbox.products
    records = {r.object_id: r for r in db.session.scalars(select(SyncRecord).where(
        SyncRecord.plugin == "winedirect", SyncRecord.object_type == "product"))}
    assert records[good.id].status == "synced" and records[good.id].remote_reference == detail["wineDirectSku"]
    assert records[bare.id].status == "failed"
    assert records[bare.id].message == "Not sent to WineDirect: missing appellation, alcohol %."
    tags = {(m.payload["product_id"], tuple(m.payload["tags"])) for m in db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.topic == "product.tag_requested"))}
    assert tags == {(good.id, ("winedirect-managed",)), (bare.id, ("winedirect-unsynced",))}
    page = admin_client.get(f"/products/{bare.id}").text
    assert "missing appellation, alcohol %" in page and "winedirect-unsynced" in page
    # an update is sent once, and an unchanged product is not sent again
    good.retail_price = Decimal("45.00")
    db.session.commit()
    admin_client.post(f"/plugins/winedirect/products/{good.id}/sync")
    run_jobs(_app())
    assert wd.app.sandbox.products["CAB-2021"]["retailPrice"] == 45.0
    db.session.expire_all()
    assert records[good.id].data["action"] == "updated"
    admin_client.post(f"/plugins/winedirect/products/{good.id}/sync")
    run_jobs(_app())
    db.session.expire_all()
    assert records[good.id].data["action"] == "unchanged"
    page = admin_client.get(f"/products/{good.id}").text
    assert 'id="winedirect-product-panel"' in page and detail["wineDirectSku"] in page and "Attributes sent" in page


def test_product_refused_by_winedirect_gets_the_error_tag(wd, admin_client):
    product = ProductFactory(sku="BIG-1", alcohol_pct=Decimal("14.0"), case_quantity=12)
    db.session.commit()
    wd.app.sandbox.config["supplier_id"] = "SOMEONE-ELSE"
    admin_client.post(f"/plugins/winedirect/products/{product.id}/sync")
    run_jobs(_app())
    record = db.session.scalar(select(SyncRecord).where(SyncRecord.object_type == "product"))
    assert record.status == "failed" and "Supplier SUP2001 is not available to this login" in record.message
    assert record.data["tag"] == "winedirect-sync-error"


def test_dashboard_statistics_orders_tab_and_chart(wd, control, wd_warehouses, admin_client):
    ProductFactory(sku="CAB-2021")
    db.session.commit()
    seed_wine(control)
    good = routed_order(wd_warehouses["PSO"], "#5001", quantity=1)
    bad = routed_order(wd_warehouses["PSO"], "#5002", quantity=1, sku="CAB-2021", ship_address1="")
    run_jobs(_app())
    assert order_record(good).status == "synced" and order_record(bad).status == "failed"
    page = admin_client.get("/plugins/winedirect/").text
    assert 'id="stat-today">1<' in page and 'id="stat-success">50%' in page
    assert '<svg id="wd-chart"' in page and "<script" not in page.split("</head>")[1]
    orders_tab = admin_client.get("/plugins/winedirect/?tab=orders").text
    assert f'id="wd-order-{good.id}"' in orders_tab and control.orders("#5001")[0]["wineDirectOrderNumber"] in orders_tab
    assert "missing ship-to address" in orders_tab
