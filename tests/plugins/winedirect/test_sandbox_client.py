"""The WineDirect client against the sandbox, over real HTTP on loopback."""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests

from plugins.winedirect import contract as c
from plugins.winedirect.client import OrderLine
from wms.integrations.errors import (
    RemoteAuthError,
    RemoteRateLimited,
    RemoteRejected,
    RemoteTimeout,
    RemoteUnavailable,
)

from .builders import address, order, wine


def api_calls(server, method, path):
    return [call for call in server.faults.calls if call["method"] == method and call["path"] == path]


# --- connection and warehouses -------------------------------------------------------------
def test_connection_lists_every_warehouse(client):
    check = client.test_connection()
    assert check.ok, check.message
    assert {w.code: (w.name, w.state) for w in check.warehouses} == {
        "GLW": ("Glenwillow", "OH"), "WDI": ("Green Island", "CA"), "PSO": ("Paso Robles", "CA"),
        "SMA": ("Santa Maria", "CA"), "SHW": ("Willamette Valley", "OR"), "DAL": ("Dallas", "TX"),
    }


def test_connection_with_a_wrong_password_says_so(make_client):
    check = make_client(password="not-the-password").test_connection()
    assert not check.ok
    assert "refused the API username or password" in check.message
    assert c.MESSAGE_BAD_LOGIN in check.message


def test_wrong_account_number_is_reported_with_the_api_message(make_client):
    check = make_client(account_number="NOPE99").test_connection()
    assert not check.ok
    assert "Account number NOPE99 is not available to this login" in check.message


def test_bad_login_raises_auth_error_on_any_call(make_client):
    with pytest.raises(RemoteAuthError) as caught:
        make_client(username="someone-else").list_warehouses()
    assert caught.value.status == 401


def test_calls_without_a_token_are_refused_with_the_envelope(server):
    response = requests.get(f"{server.url}{c.WAREHOUSES_PATH}", params={"accountNumber": "ACCT1001"}, timeout=5)
    assert response.status_code == 401
    assert response.json() == {"isSuccess": False, "message": c.MESSAGE_UNAUTHORIZED, "payload": None}


def test_no_secret_reaches_the_call_log(client, records):
    client.list_warehouses()
    client.find_order("1001")
    tokens = client.token_state()
    assert records and all(r.plugin == "winedirect" for r in records)
    for record in records:
        text = f"{record.path} {record.error}"
        for secret in (client.password, tokens[c.ACCESS_TOKEN_FIELD], tokens[c.REFRESH_TOKEN_FIELD]):
            assert secret not in text


# --- tokens --------------------------------------------------------------------------------
def test_token_expiry_mid_run_is_recovered_by_refresh(server, client, control):
    client.list_warehouses()
    assert client.last_call_refreshed_token is False
    control.post("tokens/expire")
    warehouses = client.list_warehouses()
    assert len(warehouses) == 6
    assert client.last_call_refreshed_token is True
    assert len(api_calls(server, "POST", c.TOKEN_REFRESH_PATH)) == 1
    assert len(api_calls(server, "POST", c.TOKEN_PATH)) == 1  # the first login only
    client.list_warehouses()
    assert client.last_call_refreshed_token is False
    assert client.token_refreshes == 1


def test_expired_refresh_token_falls_back_to_a_new_login(server, client, control):
    client.list_warehouses()
    control.post("tokens/expire", {"refresh": True})
    client.list_warehouses()
    assert client.last_call_refreshed_token is True
    assert len(api_calls(server, "POST", c.TOKEN_REFRESH_PATH)) == 1
    assert len(api_calls(server, "POST", c.TOKEN_PATH)) == 2


def test_refused_refresh_and_login_raise_auth_error(server, client, control):
    client.list_warehouses()
    control.post("tokens/expire", {"refresh": True})
    server.app.sandbox.config["password"] = "changed-in-the-portal"
    with pytest.raises(RemoteAuthError) as caught:
        client.list_warehouses()
    assert "refused the API username or password" in caught.value.message


def test_saved_tokens_are_reused_without_a_new_login(server, client, make_client):
    client.list_warehouses()
    again = make_client(token_state=client.token_state())
    again.list_warehouses()
    assert len(api_calls(server, "POST", c.TOKEN_PATH)) == 1


