"""The Vintrace plugin end to end: WMS orders -> outbox -> RQ worker -> the Vintrace sandbox over real
HTTP; tags, the order panel, Sync Orders, retries, and the settings checked on save."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from plugins.vintrace import sync
from tests.conftest import login_as
from wms.core.models import OutboxMessage
from wms.extensions import db
from wms.plugins.models import PluginState, SyncRecord

from .conftest import (API_KEY, CUSTOMER, PRICE_LIST, STORAGE_AREA_ID, run_jobs, run_jobs_now, save_settings,
                       store_order)


@pytest.fixture
def client(app):
    """The Flask test client (the sandbox tests' `client` is the Vintrace API client)."""
    return app.test_client()


@pytest.fixture
def admin_web(client, admin):
    return login_as(client, admin)


def record(order):
    return db.session.scalar(select(SyncRecord).where(SyncRecord.plugin == "vintrace",
                                                      SyncRecord.object_id == order.id))


def messages(topic, order=None):
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == topic)
                              .order_by(OutboxMessage.id)).all()
    return [m for m in rows if order is None or m.payload.get("order_id") == order.id]


def creates(server):
    return [c for c in server.faults.calls if c["method"] == "POST" and c["path"].endswith("/sales-order")]


def test_a_store_order_creates_one_sales_order_with_the_right_lines(app, configured, wines, shop, sandbox, server,
                                                                    admin_web):
    order = store_order(shop, "#1001", [("CHARD-21", 6, "32.00"), ("CAB-20", 2, "45.00")])
    run_jobs(app)

    sales_orders = sandbox.sales_orders("#1001")
    assert len(sales_orders) == 1
    so = sales_orders[0]
    assert so["customerName"] == CUSTOMER and so["salesPriceListName"] == PRICE_LIST
    assert so["externalTransactionId"] == "#1001" and so["storageAreaId"] == STORAGE_AREA_ID
    assert so["reference"] == f"WMS order {order.id}"
    assert [(i["itemName"], i["sku"], Decimal(str(i["unitPrice"])), i["quantity"]) for i in so["salesOrderItems"]] == [
        ("21CHARD/750", "CHARD-21", Decimal("32.00"), 6), ("20CAB/750", "CAB-20", Decimal("45.00"), 2)]

    rec = record(order)
    assert (rec.status, rec.remote_reference) == ("synced", so["code"])
    assert rec.data["tag"] == sync.TAG_CREATED and rec.data["sales_order_id"] == so["id"]
    tag = messages("order.tag_requested", order)
    assert len(tag) == 1 and tag[0].payload["tags"] == ["vintrace-order-created"]
    assert tag[0].status == "done"     # the core hands it to the store's plugin (here one without tags)
    assert messages(sync.PUSH_TOPIC, order)[0].status == "done"

    page = admin_web.get(f"/orders/{order.id}").get_data(as_text=True)
    assert 'id="vintrace-panel"' in page and so["code"] in page and "vintrace-order-created" in page

    run_jobs(app)  # running everything again sends nothing
    assert len(creates(server)) == 1


def test_a_price_mismatch_fails_naming_the_field_sends_nothing_and_tags_the_order(app, configured, wines, shop,
                                                                                  sandbox, server, admin_web):
    order = store_order(shop, "#1002", [("CHARD-21", 1, "30.00"), ("CAB-20", 1, "45.00")])
    run_jobs(app)

    assert sandbox.sales_orders() == [] and creates(server) == []
    rec = record(order)
    assert rec.status == "failed"
    assert "Product '2021 Chardonnay 750ml' (SKU CHARD-21): price mismatch" in rec.message
    assert "30.00" in rec.message and "32.00" in rec.message and "CAB-20" not in rec.message
    assert rec.data["tag"] == sync.TAG_ERROR
    tag = messages("order.tag_requested", order)
    assert [m.payload["tags"] for m in tag] == [["vintrace-order-error"]] and "price mismatch" in tag[0].payload["note"]
    push = messages(sync.PUSH_TOPIC, order)[0]
    assert push.status == "failed" and push.attempts == 1     # a validation failure is not retried by itself

    page = admin_web.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "price mismatch" in page and "Sync to Vintrace now" in page


