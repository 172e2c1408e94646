"""Operator order pages: list, manual order, and the order page's actions (pick, pack, ship, cancel,
release hold, route, shipment status)."""

from datetime import date

import pytest
from sqlalchemy import func, select

from tests.factories import ProductFactory, WarehouseFactory, bin_of
from wms.core.models import LocationLevel, Order, Reservation, Shipment, StockMovement, WarehouseLevel
from wms.core.services import catalog, inventory, orders
from wms.extensions import db


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def levels(product, warehouse):
    level = db.session.get(WarehouseLevel, (product.id, warehouse.id), populate_existing=True)
    return (level.on_hand, level.committed) if level else (0, 0)


def on_hand(product, location):
    level = db.session.get(LocationLevel, (product.id, location.id), populate_existing=True)
    return level.on_hand if level else 0


def fresh(order):
    db.session.expire_all()
    return db.session.get(Order, order.id)


def error_next_to(html, field_id):
    marker = f'id="{field_id}-error">'
    assert marker in html, f"no error shown next to {field_id}"
    return html.split(marker, 1)[1].split("</p>", 1)[0]


def action_error(html, name):
    marker = f'id="error-{name}">'
    assert marker in html, f"no error shown on the {name} form"
    return html.split(marker, 1)[1].split("</p>", 1)[0]


@pytest.fixture
def stocked(warehouse, product):
    """10 bottles of CAB-2021 in MAIN/A-01, 4 in MAIN/A-02."""
    inventory.receive(product, bin_of(warehouse, "A-01"), 10)
    inventory.receive(product, bin_of(warehouse, "A-02"), 4)
    db.session.commit()
    return warehouse


def make_order(quantity=3, sku="CAB-2021", number=None, **details):
    order = orders.create_order(orders.OrderInput(
        number=number, lines=[orders.LineInput(sku, quantity)],
        details={"customer_name": "Avery Chen", "ship_name": "Avery Chen", "ship_address1": "1 Vine St",
                 "ship_city": "Napa", "ship_state": "CA", "ship_postal_code": "94558", **details}))
    db.session.commit()
    return order


@pytest.fixture
def order(stocked):
    return make_order(3, number="#1001")


def packed(order):
    line = order.lines[0]
    orders.pick(line, bin_of(order.warehouse, "A-01"), line.quantity)
    orders.pack(order)
    db.session.commit()
    return order


# -- list -------------------------------------------------------------------------------------

def test_order_list_renders_and_filters_by_status_and_search(operator_client, stocked):
    open_order = make_order(2, number="#2001", customer_name="Jordan Blake")
    held = make_order(50, number="#2002", customer_name="Sam Rivera")
    assert held.status == "on_hold"
    html = operator_client.get("/orders/").text
    assert "#2001" in html and "#2002" in html and "not in stock at MAIN" in html
    on_hold = operator_client.get("/orders/", query_string={"status": "on_hold"}).text
    assert "#2002" in on_hold and "#2001" not in on_hold
    by_customer = operator_client.get("/orders/", query_string={"q": "jordan"}).text
    assert f'id="order-{open_order.id}"' in by_customer and f'id="order-{held.id}"' not in by_customer
    by_number = operator_client.get("/orders/", query_string={"q": "2002"}).text
    assert f'id="order-{held.id}"' in by_number and f'id="order-{open_order.id}"' not in by_number


def test_order_list_is_paginated(operator_client, stocked):
    for n in range(51):
        orders.create_order(orders.OrderInput(number=f"#P{n:03d}", lines=[orders.LineInput("CAB-2021", 1)],
                                              unknown_sku="hold"))
    db.session.commit()
    first = operator_client.get("/orders/").text
    assert first.count('id="order-') == 50 and "1–50 of 51" in first
    assert operator_client.get("/orders/", query_string={"page": 2}).text.count('id="order-') == 1


# -- new order --------------------------------------------------------------------------------

