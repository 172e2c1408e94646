"""Webhooks on status changes, and the sandbox's control routes over HTTP."""

import json
from decimal import Decimal

import pytest
import requests

from plugins.vinoshipper import contract as vs
from plugins.vinoshipper.client import InvalidWebhook, OrderLine, VinoshipperRejected, read_webhook

from .helpers import make_order

SECRET = "whsec-sandbox-test"


def events(receiver):
    return [read_webhook(hook["body"], signature=hook["headers"].get(vs.WEBHOOK_SIGNATURE_HEADER),
                         secret=SECRET) for hook in receiver.received]


def test_webhooks_follow_the_order_to_delivery(client, sandbox, receiver):
    sandbox.set_webhook(receiver.url, SECRET)
    client.send_order(make_order())
    for _ in range(3):
        sandbox.advance("WMS-000123")

    assert sandbox.flush_webhooks()
    received = events(receiver)
    assert [e.event for e in received] == ["CREATED", "UPDATED", "TRACKING_NUMBER_ADDED",
                                           "SHIPMENT_STATUS_UPDATED"]
    assert {(e.identifier, e.subject) for e in received} == {("WMS-000123", "ORDER")}
    assert received[0].href == f"{client.http.base_url}api/v3/p/orders/WMS-000123"
    assert set(json.loads(receiver.received[0]["body"])) == set(vs.WEBHOOK_FIELDS)
    assert [d["status"] for d in sandbox.deliveries] == [200] * 4


def test_cancel_and_age_approval_send_webhooks(client, sandbox, receiver):
    sandbox.set_webhook(receiver.url, SECRET)
    sandbox.set_compliance({"age_verification_failures": ["late@example.com"]})
    client.send_order(make_order("WMS-A"))
    with pytest.raises(VinoshipperRejected):
        client.send_order(make_order("WMS-B", email="late@example.com", birth=None))
    client.void_order("WMS-A", "Out of stock")
    sandbox.approve_age("WMS-B")

    assert sandbox.flush_webhooks()
    assert [(e.identifier, e.event) for e in events(receiver)] == [
        ("WMS-A", "CREATED"), ("WMS-B", "CREATED"), ("WMS-A", "CANCELLED"), ("WMS-B", "APPROVED")]


def test_a_tampered_or_unsigned_body_is_refused(client, sandbox, receiver):
    sandbox.set_webhook(receiver.url, SECRET)
    client.send_order(make_order())
    assert sandbox.flush_webhooks()
    hook = receiver.received[0]
    signature = hook["headers"][vs.WEBHOOK_SIGNATURE_HEADER]

    with pytest.raises(InvalidWebhook, match="signature"):
        read_webhook(hook["body"].replace(b"CREATED", b"CANCELLED"), signature=signature, secret=SECRET)
    with pytest.raises(InvalidWebhook, match="signature"):
        read_webhook(hook["body"], signature=None, secret=SECRET)
    with pytest.raises(InvalidWebhook, match="signature"):
        read_webhook(hook["body"], signature=signature, secret="another-secret")


def test_unsigned_webhooks_when_no_secret_is_set(client, sandbox, receiver):
    sandbox.set_webhook(receiver.url)
    client.send_order(make_order())

    assert sandbox.flush_webhooks()
    hook = receiver.received[0]
    assert vs.WEBHOOK_SIGNATURE_HEADER not in hook["headers"]
    assert read_webhook(hook["body"]).event == "CREATED"
    with pytest.raises(InvalidWebhook, match="lacks"):
        read_webhook(b'{"subject": "ORDER"}')
    with pytest.raises(InvalidWebhook, match="not JSON"):
        read_webhook(b"<html>")


def test_an_unreachable_webhook_url_is_recorded(client, sandbox, receiver):
    sandbox.set_webhook("http://127.0.0.1:9/nothing-listens-here")
    client.send_order(make_order())

    assert sandbox.flush_webhooks()
    [delivery] = sandbox.deliveries
    assert delivery["status"] is None and "ConnectionError" in delivery["error"]


# -- control routes over HTTP ---------------------------------------------------------------
def control(server, method, path, **kwargs):
    return requests.request(method, f"{server.url}/_sandbox/vinoshipper{path}", timeout=5, **kwargs)


def test_control_routes_drive_an_order(client, server, receiver):
    assert control(server, "PUT", "/webhook", json={"url": receiver.url, "secret": SECRET}).ok
    client.send_order(make_order())

    labelled = control(server, "POST", "/orders/WMS-000123/advance").json()
    shipped = control(server, "POST", "/orders/WMS-000123/advance",
                      json={"to": "SHIPPED", "trackingNumbers": ["1ZA", "1ZB"]}).json()
    refused = control(server, "POST", "/orders/WMS-000123/void", json={"reason": "late"})
    listed = control(server, "GET", "/orders", params={"orderNumber": "WMS-000123"}).json()
    assert control(server, "POST", "/webhooks/flush").json() == {"flushed": True}

    assert labelled["orderStatus"] == "LABELS_GENERATED"
    assert [p["trackingNumber"] for p in shipped["shipping"]["packages"]] == ["1ZA", "1ZB"]
    assert refused.status_code == 409 and "can not be canceled" in refused.json()["error"]
    assert listed["count"] == 1 and "_paid" not in listed["orders"][0]
    assert client.get_status("WMS-000123").tracking_numbers == ["1ZA", "1ZB"]
    deliveries = control(server, "GET", "/webhooks").json()["deliveries"]
    assert [d["body"]["event"] for d in deliveries] == ["CREATED", "UPDATED", "TRACKING_NUMBER_ADDED"]


def test_control_routes_set_the_compliance_table_and_products(client, server):
    table = {"states": {"CA": {"prohibited": True}}, "minimum_age": 21}
    assert control(server, "PUT", "/compliance", json=table).json()["states"] == {
        "CA": {"prohibited": True}}
    assert control(server, "PUT", "/products", json=[
        {"id": 1, "sku": "ROSE-750", "name": "Rosé", "ml": 750}]).json() == {"count": 1}

    with pytest.raises(VinoshipperRejected) as caught:
        client.check_compliance(make_order())     # its CAB21-750 is no longer registered
    assert caught.value.codes == {vs.ERROR_UNKNOWN_PRODUCT}
    problems = client.check_compliance(make_order(lines=[OrderLine("ROSE-750", 6, Decimal("20"))]))
    assert [p.code for p in problems] == [vs.PROBLEM_STATE_NOT_ALLOWED]


def test_control_void_and_errors(client, server):
    client.send_order(make_order())

    voided = control(server, "POST", "/orders/WMS-000123/void", json={"reason": "Winery"})
    again = control(server, "POST", "/orders/WMS-000123/advance")
    unknown = control(server, "POST", "/orders/WMS-404/advance")
    bad_step = control(server, "POST", "/orders/WMS-000123/advance", json={"to": "LOST"})

    assert voided.json()["orderStatus"] == "CANCELLED"
    assert again.status_code == 409
    assert unknown.status_code == 404
    assert bad_step.status_code == 409     # a cancelled order moves nowhere
    assert client.get_status("WMS-000123").stage == "cancelled"


def test_control_reset_and_lost_answers(client, server):
    client.send_order(make_order())
    assert control(server, "POST", "/lose-create-responses", json={"count": 1}).json() == {"count": 1}
    assert control(server, "POST", "/reset").ok

    assert control(server, "GET", "/orders").json() == {"count": 0, "orders": []}
    assert client.send_order(make_order()).created is True     # the switch was reset too
