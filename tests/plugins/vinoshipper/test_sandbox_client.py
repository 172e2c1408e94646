"""The Vinoshipper client against the sandbox over real HTTP: orders, compliance, status, void."""

import datetime
from decimal import Decimal

import pytest
import requests

from plugins.vinoshipper import contract as vs
from plugins.vinoshipper.client import OrderLine, VinoshipperRejected
from plugins.vinoshipper.sandbox import DEFAULT_API_KEY, DEFAULT_API_SECRET

from .helpers import make_order


def test_connection_lists_the_shippers(client):
    result = client.test_connection()

    assert result == {"producer_id": "2212", "shippers": ["Sandbox Fulfillment Center"]}


def test_send_order_stores_every_field_we_send(client, sandbox):
    sent = client.send_order(make_order())

    assert sent.created is True
    assert (sent.order_number, sent.status, sent.order_status) == ("WMS-000123", "SUCCESS", "OPEN")
    [stored] = sandbox.orders("WMS-000123")
    assert stored["customer"]["dateOfBirth"] == {"day": 6, "month": 8, "year": 1987}
    assert stored["shipToAddress"]["stateCode"] == "CA"
    assert stored["shipToAddress"]["postalCode"] == "94574"
    assert stored["shipping"]["rateCode"] == "03"
    assert stored["shipping"]["rateDescription"] == "UPS Ground"
    assert stored["shipping"]["price"] == 27.25
    assert stored["specialInstructions"]["shipDate"] == "2031-09-15"
    assert stored["specialInstructions"]["giftNote"] == "Happy birthday"
    assert [(p["sku"], p["quantity"], p["price"]) for p in stored["products"]] == [("CAB21-750", 6, 45.0)]
    assert stored["metaFields"] == {"wmsOrderId": "123"}
    assert stored["total"] == round(6 * 45 + 27.25 + 12.34, 2)
    assert stored["isCompliant"] is True


def test_send_order_without_date_of_birth_sends_null(client, sandbox):
    client.send_order(make_order(birth=None))

    assert sandbox.orders()[0]["customer"]["dateOfBirth"] is None


@pytest.mark.parametrize("code", sorted(vs.UPS_RATE_CODES))
def test_every_ups_rate_code_is_accepted(client, sandbox, code):
    client.send_order(make_order(f"WMS-RATE-{code}", rate_code=code))

    assert sandbox.orders()[0]["shipping"]["rateDescription"] == vs.UPS_RATE_CODES[code]


def test_find_order_by_our_number(client):
    client.send_order(make_order())

    assert client.find_order("WMS-000123")["orderNumber"] == "WMS-000123"
    assert client.find_order("WMS-404") is None


def test_get_status_of_an_unknown_order_is_rejected(client):
    with pytest.raises(VinoshipperRejected) as caught:
        client.get_status("WMS-404")

    assert caught.value.status == 404
    assert caught.value.messages == ["Vinoshipper has no order WMS-404."]


# -- compliance -----------------------------------------------------------------------------
def test_compliance_problems_are_listed_one_by_one(client, sandbox):
    order = make_order(state="DE", birth=datetime.date(2012, 3, 1))

    with pytest.raises(VinoshipperRejected) as caught:
        client.send_order(order)

    rejection = caught.value
    assert rejection.codes == {vs.PROBLEM_STATE_NOT_ALLOWED, vs.PROBLEM_AGE_VERIFICATION}
    assert rejection.messages == [
        "Direct shipping of wine to DE is prohibited.",
        "The customer must be 21 or older; the date of birth given is 2012-03-01.",
    ]
    assert "DE is prohibited" in rejection.message
    [stored] = sandbox.orders()
    assert (stored["status"], stored["isCompliant"]) == ("PROBLEM", False)


def test_bottle_limit_counts_the_customers_earlier_orders(client, sandbox):
    sandbox.set_compliance({"states": {"CT": {"bottle_limit": 25, "period": "2 months"}}})
    magnums = OrderLine("CAB21-1500", 6, Decimal("90"))     # 12 bottle equivalents
    client.send_order(make_order("WMS-1", state="CT", lines=[magnums, OrderLine("CHARD22-750", 12, 30)]))

    with pytest.raises(VinoshipperRejected) as caught:
        client.send_order(make_order("WMS-2", state="CT", lines=[OrderLine("CHARD22-750", 2, 30)]))

    assert caught.value.codes == {vs.PROBLEM_QUANTITY_LIMIT}
    assert caught.value.messages == [
        "CT allows 25 bottles (750 ml equivalents) per customer per 2 months; with this order "
        "jane@example.com would receive 26."]
    assert client.send_order(make_order("WMS-3", state="CT", email="other@example.com",
                                        lines=[OrderLine("CHARD22-750", 2, 30)])).created


