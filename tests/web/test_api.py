"""The JSON API: bearer-token auth, movements (single and batch), levels, orders and products.

Every refusal is checked twice: the JSON error, and a snapshot of the stock and order tables that must
be the same afterwards.
"""

import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.factories import ProductFactory, UserFactory, WarehouseFactory, bin_of
from wms.core.models import (
    ApiToken, Location, LocationLevel, Order, OrderLine, OutboxMessage, Reservation, StockMovement,
    WarehouseLevel,
)
from wms.core.models._base import utcnow
from wms.core.services import catalog, inventory, orders
from wms.extensions import db


# -- helpers -------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def forget_virtual_locations():
    """inventory caches virtual location ids per database URL; on PostgreSQL every test reuses the URL
    with a fresh schema, so a cached id would point at another test's row."""
    getattr(inventory, "_VIRTUAL_IDS", {}).clear()
    yield
    getattr(inventory, "_VIRTUAL_IDS", {}).clear()


def issue_token(user, name="integration"):
    row, token = ApiToken.issue(user, name)
    db.session.add(row)
    db.session.commit()
    return token


@pytest.fixture
def token(operator):
    return issue_token(operator)


@pytest.fixture
def api(client, token):
    """Calls the API with the operator's token: api("post", "/movements", json={...})."""
    def call(method, path, headers=None, **kwargs):
        headers = {"Authorization": f"Bearer {token}", **(headers or {})}
        return getattr(client, method)("/api/v1" + path, headers=headers, **kwargs)
    return call


@pytest.fixture
def stocked(warehouse, product, operator):
    """CAB-2021: 10 in MAIN/A-01."""
    inventory.receive(product, bin_of(warehouse, "A-01"), 10, user=operator)
    db.session.commit()
    return product


def snapshot():
    """Everything a refused request must leave as it was."""
    db.session.expire_all()
    counts = {model.__name__: db.session.scalar(select(func.count()).select_from(model))
              for model in (StockMovement, Order, OrderLine, Reservation, OutboxMessage, Location)}
    locations = db.session.execute(select(LocationLevel.product_id, LocationLevel.location_id,
                                          LocationLevel.on_hand).order_by(LocationLevel.product_id,
                                                                          LocationLevel.location_id)).all()
    warehouses = db.session.execute(select(WarehouseLevel.product_id, WarehouseLevel.warehouse_id,
                                           WarehouseLevel.on_hand, WarehouseLevel.committed)
                                    .order_by(WarehouseLevel.product_id, WarehouseLevel.warehouse_id)).all()
    return counts, [tuple(r) for r in locations], [tuple(r) for r in warehouses]


def on_hand(product, location):
    db.session.expire_all()
    level = db.session.get(LocationLevel, (product.id, location.id))
    return level.on_hand if level else 0


def warehouse_level(product, warehouse):
    db.session.expire_all()
    return db.session.get(WarehouseLevel, (product.id, warehouse.id))


def receipt(**overrides):
    return {"kind": "receipt", "sku": "CAB-2021", "quantity": 12, "location": "MAIN/A-01", **overrides}


# -- authentication ------------------------------------------------------------------------------

def test_missing_token_is_401_and_session_cookie_does_not_count(operator_client, warehouse, product):
    before = snapshot()
    response = operator_client.post("/api/v1/movements", json=receipt())
    assert response.status_code == 401
    assert response.get_json()["code"] == "missing_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert operator_client.get("/api/v1/levels").status_code == 401
    assert snapshot() == before