def test_new_order_form_defaults_to_the_default_route(operator_client, stocked):
    html = operator_client.get("/orders/new").text
    process = stocked.shipping_processes[0]
    assert f'<option value="{stocked.id}" selected>' in html
    assert f'<option value="{process.id}" selected>' in html
    assert html.count('name="sku"') == 5 and 'data-scan="f-line-0-quantity"' in html


def _new_order_form(**changes):
    data = {"form_key": "new-1", "customer_name": "Avery Chen", "customer_email": "avery@example.com",
            "ship_name": "Avery Chen", "ship_address1": "1 Vine St", "ship_city": "Napa", "ship_state": "CA",
            "ship_postal_code": "94558", "ship_country": "us", "shipping_method": "Ground",
            "requested_ship_date": "2026-12-24", "is_club": "1", "action": "create",
            "sku": ["CAB-2021", "", "CHD-2022", ""], "quantity": ["3", "", "2", ""]}
    data.update(changes)
    return data


def test_new_order_is_created_reserved_and_shown(operator_client, stocked, product):
    other = ProductFactory(sku="CHD-2022")
    inventory.receive(other, bin_of(stocked, "B-01"), 6)
    db.session.commit()
    response = operator_client.post("/orders/new", data=_new_order_form(
        warehouse_id=stocked.id, shipping_process_id=stocked.shipping_processes[0].id), follow_redirects=True)
    assert response.status_code == 200 and "every line is reserved at MAIN" in response.text
    order = db.session.scalars(select(Order)).one()
    assert [(l.sku, l.quantity, l.quantity_reserved) for l in order.lines] == [("CAB-2021", 3, 3), ("CHD-2022", 2, 2)]
    assert (order.status, order.source, order.ship_country, order.is_club, order.is_pickup) == (
        "open", "manual", "US", True, False)
    assert order.requested_ship_date == date(2026, 12, 24) and order.shipping_method == "Ground"
    assert levels(product, stocked) == (14, 3) and levels(other, stocked) == (6, 2)
    assert "1 Vine St" in response.text


def test_new_order_short_of_stock_is_created_on_hold(operator_client, stocked, product):
    response = operator_client.post("/orders/new", data=_new_order_form(
        sku=["CAB-2021"], quantity=["20"], warehouse_id=stocked.id), follow_redirects=True)
    order = db.session.scalars(select(Order)).one()
    assert order.status == "on_hold" and "6 of 20 not in stock" in order.hold_reason
    assert "on hold" in response.text and levels(product, stocked) == (14, 14)


@pytest.mark.parametrize("lines, field_id, message", [
    ((["CAB-2021", "", "NOPE-1"], ["1", "", "2"]), "f-line-2-sku", "Unknown SKU &#39;NOPE-1&#39;."),
    ((["CAB-2021", "CAB-2021"], ["1", "0"]), "f-line-1-quantity", "at least 1"),
    ((["CAB-2021", "", "CAB-2021"], ["1", "", "-3"]), "f-line-2-quantity", "whole number"),
    ((["CAB-2021"], ["lots"]), "f-line-0-quantity", "whole number"),
    ((["CAB-2021", ""], ["1", "4"]), "f-line-1-sku", "Enter the SKU"),
    (([""], [""]), "f-line-0-sku", "at least one line"),
])
def test_bad_new_order_shows_the_error_next_to_the_line_and_creates_nothing(
        operator_client, stocked, product, lines, field_id, message):
    skus, quantities = lines
    response = operator_client.post("/orders/new", data=_new_order_form(
        sku=skus, quantity=quantities, warehouse_id=stocked.id))
    assert response.status_code == 400
    assert message in error_next_to(response.text, field_id)
    assert count(Order) == 0 and count(Reservation) == 0 and levels(product, stocked) == (14, 0)
    assert 'value="Avery Chen"' in response.text  # nothing typed is lost


