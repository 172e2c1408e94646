"""The Vintrace client against the Vintrace sandbox, over real HTTP on loopback."""

from decimal import Decimal

import pytest
import requests

from plugins.vintrace.client import OrderLine, VintraceClient, sales_order_body, v6_base_url
from wms.integrations.errors import (
    RemoteAuthError,
    RemoteRateLimited,
    RemoteRejected,
    RemoteTimeout,
    RemoteUnavailable,
)

from .conftest import API_KEY, CLIENT_TIMEOUT, CUSTOMER_CODE


def chard_line(price="32.00", quantity=6, sku="CHARD-21", name="21CHARD/750"):
    return OrderLine(name=name, sku=sku, unit_price=Decimal(price), quantity=quantity)


def order(external_id="WMS-1001", lines=None, **overrides):
    return {"customer_name": "ABC Wine Company", "price_list_name": "Retail",
            "external_transaction_id": external_id, "lines": lines or [chard_line()], **overrides}


def calls_to(server, suffix, method=None):
    return [c for c in server.faults.calls if c["path"].endswith(suffix) and (method is None or c["method"] == method)]


# -- connection and auth ---------------------------------------------------------------------------

def test_connection_succeeds_with_the_token(client, server):
    assert client.test_connection() is True
    assert calls_to(server, "/sales-order/list")[0]["status"] == 200


@pytest.mark.parametrize("pasted", ["/{code}", "/{code}/", "/{code}/api", "/{code}/api/", "/{code}/api/v6"])
def test_any_pasted_form_of_the_customer_url_works(server, pasted):
    url = server.url + pasted.format(code=CUSTOMER_CODE)
    client = VintraceClient(url, API_KEY, allow_private=True, timeout=CLIENT_TIMEOUT)
    assert client.base_url == f"{server.url}/{CUSTOMER_CODE}/api/v6/"
    assert client.test_connection() is True


def test_base_url_drops_query_and_fragment():
    assert v6_base_url("https://oz50.vintrace.net/vinx2/?x=1#/home") == "https://oz50.vintrace.net/vinx2/api/v6/"


def test_wrong_token_is_an_auth_error_that_says_what_to_do(server, records):
    client = VintraceClient(f"{server.url}/{CUSTOMER_CODE}", "wrong-token-123", allow_private=True,
                            timeout=CLIENT_TIMEOUT, recorder=records.append)
    with pytest.raises(RemoteAuthError) as raised:
        client.test_connection()
    assert raised.value.status == 401
    assert "API token" in raised.value.message
    assert all("wrong-token-123" not in (r.error or "") + r.path for r in records)


def test_401_has_the_v6_error_body(api_url):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {API_KEY}"}):
        answer = requests.get(f"{api_url}/sales-order/list", headers=headers, timeout=5)
        assert answer.status_code == 401
        assert answer.headers["Content-Type"] == "application/json"
        body = answer.json()
        assert body["status"] == "Error" and "Bearer" in body["message"]


def test_unknown_customer_code_says_check_the_url(server):
    client = VintraceClient(f"{server.url}/otherwinery/", API_KEY, allow_private=True, timeout=CLIENT_TIMEOUT)
    with pytest.raises(RemoteRejected) as raised:
        client.test_connection()
    assert raised.value.status == 404
    assert "<CustomerCode>" in raised.value.message and "otherwinery" in raised.value.message


def test_the_token_never_reaches_the_call_log(client, seeded, records):
    client.test_connection()
    client.find_customer("ABC Wine Company")
    client.create_sales_order(**order())
    assert len(records) == 3
    assert all(API_KEY not in f"{r.path} {r.error}" for r in records)
    assert [r.status for r in records] == [200, 200, 200]


# -- customers, price lists, products ---------------------------------------------------------------

def test_find_customer_matches_the_exact_name_only(client, seeded):
    found = client.find_customer("ABC Wine Company")
    assert found.name == "ABC Wine Company" and found.is_organization is True
    assert found.id == seeded.party_by_name("ABC Wine Company")["id"]
    assert client.find_customer("abc wine company") is None
    assert client.find_customer("ABC Wine") is None
    assert client.find_customer("Nobody Pty Ltd") is None


def test_find_price_list_matches_the_exact_name_only(client, seeded):
    retail = client.find_price_list("Retail")
    assert retail.name == "Retail" and retail.tax_policy == "Tax Inclusive"
    assert client.find_price_list("Retail Club").id != retail.id
    assert client.find_price_list("retail") is None
    assert client.find_price_list("Ret") is None