def test_a_used_refresh_token_cannot_be_used_again(server, client, control):
    client.list_warehouses()
    old_refresh = client.token_state()[c.REFRESH_TOKEN_FIELD]
    control.post("tokens/expire")
    client.list_warehouses()
    assert client.token_state()[c.REFRESH_TOKEN_FIELD] != old_refresh
    response = requests.post(f"{server.url}{c.TOKEN_REFRESH_PATH}", json={c.REFRESH_TOKEN_FIELD: old_refresh},
                             timeout=5)
    assert response.status_code == 401 and response.json()["message"] == c.MESSAGE_BAD_REFRESH


def test_a_token_that_expires_at_once_ends_in_auth_error(make_server, make_client):
    server = make_server({"token_ttl": 0})
    with pytest.raises(RemoteAuthError) as caught:
        make_client(server).list_warehouses()
    assert c.MESSAGE_TOKEN_EXPIRED in caught.value.message


# --- products ------------------------------------------------------------------------------
def test_upsert_creates_then_leaves_alone_then_updates(server, client):
    created = client.upsert_product(wine())
    assert created.action == "created" and created.wine_direct_sku.startswith("WD")
    assert client.upsert_product(wine()).action == "unchanged"
    updated = client.upsert_product(wine(retail_price=Decimal("49.50"), case_quantity=6))
    assert (updated.action, updated.wine_direct_sku) == ("updated", created.wine_direct_sku)
    stored = server.app.sandbox.products["CAB21-750"]
    assert (stored["retailPrice"], stored["unitsPerCase"], stored["bottleSizeMl"]) == (49.5, "6", "750")
    product = client.get_product("CAB21-750")
    assert product == wine(retail_price=Decimal("49.50"), case_quantity=6)


def test_unknown_product_reads_as_none(client):
    assert client.get_product("NOPE-750") is None


def test_product_validation_errors_are_surfaced(server, client):
    with pytest.raises(RemoteRejected) as caught:
        client.upsert_product(wine(brand=None, appellation="", bottle_size_ml=None, alcohol_type="BEER"))
    message = caught.value.message
    assert caught.value.status == 400
    for problem in ("brandName is required", "appellation is required", "bottleSize is required",
                    "alcoholType must be one of"):
        assert problem in message
    assert server.app.sandbox.products == {}


def test_upsert_products_reports_each_refusal_and_goes_on(server, client):
    results = client.upsert_products([wine("BAD-750", case_quantity=0), wine("ROSE22-750")])
    assert [(r.sku, r.action) for r in results] == [("BAD-750", "failed"), ("ROSE22-750", "created")]
    assert "caseQuantity must be a positive whole number" in results[0].error
    assert list(server.app.sandbox.products) == ["ROSE22-750"]


def test_wrong_supplier_is_refused(make_client):
    with pytest.raises(RemoteRejected) as caught:
        make_client(supplier_id="SUP9").upsert_product(wine())
    assert "Supplier SUP9 is not available to this login" in caught.value.message


# --- inventory -----------------------------------------------------------------------------
def test_inventory_per_warehouse(client, control, stocked):
    control.seed(stocked, 30, "GLW")
    control.seed(stocked, 24, "PSO", "CLUB")
    levels = {(lv.warehouse_code, lv.sub_inventory): (lv.on_hand, lv.committed, lv.available)
              for lv in client.get_inventory()}
    assert levels == {("GLW", "PRIMARY"): (30, 0, 30), ("PSO", "PRIMARY"): (120, 0, 120),
                      ("PSO", "CLUB"): (24, 0, 24)}
    assert {lv.warehouse_code for lv in client.get_inventory(warehouse_code="GLW")} == {"GLW"}
    # WineDirect ignores warehouseCode when a sku is given; the client still answers for GLW only
    only_glw = client.get_inventory(warehouse_code="GLW", sku=stocked)
    assert [(lv.warehouse_code, lv.on_hand) for lv in only_glw] == [("GLW", 30)]


def test_owned_inventory_refuses_both_filters(server, client):
    client.login()
    response = requests.get(f"{server.url}{c.OWNED_INVENTORY_PATH}",
                            params={"supplierId": "SUP2001", "warehouseCode": "PSO", "sku": "X"},
                            headers={"Authorization": f"Bearer {client.token_state()[c.ACCESS_TOKEN_FIELD]}"},
                            timeout=5)
    assert response.status_code == 400
    assert response.json()["message"] == c.MESSAGE_OWNED_FILTER_CONFLICT