@pytest.mark.parametrize("changes, field_id, message", [
    ({"requested_ship_date": "next week"}, "f-requested_ship_date", "date like"),
    ({"ship_state": "CALIFORNIA-X"}, "f-ship_state", "at most 10"),
    ({"warehouse_id": "999"}, "f-warehouse_id", "Choose a warehouse"),
])
def test_bad_order_details_show_next_to_their_field(operator_client, stocked, changes, field_id, message):
    data = _new_order_form(sku=["CAB-2021"], quantity=["1"], warehouse_id=stocked.id)
    data.update(changes)
    response = operator_client.post("/orders/new", data=data)
    assert response.status_code == 400
    assert message in error_next_to(response.text, field_id)
    assert count(Order) == 0


def test_new_order_with_a_process_of_another_warehouse_is_refused(operator_client, stocked):
    other = WarehouseFactory(code="TASTING")
    db.session.commit()
    response = operator_client.post("/orders/new", data=_new_order_form(
        sku=["CAB-2021"], quantity=["1"], warehouse_id=stocked.id,
        shipping_process_id=other.shipping_processes[0].id))
    assert response.status_code == 400
    assert "another warehouse" in error_next_to(response.text, "f-shipping_process_id")
    assert count(Order) == 0


def test_more_rows_keeps_what_was_typed_and_creates_nothing(operator_client, stocked):
    response = operator_client.post("/orders/new", data=_new_order_form(action="more_rows", warehouse_id=stocked.id))
    assert response.status_code == 200 and response.text.count('name="sku"') == 10
    assert 'value="CHD-2022"' in response.text and count(Order) == 0


def test_new_order_double_submit_of_one_form_creates_one_order(operator_client, stocked, product):
    data = _new_order_form(sku=["CAB-2021"], quantity=["2"], warehouse_id=stocked.id)
    first = operator_client.post("/orders/new", data=data)
    second = operator_client.post("/orders/new", data=data)
    assert first.headers["Location"] == second.headers["Location"]
    assert count(Order) == 1 and levels(product, stocked) == (14, 2)


# -- order page -------------------------------------------------------------------------------

def test_order_page_shows_the_order_and_a_scanner_ready_pick_form(operator_client, order):
    line = order.lines[0]
    html = operator_client.get(f"/orders/{order.id}").text
    for text in ("Order #1001", "Avery Chen", "1 Vine St, Napa CA 94558, US", "MAIN · Main cellar",
                 "In-house shipping", 'id="reservations"', "Nothing has shipped yet"):
        assert text in html
    pick_form = html.split(f'action="/orders/{order.id}/lines/{line.id}/pick"', 1)[1].split("</form>")[0]
    assert f'data-scan="f-pick-{line.id}-quantity"' in pick_form
    assert f'id="f-pick-{line.id}-quantity" name="quantity" type="number" value="3"' in pick_form
    assert '<option value="MAIN/A-01">10 on hand</option>' in pick_form


def test_order_page_renders_plugin_panels(app, operator_client, order):
    seen = []

    def panels(page, obj):
        seen.append((page, obj.id if obj is not None else None))
        return ["<p>Vinoshipper: compliance check passed</p>"] if page == "order" else []
    app.extensions["wms.panels"] = panels
    html = operator_client.get(f"/orders/{order.id}").text
    assert '<section class="card panel"><p>Vinoshipper: compliance check passed</p></section>' in html
    assert ("order", order.id) in seen


def test_unknown_order_is_not_found(operator_client, warehouse):
    assert operator_client.get("/orders/999").status_code == 404


# -- pick -------------------------------------------------------------------------------------

def _pick(client, order, **data):
    line = order.lines[0]
    return client.post(f"/orders/{order.id}/lines/{line.id}/pick", data={"form_key": "pick-1", **data})


def test_pick_moves_units_to_outbound(operator_client, order, product, stocked):
    response = _pick(operator_client, order, location="A-01", quantity="2")
    assert response.status_code == 302
    order = fresh(order)
    assert order.status == "picking" and order.lines[0].quantity_picked == 2
    assert on_hand(product, bin_of(stocked, "A-01")) == 8
    assert on_hand(product, orders.outbound_location(stocked)) == 2
    assert levels(product, stocked) == (14, 3)
    html = operator_client.get(f"/orders/{order.id}").text
    assert "Picked 2 × CAB-2021 from MAIN/A-01: 2 of 3 picked." in html
    assert f'id="f-pick-{order.lines[0].id}-quantity" name="quantity" type="number" value="1"' in html


