"""The Vinoshipper plugin end to end: WMS orders sent over real HTTP to the sandbox, the order card's
messages, the person's actions, and fulfillment coming back as WMS shipments."""

import datetime

import pytest
from sqlalchemy import select

from plugins.vinoshipper import sync
from tests.framework.conftest import run_jobs
from wms.core.models import OutboxMessage, Shipment, StockMovement
from wms.core.services import orders as order_service
from wms.extensions import db
from wms.plugins.models import SyncRecord

from .helpers import place_order


def record(order):
    db.session.expire_all()
    return db.session.scalar(select(SyncRecord).where(SyncRecord.plugin == "vinoshipper",
                                                      SyncRecord.object_id == order.id))


def card(web, order):
    page = web.get(f"/orders/{order.id}")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_a_shipping_order_to_a_selected_state_is_sent_once_with_its_details(
        app, vs_plugin, stocked, sandbox, web):
    order = place_order("WMS-1001", state="CA", birth=datetime.date(1985, 3, 9),
                        shipping_method="2nd Day Air", requested_ship_date=datetime.date(2031, 10, 2))
    run_jobs(app)

    stored = sandbox.orders("WMS-1001")
    assert len(stored) == 1
    sent = stored[0]
    assert sent["status"] == "SUCCESS" and sent["orderStatus"] == "OPEN"
    assert sent["customer"]["dateOfBirth"] == {"day": 9, "month": 3, "year": 1985}
    assert sent["customer"]["email"] == "jane@example.com"
    assert sent["shipToAddress"]["stateCode"] == "CA"
    assert sent["shipToAddress"]["street1"] == "1370 Railroad Ave"
    assert sent["shipping"]["rateCode"] == "02"
    assert sent["specialInstructions"]["shipDate"] == "2031-10-02"
    assert [(line["sku"], line["quantity"]) for line in sent["products"]] == [("CAB21-750", 6)]

    rec = record(order)
    assert rec.status == "synced" and rec.remote_reference == "WMS-1001"
    html = card(web, order)
    assert "Sent to Vinoshipper" in html and "Check Fulfillment at Vinoshipper" in html


def api_creates(records_or_app=None):
    """How many create calls the activity log holds."""
    from wms.plugins.models import ActivityLog
    db.session.expire_all()
    return len(db.session.scalars(select(ActivityLog).where(
        ActivityLog.plugin == "vinoshipper", ActivityLog.method == "POST",
        ActivityLog.path == "/api/v3/p/orders")).all())


def test_a_send_whose_answer_was_lost_and_a_repeated_send_create_one_order(app, vs_plugin, stocked, sandbox):
    sandbox.lose_create_responses(1)        # Vinoshipper stores the order, the answer is a 502
    order = place_order("WMS-1002")
    run_jobs(app)
    assert len(sandbox.orders("WMS-1002")) == 1
    assert record(order).status == "synced"
    assert api_creates() == 1

    # The job runs again (a redelivered message, a person's Retry after a lost answer): nothing new.
    rec = record(order)
    rec.status = "pending"
    db.session.commit()
    sync.queue_send(order, retry_number=99)
    db.session.commit()
    run_jobs(app)
    assert len(sandbox.orders("WMS-1002")) == 1
    assert api_creates() == 1
    assert "nothing was sent again" in record(order).data["events"][-1]["text"]

    # The hooks fire twice for one order (created and routed): one send message only.
    assert db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.dedupe_key == f"vinoshipper:send:{order.id}")) is not None
    sync.queue_send(order)
    db.session.commit()
    sends = db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == sync.TOPIC_SEND)).all()
    assert len(sends) == 2      # the first send and the retry above, no third