# --- orders --------------------------------------------------------------------------------
def test_orders_are_received_pending_then_accepted_or_rejected(client, control, stocked):
    result = client.submit_orders([
        order("1001"),
        order("1002", quantity=500),
        order("1003", ship_to=address(address1=None, postal_code="")),
    ], batch_number="B-7")
    assert result.submitted == ["1001", "1002", "1003"] and result.already_present == {}
    assert len(result.notifications) == 3
    assert all(client.find_order(n).state == "pending" for n in ("1001", "1002", "1003"))

    control.post("orders/process")

    accepted = client.get_order_status("1001")
    assert (accepted.state, accepted.status_code, accepted.is_cancellable) == ("accepted", c.STATUS_RELEASED, True)
    short = client.get_order_status("1002")
    assert (short.state, short.reason) == ("on_hold", c.HOLD_INSUFFICIENT_INVENTORY)
    no_address = client.get_order_status("1003")
    assert no_address.state == "needing_action"
    assert "Ship-to Address is missing: address1, postalCode" in no_address.reason
    level = client.get_inventory(warehouse_code="PSO", sku=stocked)[0]
    assert (level.on_hand, level.committed, level.available) == (120, 6, 114)
    assert client.find_order("1001").batch_number == "B-7"


def test_unknown_sku_and_unconfigured_service_level_need_action(client, control, stocked):
    client.submit_orders([order("1010", sku="NOPE-750"), order("1011", service_level="DRONE")])
    control.post("orders/process")
    assert "Ordered Item NOPE-750 is not set up" in client.get_order_status("1010").reason
    assert "Requested Priority DRONE is not configured" in client.get_order_status("1011").reason


def test_accept_and_reject_controls(client, control, stocked):
    client.submit_orders([order("1020"), order("1021"), order("1022")])
    assert control.post("orders/1020/accept")["statusCode"] == c.STATUS_RELEASED
    control.post("orders/1021/reject", {"reason": "out_of_stock"})
    control.post("orders/1022/reject", {"reason": "invalid_address"})
    assert client.get_order_status("1020").state == "accepted"
    assert client.get_order_status("1021").reason == c.HOLD_INSUFFICIENT_INVENTORY
    assert client.get_order_status("1022").reason.startswith("Ship-to Address is invalid")


def test_club_orders_draw_from_the_club_pool_and_wait_for_release(client, control, stocked):
    control.seed(stocked, 12, "PSO", "CLUB")
    client.submit_orders([order("2001", club=True), order("2002", club=True, quantity=24)])
    control.post("orders/process")
    first = client.get_order_status("2001")
    assert (first.status_code, first.state) == (c.STATUS_WAITING_TO_BE_RELEASED, "accepted")
    assert client.find_order("2001").order_type == "CLUB"
    # 24 wanted, 12 in the club pool: held, although the primary pool holds 120
    assert client.get_order_status("2002").reason == c.HOLD_INSUFFICIENT_INVENTORY
    club = [lv for lv in client.get_inventory(sku=stocked) if lv.sub_inventory == "CLUB"][0]
    assert (club.committed, club.available) == (6, 6)


def test_requested_ship_date_in_the_future_holds_until_then(client, control, stocked):
    ship_on = date.today() + timedelta(days=20)
    client.submit_orders([order("2010", requested_ship_date=ship_on)])
    control.post("orders/process")
    status = client.get_order_status("2010")
    assert (status.status_code, status.state, status.requested_ship_date) == (
        c.STATUS_FUTURE_SHIP_DATE, "accepted", ship_on)
    assert control.orders("2010")[0]["requestedShipDate"] == ship_on.isoformat()


def test_order_validation_errors_are_surfaced_and_nothing_is_queued(client, control, stocked):
    bad = order("2020", lines=[OrderLine(stocked, 0)])
    with pytest.raises(RemoteRejected) as caught:
        client.submit_orders([order("2019"), bad], check_existing=False)
    assert caught.value.status == 400
    assert "orders[1].lineItems[0].quantity must be a positive whole number" in caught.value.message
    assert control.orders() == []


def test_find_order_unknown_is_none_and_status_says_it_may_be_queued(client):
    assert client.find_order("9999") is None
    with pytest.raises(RemoteRejected) as caught:
        client.get_order_status("9999")
    assert caught.value.code == "not_found" and "up to 15 minutes" in caught.value.message


def test_orders_stay_invisible_until_the_queue_delivers_them(make_server, make_client):
    server = make_server({"visibility_delay": 600})
    client = make_client(server)
    client.submit_orders([order("3001")], check_existing=False)
    assert client.find_order("3001") is None
    assert [o["visible"] for o in server.app.sandbox.order_records()] == [False]


def test_auto_process_accepts_on_the_next_read(make_server, make_client):
    server = make_server({"auto_process": True})
    client = make_client(server)
    client.upsert_product(wine())
    server.app.sandbox.seed_inventory("PSO", "CAB21-750", 12)
    client.submit_orders([order("3002")])
    assert client.get_order_status("3002").state == "accepted"