def test_get_product_by_sku_gives_the_price_in_that_price_list(client, seeded):
    retail = client.get_product_by_sku("CHARD-21", "Retail")
    wholesale = client.get_product_by_sku("CHARD-21", "Wholesale")
    assert (retail.name, retail.sku, retail.price) == ("21CHARD/750", "CHARD-21", Decimal("32.00"))
    assert wholesale.price == Decimal("19.50")
    assert client.get_product_by_sku("PINOT-20-CS", "Retail").price is None  # not sold at retail
    assert client.get_product_by_sku("NO-SUCH-SKU", "Retail") is None


def test_product_lookup_in_an_unknown_price_list_is_rejected(client, seeded):
    with pytest.raises(RemoteRejected, match="Price list 'Mates Rates' not found"):
        client.get_product_by_sku("CHARD-21", "Mates Rates")


def test_product_lookup_pages_through_the_inventory(client, sandbox, server):
    sandbox.add_price_list("Retail")
    for n in range(230):
        sandbox.add_product(f"ITEM{n:03d}", sku=f"SKU-{n:03d}", prices={"Retail": f"{10 + n}.50"})
    found = client.find_products_by_sku(["SKU-005", "SKU-150", "SKU-229", "SKU-999"], "Retail")
    assert {sku: p.price for sku, p in found.items()} == {
        "SKU-005": Decimal("15.50"), "SKU-150": Decimal("160.50"), "SKU-229": Decimal("239.50")}
    assert len(calls_to(server, "/inventory")) == 3  # 100 + 100 + 30


def test_a_sku_on_two_stock_items_is_refused(client, sandbox):
    sandbox.add_price_list("Retail")
    sandbox.add_product("A/750", sku="DUP", prices={"Retail": "10"})
    sandbox.add_product("B/750", sku="DUP", prices={"Retail": "10"})
    with pytest.raises(RemoteRejected, match="more than one stock item with SKU 'DUP'"):
        client.get_product_by_sku("DUP", "Retail")


# -- sales orders ------------------------------------------------------------------------------------

def test_create_sales_order_saves_exactly_what_was_sent(client, seeded):
    created = client.create_sales_order(**order(lines=[chard_line(quantity=6)], storage_area_id=7,
                                                reference="Web #1001"))
    assert created.code == "VSO1" and created.external_transaction_id == "WMS-1001"
    assert created.total == Decimal("192")
    [saved] = seeded.sales_orders()
    assert saved["id"] == created.id
    assert saved["customerId"] == seeded.party_by_name("ABC Wine Company")["id"]
    assert saved["salesPriceListName"] == "Retail" and saved["reference"] == "Web #1001"
    assert saved["storageAreaId"] == 7
    [line] = saved["salesOrderItems"]
    assert (line["itemName"], line["sku"], line["unitPrice"], line["quantity"]) == ("21CHARD/750", "CHARD-21", 32, 6)


def test_find_and_get_sales_order(client, seeded):
    assert client.find_sales_order("WMS-1001") is None
    created = client.create_sales_order(**order())
    client.create_sales_order(**order("WMS-1002"))
    found = client.find_sales_order("WMS-1001")
    assert found.id == created.id and found.lines == created.lines
    assert client.get_sales_order(created.id).external_transaction_id == "WMS-1001"
    assert client.get_sales_order(999999) is None
    assert client.find_sales_order("WMS-10") is None  # exact, not a prefix


def test_find_sales_order_returns_the_oldest_of_duplicates(client, seeded):
    first = client.create_sales_order(**order())
    client.create_sales_order(**order())
    assert len(seeded.sales_orders("WMS-1001")) == 2  # Vintrace does not dedupe: the caller must
    assert client.find_sales_order("WMS-1001").id == first.id


def test_a_price_mismatch_is_rejected_naming_item_and_field(client, seeded):
    with pytest.raises(RemoteRejected) as raised:
        client.create_sales_order(**order(lines=[chard_line(price="29.99")]))
    message = raised.value.message
    assert raised.value.status == 400
    assert "Item '21CHARD/750'" in message and "price mismatch" in message
    assert "29.99" in message and "32.00" in message
    assert seeded.sales_orders() == []