@pytest.mark.parametrize("line, field", [
    (("CHARD-21", 1, "32.00", "Chardonnay 2021"), "name mismatch"),
    (("NOPE-1", 1, "32.00", "Mystery wine"), "SKU not found"),
])
def test_name_and_sku_mismatches_fail_the_order_too(app, configured, wines, shop, sandbox, server, line, field):
    order = store_order(shop, "#1005", [line])
    run_jobs(app)
    assert record(order).status == "failed" and field in record(order).message
    assert f"'{line[3]}'" in record(order).message
    assert creates(server) == []


def test_fix_the_product_then_sync_orders_sends_exactly_the_failed_ones(app, configured, wines, shop, sandbox,
                                                                        server, admin_web):
    ok1 = store_order(shop, "#1001", [("CHARD-21", 1, "32.00")])
    bad_price = store_order(shop, "#1002", [("CAB-20", 1, "49.00")])
    ok2 = store_order(shop, "#1003", [("ROSE-23", 3, "24.00")])
    bad_sku = store_order(shop, "#1004", [("ROSE-23", 1, "24.00"), ("CAB-20", 1, "49.00")])
    run_jobs(app)
    assert [record(o).status for o in (ok1, bad_price, ok2, bad_sku)] == ["synced", "failed", "synced", "failed"]
    assert len(creates(server)) == 2

    sandbox.set_price("20CAB/750", "Retail", "49.00")          # the fix, in Vintrace
    answer = admin_web.post("/plugins/vintrace/sync", data={"orders": "#1001, #1002\n#1003 #1004"})
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert html.count('class="sync-result sync-ok"') == 4
    assert html.count("Already in Vintrace") == 2

    assert len(creates(server)) == 4                           # exactly the two that had failed
    for number in ("#1001", "#1002", "#1003", "#1004"):
        assert len(sandbox.sales_orders(number)) == 1
    assert [record(o).status for o in (ok1, bad_price, ok2, bad_sku)] == ["synced"] * 4
    tags = [m.payload["tags"][0] for m in messages("order.tag_requested", bad_price)]
    assert tags == ["vintrace-order-error", "vintrace-order-created"]
    earlier = messages(sync.PUSH_TOPIC, bad_price)[0]
    assert earlier.status == "done" and earlier.last_error.startswith("Superseded")  # no Retry left to press


def test_sync_orders_reports_each_failure_and_unknown_names(app, configured, wines, shop, sandbox, admin_web):
    store_order(shop, "#2001", [("CHARD-21", 1, "31.00")])
    run_jobs(app)
    html = admin_web.post("/plugins/vintrace/sync", data={"orders": "2001 #9999"}).get_data(as_text=True)
    assert html.count("sync-failed") == 2
    assert "price mismatch" in html and "No order named &#39;#9999&#39;" in html
    assert sandbox.sales_orders() == []
    empty = admin_web.post("/plugins/vintrace/sync", data={"orders": " ,\n "})
    assert empty.status_code == 400 and "Enter one or more order names" in empty.get_data(as_text=True)


def test_a_timeout_during_create_then_the_automatic_retry_leaves_one_sales_order(app, configured, wines, shop,
                                                                                 sandbox, server):
    sandbox.drop_answer_after_commit("hang", count=1)          # Vintrace saves it, the answer never arrives
    order = store_order(shop, "#3001", [("CHARD-21", 2, "32.00")])
    run_jobs_now(app)
    rec = record(order)
    assert rec.status == "pending" and "did not answer" in rec.message and "retrying automatically" in rec.message
    assert len(sandbox.sales_orders("#3001")) == 1
    push = messages(sync.PUSH_TOPIC, order)[0]
    assert push.status == "queued" and push.attempts == 1

    sandbox.clear_faults()
    _run_retries(app, push)
    assert record(order).status == "synced" and "not sent again" in record(order).message
    assert len(sandbox.sales_orders("#3001")) == 1 and len(creates(server)) == 1
    assert record(order).remote_reference == sandbox.sales_orders("#3001")[0]["code"]