def test_large_submissions_are_sent_in_batches(server, client, control, stocked):
    orders = [order(f"4{n:03d}", quantity=1) for n in range(150)]
    result = client.submit_orders(orders, batch_number="BIG", check_existing=False)
    assert len(result.submitted) == 150
    assert len(api_calls(server, "POST", c.SUBMIT_ORDERS_PATH)) == 2
    assert len(control.orders()) == 150


# --- duplicates ----------------------------------------------------------------------------
def test_a_blind_resubmission_really_creates_a_duplicate(client, control, stocked):
    client.submit_orders([order("5001")], check_existing=False)
    client.submit_orders([order("5001")], check_existing=False)
    control.post("orders/process")
    records = control.orders("5001")
    assert len(records) == 2
    assert records[1]["statusCode"] == c.STATUS_NEEDING_ACTION
    assert any("Duplicate Order" in m for m in records[1]["messages"])


def test_checked_resubmission_sends_nothing_twice(server, client, control, stocked):
    client.submit_orders([order("5002")])
    again = client.submit_orders([order("5002"), order("5003")])
    assert again.submitted == ["5003"]
    assert again.already_present["5002"].state == "pending"
    assert len(control.orders("5002")) == 1


def test_lost_answer_then_check_and_resubmit_creates_no_duplicate(server, make_client, control, stocked):
    client = make_client(timeout=(1, 0.3))
    control.post("answer-delay", {"path": c.SUBMIT_ORDERS_PATH, "seconds": 1.0, "count": 1})
    with pytest.raises(RemoteTimeout):
        client.submit_orders([order("5010"), order("5011")])
    assert len(api_calls(server, "POST", c.SUBMIT_ORDERS_PATH)) == 1  # a write is never retried blindly
    retry = client.submit_orders([order("5010"), order("5011")])
    assert retry.submitted == [] and set(retry.already_present) == {"5010", "5011"}
    assert len(control.orders("5010")) == 1 and len(control.orders("5011")) == 1


def test_renamed_cancellation_frees_the_number_for_resubmission(client, control, stocked):
    client.submit_orders([order("5020")])
    messages = client.cancel_order("5020", rename_order=True)
    assert any("renamed" in m for m in messages)
    assert client.find_order("5020") is None
    assert client.submit_orders([order("5020")]).submitted == ["5020"]
    control.post("orders/process")
    live = [r for r in control.orders() if r["orderNumber"] == "5020"]
    assert [r["statusCode"] for r in live] == [c.STATUS_RELEASED]


# --- cancel --------------------------------------------------------------------------------
def test_cancel_before_shipment_releases_the_stock(client, control, stocked):
    client.submit_orders([order("6001")])
    control.post("orders/process")
    assert client.get_inventory(sku=stocked)[0].committed == 6
    assert client.cancel_order("6001") == ["Order 6001 was cancelled"]
    status = client.get_order_status("6001")
    assert (status.state, status.is_cancellable) == ("cancelled", False)
    assert client.get_inventory(sku=stocked)[0].committed == 0


def test_cancel_after_shipment_is_refused_with_the_api_message(client, control, stocked):
    client.submit_orders([order("6002")])
    control.post("orders/process")
    control.post("orders/6002/advance")
    with pytest.raises(RemoteRejected) as caught:
        client.cancel_order("6002")
    assert c.MESSAGE_CANCEL_REFUSED in caught.value.message
    assert "6002" in caught.value.message
    assert control.orders("6002")[0]["statusCode"] == "SHIPPED"


def test_cancel_of_an_unknown_order_is_not_found(client):
    with pytest.raises(RemoteRejected) as caught:
        client.cancel_order("6999")
    assert caught.value.status == 404 and "Order 6999 was not found" in caught.value.message


# --- shipments -----------------------------------------------------------------------------
def test_shipment_status_progression_with_tracking(client, control, stocked):
    client.submit_orders([order("7001")])
    control.post("orders/process")
    seen = []
    for _ in range(4):
        control.post("orders/7001/advance")
        status = client.get_order_status("7001")
        seen.append((status.state, status.shipments[0].state))
    assert seen == [("shipped", "shipped"), ("in_transit", "in_transit"),
                    ("out_for_delivery", "out_for_delivery"), ("delivered", "delivered")]
    shipment = client.get_order_status("7001").shipments[0]
    assert shipment.carrier_name == "UPS" and shipment.tracking_number.startswith("1Z")
    assert shipment.tracking_url.endswith(shipment.tracking_number)
    assert shipment.shipped_at <= shipment.delivered_at
    assert shipment.lines == [(stocked, 6)]
    detail = client.get_shipment(shipment.shipment_id)
    assert detail.signed_for_by == "Ada Lovelace"
    level = client.get_inventory(sku=stocked)[0]
    assert (level.on_hand, level.committed) == (114, 0)