def test_pick_by_scanned_bin_barcode(operator_client, order, product, stocked):
    bin_of(stocked, "A-02").barcode = "LOC-A02"
    db.session.commit()
    assert _pick(operator_client, order, location="LOC-A02", quantity="3").status_code == 302
    assert on_hand(product, bin_of(stocked, "A-02")) == 1


@pytest.mark.parametrize("data, field, message", [
    ({"location": "A-01", "quantity": "4"}, "quantity", "Only 3 reserved unit(s)"),
    ({"location": "A-01", "quantity": "0"}, "quantity", "at least 1"),
    ({"location": "A-01", "quantity": "-1"}, "quantity", "whole number"),
    ({"location": "A-01", "quantity": "x"}, "quantity", "whole number"),
    ({"location": "Q-42", "quantity": "1"}, "location", "No location"),
    ({"location": "", "quantity": "1"}, "location", "Scan or type"),
    ({"location": "MAIN/OUTBOUND", "quantity": "1"}, "location", "is not a bin of warehouse MAIN"),
])
def test_bad_pick_shows_the_error_next_to_the_line_field_and_changes_nothing(
        operator_client, order, product, stocked, data, field, message):
    movements = count(StockMovement)
    response = _pick(operator_client, order, **data)
    assert response.status_code == 400
    assert message in error_next_to(response.text, f"f-pick-{order.lines[0].id}-{field}")
    order = fresh(order)
    assert order.status == "open" and order.lines[0].quantity_picked == 0
    assert count(StockMovement) == movements and on_hand(product, bin_of(stocked, "A-01")) == 10


def test_pick_from_a_bin_of_another_warehouse_is_refused(operator_client, order, product):
    other = WarehouseFactory(code="TASTING", bins=("SHELF",))
    inventory.receive(product, bin_of(other, "SHELF"), 5)
    db.session.commit()
    response = _pick(operator_client, order, location="TASTING/SHELF", quantity="1")
    assert response.status_code == 400
    assert "not a bin of warehouse MAIN" in error_next_to(response.text, f"f-pick-{order.lines[0].id}-location")
    assert on_hand(product, bin_of(other, "SHELF")) == 5


def test_pick_double_submit_of_one_form_picks_once(operator_client, order, product, stocked):
    _pick(operator_client, order, location="A-01", quantity="2")
    _pick(operator_client, order, location="A-01", quantity="2")
    assert fresh(order).lines[0].quantity_picked == 2
    assert on_hand(product, bin_of(stocked, "A-01")) == 8


# -- pack and ship ----------------------------------------------------------------------------

def test_pack_before_everything_is_picked_is_refused(operator_client, order):
    response = operator_client.post(f"/orders/{order.id}/pack")
    assert response.status_code == 400
    assert "Pick every line before packing" in action_error(response.text, "pack")
    assert fresh(order).status == "open"


def test_pack_after_picking(operator_client, order, stocked):
    _pick(operator_client, order, location="A-01", quantity="3")
    response = operator_client.post(f"/orders/{order.id}/pack", follow_redirects=True)
    assert "packed; ready to ship" in response.text and fresh(order).status == "packed"
    assert 'action="/orders/%d/ship"' % order.id in response.text


def test_ship_before_pack_is_refused_and_changes_nothing(operator_client, order, product, stocked):
    _pick(operator_client, order, location="A-01", quantity="3")
    response = operator_client.post(f"/orders/{order.id}/ship", data={"carrier": "UPS", "seen_status": "picking"})
    assert response.status_code == 400
    assert "Pack the order before shipping it" in action_error(response.text, "ship")
    assert count(Shipment) == 0 and fresh(order).status == "picking"
    assert levels(product, stocked) == (14, 3)


