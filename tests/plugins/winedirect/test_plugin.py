"""The WineDirect plugin in the app: settings, connection, warehouses, orders, panel, shipments.
Everything runs over real HTTP against the sandbox, with jobs run for real on Redis."""

import time
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from plugins.winedirect import sync
from tests.factories import ProductFactory
from tests.framework.conftest import run_jobs
from wms.core.models import OutboxMessage, Shipment
from wms.core.services import orders
from wms.extensions import db
from wms.plugins.models import SyncRecord

from .conftest import configure

SKU = "CAB-2021"


def seed_wine(control, sku=SKU, on_hand=120, warehouse="PSO", sub="PRIMARY"):
    control.post("products", {"sku": sku, "brandName": "Hillside Cellars", "fancifulName": "Estate",
                              "appellation": "Napa Valley", "alcoholType": "STILL", "alcoholPercentage": 14.2,
                              "bottleSize": "750", "caseQuantity": 12, "srp": 42.0})
    control.seed(sku, on_hand, warehouse, sub)


def routed_order(warehouse, number, quantity=6, sku=SKU, **details):
    process = next(p for p in warehouse.shipping_processes if p.handler == "winedirect")
    values = {"ship_name": "Ada Lovelace", "ship_address1": "1 Vine St", "ship_city": "Napa", "ship_state": "CA",
              "ship_postal_code": "94558", "customer_email": "ada@example.com"}
    values.update(details)
    order = orders.create_order(orders.OrderInput(
        number=number, lines=[orders.LineInput(sku, quantity)], warehouse=warehouse, shipping_process=process,
        details=values))
    db.session.commit()
    return order


def order_record(order):
    return db.session.scalar(select(SyncRecord).where(SyncRecord.plugin == "winedirect",
                                                      SyncRecord.object_type == "order",
                                                      SyncRecord.object_id == order.id))


@pytest.fixture
def client(app):
    """The Flask test client (the sandbox tests' `client` is the WineDirect client)."""
    return app.test_client()


@pytest.fixture
def server(wd):
    """The sandbox the plugin talks to (already reset by `wd`)."""
    return wd


@pytest.fixture
def wine(app):
    product = ProductFactory(sku=SKU, name="Estate Cabernet 2021")
    db.session.commit()
    return product


# --- settings, connection, guide ----------------------------------------------------------------
def test_settings_page_lists_every_setting_and_warehouse(wd, admin_client):
    page = admin_client.get("/admin/plugins/winedirect").text
    for label in ("Username", "Password", "Account name", "Account number", "Supplier name", "Supplier ID",
                  "Default warehouse", "Default shipping method", "Packing slip template"):
        assert label in page
    for warehouse in ("Glenwillow (OH)", "Green Island (CA)", "Paso Robles (CA)", "Santa Maria (CA)",
                      "Willamette Valley (OR)", "Dallas (TX)"):
        assert warehouse in page
    assert "Ground (UPS Ground)" in page
    assert "wd-api-password" not in page


def test_test_connection_works_and_the_dashboard_says_connected(wd, admin_client):
    response = admin_client.post("/admin/plugins/winedirect/test", follow_redirects=True)
    assert "Connection to WineDirect Fulfillment works" in response.text
    assert "Glenwillow" in response.text
    page = admin_client.get("/plugins/winedirect/").text
    assert 'id="wd-connection-state" class="status status-connected">Connected' in page


def test_wrong_password_fails_the_test_and_shows_disconnected(wd, admin_client):
    configure(wd.url, password="wrong-password")
    response = admin_client.post("/admin/plugins/winedirect/test", follow_redirects=True)
    assert "Connection to WineDirect Fulfillment failed" in response.text
    assert "Invalid username or password" in response.text
    page = admin_client.get("/plugins/winedirect/").text
    assert "status-disconnected\">Disconnected" in page
    assert "Check the credentials" in page


def test_integration_guide_renders(wd, admin_client):
    page = admin_client.get("/admin/plugins/winedirect/guide").text
    assert "Contract facts that are proposals" in page
    assert "Token Issue" in page and "winedirect-unsynced" in page


def test_operator_cannot_open_the_dashboard(wd, operator_client):
    assert operator_client.get("/plugins/winedirect/").status_code == 403


# --- warehouses ---------------------------------------------------------------------------------
def test_set_up_warehouses_is_idempotent(wd, admin_client, wd_warehouses):
    assert sorted(wd_warehouses) == ["DAL", "GLW", "PSO", "SHW", "SMA", "WDI"]
    for warehouse in wd_warehouses.values():
        assert warehouse.is_external
        assert [(p.name, p.handler) for p in warehouse.shipping_processes] == [("WineDirect", "winedirect")]
        assert sync.stock_bin(warehouse) is not None
    response = admin_client.post("/plugins/winedirect/warehouses/setup", follow_redirects=True)
    assert "0 created" in response.text
    assert len(sync.winedirect_warehouses()) == 6
    assert all(len(w.shipping_processes) == 1 for w in sync.winedirect_warehouses())