def test_a_sku_mismatch_is_rejected_naming_item_and_field(client, seeded):
    with pytest.raises(RemoteRejected, match=r"Item '21CHARD/750' does not match: sku mismatch"):
        client.create_sales_order(**order(lines=[chard_line(sku="CHARD-22")]))
    assert seeded.sales_orders() == []


def test_a_name_mismatch_is_rejected_naming_the_stock_item(client, seeded):
    with pytest.raises(RemoteRejected) as raised:
        client.create_sales_order(**order(lines=[chard_line(name="2021 Chardonnay")]))
    assert "Item '2021 Chardonnay' does not match: name mismatch" in raised.value.message
    assert "'21CHARD/750'" in raised.value.message
    assert seeded.sales_orders() == []


def test_several_mismatches_are_all_named(client, seeded):
    with pytest.raises(RemoteRejected) as raised:
        client.create_sales_order(**order(lines=[chard_line(sku="X", price="1.00")]))
    assert "sku/price mismatch" in raised.value.message


def test_one_bad_line_refuses_the_whole_order(client, seeded):
    lines = [chard_line(), OrderLine("NOPE/750", "NOPE", Decimal("5"), 1)]
    with pytest.raises(RemoteRejected, match="Item 'NOPE/750' not found"):
        client.create_sales_order(**order(lines=lines))
    assert seeded.sales_orders() == []


def test_an_item_with_no_price_in_the_order_price_list_is_refused(client, seeded):
    line = OrderLine("20PINOT/12", "PINOT-20-CS", Decimal("330.00"), 1)
    with pytest.raises(RemoteRejected, match="no price in price list 'Retail'"):
        client.create_sales_order(**order(lines=[line]))
    wholesale = client.create_sales_order(**order(lines=[line], price_list_name="Wholesale"))
    assert wholesale.price_list_name == "Wholesale"


def test_an_unknown_customer_is_rejected(client, seeded):
    with pytest.raises(RemoteRejected, match="Customer 'Nobody Pty Ltd' not found") as raised:
        client.create_sales_order(**order(customer_name="Nobody Pty Ltd"))
    assert raised.value.status == 400
    assert seeded.sales_orders() == []


def test_an_unknown_price_list_is_rejected(client, seeded):
    with pytest.raises(RemoteRejected, match="Price list 'Staff' not found"):
        client.create_sales_order(**order(price_list_name="Staff"))
    assert seeded.sales_orders() == []


def test_a_price_change_is_seen_by_the_next_lookup(client, seeded, server):
    answer = requests.put(f"{server.url}/_sandbox/vintrace/prices",
                          json={"code": "21CHARD/750", "priceList": "Retail", "price": "34.00"}, timeout=5)
    assert answer.status_code == 200
    with pytest.raises(RemoteRejected, match="price mismatch"):
        client.create_sales_order(**order(lines=[chard_line(price="32.00")]))
    product = client.get_product_by_sku("CHARD-21", "Retail")
    assert product.price == Decimal("34.00")
    client.create_sales_order(**order(lines=[OrderLine(product.name, product.sku, product.price, 1)]))
    assert len(seeded.sales_orders()) == 1


def test_order_body_follows_the_spec_shape():
    body = sales_order_body(customer_name="C", price_list_name="P", external_transaction_id=42,
                            lines=[chard_line(price="24.99", quantity=2)], order_date=1700000000000)
    assert body == {"customerName": "C", "salesPriceListName": "P", "externalTransactionId": "42",
                    "salesOrderItems": [{"itemName": "21CHARD/750", "sku": "CHARD-21", "unitPrice": 24.99,
                                         "quantity": 2}],
                    "orderDate": 1700000000000}
    with pytest.raises(ValueError):
        sales_order_body(customer_name="C", price_list_name="P", external_transaction_id="1", lines=[])


# -- idempotent create across a lost answer ------------------------------------------------------------

@pytest.mark.parametrize("mode, error", [("reset", RemoteUnavailable), ("hang", RemoteTimeout)])
def test_lost_answer_then_lookup_then_create_leaves_one_order(client, seeded, mode, error):
    seeded.drop_answer_after_commit(mode)
    with pytest.raises(error) as raised:
        client.create_sales_order(**order())
    assert raised.value.transient
    assert len(seeded.sales_orders("WMS-1001")) == 1  # the order was made; the answer was lost

    again, created = client.ensure_sales_order(**order())
    assert created is False
    assert [o["id"] for o in seeded.sales_orders("WMS-1001")] == [again.id]
    assert len(seeded.sales_orders()) == 1


