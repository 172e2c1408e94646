"""The sandbox holds requests and answers to Vintrace's own v6 OpenAPI."""

import json

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from plugins.vintrace import contract
from plugins.vintrace.sandbox import corrected_spec, load_spec

from .conftest import API_KEY

AUTH = {"Authorization": f"Bearer {API_KEY}"}
SERVED = [("/sales-order", "post"), ("/sales-order", "get"), ("/sales-order/{id}", "get"),
          ("/sales-order/list", "get"), ("/party", "get"), ("/inventory", "get")]


def _example_call(spec, path, method):
    operation = spec["paths"][path][method]
    request_body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("example")
    answer = operation["responses"]["200"]["content"]["application/json"]["example"]
    url_path = "/vinx2/api/v6" + path.replace("{id}", "22")
    request = MockRequest("https://oz50.vintrace.net", method, url_path,
                          data=json.dumps(request_body).encode() if request_body is not None else None)
    return request, MockResponse(json.dumps(answer).encode())


def _errors(api, request, response):
    return list(api.iter_request_errors(request)) + list(api.iter_response_errors(request, response))


def test_the_vendor_examples_validate_only_with_the_errata():
    spec = load_spec()
    # The file as published (only the served paths: it fails the spec check elsewhere).
    literal = {**spec.raw, "servers": contract.SPEC_SERVERS,
               "paths": {path: spec.raw["paths"][path] for path, _ in SERVED}}
    literal_api = OpenAPI.from_dict(literal)
    for path, method in SERVED:
        request, response = _example_call(spec.raw, path, method)
        assert _errors(spec.openapi, request, response) == [], (path, method)
        assert _errors(literal_api, request, response) != [], (path, method)


def test_every_erratum_names_a_real_property_and_the_file_passes_the_spec_check():
    raw = load_spec().raw
    schemas = raw["components"]["schemas"]
    for schema_name, prop, _replacement, example in contract.SPEC_TYPE_ERRATA:
        assert prop in schemas[schema_name]["properties"], (schema_name, prop)
        assert example.split(":")[0] == prop
    OpenAPI.from_dict(corrected_spec(raw))  # openapi-spec-validator runs here


def test_the_spec_is_loaded_once_per_process():
    assert load_spec() is load_spec()


@pytest.mark.parametrize("body, words", [
    ({"customerName": "ABC Wine Company", "salesOrderItems": [{"itemName": "X", "quantity": "six"}]},
     ["salesOrderItems[0].quantity", "integer"]),
    ({"customerName": 42}, ["customerName", "string"]),
    ({"salesOrderItems": {"itemName": "X"}}, ["salesOrderItems", "array"]),
    ({"customerPickup": "yes"}, ["customerPickup", "boolean"]),
])
def test_a_body_off_the_schema_is_refused_with_the_v6_error(api_url, seeded, body, words):
    answer = requests.post(f"{api_url}/sales-order", json=body, headers=AUTH, timeout=5)
    assert answer.status_code == 400
    error = answer.json()
    assert error["status"] == "Error"
    for word in words:
        assert word in error["message"]
    assert seeded.sales_orders() == []