def test_compliance_problems_are_listed_one_by_one_then_dont_send(app, vs_plugin, stocked, sandbox, web, configure):
    configure(states=("CA", "MO"))
    order = place_order("WMS-1003", state="MO", lines=(("CAB21-750", 30),), birth=datetime.date(2010, 5, 1))
    run_jobs(app)

    rec = record(order)
    assert rec.status == "failed"
    assert len(rec.data["problems"]) == 2
    assert any("MO allows 24 bottles" in p for p in rec.data["problems"])
    assert any("must be 21 or older" in p for p in rec.data["problems"])
    assert sandbox.orders("WMS-1003")[0]["status"] == "PROBLEM"
    html = card(web, order)
    assert "Failed to Send" in html and "MO allows 24 bottles" in html and "must be 21 or older" in html
    assert "Retry" in html and "Don&#39;t Send" in html

    answer = web.post(f"/plugins/vinoshipper/orders/{order.id}/dont-send", follow_redirects=True)
    assert answer.status_code == 200
    rec = record(order)
    assert rec.status == "not_required" and rec.data["dont_send"] is True
    html = answer.get_data(as_text=True)
    assert "Not Required to Send" in html and "Don&#39;t Send chosen by admin@winery.test" in html
    run_jobs(app)
    assert len(sandbox.orders("WMS-1003")) == 1        # nothing sent again

    # Checking Vinoshipper afterwards shows its view and keeps the person's choice.
    checked = web.post(f"/plugins/vinoshipper/orders/{order.id}/check", follow_redirects=True)
    assert "marked Don&#39;t Send here, so nothing changes" in checked.get_data(as_text=True)
    assert record(order).status == "not_required"

    # Don't Send twice is refused with a message and changes nothing.
    again = web.post(f"/plugins/vinoshipper/orders/{order.id}/dont-send", follow_redirects=True)
    assert "Don&#39;t Send is for an order that failed to send" in again.get_data(as_text=True)


def test_age_verification_failure_then_retry_after_correcting_the_order(app, vs_plugin, stocked, sandbox, web):
    order = place_order("WMS-1004", birth=datetime.date(2012, 1, 1))
    run_jobs(app)
    rec = record(order)
    assert rec.status == "failed" and rec.data["problem_codes"] == ["AGE_VERIFICATION_FAILED"]
    assert sandbox.orders("WMS-1004")[0]["status"] == "AGE_VERIFICATION_FAILED"

    order.customer_birth_date = datetime.date(1980, 1, 1)
    db.session.commit()
    answer = web.post(f"/plugins/vinoshipper/orders/{order.id}/retry", follow_redirects=True)
    assert "will be sent to Vinoshipper again" in answer.get_data(as_text=True)
    run_jobs(app)
    assert record(order).status == "synced"
    stored = sandbox.orders("WMS-1004")
    assert len(stored) == 1 and stored[0]["status"] == "SUCCESS"     # the rejected order was corrected


@pytest.mark.parametrize("details, reason", [
    ({"is_pickup": True}, "Pickup order"),
    ({"channel": "pos"}, "Point-of-sale carry-out"),
    ({"state": "TX"}, "Texas (TX), which is not one of the states selected"),
    ({"financial_status": "refunded"}, "Refund (refunded)"),
    ({"financial_status": "partially_refunded"}, "Refund (partially refunded)"),
    ({"note": "Exchange for order #998"}, "Exchange"),
])
def test_orders_not_required_to_send(app, vs_plugin, stocked, sandbox, web, details, reason):
    order = place_order("WMS-2001", **details)
    run_jobs(app)
    rec = record(order)
    assert rec.status == "not_required" and reason in rec.message
    assert sandbox.orders() == []
    html = card(web, order)
    assert "Not Required to Send" in html and reason in html
    assert "Check Fulfillment" not in html and "Void Sync" not in html


def test_an_order_from_a_store_is_sent_too(app, vs_plugin, stocked, sandbox):
    order = place_order("#1001", source="shopify", store_id=7)
    other = place_order("#1001", source="woocommerce", store_id=8)     # the same number, another store
    run_jobs(app)
    assert record(order).remote_reference == "#1001"
    assert record(other).remote_reference == f"#1001-{other.id}"
    assert {o["orderNumber"] for o in sandbox.orders()} == {"#1001", f"#1001-{other.id}"}


def test_void_sync(app, vs_plugin, stocked, sandbox, web):
    order = place_order("WMS-1005")
    run_jobs(app)
    html = card(web, order)
    assert "Void Sync" in html

    answer = web.post(f"/plugins/vinoshipper/orders/{order.id}/void", data={"reason": "Customer changed address"},
                      follow_redirects=True)
    assert "Void Sync of order WMS-1005 requested" in answer.get_data(as_text=True)
    run_jobs(app)
    stored = sandbox.orders("WMS-1005")[0]
    assert stored["orderStatus"] == "CANCELLED" and stored["cancelReason"] == "Customer changed address"
    assert sandbox.cancel_requests[0]["reason"] == "Customer changed address"
    rec = record(order)
    assert rec.status == "voided"
    html = card(web, order)
    assert "Voided in Vinoshipper" in html and "Customer changed address" in html
    assert "Void Sync</button>" not in html

    # Voiding again is refused with a message; Vinoshipper gets no second cancel.
    again = web.post(f"/plugins/vinoshipper/orders/{order.id}/void", follow_redirects=True)
    assert "Only an order that Vinoshipper holds can be voided" in again.get_data(as_text=True)
    run_jobs(app)
    assert len(sandbox.cancel_requests) == 1