def test_ensure_sales_order_creates_when_absent(client, seeded):
    made, created = client.ensure_sales_order(**order())
    assert created is True
    same, created_again = client.ensure_sales_order(**order())
    assert (same.id, created_again) == (made.id, False)
    assert len(seeded.sales_orders()) == 1


def test_drop_switch_over_http_and_order_count_over_http(client, seeded, server):
    control = f"{server.url}/_sandbox/vintrace"
    assert requests.post(f"{control}/drop-answers", json={"mode": "reset"}, timeout=5).json() == {"armed": True}
    with pytest.raises(RemoteUnavailable):
        client.create_sales_order(**order())
    client.ensure_sales_order(**order())
    listing = requests.get(f"{control}/sales-orders", params={"externalTransactionId": "WMS-1001"}, timeout=5)
    assert listing.json()["count"] == 1
    order_id = listing.json()["salesOrders"][0]["id"]
    assert requests.get(f"{control}/sales-orders/{order_id}", timeout=5).json()["code"] == "VSO1"


# -- transient faults ------------------------------------------------------------------------------------

def test_429_is_retried_after_retry_after(client, seeded, server, sleeps):
    server.faults.inject("429", count=2)
    assert client.find_customer("ABC Wine Company") is not None
    assert sleeps == [1.0, 1.0]  # the harness answers Retry-After: 1
    assert [c["status"] for c in calls_to(server, "/party")] == [429, 429, 200]


def test_429_that_persists_is_a_rate_limit_error(client, seeded, server, sleeps):
    server.faults.inject("429", count=5)
    with pytest.raises(RemoteRateLimited) as raised:
        client.create_sales_order(**order())
    assert raised.value.retry_after == 1.0 and raised.value.transient
    assert len(sleeps) == 2
    assert seeded.sales_orders() == []


def test_a_long_retry_after_is_not_slept_through(server, seeded, sleeps):
    client = VintraceClient(f"{server.url}/{CUSTOMER_CODE}", API_KEY, allow_private=True, timeout=CLIENT_TIMEOUT,
                            max_retry_wait=0.5, sleep=sleeps.append)
    server.faults.inject("429", count=1)
    with pytest.raises(RemoteRateLimited):
        client.test_connection()
    assert sleeps == []


@pytest.mark.parametrize("fault, error", [("500", RemoteUnavailable), ("reset", RemoteUnavailable),
                                          ("hang", RemoteTimeout)])
def test_faults_before_the_call_are_transient_and_create_nothing(client, seeded, server, fault, error):
    server.faults.inject(fault, count=1, path=f"/{CUSTOMER_CODE}/api/v6/sales-order")
    with pytest.raises(error) as raised:
        client.create_sales_order(**order())
    assert raised.value.transient
    assert seeded.sales_orders() == []
    made, created = client.ensure_sales_order(**order())
    assert created and len(seeded.sales_orders()) == 1


# -- control routes over HTTP -------------------------------------------------------------------------------

def test_seed_over_http_then_use_it(client, server, sandbox):
    control = f"{server.url}/_sandbox/vintrace"
    counts = requests.post(f"{control}/seed", json={}, timeout=5).json()  # the demo data
    assert counts["customers"] >= 1 and counts["products"] >= 1
    assert requests.post(f"{control}/customers", json={"primeName": "Cellar Door"}, timeout=5).status_code == 201
    assert requests.post(f"{control}/price-lists", json={"name": "Staff"}, timeout=5).status_code == 201
    answer = requests.post(f"{control}/products", timeout=5, json={
        "code": "NV/SPARK", "sku": "SPARK-NV", "prices": {"Staff": "12.00"}})
    assert answer.status_code == 201
    assert requests.post(f"{control}/products", json={"code": "NV/SPARK", "sku": "X"}, timeout=5).status_code == 400
    product = client.get_product_by_sku("SPARK-NV", "Staff")
    client.create_sales_order(customer_name="Cellar Door", price_list_name="Staff", external_transaction_id="S-1",
                              lines=[OrderLine(product.name, product.sku, product.price, 2)])
    assert requests.get(f"{control}/sales-orders", timeout=5).json()["count"] == 1
    requests.post(f"{control}/reset", timeout=5)
    assert sandbox.counts() == {"customers": 0, "priceLists": 0, "products": 0, "salesOrders": 0}