def test_a_reset_during_create_then_sync_orders_leaves_one_sales_order(app, configured, wines, shop, sandbox,
                                                                       server, admin_web):
    sandbox.drop_answer_after_commit("reset", count=1)
    order = store_order(shop, "#3002", [("CHARD-21", 2, "32.00")])
    run_jobs_now(app)
    assert record(order).status == "pending"
    html = admin_web.post("/plugins/vintrace/sync", data={"orders": "#3002"}).get_data(as_text=True)
    assert "sync-ok" in html
    assert len(sandbox.sales_orders("#3002")) == 1 and len(creates(server)) == 1


@pytest.mark.parametrize("fault", ["500", "429"])
def test_transient_failures_are_retried_automatically(app, configured, wines, shop, sandbox, server, fault):
    server.faults.inject(fault, count=3, path="/vinx2demo/api/v6/inventory")  # past the client's own 429 retries
    order = store_order(shop, "#4001", [("CHARD-21", 1, "32.00")])
    run_jobs_now(app)
    push = messages(sync.PUSH_TOPIC, order)[0]
    assert record(order).status == "pending" and push.status == "queued"
    _run_retries(app, push)
    assert record(order).status == "synced" and len(sandbox.sales_orders("#4001")) == 1


def _run_retries(app, message):
    """Wait out the retry backoff (1 s in these tests) and run the scheduled job."""
    import time
    for _ in range(10):
        db.session.expire_all()
        current = db.session.get(OutboxMessage, message.id)
        if current.status not in ("queued", "pending", "running"):
            return current
        time.sleep(0.6)
        run_jobs(app)
    raise AssertionError(f"message {message.id} did not settle")


def test_a_manual_order_is_sent_and_asks_no_store_for_a_tag(app, configured, wines, sandbox):
    order = store_order(None, "", [("ROSE-23", 1, "24.00")])
    run_jobs(app)
    assert record(order).status == "synced"
    assert sandbox.sales_orders(order.number)[0]["externalTransactionId"] == order.number
    assert record(order).data["tag"] == sync.TAG_CREATED and record(order).data["tag_sent_to_store"] is False
    assert messages("order.tag_requested") == []


def test_an_unconfigured_plugin_fails_the_order_with_what_to_fill_in(app, active, wines, shop, warehouse):
    order = store_order(shop, "#5001", [("CHARD-21", 1, "32.00")])
    run_jobs(app)
    assert record(order).status == "failed"
    assert "Vintrace is not set up" in record(order).message and "API key" in record(order).message


def test_unchecked_settings_check_the_customer_before_sending(app, configured, wines, shop, sandbox, server):
    state = db.session.get(PluginState, "vintrace")
    state.settings = {**{k: v for k, v in state.settings.items() if k != sync.VERIFIED_KEY},
                      "customer_name": "Nobody Pty Ltd"}       # as the generic plugin page saves it
    db.session.commit()
    order = store_order(shop, "#5002", [("CHARD-21", 1, "32.00")])
    run_jobs(app)
    assert record(order).status == "failed" and "Customer 'Nobody Pty Ltd' does not exist" in record(order).message
    assert creates(server) == []


# -- settings -----------------------------------------------------------------------------------

def _form(url, **overrides):
    return {"api_key": API_KEY, "base_url": url, "customer_name": CUSTOMER, "price_list": PRICE_LIST,
            "storage_area_id": "", **overrides}