def test_voided_in_vinoshipper_shows_after_check_fulfillment(app, vs_plugin, stocked, sandbox, web):
    order = place_order("WMS-1006")
    run_jobs(app)
    sandbox.void("WMS-1006", "Cancelled by the winery in Vinoshipper")
    answer = web.post(f"/plugins/vinoshipper/orders/{order.id}/check", follow_redirects=True)
    html = answer.get_data(as_text=True)
    assert "Voided in Vinoshipper" in html and "Cancelled by the winery in Vinoshipper" in html
    assert record(order).status == "voided"


def test_refunded_after_sending_guides_to_void(app, vs_plugin, stocked, sandbox, web):
    order = place_order("WMS-1007")
    run_jobs(app)
    order.financial_status = "refunded"
    db.session.commit()
    html = card(web, order)
    assert "Press <strong>Void Sync</strong> to cancel it at Vinoshipper, refund in the store, and create a new order" in html


def test_a_wms_cancel_voids_the_order_at_vinoshipper(app, vs_plugin, stocked, sandbox):
    order = place_order("WMS-1008")
    run_jobs(app)
    order_service.cancel(order, "Customer cancelled")
    db.session.commit()
    run_jobs(app)
    assert sandbox.orders("WMS-1008")[0]["orderStatus"] == "CANCELLED"
    assert record(order).status == "voided"


def poll(app):
    from wms import outbox
    outbox.emit(sync.TOPIC_POLL, {})
    db.session.commit()
    run_jobs(app)


def status_messages(shipment_id):
    return [m.payload for m in db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.topic == "shipment.status_changed").order_by(OutboxMessage.id))
        if m.payload["shipment_id"] == shipment_id]


def test_fulfillment_progression_reaches_the_wms_shipment_and_the_stores(app, vs_plugin, stocked, sandbox, web):
    warehouse, products = stocked
    order = place_order("WMS-1009", lines=(("CAB21-750", 6), ("CAB21-1500", 2)))
    run_jobs(app)

    sandbox.advance("WMS-1009")                                   # label created
    poll(app)
    assert record(order).data["stage"] == "fulfilled"
    assert db.session.scalars(select(Shipment)).all() == []
    assert "Fulfilled: label created" in card(web, order)

    sandbox.advance("WMS-1009", tracking_numbers=["1Z2212000300000011"])   # carrier scan
    poll(app)
    shipment = db.session.scalar(select(Shipment).where(Shipment.order_id == order.id))
    assert shipment.source == "vinoshipper" and shipment.carrier == "UPS"
    assert shipment.tracking_number == "1Z2212000300000011"
    assert shipment.remote_reference == "WMS-1009" and shipment.status == "shipped"
    assert "1Z2212000300000011" in shipment.tracking_url
    moves = db.session.scalars(select(StockMovement).where(StockMovement.kind == "ship")).all()
    assert sorted((m.product_id, m.quantity) for m in moves) == sorted(
        [(products["CAB21-750"].id, 6), (products["CAB21-1500"].id, 2)])
    db.session.refresh(order)
    assert order.status == "shipped"
    assert status_messages(shipment.id) == [{"shipment_id": shipment.id, "old": None, "new": "shipped"}]
    html = card(web, order)
    assert "Shipped" in html and "1Z2212000300000011" in html

    poll(app)                                                      # nothing new: nothing changes
    assert len(db.session.scalars(select(Shipment)).all()) == 1
    assert len(status_messages(shipment.id)) == 1

    sandbox.advance("WMS-1009")                                   # delivered
    poll(app)
    db.session.refresh(shipment)
    assert shipment.status == "delivered" and shipment.delivered_at is not None
    assert status_messages(shipment.id)[-1] == {"shipment_id": shipment.id, "old": "shipped", "new": "delivered"}
    assert record(order).data["stage"] == "delivered"
    assert "Delivered" in card(web, order)


def test_several_packages_carry_every_tracking_number(app, vs_plugin, stocked, sandbox):
    order = place_order("WMS-1010", lines=(("CAB21-750", 18),))       # two boxes of up to 12
    run_jobs(app)
    sandbox.advance("WMS-1010", "SHIPPED")
    poll(app)
    shipment = db.session.scalar(select(Shipment).where(Shipment.order_id == order.id))
    numbers = [p["trackingNumber"] for p in sandbox.orders("WMS-1010")[0]["shipping"]["packages"]]
    assert len(numbers) == 2 and shipment.tracking_number == ", ".join(numbers)