def test_ship_records_the_shipment_and_consumes_the_reservation(operator_client, order, product, stocked):
    packed(order)
    response = operator_client.post(f"/orders/{order.id}/ship", data={
        "seen_status": "packed", "carrier": "UPS", "service": "Ground", "tracking_number": "1Z999",
        "tracking_url": "https://www.ups.com/track?tracknum=1Z999"}, follow_redirects=True)
    assert "shipped with UPS, tracking 1Z999" in response.text
    shipment = db.session.scalars(select(Shipment)).one()
    assert (shipment.carrier, shipment.service, shipment.tracking_number, shipment.status) == (
        "UPS", "Ground", "1Z999", "shipped")
    assert [(sl.order_line_id, sl.quantity) for sl in shipment.lines] == [(order.lines[0].id, 3)]
    order = fresh(order)
    assert order.status == "shipped" and order.lines[0].quantity_shipped == 3
    assert levels(product, stocked) == (11, 0)
    assert on_hand(product, orders.outbound_location(stocked)) == 0
    assert '<a href="https://www.ups.com/track?tracknum=1Z999"' in response.text


@pytest.mark.parametrize("data, field_id, message", [
    ({"carrier": " "}, "f-ship-carrier", "Enter the carrier"),
    ({"carrier": "UPS", "tracking_url": "javascript:alert(1)"}, "f-ship-tracking_url", "must start with https://"),
])
def test_bad_ship_input_shows_next_to_the_field(operator_client, order, field_id, data, message):
    packed(order)
    response = operator_client.post(f"/orders/{order.id}/ship", data={"seen_status": "packed", **data})
    assert response.status_code == 400
    assert message in error_next_to(response.text, field_id)
    assert count(Shipment) == 0 and fresh(order).status == "packed"


def test_ship_double_submit_ships_once(operator_client, order, product, stocked):
    packed(order)
    data = {"seen_status": "packed", "carrier": "FedEx", "tracking_number": "7777"}
    operator_client.post(f"/orders/{order.id}/ship", data=data)
    again = operator_client.post(f"/orders/{order.id}/ship", data=data, follow_redirects=True)
    assert again.status_code == 200 and "was already shipped" in again.text
    assert count(Shipment) == 1 and levels(product, stocked) == (11, 0)


# -- cancel -----------------------------------------------------------------------------------

def test_cancel_releases_the_reservation(operator_client, order, product, stocked):
    response = operator_client.post(f"/orders/{order.id}/cancel", data={"reason": "Customer changed mind",
                                                                        "seen_status": "open"},
                                    follow_redirects=True)
    assert "cancelled; its reservations are released" in response.text
    assert "Customer changed mind" in response.text
    order = fresh(order)
    assert order.status == "cancelled" and order.lines[0].reservations[0].status == "released"
    assert levels(product, stocked) == (14, 0)


def test_cancel_after_ship_is_refused_and_changes_nothing(operator_client, order, product, stocked):
    packed(order)
    orders.ship(order, carrier="UPS")
    db.session.commit()
    response = operator_client.post(f"/orders/{order.id}/cancel", data={"reason": "late", "seen_status": "packed"})
    assert response.status_code == 400
    assert "is shipped" in action_error(response.text, "cancel")
    assert fresh(order).status == "shipped" and levels(product, stocked) == (11, 0)


def test_cancel_double_submit_is_told_it_is_done(operator_client, order):
    data = {"reason": "duplicate order", "seen_status": "open"}
    operator_client.post(f"/orders/{order.id}/cancel", data=data)
    again = operator_client.post(f"/orders/{order.id}/cancel", data=data, follow_redirects=True)
    assert "was already cancelled" in again.text and fresh(order).status == "cancelled"


# -- release hold and route -------------------------------------------------------------------

def test_release_hold_reserves_stock_that_has_arrived(operator_client, stocked, product):
    held = make_order(20)
    assert held.status == "on_hold"
    response = operator_client.post(f"/orders/{held.id}/release-hold", follow_redirects=True)
    assert "still on hold" in response.text and fresh(held).status == "on_hold"
    inventory.receive(product, bin_of(stocked, "B-01"), 6)
    db.session.commit()
    response = operator_client.post(f"/orders/{held.id}/release-hold", follow_redirects=True)
    assert "Hold released" in response.text
    held = fresh(held)
    assert held.status == "open" and held.hold_reason is None and held.lines[0].quantity_reserved == 20
    assert levels(product, stocked) == (20, 20)