@pytest.mark.parametrize("header", ["Bearer wms_not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer ", "wms_x"])
def test_unknown_or_malformed_token_is_401(client, warehouse, product, header):
    before = snapshot()
    response = client.post("/api/v1/movements", json=receipt(), headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["code"] in ("invalid_token", "missing_token")
    assert snapshot() == before


def test_revoked_token_is_401(client, operator, warehouse, product):
    token = issue_token(operator)
    row = db.session.scalar(select(ApiToken))
    row.revoked_at = utcnow()
    db.session.commit()
    before = snapshot()
    response = client.post("/api/v1/movements", json=receipt(), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.get_json()["code"] == "token_revoked"
    assert snapshot() == before


def test_inactive_user_token_is_401(client, warehouse, product):
    user = UserFactory()
    token = issue_token(user)
    user.is_active_user = False
    db.session.commit()
    response = client.get("/api/v1/levels", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.get_json()["code"] == "user_inactive"


def test_admin_tokens_work_too(client, admin, warehouse, product):
    token = issue_token(admin)
    response = client.post("/api/v1/movements", json=receipt(), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201
    assert response.get_json()["movement"]["user"] == "admin@winery.test"


def test_last_used_at_is_written_at_most_once_a_minute(api, warehouse):
    assert db.session.scalar(select(ApiToken)).last_used_at is None
    assert api("get", "/levels").status_code == 200
    db.session.expire_all()
    row = db.session.scalar(select(ApiToken))
    assert row.last_used_at is not None

    recent = utcnow() - timedelta(seconds=30)
    row.last_used_at = recent
    db.session.commit()
    api("get", "/levels")
    db.session.expire_all()
    assert db.session.scalar(select(ApiToken)).last_used_at == recent

    stale = utcnow() - timedelta(minutes=5)
    db.session.scalar(select(ApiToken)).last_used_at = stale
    db.session.commit()
    api("get", "/levels")
    db.session.expire_all()
    assert db.session.scalar(select(ApiToken)).last_used_at > stale + timedelta(minutes=4)


# -- single movements ----------------------------------------------------------------------------

def test_receipt_posts_a_movement_and_returns_levels(api, warehouse, product, operator):
    response = api("post", "/movements", json=receipt(reference="PO-77", note="pallet 3",
                                                       idempotency_key="rcv-1"))
    assert response.status_code == 201
    body = response.get_json()
    assert body["replayed"] is False
    movement = body["movement"]
    assert movement["kind"] == "receipt" and movement["quantity"] == 12 and movement["sku"] == "CAB-2021"
    assert movement["to_location"] == "MAIN/A-01" and movement["from_location"] == "SUPPLIER"
    assert movement["reference"] == "PO-77" and movement["idempotency_key"] == "rcv-1"
    assert body["levels"]["locations"] == [{"sku": "CAB-2021", "location": "MAIN/A-01", "on_hand": 12}]
    assert body["levels"]["warehouses"] == [{"sku": "CAB-2021", "warehouse": "MAIN", "on_hand": 12,
                                             "committed": 0, "available": 12}]
    row = db.session.get(StockMovement, movement["id"])
    assert (row.kind, row.quantity, row.user_id, row.reference) == ("receipt", 12, operator.id, "PO-77")
    assert on_hand(product, bin_of(warehouse, "A-01")) == 12


def test_location_can_be_a_barcode(api, warehouse, product):
    location = catalog.create_location(warehouse, "C-01", barcode="LOC-C01")
    db.session.commit()
    response = api("post", "/movements", json=receipt(location="LOC-C01", quantity=3))
    assert response.status_code == 201
    assert on_hand(product, location) == 3


def test_return_comes_from_the_customer(api, warehouse, product):
    response = api("post", "/movements", json={"kind": "return", "sku": "CAB-2021", "quantity": 2,
                                               "location": "MAIN/A-02", "reference": "RMA-5"})
    assert response.status_code == 201
    assert response.get_json()["movement"]["from_location"] == "CUSTOMER"
    assert on_hand(product, bin_of(warehouse, "A-02")) == 2


def test_adjustment_with_signed_delta(api, warehouse, stocked):
    response = api("post", "/movements", json={"kind": "adjustment", "sku": "CAB-2021", "delta": -3,
                                               "reason": "breakage", "location": "MAIN/A-01"})
    assert response.status_code == 201
    movement = response.get_json()["movement"]
    assert (movement["delta"], movement["quantity"], movement["reason"]) == (-3, 3, "breakage")
    assert on_hand(stocked, bin_of(warehouse, "A-01")) == 7
    response = api("post", "/movements", json={"kind": "adjustment", "sku": "CAB-2021", "delta": 5,
                                               "reason": "count", "location": "MAIN/A-01"})
    assert response.status_code == 201 and response.get_json()["movement"]["delta"] == 5
    assert on_hand(stocked, bin_of(warehouse, "A-01")) == 12


def test_transfer_between_bins(api, warehouse, stocked):
    response = api("post", "/movements", json={"kind": "transfer", "sku": "CAB-2021", "quantity": 4,
                                               "from_location": "MAIN/A-01", "to_location": "MAIN/B-01"})
    assert response.status_code == 201
    locations = response.get_json()["levels"]["locations"]
    assert {(l["location"], l["on_hand"]) for l in locations} == {("MAIN/A-01", 6), ("MAIN/B-01", 4)}
    assert on_hand(stocked, bin_of(warehouse, "B-01")) == 4
    assert warehouse_level(stocked, warehouse).on_hand == 10


def test_repeated_idempotency_key_replays_without_posting(api, warehouse, product):
    first = api("post", "/movements", json=receipt(idempotency_key="scan-42"))
    assert first.status_code == 201
    before = snapshot()
    again = api("post", "/movements", json=receipt(idempotency_key="scan-42"))
    assert again.status_code == 200
    body = again.get_json()
    assert body["replayed"] is True
    assert body["movement"]["id"] == first.get_json()["movement"]["id"]
    assert body["levels"]["locations"][0]["on_hand"] == 12
    assert snapshot() == before


def test_reused_idempotency_key_for_another_movement_is_refused(api, warehouse, product):
    api("post", "/movements", json=receipt(idempotency_key="scan-43"))
    before = snapshot()
    response = api("post", "/movements", json=receipt(idempotency_key="scan-43", quantity=99))
    assert response.status_code == 409
    assert response.get_json()["code"] == "idempotency_key_reused"
    assert snapshot() == before


@pytest.mark.parametrize("quantity", ["abc", 0, -1, 1.5, True, None, "5", [1]])
def test_bad_quantity_is_refused(api, warehouse, product, quantity):
    before = snapshot()
    response = api("post", "/movements", json=receipt(quantity=quantity))
    assert response.status_code == 400
    assert response.get_json() | {"message": ""} == {"code": "invalid_quantity", "field": "quantity",
                                                      "message": ""}
    assert snapshot() == before


@pytest.mark.parametrize("delta", [0, 1.5, "abc", True])
def test_bad_adjustment_delta_is_refused(api, warehouse, stocked, delta):
    before = snapshot()
    response = api("post", "/movements", json={"kind": "adjustment", "sku": "CAB-2021", "delta": delta,
                                               "reason": "count", "location": "MAIN/A-01"})
    assert response.status_code == 400
    assert (response.get_json()["code"], response.get_json()["field"]) == ("invalid_quantity", "delta")
    assert snapshot() == before


@pytest.mark.parametrize("payload, status, code, field", [
    (receipt(sku="NOPE-1"), 404, "unknown_product", "sku"),
    (receipt(location="MAIN/Z-99"), 404, "unknown_location", "location"),
    (receipt(location="NOWHERE/A-01"), 404, "unknown_location", "location"),
    ({"kind": "adjustment", "sku": "CAB-2021", "delta": -2, "location": "MAIN/A-01"}, 400,
     "reason_required", "reason"),
    ({"kind": "adjustment", "sku": "CAB-2021", "delta": -2, "reason": "  ", "location": "MAIN/A-01"}, 400,
     "reason_required", "reason"),
    ({"kind": "adjustment", "sku": "CAB-2021", "delta": -11, "reason": "count", "location": "MAIN/A-01"}, 409,
     "insufficient_stock", "quantity"),
    ({"kind": "transfer", "sku": "CAB-2021", "quantity": 11, "from_location": "MAIN/A-01",
      "to_location": "MAIN/A-02"}, 409, "insufficient_stock", "quantity"),
    ({"kind": "transfer", "sku": "CAB-2021", "quantity": 1, "from_location": "MAIN/A-01",
      "to_location": "MAIN/A-01"}, 400, "same_location", "to_location"),
    ({"kind": "pick", "sku": "CAB-2021", "quantity": 1, "location": "MAIN/A-01"}, 400, "invalid_kind", "kind"),
    ({"sku": "CAB-2021", "quantity": 1, "location": "MAIN/A-01"}, 400, "invalid_kind", "kind"),
    (receipt(quantitiy=3), 400, "unexpected_field", "quantitiy"),
    ({"kind": "adjustment", "sku": "CAB-2021", "quantity": 2, "reason": "count", "location": "MAIN/A-01"}, 400,
     "unexpected_field", "quantity"),
    (receipt(sku=None), 400, "missing_field", "sku"),
    (receipt(sku=123), 400, "invalid_type", "sku"),
    (receipt(reference="x" * 121), 400, "too_long", "reference"),
    (receipt(idempotency_key="k" * 300), 400, "too_long", "idempotency_key"),
])
def test_invalid_movement_is_refused_and_writes_nothing(api, warehouse, stocked, payload, status, code, field):
    before = snapshot()
    response = api("post", "/movements", json=payload)
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert (body["code"], body.get("field")) == (code, field)
    assert body["message"]
    assert snapshot() == before


def test_non_json_content_type_is_415(api, warehouse, product):
    before = snapshot()
    for kwargs in ({"data": {"kind": "receipt"}}, {"data": json.dumps(receipt()), "content_type": "text/plain"}):
        response = api("post", "/movements", **kwargs)
        assert response.status_code == 415
        assert response.get_json()["code"] == "unsupported_media_type"
    assert snapshot() == before


def test_malformed_json_is_400(api, warehouse, product):
    before = snapshot()
    for raw in (b'{"kind": "receipt",', b"\xff\xfe", b'{"quantity": NaN}', b"[1, 2]"):
        response = api("post", "/movements", data=raw, content_type="application/json")
        assert response.status_code == 400
        assert response.get_json()["code"] in ("malformed_json", "invalid_body")
    assert snapshot() == before


def test_body_over_the_limit_is_413_by_content_length(app, api, warehouse, product):
    app.config["WMS_API_MAX_BODY"] = 200
    before = snapshot()
    response = api("post", "/movements", json=receipt(note="n" * 300))
    assert response.status_code == 413
    assert response.get_json()["code"] == "body_too_large"
    assert snapshot() == before


# A chunked upload as a WSGI server passes it on: no Content-Length, the stream ends by itself.
UNSIZED = {"wsgi.input_terminated": True, "CONTENT_LENGTH": ""}


def test_body_over_the_limit_is_413_when_sent_without_length(app, api, warehouse, product):
    app.config["WMS_API_MAX_BODY"] = 200
    body = json.dumps(receipt(note="n" * 300)).encode()
    before = snapshot()
    response = api("post", "/movements", input_stream=io.BytesIO(body), content_type="application/json",
                   environ_overrides=UNSIZED)
    assert response.status_code == 413
    assert response.get_json()["code"] == "body_too_large"
    assert snapshot() == before
    small = json.dumps(receipt()).encode()
    response = api("post", "/movements", input_stream=io.BytesIO(small), content_type="application/json",
                   environ_overrides=UNSIZED)
    assert response.status_code == 201


def test_wrong_method_answers_json(api):
    response = api("get", "/movements")
    assert response.status_code == 405
    assert response.get_json()["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


# -- batches -------------------------------------------------------------------------------------

def test_batch_posts_every_movement(api, warehouse, stocked):
    response = api("post", "/movements/batch", json={"movements": [
        receipt(quantity=5, idempotency_key="b-1"),
        {"kind": "transfer", "sku": "CAB-2021", "quantity": 15, "from_location": "MAIN/A-01",
         "to_location": "MAIN/B-01"},
        {"kind": "adjustment", "sku": "CAB-2021", "delta": -1, "reason": "sample", "location": "MAIN/B-01"},
    ]})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert [m["movement"]["kind"] for m in body["movements"]] == ["receipt", "transfer", "adjustment"]
    assert [m["replayed"] for m in body["movements"]] == [False, False, False]
    assert {(l["location"], l["on_hand"]) for l in body["levels"]["locations"]} == {("MAIN/A-01", 0),
                                                                                   ("MAIN/B-01", 14)}
    assert on_hand(stocked, bin_of(warehouse, "B-01")) == 14
    assert warehouse_level(stocked, warehouse).on_hand == 14
    assert db.session.scalar(select(func.count()).select_from(StockMovement)) == 4


def test_batch_replay_posts_nothing(api, warehouse, product):
    batch = {"movements": [receipt(quantity=2, idempotency_key="r-1"), receipt(quantity=3, idempotency_key="r-2")]}
    assert api("post", "/movements/batch", json=batch).status_code == 201
    before = snapshot()
    response = api("post", "/movements/batch", json=batch)
    assert response.status_code == 200
    assert [m["replayed"] for m in response.get_json()["movements"]] == [True, True]
    assert snapshot() == before


@pytest.mark.parametrize("bad_item, status, code, field", [
    (receipt(quantity="abc"), 400, "invalid_quantity", "quantity"),
    (receipt(sku="NOPE-1"), 404, "unknown_product", "sku"),
    (receipt(location="MAIN/Z-99"), 404, "unknown_location", "location"),
    ({"kind": "adjustment", "sku": "CAB-2021", "delta": 4, "location": "MAIN/A-01"}, 400, "reason_required",
     "reason"),
    ({"kind": "transfer", "sku": "CAB-2021", "quantity": 1, "from_location": "MAIN/A-02",
      "to_location": "MAIN/A-02"}, 400, "same_location", "to_location"),
    ("not an object", 400, "invalid_type", None),
])
def test_batch_with_one_bad_item_writes_nothing(api, warehouse, stocked, bad_item, status, code, field):
    before = snapshot()
    response = api("post", "/movements/batch", json={"movements": [receipt(quantity=1), bad_item, receipt()]})
    assert response.status_code == status
    body = response.get_json()
    assert (body["code"], body["index"], body.get("field")) == (code, 1, field)
    assert snapshot() == before


def test_batch_insufficient_stock_names_the_item_and_writes_nothing(api, warehouse, stocked):
    before = snapshot()
    response = api("post", "/movements/batch", json={"movements": [
        receipt(quantity=1, location="MAIN/A-02"),
        {"kind": "adjustment", "sku": "CAB-2021", "delta": -6, "reason": "count", "location": "MAIN/A-01"},
        {"kind": "transfer", "sku": "CAB-2021", "quantity": 6, "from_location": "MAIN/A-01",
         "to_location": "MAIN/B-01"},
    ]})
    assert response.status_code == 409
    body = response.get_json()
    assert (body["code"], body["index"], body["field"]) == ("insufficient_stock", 2, "quantity")
    assert "MAIN/A-01" in body["message"]
    assert snapshot() == before


def test_batch_limits(app, api, warehouse, product):
    app.config["WMS_API_MAX_BATCH"] = 2
    before = snapshot()
    cases = [
        ({"movements": [receipt()] * 3}, "batch_too_large"),
        ({"movements": []}, "invalid_batch"),
        ({"movements": receipt()}, "invalid_batch"),
        ({"moves": [receipt()]}, "unexpected_field"),
        ({"movements": [receipt(idempotency_key="d"), receipt(idempotency_key="d")]}, "duplicate_idempotency_key"),
    ]
    for payload, code in cases:
        response = api("post", "/movements/batch", json=payload)
        assert response.status_code == 400, payload
        assert response.get_json()["code"] == code
    assert snapshot() == before


def test_batch_reusing_a_key_for_another_movement_writes_nothing(api, warehouse, product):
    api("post", "/movements", json=receipt(idempotency_key="once"))
    before = snapshot()
    response = api("post", "/movements/batch", json={"movements": [receipt(quantity=1),
                                                                   receipt(quantity=2, idempotency_key="once")]})
    assert response.status_code == 409
    assert (response.get_json()["code"], response.get_json()["index"]) == ("idempotency_key_reused", 1)
    assert snapshot() == before


# -- levels --------------------------------------------------------------------------------------

@pytest.fixture
def cellar(warehouse, operator):
    """Three products in MAIN and one also in a second warehouse, NORTH."""
    north = WarehouseFactory(code="NORTH", name="North cellar", bins=("N-01",))
    products = [ProductFactory(sku=sku) for sku in ("AAA-1", "BBB-2", "CCC-3")]
    for index, product in enumerate(products, start=1):
        inventory.receive(product, bin_of(warehouse, "A-01"), index, user=operator)
    inventory.receive(products[0], bin_of(warehouse, "B-01"), 10, user=operator)
    inventory.receive(products[0], bin_of(north, "N-01"), 7, user=operator)
    db.session.commit()
    return products


def test_levels_per_product_warehouse_and_location(api, cellar):
    response = api("get", "/levels")
    assert response.status_code == 200
    body = response.get_json()
    assert body["total"] == 4 and body["next"] is None
    assert [(i["sku"], i["warehouse"], i["on_hand"]) for i in body["items"]] == [
        ("AAA-1", "MAIN", 11), ("AAA-1", "NORTH", 7), ("BBB-2", "MAIN", 2), ("CCC-3", "MAIN", 3)]
    first = body["items"][0]
    assert (first["committed"], first["available"]) == (0, 11)
    assert [(l["location"], l["on_hand"]) for l in first["locations"]] == [("MAIN/A-01", 1), ("MAIN/B-01", 10)]


def test_levels_filters(api, cellar):
    by_sku = api("get", "/levels?sku=AAA-1").get_json()
    assert [i["warehouse"] for i in by_sku["items"]] == ["MAIN", "NORTH"]
    by_warehouse = api("get", "/levels?warehouse=NORTH").get_json()
    assert [(i["sku"], i["on_hand"]) for i in by_warehouse["items"]] == [("AAA-1", 7)]
    by_location = api("get", "/levels?location=MAIN/B-01").get_json()
    assert [i["sku"] for i in by_location["items"]] == ["AAA-1"]
    assert by_location["items"][0]["locations"] == [{"location": "MAIN/B-01", "code": "B-01",
                                                     "usage": "internal", "on_hand": 10}]


def test_levels_show_committed_stock(api, warehouse, stocked):
    orders.create_order(orders.OrderInput(lines=[orders.LineInput(sku="CAB-2021", quantity=4)]))
    db.session.commit()
    item = api("get", "/levels?sku=CAB-2021").get_json()["items"][0]
    assert (item["on_hand"], item["committed"], item["available"]) == (10, 4, 6)


def test_levels_pagination(api, cellar):
    first = api("get", "/levels?per_page=3").get_json()
    assert [i["sku"] for i in first["items"]] == ["AAA-1", "AAA-1", "BBB-2"]
    assert (first["page"], first["per_page"], first["total"]) == (1, 3, 4)
    assert "page=2" in first["next"] and "per_page=3" in first["next"]
    second = api("get", first["next"].split("/api/v1", 1)[1]).get_json()
    assert [i["sku"] for i in second["items"]] == ["CCC-3"]
    assert second["next"] is None


@pytest.mark.parametrize("query, status, code", [
    ("per_page=501", 400, "invalid_per_page"), ("per_page=0", 400, "invalid_per_page"),
    ("page=abc", 400, "invalid_page"), ("sku=NOPE", 404, "unknown_product"),
    ("warehouse=NOPE", 404, "unknown_warehouse"), ("location=MAIN/Z-9", 404, "unknown_location"),
    ("skus=AAA-1", 400, "unknown_parameter"),
])
def test_levels_bad_query(api, cellar, query, status, code):
    response = api("get", "/levels?" + query)
    assert response.status_code == status
    assert response.get_json()["code"] == code


# -- orders --------------------------------------------------------------------------------------

def order_payload(**overrides):
    return {
        "number": "#1001", "warehouse": "MAIN", "shipping_process": "In-house shipping",
        "lines": [{"sku": "CAB-2021", "quantity": 3, "unit_price": 42.5, "name": "Cab 2021"}],
        "customer": {"name": "Ada Vine", "email": "ada@example.test", "birth_date": "1980-02-03"},
        "ship_to": {"name": "Ada Vine", "address1": "1 Vine St", "city": "Napa", "state": "CA",
                    "postal_code": "94558", "country": "US"},
        "shipping_method": "Ground", "requested_ship_date": "2026-12-01", "is_club": True, "is_pickup": False,
        **overrides,
    }


def test_create_order_reserves_stock(api, warehouse, stocked):
    response = api("post", "/orders", json=order_payload(idempotency_key="shop-1001"))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    order = body["order"]
    assert body["replayed"] is False
    assert (order["number"], order["status"], order["warehouse"]) == ("#1001", "open", "MAIN")
    assert order["source"] == "api"
    assert order["shipping_process"] == "In-house shipping"
    assert order["lines"][0] | {"id": 0, "product_id": 0} == {
        "id": 0, "product_id": 0, "sku": "CAB-2021", "name": "Cab 2021", "quantity": 3, "unit_price": "42.50",
        "quantity_reserved": 3, "quantity_picked": 0, "quantity_shipped": 0}
    assert order["customer"]["birth_date"] == "1980-02-03" and order["ship_to"]["city"] == "Napa"
    assert order["is_club"] is True and order["requested_ship_date"] == "2026-12-01"
    row = db.session.get(Order, order["id"])
    assert (row.customer_email, row.ship_postal_code, row.is_club) == ("ada@example.test", "94558", True)
    assert warehouse_level(stocked, warehouse).committed == 3


def test_order_route_defaults(api, warehouse, stocked):
    bare = api("post", "/orders", json={"lines": [{"sku": "CAB-2021", "quantity": 1}]}).get_json()["order"]
    assert (bare["warehouse"], bare["shipping_process"]) == ("MAIN", "In-house shipping")
    assert bare["number"].startswith("WMS-") and bare["lines"][0]["unit_price"] == "42.00"
    by_process = api("post", "/orders", json={"shipping_process": "In-house shipping",
                                              "lines": [{"sku": "CAB-2021", "quantity": 1}]})
    assert by_process.status_code == 201 and by_process.get_json()["order"]["warehouse"] == "MAIN"


def test_create_order_without_stock_is_on_hold(api, warehouse, product):
    response = api("post", "/orders", json=order_payload())
    assert response.status_code == 201
    order = response.get_json()["order"]
    assert order["status"] == "on_hold" and "CAB-2021" in order["hold_reason"]


def test_repeated_order_key_returns_the_existing_order(api, warehouse, stocked):
    first = api("post", "/orders", json=order_payload(idempotency_key="shop-1002"))
    before = snapshot()
    again = api("post", "/orders", json=order_payload(idempotency_key="shop-1002"))
    assert again.status_code == 200
    assert again.get_json()["replayed"] is True
    assert again.get_json()["order"]["id"] == first.get_json()["order"]["id"]
    assert snapshot() == before


@pytest.mark.parametrize("overrides, status, code, field", [
    ({"lines": [{"sku": "CAB-2021", "quantity": 1}, {"sku": "NOPE-9", "quantity": 1}]}, 404, "unknown_product",
     "lines[1].sku"),
    ({"lines": [{"sku": "CAB-2021", "quantity": 0}]}, 400, "invalid_quantity", "lines[0].quantity"),
    ({"lines": [{"sku": "CAB-2021", "quantity": "2"}]}, 400, "invalid_quantity", "lines[0].quantity"),
    ({"lines": [{"sku": "CAB-2021", "quantity": 1, "unit_price": "cheap"}]}, 400, "invalid_price",
     "lines[0].unit_price"),
    ({"lines": []}, 400, "no_lines", "lines"),
    ({"warehouse": "NOPE"}, 404, "unknown_warehouse", "warehouse"),
    ({"shipping_process": "Teleport"}, 404, "unknown_shipping_process", "shipping_process"),
    ({"requested_ship_date": "next tuesday"}, 400, "invalid_date", "requested_ship_date"),
    ({"customer": {"birth_date": "1980-13-40"}}, 400, "invalid_date", "customer.birth_date"),
    ({"ship_to": {"country": "USA"}}, 400, "too_long", "ship_to.country"),
    ({"ship_to": {"zip": "94558"}}, 400, "unexpected_field", "ship_to.zip"),
    ({"is_club": "yes"}, 400, "invalid_type", "is_club"),
    ({"customer": "Ada"}, 400, "invalid_type", "customer"),
])
def test_invalid_order_is_refused_and_writes_nothing(api, warehouse, stocked, overrides, status, code, field):
    before = snapshot()
    response = api("post", "/orders", json=order_payload(**overrides))
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert (body["code"], body.get("field")) == (code, field)
    assert snapshot() == before


def test_unknown_sku_message_names_the_line(api, warehouse, stocked):
    response = api("post", "/orders", json=order_payload(lines=[{"sku": "CAB-2021", "quantity": 1},
                                                                {"sku": "NOPE-9", "quantity": 1}]))
    assert "Line 2" in response.get_json()["message"] and "NOPE-9" in response.get_json()["message"]


def test_get_order_and_unknown_order(api, warehouse, stocked):
    order_id = api("post", "/orders", json=order_payload()).get_json()["order"]["id"]
    response = api("get", f"/orders/{order_id}")
    assert response.status_code == 200
    assert response.get_json()["order"]["number"] == "#1001"
    missing = api("get", "/orders/99999")
    assert missing.status_code == 404 and missing.get_json()["code"] == "unknown_order"


def test_list_orders_filters_and_pages(api, warehouse, stocked):
    ids = [api("post", "/orders", json=order_payload(number=f"#{n}", lines=[
        {"sku": "CAB-2021", "quantity": 4}])).get_json()["order"]["id"] for n in (1, 2, 3)]
    # 10 in stock: the third order can reserve only 2 of 4 and waits on hold.
    assert api("get", "/orders?status=on_hold").get_json()["items"][0]["id"] == ids[2]
    assert [o["id"] for o in api("get", "/orders?status=open").get_json()["items"]] == ids[:2]

    page = api("get", "/orders?per_page=2").get_json()
    assert [o["id"] for o in page["items"]] == ids[:2] and page["total"] == 3
    assert [o["id"] for o in api("get", page["next"].split("/api/v1", 1)[1]).get_json()["items"]] == ids[2:]

    old = db.session.get(Order, ids[0])
    old.updated_at = utcnow() - timedelta(days=3)
    db.session.commit()
    since = (utcnow() - timedelta(days=1)).isoformat() + "Z"
    assert [o["id"] for o in api("get", f"/orders?updated_since={since}").get_json()["items"]] == ids[1:]

    for query, code in (("status=lost", "invalid_status"), ("updated_since=yesterday", "invalid_time")):
        response = api("get", "/orders?" + query)
        assert response.status_code == 400 and response.get_json()["code"] == code


# -- products ------------------------------------------------------------------------------------

def test_products_search_and_pagination(api, cellar):
    ProductFactory(sku="ZIN-2020", name="Old Vine Zinfandel", varietal="Zinfandel")
    db.session.commit()
    found = api("get", "/products?q=zinfandel").get_json()
    assert [p["sku"] for p in found["items"]] == ["ZIN-2020"]
    assert found["items"][0]["retail_price"] == "42.00" and found["items"][0]["available"] == 0
    first = api("get", "/products?per_page=2").get_json()
    assert [p["sku"] for p in first["items"]] == ["AAA-1", "BBB-2"] and first["total"] == 4
    assert first["items"][0]["on_hand"] == 18
    second = api("get", first["next"].split("/api/v1", 1)[1]).get_json()
    assert [p["sku"] for p in second["items"]] == ["CCC-3", "ZIN-2020"] and second["next"] is None