def test_configured_age_verification_failure_gives_an_id_scan_url(client, sandbox):
    sandbox.set_compliance({"age_verification_failures": ["Minor@Example.com"]})

    with pytest.raises(VinoshipperRejected) as caught:
        client.send_order(make_order(email="minor@example.com", birth=None))

    rejection = caught.value
    assert rejection.codes == {vs.PROBLEM_AGE_VERIFICATION}
    assert rejection.order["status"] == vs.STATUS_AGE_VERIFICATION_FAILED
    assert rejection.id_scan_url.startswith(f"{client.http.base_url}age-verification/")
    assert rejection.id_scan_url in rejection.messages[0]
    assert client.get_status("WMS-000123").stage == "rejected"

    sandbox.approve_age("WMS-000123")

    status = client.get_status("WMS-000123")
    assert (status.stage, status.status, status.problems) == ("open", "SUCCESS", [])


def test_a_rejected_order_is_corrected_by_sending_it_again(client, sandbox):
    with pytest.raises(VinoshipperRejected):
        client.send_order(make_order(state="DE"))

    sent = client.send_order(make_order(state="CA"))

    assert (sent.created, sent.status) == (True, "SUCCESS")
    [stored] = sandbox.orders("WMS-000123")
    assert stored["shipToAddress"]["stateCode"] == "CA"


def test_check_compliance_lists_problems_and_stores_nothing(client, sandbox):
    problems = client.check_compliance(make_order(state="MS"))

    assert [(p.code, p.kind) for p in problems] == [(vs.PROBLEM_STATE_NOT_ALLOWED,
                                                     vs.PROBLEM_TYPE_COMPLIANCE)]
    assert client.check_compliance(make_order(state="CA")) == []
    assert sandbox.orders() == []


def test_pickup_and_unknown_rate_codes_are_never_sent(client, sandbox, server):
    with pytest.raises(ValueError, match="pickup"):
        client.send_order(make_order(rate_code=vs.PICKUP_RATE_CODE))
    with pytest.raises(ValueError, match="rate code"):
        client.send_order(make_order(rate_code="99"))

    assert server.faults.calls == []


# -- validation -----------------------------------------------------------------------------
def test_unknown_products_are_refused_with_the_remote_message(client, sandbox):
    order = make_order(lines=[OrderLine("NOPE-750", 1, Decimal("10")), OrderLine("CAB21-750", 1, 45)])

    with pytest.raises(VinoshipperRejected) as caught:
        client.send_order(order)

    assert caught.value.status == 400
    assert caught.value.codes == {vs.ERROR_UNKNOWN_PRODUCT}
    assert caught.value.messages == [
        "Product 'NOPE-750' (SKU) is not registered and approved in Vinoshipper."]
    assert sandbox.orders() == []


def test_sandbox_refuses_missing_fields_and_bad_values(server):
    auth = (DEFAULT_API_KEY, DEFAULT_API_SECRET)
    body = {"customer": {"email": "a@b.com"}, "productIdType": "SKU",
            "products": [{"productId": "CAB21-750", "quantity": 0}],
            "shippingRate": {"carrier": "DHL", "rateCode": "03"},
            "specialInstructions": {"shipDate": "15/09/2031"}}

    answer = requests.post(f"{server.url}{vs.ORDERS_PATH}", json=body, auth=auth, timeout=5)

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["status"], error["type"]) == (400, vs.ERROR_TYPE_VALIDATION)
    fields = {e["field"]: e["code"] for e in error["errors"]}
    assert fields["customer.firstName"] == vs.ERROR_REQUIRED
    assert fields["shipToAddress.stateCode"] == vs.ERROR_REQUIRED
    assert fields["products[0].quantity"] == vs.ERROR_INVALID
    assert fields["shippingRate.carrier"] == vs.ERROR_INVALID
    assert fields["specialInstructions.shipDate"] == vs.ERROR_INVALID
    assert all(set(e) == {"description", "code", "field", "shortDescription"} for e in error["errors"])
    assert answer.headers[vs.TRACE_ID_HEADER]


# -- duplicates -----------------------------------------------------------------------------
def test_sandbox_itself_stores_duplicates(server, sandbox, client):
    """No idempotency in the API: two creates with one number give two orders."""
    body = {"orderNumber": "WMS-DUP", "customer": {"email": "a@b.com", "firstName": "A", "lastName": "B"},
            "shipToAddress": {"lastName": "B", "street1": "1 Main St", "city": "Napa",
                              "postalCode": "94559", "stateCode": "CA"},
            "productIdType": "SKU", "products": [{"productId": "CAB21-750", "quantity": 1}],
            "shippingRate": {"carrier": "UPS", "rateCode": "03"}, "paid": True}
    for _ in range(2):
        answer = requests.post(f"{server.url}{vs.ORDERS_PATH}", json=body,
                               auth=(DEFAULT_API_KEY, DEFAULT_API_SECRET), timeout=5)
        assert answer.status_code == 200

    assert len(sandbox.orders("WMS-DUP")) == 2


def test_sending_twice_creates_one_order(client, sandbox):
    first = client.send_order(make_order())
    second = client.send_order(make_order())

    assert (first.created, second.created) == (True, False)
    assert second.order["orderNumber"] == "WMS-000123"
    assert len(sandbox.orders("WMS-000123")) == 1