def test_bad_shipping_method_mapping_fails_with_a_message_and_sends_nothing(app, configure, stocked, sandbox):
    configure(shipping_methods="Ground = 99", default_rate_code="none")
    order = place_order("WMS-1011")
    run_jobs(app)
    rec = record(order)
    assert rec.status == "failed" and "'99' is not a UPS code" in rec.message
    assert sandbox.orders() == []

    configure(shipping_methods="Overnight = 01", default_rate_code="none")
    order = place_order("WMS-1012", shipping_method="Pony Express")
    run_jobs(app)
    assert "'Pony Express' has no UPS code" in record(order).message
    assert sandbox.orders() == []


def test_bad_credentials_fail_the_send_with_a_clear_message(app, configure, stocked, sandbox):
    configure(api_secret="wrong-secret")
    order = place_order("WMS-1013")
    run_jobs(app)
    rec = record(order)
    assert rec.status == "failed" and "bad API key or secret" in rec.message
    assert sandbox.orders() == []


def test_test_connection(app, configure, web, start_sandbox):
    configure()
    answer = web.post("/admin/plugins/vinoshipper/test", follow_redirects=True)
    assert "Connection to Vinoshipper works: Vinoshipper producer 2212 answered" in answer.get_data(as_text=True)

    configure(api_secret="wrong-secret")
    answer = web.post("/admin/plugins/vinoshipper/test", follow_redirects=True)
    assert "Connection to Vinoshipper failed" in answer.get_data(as_text=True)
    assert "bad API key or secret" in answer.get_data(as_text=True)

    redirecting = start_sandbox({"bad_credentials": "redirect"})
    configure(api_secret="wrong-secret", base_url=redirecting.url)
    answer = web.post("/admin/plugins/vinoshipper/test", follow_redirects=True)
    assert "bad API key or secret" in answer.get_data(as_text=True)


def test_dashboard_and_settings_pages(app, vs_plugin, stocked, sandbox, web):
    place_order("WMS-1014", birth=datetime.date(2012, 1, 1))
    run_jobs(app)
    page = web.get("/plugins/vinoshipper/").get_data(as_text=True)
    assert "WMS-1014" in page and "must be 21 or older" in page
    settings = web.get("/admin/plugins/vinoshipper").get_data(as_text=True)
    assert "States sent to Vinoshipper: CA, OR" in settings
    assert "/plugins/vinoshipper/webhook" in settings
    guide = web.get("/admin/plugins/vinoshipper/guide")
    assert guide.status_code == 200 and "Not Required to Send" in guide.get_data(as_text=True)


def test_operators_use_the_card_but_not_the_dashboard(app, vs_plugin, stocked, sandbox, operator):
    from tests.conftest import login_as
    order = place_order("WMS-1015", birth=datetime.date(2012, 1, 1))
    run_jobs(app)
    web = login_as(app.test_client(), operator)
    assert web.get("/plugins/vinoshipper/").status_code == 403
    assert web.post(f"/plugins/vinoshipper/orders/{order.id}/dont-send").status_code == 302
    assert record(order).status == "not_required"


def test_a_sent_order_moves_to_the_warehouse_vinoshipper_process(app, vs_plugin, stocked, sandbox):
    from wms.core.models import ShippingProcess
    warehouse, _ = stocked
    process = ShippingProcess(warehouse_id=warehouse.id, name="Vinoshipper", handler="vinoshipper")
    db.session.add(process)
    db.session.commit()
    order = place_order("WMS-1016")
    run_jobs(app)
    db.session.refresh(order)
    assert order.shipping_process_id == process.id
    assert len(sandbox.orders("WMS-1016")) == 1            # the routed hook did not send it again
    assert record(order).data["events"][-1]["text"] == "Routed to the shipping process Vinoshipper."