def test_release_hold_matches_a_sku_created_since(operator_client, stocked):
    held = orders.create_order(orders.OrderInput(lines=[orders.LineInput("NEW-SKU", 1)], unknown_sku="hold"))
    db.session.commit()
    new_product = catalog.create_product({"sku": "NEW-SKU", "name": "New release"})
    inventory.receive(new_product, bin_of(stocked, "B-01"), 2)
    db.session.commit()
    operator_client.post(f"/orders/{held.id}/release-hold")
    held = fresh(held)
    assert held.status == "open" and held.lines[0].product_id == new_product.id
    assert levels(new_product, stocked) == (2, 1)


def test_route_moves_the_order_and_its_reservation(operator_client, order, product, stocked):
    tasting = WarehouseFactory(code="TASTING", bins=("SHELF",))
    inventory.receive(product, bin_of(tasting, "SHELF"), 5)
    db.session.commit()
    process = tasting.shipping_processes[0]
    response = operator_client.post(f"/orders/{order.id}/route", data={
        "warehouse_id": tasting.id, "shipping_process_id": process.id}, follow_redirects=True)
    assert "routed to TASTING" in response.text
    order = fresh(order)
    assert order.warehouse_id == tasting.id and order.shipping_process_id == process.id
    assert levels(product, stocked) == (14, 0) and levels(product, tasting) == (5, 3)


def test_route_to_a_process_of_another_warehouse_is_refused(operator_client, order, product, stocked):
    tasting = WarehouseFactory(code="TASTING")
    db.session.commit()
    response = operator_client.post(f"/orders/{order.id}/route", data={
        "warehouse_id": stocked.id, "shipping_process_id": tasting.shipping_processes[0].id})
    assert response.status_code == 400
    assert "another warehouse" in error_next_to(response.text, "f-route-process")
    assert fresh(order).shipping_process_id == stocked.shipping_processes[0].id
    assert levels(product, stocked) == (14, 3)


def test_route_after_picking_is_refused(operator_client, order, stocked):
    tasting = WarehouseFactory(code="TASTING")
    db.session.commit()
    _pick(operator_client, order, location="A-01", quantity="1")
    response = operator_client.post(f"/orders/{order.id}/route", data={"warehouse_id": tasting.id})
    assert response.status_code == 400
    assert "already picked" in action_error(response.text, "route")
    assert fresh(order).warehouse_id == stocked.id


# -- shipment status --------------------------------------------------------------------------

@pytest.fixture
def shipment(order):
    packed(order)
    shipment = orders.ship(order, carrier="UPS", tracking_number="1Z1")
    db.session.commit()
    return shipment


def test_shipment_status_updates(operator_client, order, shipment):
    for status in ("in_transit", "out_for_delivery", "delivered"):
        response = operator_client.post(f"/orders/{order.id}/shipments/{shipment.id}/status",
                                        data={"status": status}, follow_redirects=True)
        assert f"is now {status.replace('_', ' ')}" in response.text
    db.session.expire_all()
    shipment = db.session.get(Shipment, shipment.id)
    assert shipment.status == "delivered" and shipment.delivered_at is not None


def test_unknown_shipment_status_is_refused_next_to_the_select(operator_client, order, shipment):
    response = operator_client.post(f"/orders/{order.id}/shipments/{shipment.id}/status", data={"status": "lost"})
    assert response.status_code == 400
    assert "Unknown shipment status" in error_next_to(response.text, f"f-shipment-{shipment.id}-status")
    db.session.expire_all()
    assert db.session.get(Shipment, shipment.id).status == "shipped"


def test_shipment_of_another_order_is_not_found(operator_client, order, shipment, stocked):
    other = make_order(1)
    assert operator_client.post(f"/orders/{other.id}/shipments/{shipment.id}/status",
                                data={"status": "delivered"}).status_code == 404