def test_exception_then_returned(client, control, stocked):
    client.submit_orders([order("7002", service_level="FEDGROUND")])
    control.post("orders/process")
    control.post("orders/7002/advance")
    control.post("orders/7002/advance", {"status": "EXCEPTION", "reason": "No adult present"})
    control.post("orders/7002/advance", {"status": "RETURNED"})
    shipment = client.get_order_status("7002").shipments[0]
    assert (shipment.state, shipment.carrier_name) == ("returned", "FedEx")
    detail = client.get_shipment(shipment.shipment_id)  # only the detail carries the return
    assert detail.return_reason == "Refused by recipient" and detail.returned_at is not None
    update = client.list_shipment_updates(detail.shipped_at - timedelta(minutes=1))[0]
    assert "No adult present" in update.events[1].description


def test_shipping_an_order_that_was_not_accepted_is_refused(server, client, stocked):
    client.submit_orders([order("7003")])
    response = requests.post(f"{server.url}/_sandbox/winedirect/orders/7003/advance", json={}, timeout=5)
    assert response.status_code == 409


def test_shipments_by_date_window_and_updates_since(client, control, stocked):
    started = datetime.now(timezone.utc) - timedelta(minutes=1)
    client.submit_orders([order("7010"), order("7011")])
    control.post("orders/process")
    for number in ("7010", "7011"):
        control.post(f"orders/{number}/advance")
    control.post("orders/7011/advance")
    shipped = client.list_shipments(start=started)
    assert sorted(s.order_number for s in shipped) == ["7010", "7011"]
    updates = {u.order_number: u for u in client.list_shipment_updates(started)}
    assert set(updates) == {"7010", "7011"}
    assert [e.description for e in updates["7011"].events] == ["Shipped", "In Transit"]
    assert updates["7011"].state == "in_transit" and updates["7011"].lines == [(stocked, 6)]
    later = datetime.now(timezone.utc) + timedelta(minutes=5)
    assert client.list_shipment_updates(later, later + timedelta(minutes=5)) == []
    with pytest.raises(ValueError):
        client.list_shipments(order_number="7010", start=started)


# --- faults --------------------------------------------------------------------------------
def test_429_is_retried_after_retry_after(server, client, sleeps):
    server.faults.inject("429", count=2, path=c.WAREHOUSES_PATH)
    client.login()
    assert len(client.list_warehouses()) == 6
    assert sleeps == [1.0, 1.0]


def test_throttle_beyond_the_wait_we_accept_raises_rate_limited(server, client, control):
    client.login()
    control.post("rate-limit", {"limit": 1, "window": 60})
    client.list_warehouses()
    with pytest.raises(RemoteRateLimited) as caught:
        client.list_warehouses()
    assert caught.value.retry_after == 60
    assert c.MESSAGE_RATE_LIMITED in caught.value.body


def test_5xx_on_reads_is_retried_then_raised(server, client, sleeps):
    client.login()
    server.faults.inject("500", count=2, path=c.SELLABLE_INVENTORY_PATH)
    assert client.get_inventory() == []
    assert len(sleeps) == 2
    server.faults.inject("500", count=10, path=c.SELLABLE_INVENTORY_PATH)
    with pytest.raises(RemoteUnavailable):
        client.get_inventory()


def test_5xx_on_submission_is_not_retried(server, client, control, stocked):
    server.faults.inject("500", count=1, path=c.SUBMIT_ORDERS_PATH)
    with pytest.raises(RemoteUnavailable):
        client.submit_orders([order("8001")])
    assert len(api_calls(server, "POST", c.SUBMIT_ORDERS_PATH)) == 1
    assert control.orders() == []
    assert client.submit_orders([order("8001")]).submitted == ["8001"]


def test_hung_and_reset_reads_are_retried(server, make_client):
    client = make_client(timeout=(1, 0.2))
    client.login()
    server.faults.inject("hang", count=1, path="/api/v1/Orders/")
    server.faults.inject("reset", count=1, path="/api/v1/Orders/")
    assert client.find_order("8002") is None
    lookups = api_calls(server, "GET", "/api/v1/Orders/8002")
    assert [call["fault"] for call in lookups] == ["hang", "reset", None]