def test_vinoshipper_down_the_send_is_retried_by_the_job_and_lands_once(app, vs_plugin, stocked, sandbox, server):
    from wms.core.models._base import utcnow
    app.config["WMS_RETRY_BACKOFF"] = (600, 600, 600)     # the retry waits: nothing runs it by accident
    server.faults.inject("500", count=3, path="/api/v3/p/orders/WMS-1017")    # every try of the first run
    order = place_order("WMS-1017")
    run_jobs(app)
    rec = record(order)
    assert rec.status == "pending" and "retried automatically" in rec.message
    assert sandbox.orders("WMS-1017") == []
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.topic == sync.TOPIC_SEND))
    assert message.status == "queued" and message.attempts == 1

    message.available_at, message.status = utcnow(), "pending"     # the backoff has passed
    db.session.commit()
    run_jobs(app)
    assert record(order).status == "synced"
    assert len(sandbox.orders("WMS-1017")) == 1


def test_the_scheduler_polls_vinoshipper(app, vs_plugin, stocked, sandbox):
    from wms.jobs.sweep import emit_scheduled_jobs
    order = place_order("WMS-1018")
    run_jobs(app)
    sandbox.advance("WMS-1018", "SHIPPED")
    assert emit_scheduled_jobs() == 1
    db.session.commit()
    run_jobs(app)
    assert record(order).data["stage"] == "shipped"
    assert db.session.scalar(select(Shipment).where(Shipment.order_id == order.id)).source == "vinoshipper"


def test_an_id_upload_at_vinoshipper_turns_a_failed_age_check_into_sent(app, vs_plugin, stocked, sandbox, web):
    sandbox.set_compliance({"age_verification_failures": ["young@example.com"]})
    order = place_order("WMS-1019", email="young@example.com", birth=None)
    run_jobs(app)
    rec = record(order)
    assert rec.status == "failed" and rec.data["id_scan_url"]
    assert "upload an ID" in card(web, order)

    sandbox.approve_age("WMS-1019")
    poll(app)
    rec = record(order)
    assert rec.status == "synced" and rec.data["problems"] == []
    assert "Sent to Vinoshipper" in card(web, order)


def test_settings_page_shows_mapping_errors(app, configure, web):
    configure(shipping_methods="Ground = 03\nExpress\nAir = 77")
    page = web.get("/admin/plugins/vinoshipper").get_data(as_text=True)
    assert "The shipping-method mapping has errors" in page
    assert "Line 2 (&#39;Express&#39;)" in page and "&#39;77&#39; is not a UPS code" in page
    assert "<code>ground</code> → 03 UPS Ground" in page


def test_check_fulfillment_reports_what_vinoshipper_says(app, vs_plugin, stocked, sandbox, web):
    order = place_order("WMS-1020")
    run_jobs(app)
    answer = web.post(f"/plugins/vinoshipper/orders/{order.id}/check", follow_redirects=True)
    assert "Vinoshipper holds the order; it is not fulfilled yet." in answer.get_data(as_text=True)
    sandbox.advance("WMS-1020")
    answer = web.post(f"/plugins/vinoshipper/orders/{order.id}/check", follow_redirects=True)
    assert "Vinoshipper created the label: fulfilled, not shipped yet." in answer.get_data(as_text=True)
    # A label exists: Void Sync is no longer offered, and a forged post is refused.
    assert "Void Sync</button>" not in answer.get_data(as_text=True)
    refused = web.post(f"/plugins/vinoshipper/orders/{order.id}/void", follow_redirects=True)
    assert "can no longer be voided through the API" in refused.get_data(as_text=True)

    unsent = place_order("WMS-1021", state="TX")
    run_jobs(app)
    answer = web.post(f"/plugins/vinoshipper/orders/{unsent.id}/check", follow_redirects=True)
    assert "This order was never sent to Vinoshipper." in answer.get_data(as_text=True)


def test_shipped_at_vinoshipper_but_short_in_the_wms_is_shown_then_recorded(app, vs_plugin, stocked, sandbox, web):
    from tests.factories import bin_of
    from wms.core.services import inventory
    warehouse, products = stocked
    order = place_order("WMS-1022", lines=(("CHARD22-750", 130),))     # 100 in the bin: on hold
    run_jobs(app)
    assert record(order).status == "synced"
    sandbox.advance("WMS-1022", "SHIPPED")
    poll(app)
    rec = record(order)
    assert "the WMS could not record the shipment" in rec.data["ship_error"]
    assert db.session.scalars(select(Shipment)).all() == []
    assert "the WMS could not record the shipment" in card(web, order)
    assert "WMS-1022" in web.get("/plugins/vinoshipper/").get_data(as_text=True)

    inventory.receive(products["CHARD22-750"], bin_of(warehouse), 30)
    db.session.refresh(order)
    order_service.release_hold(order)
    db.session.commit()
    answer = web.post(f"/plugins/vinoshipper/orders/{order.id}/check", follow_redirects=True)
    assert "Vinoshipper: shipped" in answer.get_data(as_text=True)
    shipment = db.session.scalar(select(Shipment).where(Shipment.order_id == order.id))
    assert shipment is not None and sum(l.quantity for l in shipment.lines) == 130
    assert record(order).data["ship_error"] is None


