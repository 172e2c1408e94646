"""Sandbox behaviour that the client tests do not reach directly: time windows, control routes,
concurrency, odd order numbers."""

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
import requests

from plugins.winedirect import contract as c
from plugins.winedirect.sandbox import SandboxError, _parse_pacific, validate_wine_sku

from .builders import order, wine


def test_pacific_windows_follow_daylight_saving():
    summer = _parse_pacific("2025-07-01T09:30", end_of_range=False)
    winter = _parse_pacific("2025-01-15T09:30", end_of_range=False)
    assert summer == datetime(2025, 7, 1, 16, 30, tzinfo=timezone.utc)
    assert winter == datetime(2025, 1, 15, 17, 30, tzinfo=timezone.utc)
    whole_day_end = _parse_pacific("2025-01-15", end_of_range=True)
    assert whole_day_end == datetime(2025, 1, 16, 7, 59, 59, 999999, tzinfo=timezone.utc)
    with pytest.raises(SandboxError):
        _parse_pacific("15/01/2025", end_of_range=False)


def test_client_sends_update_windows_in_pacific_time(server, client, control, stocked):
    client.submit_orders([order("9500")])
    control.post("orders/process")
    control.post("orders/9500/advance")
    shipment = next(iter(server.app.sandbox.shipments.values()))
    shipment["events"][0]["eventTime"] = datetime(2025, 7, 1, 16, 45, tzinfo=timezone.utc)  # 09:45 Pacific
    inside = client.list_shipment_updates(datetime(2025, 7, 1, 16, 30, tzinfo=timezone.utc),
                                          datetime(2025, 7, 1, 18, 0, tzinfo=timezone.utc))
    assert [u.order_number for u in inside] == ["9500"]
    assert inside[0].events[0].at == datetime(2025, 7, 1, 16, 45, tzinfo=timezone.utc)
    after = client.list_shipment_updates(datetime(2025, 7, 1, 17, 0, tzinfo=timezone.utc),
                                         datetime(2025, 7, 1, 18, 0, tzinfo=timezone.utc))
    assert after == []


def test_shipment_updates_need_both_dates(server, client):
    client.login()
    token = client.token_state()[c.ACCESS_TOKEN_FIELD]
    response = requests.get(f"{server.url}{c.SHIPMENT_UPDATES_PATH}", params={"accountNumber": "ACCT1001"},
                            headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert response.status_code == 400
    assert response.json() == {"isSuccess": False, "message": "searchStartDate is required", "payload": None}


def test_wine_sku_rules_match_the_create_wine_request():
    body = {"supplierId": "SUP2001", "sku": "X", "caseQuantity": 12.5, "srp": -1, "brandName": "B" * 101,
            "appellation": "Napa", "alcoholType": "STILL", "alcoholPercentage": 14, "bottleSize": "750",
            "countryOfOrigin": "FR"}
    assert validate_wine_sku(body) == [
        "sku must be at least 2 characters", "brandName must be at most 100 characters",
        "caseQuantity must be a positive whole number", "srp must be a number of at least 0",
        "countryOfOrigin must be US",
    ]


def test_control_routes_seed_and_reset(server, control):
    seeded = control.post("products", {"sku": "SYR-750", "caseQuantity": 12, "srp": 30, "brandName": "B",
                                       "appellation": "Santa Maria", "alcoholType": "STILL",
                                       "alcoholPercentage": 13.9, "bottleSize": "750"})
    assert seeded["wineDirectSku"].startswith("WD")
    control.seed("SYR-750", 40, "SMA")
    assert control.get("inventory")["rows"][0]["qtyAvailableToSell"] == 40
    assert control.get("state")["products"] == 1
    control.post("reset", {"config": {"token_ttl": 5}})
    state = control.get("state")
    assert (state["products"], state["stockRows"], state["config"]["token_ttl"]) == (0, 0, 5)
    assert "password" not in state["config"]


def test_control_refuses_an_unknown_warehouse(server):
    response = requests.post(f"{server.url}/_sandbox/winedirect/inventory",
                             json={"warehouseCode": "NYC", "sku": "X", "onHand": 3}, timeout=5)
    assert response.status_code == 400 and "Unknown warehouse NYC" in response.json()["message"]


def test_unknown_routes_answer_with_the_envelope(server, client):
    client.login()
    response = requests.get(f"{server.url}/api/v1/Nothing", timeout=5,
                            headers={"Authorization": f"Bearer {client.token_state()[c.ACCESS_TOKEN_FIELD]}"})
    assert response.status_code == 404 and response.json()["isSuccess"] is False


def test_order_numbers_with_reserved_characters_round_trip(client, control, stocked):
    client.submit_orders([order("#W-1001 A")])
    control.post("orders/process")
    assert client.find_order("#W-1001 A").state == "accepted"
    assert client.cancel_order("#W-1001 A") == ["Order #W-1001 A was cancelled"]


def test_concurrent_submissions_get_distinct_numbers(server, make_client, stocked):
    def submit(n):
        return make_client().submit_orders([order(f"9{n:03d}", quantity=1)], check_existing=False)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(submit, range(24)))
    records = server.app.sandbox.order_records()
    assert len(records) == 24
    assert len({r["wineDirectOrderNumber"] for r in records}) == 24


def test_product_update_of_an_unknown_sku_is_not_found(server, client):
    client.login()
    token = client.token_state()[c.ACCESS_TOKEN_FIELD]
    body = client._product_body(wine("NEW-750"))
    response = requests.put(f"{server.url}{c.WINE_SKU_PATH}", json=body,
                            headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert response.status_code == 404
    assert response.json()["message"] == c.MESSAGE_PRODUCT_NOT_FOUND.format(sku="NEW-750")