def test_an_unknown_customer_name_is_refused_on_save(app, active, seeded, vintrace_url, admin_web):
    answer = admin_web.post("/plugins/vintrace/settings", data=_form(vintrace_url, customer_name="abc wine company"))
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert "Vintrace has no customer named exactly &#39;abc wine company&#39;" in html
    state = db.session.get(PluginState, "vintrace")
    assert not (state.settings or {}).get("customer_name") and not state.secrets


def test_an_unknown_price_list_is_refused_on_save(app, active, seeded, vintrace_url, admin_web):
    answer = admin_web.post("/plugins/vintrace/settings", data=_form(vintrace_url, price_list="Mates Rates"))
    assert answer.status_code == 400
    assert "no sales price list named exactly &#39;Mates Rates&#39;" in answer.get_data(as_text=True)


def test_a_wrong_token_is_refused_on_save(app, active, seeded, vintrace_url, admin_web):
    answer = admin_web.post("/plugins/vintrace/settings", data=_form(vintrace_url, api_key="wrong-token-1234"))
    assert answer.status_code == 400 and "API token" in answer.get_data(as_text=True)


def test_good_settings_are_saved_checked_and_the_token_masked(app, active, seeded, vintrace_url, admin_web):
    answer = admin_web.post("/plugins/vintrace/settings", data=_form(vintrace_url, storage_area_id="12"))
    assert answer.status_code == 302
    config = active.config()
    assert config["customer_name"] == CUSTOMER and config["storage_area_id"] == 12 and config["api_key"] == API_KEY
    assert sync.settings_verified(config)
    page = admin_web.get("/plugins/vintrace/").get_data(as_text=True)
    assert API_KEY not in page and API_KEY[-4:] in page and 'id="not-verified"' not in page
    tested = admin_web.post("/plugins/vintrace/test", follow_redirects=True).get_data(as_text=True)
    assert "Connection to Vintrace works" in tested


def test_test_connection_names_a_missing_customer(app, configured, vintrace_url, admin_web, sandbox):
    save_settings(base_url=vintrace_url, customer_name="Gone Pty", price_list=PRICE_LIST)
    page = admin_web.post("/plugins/vintrace/test", follow_redirects=True).get_data(as_text=True)
    assert "Connection to Vintrace failed" in page and "customer &#39;Gone Pty&#39; does not exist" in page


def test_the_generic_plugin_page_links_to_the_checked_settings_and_sync_orders(app, configured, admin_web):
    html = admin_web.get("/admin/plugins/vintrace").get_data(as_text=True)
    assert 'id="vintrace-settings-link"' in html and 'id="sync-orders-form"' in html
    guide = admin_web.get("/admin/plugins/vintrace/guide").get_data(as_text=True)
    assert "One way: store → Vintrace" in guide and "through their plugins" in guide


def test_operators_see_the_panel_but_not_the_settings(app, configured, wines, shop, operator, client):
    order = store_order(shop, "#6001", [("CHARD-21", 1, "32.00")])
    run_jobs(app)
    login_as(client, operator)
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert 'id="vintrace-panel"' in page and "Sync to Vintrace now" not in page
    assert client.get("/plugins/vintrace/").status_code == 403
    assert client.post("/plugins/vintrace/sync", data={"orders": "#6001"}).status_code == 403


def test_an_inactive_plugin_does_nothing_and_its_pages_answer_404(app, seeded, wines, shop, warehouse, admin_web):
    order = store_order(shop, "#7001", [("CHARD-21", 1, "32.00")])
    run_jobs(app)
    assert record(order) is None and messages(sync.PUSH_TOPIC) == []
    assert admin_web.get("/plugins/vintrace/").status_code == 404


def test_parse_order_names():
    assert sync.parse_order_names("#1001, #1002\n#1003 #1004,,#1001\r\n\t#1005") == [
        "#1001", "#1002", "#1003", "#1004", "#1005"]
    assert sync.parse_order_names("") == []