# --- orders -------------------------------------------------------------------------------------
def test_routed_order_is_submitted_once_with_club_flag_and_ship_date(wd, control, wine, wd_warehouses):
    seed_wine(control, on_hand=50, sub="CLUB")
    ship_date = date.today() + timedelta(days=10)
    order = routed_order(wd_warehouses["PSO"], "#1001", is_club=True, requested_ship_date=ship_date)
    run_jobs(_app())
    records = control.orders("#1001")
    assert len(records) == 1
    assert records[0]["orderTypeCode"] == "CLUB" and records[0]["subInventoryCode"] == "CLUB"
    assert records[0]["requestedShipDate"] == ship_date.isoformat()
    assert records[0]["warehouseCode"] == "PSO"
    assert records[0]["statusCode"] == "FUTURE_SHIP_DATE"
    rec = order_record(order)
    assert rec.status == "synced"
    assert rec.remote_reference == records[0]["wineDirectOrderNumber"]
    assert rec.data["status_name"] == "Future Requested Ship Date"
    # routing it again does not submit again
    orders.route(order, wd_warehouses["PSO"], order.shipping_process)
    db.session.commit()
    run_jobs(_app())
    assert len(control.orders("#1001")) == 1


def _app():
    from flask import current_app
    return current_app._get_current_object()


def test_needing_action_shows_the_api_message(wd, control, wine, wd_warehouses):
    order = routed_order(wd_warehouses["PSO"], "#1002")  # the SKU is not set up at WineDirect
    run_jobs(_app())
    rec = order_record(order)
    assert rec.status == "failed"
    assert "Ordered Item CAB-2021 is not set up" in rec.message
    assert control.orders("#1002")[0]["statusCode"] == "NEEDING_ACTION"


def test_order_missing_its_address_is_not_sent(wd, control, wine, wd_warehouses):
    order = routed_order(wd_warehouses["PSO"], "#1003", ship_city="", ship_postal_code="")
    run_jobs(_app())
    rec = order_record(order)
    assert rec.status == "failed"
    assert rec.message == "Not sent to WineDirect: missing ship-to city, ship-to postal code."
    assert control.orders("#1003") == []


def test_orders_waiting_together_go_in_one_batch(wd, control, wine, wd_warehouses):
    from tests.plugins.winedirect.test_sandbox_client import api_calls
    from plugins.winedirect import contract as c
    seed_wine(control)
    from flask import current_app
    current_app.config["WMS_RELAY_ON_COMMIT"] = False
    placed = [routed_order(wd_warehouses["PSO"], f"#20{n}", quantity=1) for n in range(5)]
    current_app.config["WMS_RELAY_ON_COMMIT"] = True
    wd.faults.clear_calls()
    run_jobs(_app())
    assert len(api_calls(wd, "POST", c.SUBMIT_ORDERS_PATH)) == 1
    assert all(len(control.orders(o.number)) == 1 for o in placed)
    assert all(order_record(o).status == "synced" for o in placed)


def test_resubmission_after_a_timeout_makes_no_duplicate(wd, control, wine, wd_warehouses):
    from plugins.winedirect import contract as c
    from tests.plugins.winedirect.test_sandbox_client import api_calls
    from wms.plugins.models import ActivityLog
    seed_wine(control)
    control.post("answer-delay", {"path": c.SUBMIT_ORDERS_PATH, "seconds": 2, "count": 1})
    order = routed_order(wd_warehouses["PSO"], "#1004")
    run_jobs(_app())
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.topic == "winedirect.submit_orders"))
    if message.status != "done":
        time.sleep(2.2)  # the retry's backoff (1 s) and the late answer (2 s) pass
        run_jobs(_app())
    db.session.expire_all()
    assert message.status == "done" and message.attempts == 2
    timed_out = db.session.scalars(select(ActivityLog).where(ActivityLog.path == c.SUBMIT_ORDERS_PATH)).all()
    assert [call.error for call in timed_out if call.error and "timed out" in call.error]
    assert len(api_calls(wd, "POST", c.SUBMIT_ORDERS_PATH)) == 1  # the retry looked first and did not resubmit
    assert len(control.orders("#1004")) == 1
    rec = order_record(order)
    assert rec.status == "synced"
    assert rec.remote_reference == control.orders("#1004")[0]["wineDirectOrderNumber"]


def test_token_expiry_mid_run_passes_through_token_issue_and_loses_no_order(wd, control, wine, wd_warehouses):
    seed_wine(control)
    first = [routed_order(wd_warehouses["PSO"], f"#30{n}", quantity=1) for n in range(2)]
    run_jobs(_app())
    control.post("tokens/expire", {"refresh": True})
    second = [routed_order(wd_warehouses["PSO"], f"#31{n}", quantity=1) for n in range(2)]
    run_jobs(_app())
    for order in first + second:
        assert len(control.orders(order.number)) == 1
        assert order_record(order).status == "synced"
    state, _, data = sync.connection_state()
    assert state == "connected"
    states = [h["state"] for h in data["history"]]
    assert states[-2:] == ["token_issue", "connected"]