def test_a_body_that_is_not_json_is_refused(api_url, seeded):
    answer = requests.post(f"{api_url}/sales-order", data=b"{customerName:", timeout=5,
                           headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 400 and "not valid JSON" in answer.json()["message"]
    answer = requests.post(f"{api_url}/sales-order", data=b"customerName=x", timeout=5,
                           headers={**AUTH, "Content-Type": "text/plain"})
    assert answer.status_code == 400 and answer.json()["status"] == "Error"


def test_a_missing_required_parameter_is_refused(api_url, server):
    answer = requests.get(f"{api_url}/search/list", headers=AUTH, timeout=5)
    assert answer.status_code == 400
    assert "type" in answer.json()["message"]
    answer = requests.get(f"{api_url}/search/list", params={"type": "priceList", "exactMatch": "maybe"},
                          headers=AUTH, timeout=5)
    assert answer.status_code == 400 and "exactMatch" in answer.json()["message"]


def test_bad_paging_values_are_refused(api_url, server):
    answer = requests.get(f"{api_url}/sales-order/list", params={"max": "lots"}, headers=AUTH, timeout=5)
    assert answer.status_code == 400 and "'max' must be a whole number" in answer.json()["message"]


def test_paths_and_methods_the_api_lacks_get_v6_errors(api_url, server):
    answer = requests.delete(f"{api_url}/sales-order", headers=AUTH, timeout=5)
    assert answer.status_code == 405 and answer.json()["status"] == "Error"
    answer = requests.get(f"{api_url}/no-such-thing", headers=AUTH, timeout=5)
    assert answer.status_code == 404 and answer.json()["status"] == "Error"


def test_business_rules_beyond_the_schema(api_url, seeded):
    for body, message in [({}, contract.MSG_CUSTOMER_REQUIRED),
                          ({"customerName": "ABC Wine Company"}, contract.MSG_PRICE_LIST_REQUIRED),
                          ({"customerName": "ABC Wine Company", "salesPriceListName": "Retail"}, contract.MSG_NO_ITEMS),
                          ({"customerName": "ABC Wine Company", "salesPriceListName": "Retail", "id": 5,
                            "salesOrderItems": [{"itemName": "21CHARD/750"}]}, "Sales order '5' not found")]:
        answer = requests.post(f"{api_url}/sales-order", json=body, headers=AUTH, timeout=5)
        assert answer.json() == {"status": "Error", "message": message}


def test_update_by_id_keeps_id_and_code(api_url, seeded):
    line = {"itemName": "21CHARD/750", "sku": "CHARD-21", "unitPrice": 32.0, "quantity": 1}
    base = {"customerName": "ABC Wine Company", "salesPriceListName": "Retail", "salesOrderItems": [line]}
    made = requests.post(f"{api_url}/sales-order", json=base, headers=AUTH, timeout=5).json()["salesOrder"]
    updated = requests.post(f"{api_url}/sales-order", headers=AUTH, timeout=5,
                            json={**base, "id": made["id"], "salesOrderItems": [{**line, "quantity": 4}]})
    saved = updated.json()["salesOrder"]
    assert (saved["id"], saved["code"], saved["salesOrderItems"][0]["quantity"]) == (made["id"], made["code"], 4)
    assert len(seeded.sales_orders()) == 1


def test_list_filters_and_pages(api_url, seeded):
    line = {"itemName": "21CHARD/750", "sku": "CHARD-21", "unitPrice": 32.0, "quantity": 1}
    for n in range(5):
        requests.post(f"{api_url}/sales-order", headers=AUTH, timeout=5, json={
            "customerName": "ABC Wine Company" if n % 2 == 0 else "Smith", "salesPriceListName": "Retail",
            "externalTransactionId": f"E{n}", "salesOrderItems": [line], "orderDate": 1700000000000})
    listing = requests.get(f"{api_url}/sales-order/list", params={"max": "2", "first": "2"}, headers=AUTH, timeout=5)
    assert [o["externalTransactionId"] for o in listing.json()["salesOrders"]] == ["E2", "E3"]
    smith = requests.get(f"{api_url}/sales-order/list", params={"customerName": "Smith"}, headers=AUTH, timeout=5)
    assert [o["externalTransactionId"] for o in smith.json()["salesOrders"]] == ["E1", "E3"]
    dated = requests.get(f"{api_url}/sales-order/list", params={"startDate": "2023-11-14", "endDate": "2023-11-14"}, headers=AUTH, timeout=5)
    assert len(dated.json()["salesOrders"]) == 5
    later = requests.get(f"{api_url}/sales-order/list", params={"startDate": "2023-11-15"}, headers=AUTH, timeout=5)
    assert later.json()["salesOrders"] == []
    by_code = requests.get(f"{api_url}/sales-order", params={"code": "VSO2"}, headers=AUTH, timeout=5)
    assert by_code.json()["externalTransactionId"] == "E1"


def test_stock_lookup_by_code_and_id(api_url, seeded):
    by_code = requests.get(f"{api_url}/stock/lookup", params={"code": "21CHARD/750"}, headers=AUTH, timeout=5).json()
    assert (by_code["sku"], by_code["unit"]["abbreviation"]) == ("CHARD-21", "x1")
    by_id = requests.get(f"{api_url}/stock/lookup", params={"id": str(by_code["id"])}, headers=AUTH, timeout=5)
    assert by_id.json()["code"] == "21CHARD/750"
    missing = requests.get(f"{api_url}/stock/lookup", params={"code": "ZZZ"}, headers=AUTH, timeout=5)
    assert missing.status_code == 404 and missing.json()["status"] == "Error"


def test_an_answer_off_the_spec_is_caught_and_reported(api_url, seeded, sandbox_app):
    item = next(iter(sandbox_app.sandbox._items.values()))
    item.description = 2021  # the spec says a string: the sandbox must refuse to send this
    answer = requests.get(f"{api_url}/stock/lookup", params={"code": item.code}, headers=AUTH, timeout=5)
    assert answer.status_code == 500 and "Sandbox bug" in answer.json()["message"]
    [violation] = sandbox_app.sandbox.spec_violations
    assert "description" in violation
    with pytest.raises(AssertionError, match="violate the Vintrace spec"):
        sandbox_app.sandbox.assert_no_spec_violations()
    sandbox_app.sandbox.spec_violations.clear()  # seen; let the fixture's own check pass
