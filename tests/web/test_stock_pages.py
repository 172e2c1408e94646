"""Operator stock pages: adjust, transfer, stock levels, movement history and its admin-only reversal."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import login_as
from tests.factories import ProductFactory, UserFactory, WarehouseFactory, bin_of
from wms.core.models import LocationLevel, StockMovement, WarehouseLevel
from wms.core.models._base import utcnow
from wms.core.services import inventory, orders
from wms.extensions import db


def on_hand(product, location):
    level = db.session.get(LocationLevel, (product.id, location.id), populate_existing=True)
    return level.on_hand if level else 0


def warehouse_level(product, warehouse):
    level = db.session.get(WarehouseLevel, (product.id, warehouse.id), populate_existing=True)
    return (level.on_hand, level.committed) if level else (0, 0)


def movement_count():
    return db.session.scalar(select(func.count()).select_from(StockMovement))


def error_next_to(html, field_id):
    """The text of the error paragraph the field macro renders under the field with this id."""
    marker = f'id="{field_id}-error">'
    assert marker in html, f"no error shown next to {field_id}"
    return html.split(marker, 1)[1].split("</p>", 1)[0]


@pytest.fixture
def stocked(warehouse, product, operator):
    """10 bottles of CAB-2021 in MAIN/A-01."""
    inventory.receive(product, bin_of(warehouse, "A-01"), 10, user=operator, reference="PO-1")
    db.session.commit()
    return bin_of(warehouse, "A-01")


# -- rendering --------------------------------------------------------------------------------

@pytest.mark.parametrize("url, heading", [
    ("/stock/adjust", "Adjust stock"), ("/stock/transfer", "Transfer stock"),
    ("/stock/levels", "Stock by product and location"), ("/stock/movements", "Stock movements"),
])
def test_every_stock_page_renders_for_an_operator(operator_client, stocked, url, heading):
    response = operator_client.get(url)
    assert response.status_code == 200
    assert f"<h1>{heading}</h1>" in response.text


def test_stock_pages_need_a_login(client, warehouse):
    for url in ("/stock/adjust", "/stock/transfer", "/stock/levels", "/stock/movements"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_adjust_form_lists_the_reasons_and_scans_through_the_fields(operator_client, warehouse):
    html = operator_client.get("/stock/adjust").text
    for reason in ("Count correction", "Breakage", "Sample / tasting", "Lost", "Found", "Other"):
        assert reason in html
    assert 'id="f-product"' in html and 'data-scan="f-location"' in html
    assert 'data-scan="f-quantity"' in html
    assert '<option value="MAIN/A-01">' in html


# -- adjust -----------------------------------------------------------------------------------

def test_adjust_removes_units_and_shows_the_new_on_hand(operator_client, stocked, product, warehouse):
    response = operator_client.post("/stock/adjust", data={
        "form_key": "k1", "product": "0850001000017", "location": "MAIN/A-01", "quantity": "-3",
        "reason": "breakage", "note": "dropped case"}, follow_redirects=True)
    assert response.status_code == 200
    assert "by -3 (Breakage)" in response.text and "On hand there now: 7." in response.text
    assert on_hand(product, stocked) == 7
    assert warehouse_level(product, warehouse) == (7, 0)
    movement = db.session.scalars(select(StockMovement).order_by(StockMovement.id.desc())).first()
    assert (movement.kind, movement.quantity, movement.reason, movement.note) == ("adjustment", 3, "Breakage",
                                                                                    "dropped case")
    assert movement.from_location_id == stocked.id


def test_adjust_adds_units_with_a_described_other_reason(operator_client, stocked, product):
    response = operator_client.post("/stock/adjust", data={
        "form_key": "k2", "product": "CAB-2021", "location": "A-01", "quantity": "+2",
        "reason": "other", "reason_other": "Found behind the rack"}, follow_redirects=True)
    assert "On hand there now: 12." in response.text
    assert on_hand(product, stocked) == 12
    movement = db.session.scalars(select(StockMovement).order_by(StockMovement.id.desc())).first()
    assert movement.reason == "Other: Found behind the rack" and movement.to_location_id == stocked.id


@pytest.mark.parametrize("changes, field_id, message", [
    ({"quantity": "0"}, "f-quantity", "other than 0"),
    ({"quantity": "abc"}, "f-quantity", "whole number"),
    ({"quantity": "1.5"}, "f-quantity", "whole number"),
    ({"quantity": ""}, "f-quantity", "whole number"),
    ({"quantity": "-11"}, "f-quantity", "Only 10"),
    ({"reason": ""}, "f-reason", "Choose a reason"),
    ({"reason": "because"}, "f-reason", "Choose a reason"),
    ({"reason": "other", "reason_other": "  "}, "f-reason_other", "Describe the reason"),
    ({"product": "NOPE-1"}, "f-product", "No product with barcode or SKU"),
    ({"product": ""}, "f-product", "Scan a barcode"),
    ({"location": "Z-99"}, "f-location", "No location"),
    ({"location": ""}, "f-location", "Scan or type a location"),
    ({"note": "x" * 501}, "f-note", "at most 500"),
])
def test_bad_adjustment_shows_the_message_next_to_the_field_and_changes_nothing(
        operator_client, stocked, product, warehouse, changes, field_id, message):
    data = {"form_key": "bad", "product": "CAB-2021", "location": "MAIN/A-01", "quantity": "-2",
            "reason": "lost", **changes}
    before = movement_count()
    response = operator_client.post("/stock/adjust", data=data)
    assert response.status_code == 400
    assert message in error_next_to(response.text, field_id)
    assert movement_count() == before
    assert on_hand(product, stocked) == 10 and warehouse_level(product, warehouse) == (10, 0)
    assert f'value="{data["product"]}"' in response.text  # what was typed is kept


def test_adjusting_a_code_held_by_two_warehouses_asks_for_the_warehouse(operator_client, stocked, product):
    WarehouseFactory(code="TASTING", bins=("A-01",))
    db.session.commit()
    response = operator_client.post("/stock/adjust", data={
        "form_key": "amb", "product": "CAB-2021", "location": "A-01", "quantity": "1", "reason": "found"})
    assert response.status_code == 400
    assert "WAREHOUSE/A-01" in error_next_to(response.text, "f-location")
    assert on_hand(product, stocked) == 10


def test_adjust_double_submit_of_one_form_posts_once(operator_client, stocked, product):
    data = {"form_key": "same-key", "product": "CAB-2021", "location": "MAIN/A-01", "quantity": "-4",
            "reason": "sample"}
    before = movement_count()
    assert operator_client.post("/stock/adjust", data=data).status_code == 302
    assert operator_client.post("/stock/adjust", data=data).status_code == 302
    assert movement_count() == before + 1
    assert on_hand(product, stocked) == 6


# -- transfer ---------------------------------------------------------------------------------

def test_transfer_between_bins_of_one_warehouse(operator_client, stocked, product, warehouse):
    response = operator_client.post("/stock/transfer", data={
        "form_key": "t1", "product": "CAB-2021", "from_location": "MAIN/A-01", "to_location": "MAIN/B-01",
        "quantity": "4", "reference": "REPACK-7"}, follow_redirects=True)
    assert "Moved 4 × CAB-2021 from MAIN/A-01 to MAIN/B-01" in response.text
    assert "Now 6 at MAIN/A-01 and 4 at MAIN/B-01" in response.text
    assert on_hand(product, stocked) == 6 and on_hand(product, bin_of(warehouse, "B-01")) == 4
    assert warehouse_level(product, warehouse) == (10, 0)
    movement = db.session.scalars(select(StockMovement).order_by(StockMovement.id.desc())).first()
    assert (movement.kind, movement.reference) == ("transfer", "REPACK-7")


def test_transfer_between_two_warehouses_moves_the_warehouse_levels(operator_client, stocked, product, warehouse):
    tasting = WarehouseFactory(code="TASTING", bins=("SHELF",))
    db.session.commit()
    response = operator_client.post("/stock/transfer", data={
        "form_key": "t2", "product": "CAB-2021", "from_location": "MAIN/A-01", "to_location": "TASTING/SHELF",
        "quantity": "3"})
    assert response.status_code == 302
    assert warehouse_level(product, warehouse) == (7, 0)
    assert warehouse_level(product, tasting) == (3, 0)
    assert on_hand(product, bin_of(tasting, "SHELF")) == 3


@pytest.mark.parametrize("changes, field_id, message", [
    ({"quantity": "0"}, "f-quantity", "at least 1"),
    ({"quantity": "-2"}, "f-quantity", "whole number"),
    ({"quantity": "two"}, "f-quantity", "whole number"),
    ({"quantity": "11"}, "f-quantity", "Only 10"),
    ({"to_location": "MAIN/Z-9"}, "f-to_location", "No location"),
    ({"from_location": ""}, "f-from_location", "Scan or type"),
    ({"to_location": "MAIN/A-01"}, "f-to_location", "must differ"),
    ({"product": "UNKNOWN"}, "f-product", "No product"),
])
def test_bad_transfer_shows_the_message_next_to_the_field_and_changes_nothing(
        operator_client, stocked, product, warehouse, changes, field_id, message):
    data = {"form_key": "tb", "product": "CAB-2021", "from_location": "MAIN/A-01", "to_location": "MAIN/A-02",
            "quantity": "2", **changes}
    before = movement_count()
    response = operator_client.post("/stock/transfer", data=data)
    assert response.status_code == 400
    assert message in error_next_to(response.text, field_id)
    assert movement_count() == before
    assert on_hand(product, stocked) == 10 and on_hand(product, bin_of(warehouse, "A-02")) == 0


def test_transfer_into_an_inactive_bin_shows_the_message_on_the_form(operator_client, stocked, product, warehouse):
    bin_of(warehouse, "A-02").is_active = False
    db.session.commit()
    response = operator_client.post("/stock/transfer", data={
        "form_key": "ti", "product": "CAB-2021", "from_location": "MAIN/A-01", "to_location": "MAIN/A-02",
        "quantity": "2"})
    assert response.status_code == 400
    assert "MAIN/A-02 is inactive" in response.text.split('class="flash flash-error"', 1)[1].split("</div>")[0]
    assert on_hand(product, stocked) == 10


def test_transfer_double_submit_of_one_form_posts_once(operator_client, stocked, product, warehouse):
    data = {"form_key": "tt", "product": "CAB-2021", "from_location": "MAIN/A-01", "to_location": "MAIN/A-02",
            "quantity": "5"}
    operator_client.post("/stock/transfer", data=data)
    operator_client.post("/stock/transfer", data=data)
    assert on_hand(product, stocked) == 5 and on_hand(product, bin_of(warehouse, "A-02")) == 5


# -- stock levels -----------------------------------------------------------------------------

def test_levels_show_on_hand_committed_available_per_warehouse_and_bins(operator_client, stocked, product, warehouse):
    inventory.receive(product, bin_of(warehouse, "B-01"), 5)
    orders.create_order(orders.OrderInput(lines=[orders.LineInput("CAB-2021", 4)]))
    db.session.commit()
    html = operator_client.get("/stock/levels").text
    row = html.split(f'id="level-{product.id}-{warehouse.id}"', 1)[1].split("</tr>", 1)[0]
    cells = [c.split("</td>")[0].strip() for c in row.split("<td")[1:]]
    assert "CAB-2021" in cells[0] and cells[2] == ">MAIN"
    assert cells[3:6] == ['class="num">15', 'class="num">4', 'class="num">11']
    assert "A-01: 10" in cells[6] and "B-01: 5" in cells[6]


def test_levels_filter_by_product_search_and_warehouse(operator_client, stocked, product, warehouse):
    other = ProductFactory(sku="CHD-2022", name="Carneros Chardonnay")
    tasting = WarehouseFactory(code="TASTING", bins=("SHELF",))
    inventory.receive(other, bin_of(tasting, "SHELF"), 6)
    db.session.commit()
    by_name = operator_client.get("/stock/levels", query_string={"q": "carneros"}).text
    assert "CHD-2022" in by_name and "CAB-2021" not in by_name
    by_barcode = operator_client.get("/stock/levels", query_string={"q": "0850001000017"}).text
    assert "CAB-2021" in by_barcode and "CHD-2022" not in by_barcode
    by_warehouse = operator_client.get("/stock/levels", query_string={"warehouse_id": tasting.id}).text
    assert "CHD-2022" in by_warehouse and "CAB-2021" not in by_warehouse
    assert "No stock matches" in operator_client.get("/stock/levels", query_string={"q": "zzz"}).text


def test_levels_hide_empty_rows_unless_asked(operator_client, stocked, product, warehouse):
    inventory.adjust(product, stocked, -10, "count")
    db.session.commit()
    assert f'id="level-{product.id}-{warehouse.id}"' not in operator_client.get("/stock/levels").text
    shown = operator_client.get("/stock/levels", query_string={"show_zero": "1"}).text
    assert f'id="level-{product.id}-{warehouse.id}"' in shown


def test_levels_are_paginated_by_fifty_rows(operator_client, warehouse):
    location = bin_of(warehouse, "A-01")
    for n in range(51):
        inventory.receive(ProductFactory(sku=f"P-{n:03d}"), location, 1)
    db.session.commit()
    first = operator_client.get("/stock/levels").text
    assert first.count('id="level-') == 50 and "P-049" in first and "P-050" not in first
    assert "1–50 of 51" in first and "page=2" in first
    second = operator_client.get("/stock/levels", query_string={"page": 2}).text
    assert second.count('id="level-') == 1 and "P-050" in second


# -- movement history -------------------------------------------------------------------------

def _history(client, **filters):
    return client.get("/stock/movements", query_string=filters).text


def test_movements_show_every_column_newest_first(operator_client, stocked, product, warehouse, operator):
    inventory.adjust(product, stocked, -1, "Breakage", user=operator, reference="CHK-9")
    db.session.commit()
    html = _history(operator_client).split('id="movements"', 1)[1]
    assert html.index("<td>adjustment</td>") < html.index("<td>receipt</td>")
    row = html.split('id="movement-', 2)[1].split("</tr>")[0]
    for text in ("adjustment", "CAB-2021", "MAIN/A-01 → ADJUSTMENT", "Breakage", "CHK-9", operator.name):
        assert text in row


def test_movements_filter_by_kind_product_reference_location_and_user(operator_client, stocked, product, warehouse):
    other_user = UserFactory(name="Night Shift")
    other = ProductFactory(sku="PN-2022", name="Russian River Pinot Noir")
    inventory.receive(other, bin_of(warehouse, "B-01"), 3, user=other_user, reference="PO-77")
    db.session.commit()
    assert _history(operator_client, kind="receipt").count('id="movement-') == 2
    assert "PN-2022" not in _history(operator_client, product="cab")
    only_po77 = _history(operator_client, reference="po-77")
    assert only_po77.count('id="movement-') == 1 and "PN-2022" in only_po77
    at_b01 = _history(operator_client, location="MAIN/B-01")
    assert at_b01.count('id="movement-') == 1 and "PN-2022" in at_b01
    by_user = _history(operator_client, user_id=other_user.id)
    assert by_user.count('id="movement-') == 1 and "Night Shift" in by_user
    tasting = WarehouseFactory(code="TASTING")
    db.session.commit()
    assert "No movements match" in _history(operator_client, warehouse_id=tasting.id)
    assert _history(operator_client, warehouse_id=warehouse.id).count('id="movement-') == 2


def test_movements_filter_by_date(operator_client, stocked):
    today = utcnow().date()
    assert _history(operator_client, date_from=today.isoformat(), date_to=today.isoformat()).count('id="movement-') == 1
    assert "No movements match" in _history(operator_client, date_from=(today + timedelta(days=1)).isoformat())
    assert "No movements match" in _history(operator_client, date_to=(today - timedelta(days=1)).isoformat())


def test_bad_movement_filters_show_next_to_the_filter(operator_client, stocked):
    html = _history(operator_client, date_from="31/12/2026")
    assert "Use a date like" in error_next_to(html, "f-date_from")
    html = _history(operator_client, location="NOWHERE")
    assert "No location" in error_next_to(html, "f-location")
    assert 'id="movement-' not in html


def test_movements_are_paginated(operator_client, stocked, product):
    for n in range(55):
        inventory.adjust(product, stocked, 1, "found")
    db.session.commit()
    first = _history(operator_client)
    assert first.count('id="movement-') == 50
    assert _history(operator_client, page=2).count('id="movement-') == 6


# -- reversing a movement (admins only) -------------------------------------------------------

def _last_receipt():
    return db.session.scalars(select(StockMovement).where(StockMovement.kind == "receipt")).first()


def test_admin_reverses_a_movement(admin_client, stocked, product, warehouse):
    receipt = _last_receipt()
    assert f"/stock/movements/{receipt.id}/reverse" in _history(admin_client)
    response = admin_client.post(f"/stock/movements/{receipt.id}/reverse", data={"reason": "Wrong product booked"},
                                 follow_redirects=True)
    assert f"Movement #{receipt.id} reversed" in response.text
    reversal = db.session.scalar(select(StockMovement).where(StockMovement.reverses_id == receipt.id))
    assert (reversal.kind, reversal.quantity, reversal.reason) == ("reversal", 10, "Wrong product booked")
    assert on_hand(product, stocked) == 0 and warehouse_level(product, warehouse) == (0, 0)
    assert f"Reversed by #{reversal.id}" in response.text


def test_reversing_twice_is_refused_and_changes_nothing(admin_client, stocked, product):
    receipt = _last_receipt()
    inventory.receive(product, stocked, 10)  # so a second reversal would have stock to take
    db.session.commit()
    admin_client.post(f"/stock/movements/{receipt.id}/reverse", data={"reason": "mistake"})
    before = movement_count()
    response = admin_client.post(f"/stock/movements/{receipt.id}/reverse", data={"reason": "again"})
    assert response.status_code == 400
    assert f"Movement {receipt.id} was already reversed" in error_next_to(response.text, f"reverse-{receipt.id}")
    assert movement_count() == before and on_hand(product, stocked) == 10


def test_reversal_needs_a_reason(admin_client, stocked, product):
    receipt = _last_receipt()
    response = admin_client.post(f"/stock/movements/{receipt.id}/reverse", data={"reason": " "})
    assert response.status_code == 400
    assert "needs a reason" in error_next_to(response.text, f"f-reverse-{receipt.id}-reason")
    assert movement_count() == 1 and on_hand(product, stocked) == 10


def test_reversal_that_would_take_missing_stock_is_refused_on_its_row(admin_client, stocked, product):
    receipt = _last_receipt()
    inventory.adjust(product, stocked, -4, "breakage")
    db.session.commit()
    response = admin_client.post(f"/stock/movements/{receipt.id}/reverse", data={"reason": "wrong"})
    assert response.status_code == 400
    row = response.text.split(f'id="movement-{receipt.id}"', 1)[1].split("</tr>")[0]
    assert "Only 6" in row
    assert on_hand(product, stocked) == 6


def test_an_operator_cannot_reverse(operator_client, stocked, product):
    receipt = _last_receipt()
    assert "/reverse" not in _history(operator_client)
    response = operator_client.post(f"/stock/movements/{receipt.id}/reverse", data={"reason": "try"})
    assert response.status_code == 403
    assert movement_count() == 1 and on_hand(product, stocked) == 10


def test_reversing_an_unknown_movement_is_not_found(admin_client, warehouse):
    assert admin_client.post("/stock/movements/999/reverse", data={"reason": "x"}).status_code == 404


def test_a_reversal_has_no_reverse_button(client, admin, stocked):
    receipt = _last_receipt()
    reversal = inventory.reverse(receipt, reason="oops")
    db.session.commit()
    html = _history(login_as(client, admin))
    assert f"/stock/movements/{reversal.id}/reverse" not in html
    assert f"/stock/movements/{receipt.id}/reverse" not in html