def test_a_lost_create_answer_is_not_sent_again(client, sandbox, server, sleeps):
    sandbox.lose_create_responses(1)

    sent = client.send_order(make_order())

    assert sent.created is False        # found by the lookup after the 502
    assert len(sandbox.orders("WMS-000123")) == 1
    methods = [(c["method"], c["status"]) for c in server.faults.calls]
    assert methods == [("GET", 404), ("POST", 502), ("GET", 200)]
    assert sleeps == [1.0]


def test_order_number_taken_is_resolved_by_lookup_when_duplicates_are_refused(
        start_sandbox, make_client):
    server = start_sandbox({"duplicates": vs.DUPLICATES_REJECTED})
    client = make_client(server)
    server.app.sandbox.lose_create_responses(1)

    assert client.send_order(make_order()).created is False
    assert len(server.app.sandbox.orders()) == 1


# -- status progression ---------------------------------------------------------------------
def test_status_progresses_to_delivered_with_tracking_numbers(client, sandbox):
    client.send_order(make_order(lines=[OrderLine("CAB21-750", 18, Decimal("45"))]))
    assert client.get_status("WMS-000123").stage == "open"

    sandbox.advance("WMS-000123")
    labelled = client.get_status("WMS-000123")
    assert (labelled.stage, labelled.order_status, labelled.tracking_numbers) == (
        "fulfilled", "LABELS_GENERATED", [])

    sandbox.advance("WMS-000123")
    shipped = client.get_status("WMS-000123")
    assert (shipped.stage, shipped.order_status) == ("shipped", "SHIPPED")
    assert len(shipped.tracking_numbers) == 2          # 18 bottles: two boxes
    assert all(n.startswith("1Z") and len(n) == 18 for n in shipped.tracking_numbers)
    assert shipped.shipped_at and not shipped.delivered_at

    sandbox.advance("WMS-000123")
    delivered = client.get_status("WMS-000123")
    assert (delivered.stage, delivered.order_status) == ("delivered", "DELIVERED")
    assert delivered.delivered_at and delivered.tracking_numbers == shipped.tracking_numbers


def test_advance_straight_to_shipped_with_given_tracking_numbers(client, sandbox):
    client.send_order(make_order())

    sandbox.advance("WMS-000123", to="SHIPPED", tracking_numbers=["1Z999AA10123456784"])

    status = client.get_status("WMS-000123")
    assert (status.stage, status.tracking_numbers) == ("shipped", ["1Z999AA10123456784"])


# -- void -----------------------------------------------------------------------------------
def test_void_before_shipment(client, sandbox):
    client.send_order(make_order())

    status = client.void_order("WMS-000123", "Customer changed their mind", restore_inventory=True)

    assert (status.stage, status.cancel_reason) == ("cancelled", "Customer changed their mind")
    assert status.canceled_at
    assert sandbox.cancel_requests == [{
        "orderNumber": "WMS-000123", vs.CANCEL_REASON: "Customer changed their mind",
        vs.CANCEL_RESTORE_INVENTORY: True, vs.CANCEL_REFUND_TO_STORED_CREDIT: False}]


def test_voiding_twice_is_harmless(client, sandbox):
    client.send_order(make_order())
    client.void_order("WMS-000123", "Duplicate")

    again = client.void_order("WMS-000123", "Duplicate")

    assert again.stage == "cancelled"
    assert sandbox.orders()[0]["cancelReason"] == "Duplicate"


@pytest.mark.parametrize("stage", ["LABELS_GENERATED", "SHIPPED", "DELIVERED"])
def test_void_after_fulfillment_started_is_refused(client, sandbox, stage):
    client.send_order(make_order())
    sandbox.advance("WMS-000123", to=stage)

    with pytest.raises(VinoshipperRejected) as caught:
        client.void_order("WMS-000123", "Too late")

    assert caught.value.codes == {vs.ERROR_NOT_CANCELLABLE}
    assert caught.value.message.startswith("Vinoshipper would not void order WMS-000123: ")
    assert "can not be canceled" in caught.value.message
    assert client.get_status("WMS-000123").order_status == stage


def test_void_of_an_unknown_order(client):
    with pytest.raises(VinoshipperRejected) as caught:
        client.void_order("WMS-404", "Gone")

    assert caught.value.status == 404
    assert caught.value.messages == ["Order WMS-404 was not found."]


def test_void_from_the_vinoshipper_side_is_seen_by_the_client(client, sandbox):
    client.send_order(make_order())

    sandbox.void("WMS-000123", "Winery cancelled it")

    status = client.get_status("WMS-000123")
    assert (status.stage, status.cancel_reason) == ("cancelled", "Winery cancelled it")
    assert client.void_order("WMS-000123", "ours").stage == "cancelled"


# -- shipping rates -------------------------------------------------------------------------
def test_estimate_shipping_offers_the_ups_rates(client):
    order = make_order()

    rates = client.estimate_shipping(order.ship_to, order.lines)

    assert {r.rate_code: r.description for r in rates} == vs.UPS_RATE_CODES
    by_code = {r.rate_code: r.price for r in rates}
    assert by_code["03"] < by_code["12"] < by_code["02"] < by_code["01"] < by_code["14"]