# --- order panel, cancel, shipments ----------------------------------------------------------------
def test_order_panel_cancel_before_shipment(wd, control, wine, wd_warehouses, operator_client):
    seed_wine(control)
    order = routed_order(wd_warehouses["PSO"], "#1005")
    run_jobs(_app())
    page = operator_client.get(f"/orders/{order.id}").text
    assert 'id="winedirect-panel"' in page and "Released" in page and "View in WineDirect" in page
    response = operator_client.post(f"/plugins/winedirect/orders/{order.id}/cancel", follow_redirects=True)
    assert "cancelled at WineDirect and in the WMS" in response.text
    assert control.orders("#1005")[0]["statusCode"] == "CANCELLED"
    db.session.expire_all()
    assert order.status == "cancelled"
    assert order_record(order).status == "voided"
    run_jobs(_app())  # the WMS cancellation's own job finds nothing left to do
    assert order_record(order).status == "voided"


def test_shipments_are_recorded_and_cancel_after_shipment_is_refused(wd, control, wine, wd_warehouses,
                                                                     admin_client):
    seed_wine(control)
    order = routed_order(wd_warehouses["PSO"], "#1006")
    run_jobs(_app())
    control.post("orders/#1006/advance".replace("#", "%23"))
    response = admin_client.post("/plugins/winedirect/sync/shipments", follow_redirects=True)
    assert "Sync Shipments started" in response.text
    run_jobs(_app())
    db.session.expire_all()
    shipment = db.session.scalar(select(Shipment).where(Shipment.order_id == order.id))
    wd_shipment = control.get("orders", orderNumber="#1006")["orders"][0]["shipmentIds"][0]
    assert shipment.source == "winedirect" and shipment.remote_reference == wd_shipment
    assert shipment.carrier == "UPS" and shipment.tracking_number.startswith("1ZWD")
    assert shipment.tracking_url.endswith(shipment.tracking_number)
    assert shipment.status == "shipped" and order.status == "shipped"
    page = admin_client.get(f"/orders/{order.id}").text
    assert shipment.tracking_number in page
    response = admin_client.post(f"/plugins/winedirect/orders/{order.id}/cancel", follow_redirects=True)
    assert "Cancel refused: WineDirect shipped this order" in response.text
    assert control.orders("#1006")[0]["statusCode"] == "SHIPPED"
    # later statuses move the WMS shipment on
    control.post("orders/%231006/advance")
    control.post("orders/%231006/advance", {"status": "DELIVERED"})
    admin_client.post("/plugins/winedirect/sync/shipments")
    run_jobs(_app())
    db.session.expire_all()
    assert shipment.status == "delivered" and shipment.delivered_at is not None
    assert db.session.scalar(select(Shipment).where(Shipment.order_id == order.id).offset(1)) is None


def test_cancel_refused_by_winedirect_shows_its_message(wd, control, wine, wd_warehouses, operator_client):
    seed_wine(control)
    order = routed_order(wd_warehouses["PSO"], "#1007")
    run_jobs(_app())
    control.post("orders/%231007/advance", {"status": "FULFILLING"})
    response = operator_client.post(f"/plugins/winedirect/orders/{order.id}/cancel", follow_redirects=True)
    assert "Cancel refused: WineDirect refused the cancellation of order #1007: Order cannot be cancelled" \
        in response.text
    db.session.expire_all()
    assert order.status != "cancelled"


def test_sync_status_action_reads_the_current_state(wd, control, wine, wd_warehouses, operator_client):
    seed_wine(control)
    order = routed_order(wd_warehouses["PSO"], "#1008")
    run_jobs(_app())
    control.post("orders/%231008/advance", {"status": "FULFILLING"})
    response = operator_client.post(f"/plugins/winedirect/orders/{order.id}/sync", follow_redirects=True)
    assert "WineDirect status: Fulfilling" in response.text
    assert order_record(order).data["state"] == "fulfilling"


def test_acceptance_later_is_picked_up_by_the_shipment_sync(wd, make_server, control, wine, wd_warehouses,
                                                            admin_client):
    wd.app.sandbox.config["auto_process"] = False  # WineDirect checks the order later
    seed_wine(control)
    order = routed_order(wd_warehouses["PSO"], "#1009")
    run_jobs(_app())
    rec = order_record(order)
    assert rec.status == "pending" and rec.data["status_name"] == "Processing"
    control.post("orders/process")
    admin_client.post("/plugins/winedirect/sync/shipments")
    run_jobs(_app())
    rec = order_record(order)
    assert rec.status == "synced" and rec.data["status_name"] == "Released"


def test_orders_routed_elsewhere_are_left_alone(wd, control, wine, warehouse):
    order = orders.create_order(orders.OrderInput(number="#1010", lines=[orders.LineInput(SKU, 1)],
                                                  warehouse=warehouse, shipping_process=warehouse.shipping_processes[0],
                                                  unknown_sku="hold"))
    db.session.commit()
    run_jobs(_app())
    assert order_record(order) is None
    assert control.orders("#1010") == []