def test_a_shipment_refused_halfway_leaves_no_pick_behind(app, vs_plugin, stocked, sandbox):
    from tests.factories import bin_of
    from wms.core.services import inventory
    warehouse, products = stocked
    order = place_order("WMS-1023", lines=(("CAB21-750", 6), ("CHARD22-750", 10)))
    run_jobs(app)
    # The reserved Chardonnay leaves the bins (moved to the outbound dock by hand): the second line
    # cannot be picked once the first one is.
    inventory.transfer(products["CHARD22-750"], bin_of(warehouse), order_service.outbound_location(warehouse), 100)
    db.session.commit()
    sandbox.advance("WMS-1023", "SHIPPED")
    poll(app)
    assert "could not record the shipment" in record(order).data["ship_error"]
    assert db.session.scalars(select(StockMovement).where(StockMovement.kind.in_(("pick", "ship")))).all() == []
    db.session.refresh(order)
    assert [line.quantity_picked for line in order.lines] == [0, 0]


def test_an_order_from_before_the_plugin_was_active_is_sent_on_request(app, configure, stocked, sandbox, web):
    order = place_order("WMS-1024")            # the plugin is not active yet: no hook runs for it
    run_jobs(app)
    configure()
    assert "Not Sent Yet" in card(web, order)
    web.post(f"/plugins/vinoshipper/orders/{order.id}/retry")
    run_jobs(app)
    assert record(order).status == "synced" and len(sandbox.orders("WMS-1024")) == 1


def test_an_unpaid_order_is_sent_as_not_paid(app, vs_plugin, stocked, sandbox):
    order = place_order("WMS-1025", financial_status="pending")
    run_jobs(app)
    assert sandbox.orders("WMS-1025")[0]["status"] == "PENDING"
    assert record(order).status == "synced" and record(order).data["vs_status"] == "PENDING"


def test_card_actions_need_a_signed_in_user_and_an_inactive_plugin_answers_404(app, vs_plugin, stocked, sandbox):
    from wms.plugins.manager import plugin_host
    order = place_order("WMS-1026", birth=datetime.date(2012, 1, 1))
    run_jobs(app)
    anonymous = app.test_client()
    for action in ("retry", "dont-send", "void", "check"):
        answer = anonymous.post(f"/plugins/vinoshipper/orders/{order.id}/{action}")
        assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    assert record(order).status == "failed"

    plugin_host().set_active("vinoshipper", False)
    db.session.commit()
    assert anonymous.post("/plugins/vinoshipper/webhook", json={}).status_code == 404


def test_settings_saved_through_the_form(app, vs_plugin, web, stocked, sandbox, server):
    from werkzeug.datastructures import MultiDict
    form = MultiDict([("base_url", server.url), ("api_key", ""), ("api_secret", ""), ("states", "WA"),
                      ("states", "OR"), ("shipping_methods", "Express = 01"), ("default_rate_code", "none"),
                      ("webhook_secret", "")])
    answer = web.post("/admin/plugins/vinoshipper", data=form, follow_redirects=True)
    assert "Saved the settings of Vinoshipper" in answer.get_data(as_text=True)
    cfg = sync.config()
    assert cfg["states"] == ["WA", "OR"] and cfg["default_rate_code"] == "none"
    assert cfg["api_key"] == "2212.SANDBOX0000KEY"          # a blank secret keeps the stored one

    bad = form.copy()
    bad.setlist("states", ["WA", "XX"])
    answer = web.post("/admin/plugins/vinoshipper", data=bad)
    assert answer.status_code == 400 and "Not a choice: XX." in answer.get_data(as_text=True)

    order = place_order("WMS-1027", state="WA", shipping_method="Express")
    run_jobs(app)
    assert sandbox.orders("WMS-1027")[0]["shipping"]["rateCode"] == "01"


def test_the_card_lists_the_calls_for_an_order_number_with_a_hash(app, vs_plugin, stocked, sandbox, web):
    order = place_order("#2002", source="shopify", store_id=3)
    run_jobs(app)
    html = card(web, order)
    assert "Calls to Vinoshipper for this order" in html and "/api/v3/p/orders/%232002" in html
