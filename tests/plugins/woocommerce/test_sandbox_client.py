"""The WooCommerce client against the sandbox over real HTTPS on loopback."""

import json
from decimal import Decimal

import pytest
import requests

from plugins.woocommerce.client import (
    StockPriceUpdate,
    WooAuthError,
    WooClient,
    WooRateLimited,
    WooRejected,
    WooSetupError,
    WooTimeout,
    WooUnavailable,
    verify_webhook_signature,
    webhook_ping_id,
)
from plugins.woocommerce.sandbox import make_tls
from wms.integrations.errors import PermanentRemoteError, RemoteAuthError, TransientRemoteError

from .conftest import CONSUMER_KEY, CONSUMER_SECRET


def api_calls(sandbox, path_part):
    return [c for c in sandbox.faults.calls if path_part in c["path"]]


# -- connection and setup failures ---------------------------------------------------------------
def test_refuses_plain_http_store_url():
    with pytest.raises(WooSetupError) as caught:
        WooClient("http://shop.example", CONSUMER_KEY, CONSUMER_SECRET)
    assert caught.value.code == "https_required"
    assert "https://" in caught.value.message and "Fix:" in caught.value.message


def test_store_info_reports_versions_and_permalinks(client):
    info = client.store_info()
    assert info.wc_version == "9.8.1"
    assert info.wp_version == "6.7.1"
    assert info.currency == "USD"
    assert info.permalink_structure == "/%postname%/"
    assert info.has_all_variations_route is False


def test_system_status_honours_fields(client):
    status = client.system_status(fields=("environment.version",))
    assert status == {"environment": {"version": "9.8.1"}}


def test_check_connection_counts_products_and_probes_write_without_changes(client, store, sandbox):
    store.seed_products(30)
    before = store.stock_levels()
    check = client.check_connection()
    assert check.product_count == 30
    assert check.can_write is True
    assert store.stock_levels() == before
    assert [c["method"] for c in api_calls(sandbox, "/products/batch")] == ["POST"]


def test_read_only_key_reads_but_fails_write_probe(make_client, store):
    key = store.add_key(permissions="read")
    client = make_client(key.consumer_key, key.consumer_secret)
    assert client.store_info().wc_version == "9.8.1"
    with pytest.raises(WooAuthError) as caught:
        client.check_connection()
    assert caught.value.code == "read_only_key"
    assert "Read/Write" in caught.value.message
    assert caught.value.woo_code == "woocommerce_rest_authentication_error"
    assert isinstance(caught.value, RemoteAuthError)


def test_revoked_key_is_reported_as_rejected(make_client, store):
    key = store.add_key()
    client = make_client(key.consumer_key, key.consumer_secret)
    client.system_status()
    store.revoke_key(key.consumer_key)
    with pytest.raises(WooAuthError) as caught:
        client.system_status()
    assert caught.value.code == "key_rejected"
    assert caught.value.woo_code == "woocommerce_rest_cannot_view"
    assert caught.value.status == 401


def test_unknown_key_is_reported_as_rejected(make_client):
    with pytest.raises(WooAuthError) as caught:
        list(make_client("ck_" + "9" * 40, "cs_" + "9" * 40).iter_products())
    assert caught.value.code == "key_rejected"


def test_wrong_secret_is_reported(make_client):
    with pytest.raises(WooAuthError) as caught:
        make_client(CONSUMER_KEY, "cs_wrong_secret").system_status()
    assert caught.value.code == "secret_invalid"
    assert "Consumer secret is invalid." in caught.value.message


def test_key_of_a_user_without_shop_rights(make_client, store):
    key = store.add_key(user_role="customer")
    with pytest.raises(WooAuthError) as caught:
        make_client(key.consumer_key, key.consumer_secret).system_status()
    assert caught.value.code == "user_lacks_capability"
    assert caught.value.status == 403


def test_query_string_auth_works_and_secrets_never_reach_the_log(make_client, store, calls):
    store.seed_products(3)
    client = make_client(query_string_auth=True)
    assert len(list(client.iter_products())) == 3
    assert calls
    for record in calls:
        assert CONSUMER_SECRET not in record.path and CONSUMER_KEY not in record.path


def test_plain_permalinks_html_answer(client, store):
    store.set_permalinks("plain")
    with pytest.raises(WooSetupError) as caught:
        client.store_info()
    assert caught.value.code == "plain_permalinks"
    assert "Settings → Permalinks" in caught.value.message


def test_plain_permalinks_during_sync(client, store):
    store.set_permalinks("plain")
    with pytest.raises(WooSetupError) as caught:
        list(client.iter_orders())
    assert caught.value.code == "plain_permalinks"


def test_woocommerce_missing(client, store):
    store.set_woocommerce_active(False)
    with pytest.raises(WooSetupError) as caught:
        client.store_info()
    assert caught.value.code == "woocommerce_missing"
    with pytest.raises(WooSetupError) as caught:
        client.get_order(1)
    assert caught.value.code == "woocommerce_missing"
    assert caught.value.woo_code == "rest_no_route"


def test_woocommerce_older_than_6_is_refused(client, store):
    store.set_version("5.9.0")
    with pytest.raises(WooSetupError) as caught:
        client.store_info()
    assert caught.value.code == "woocommerce_too_old"
    assert "5.9.0" in caught.value.message


def test_tls_certificate_from_an_unknown_ca(sandbox, tmp_path):
    _, other_ca = make_tls(tmp_path)
    client = WooClient(sandbox.url, CONSUMER_KEY, CONSUMER_SECRET, verify=other_ca, allow_private=True)
    with pytest.raises(WooSetupError) as caught:
        client.system_status()
    assert caught.value.code == "tls_error"
    assert not caught.value.transient


def test_timeout_after_retries(make_client, store, sleeps):
    store.set_latency(400)
    client = make_client(timeout=(2, 0.1), max_attempts=2)
    with pytest.raises(WooTimeout) as caught:
        client.system_status()
    assert caught.value.code == "timeout"
    assert isinstance(caught.value, TransientRemoteError)
    assert sleeps.waits == [1]


def test_hang_is_retried_for_reads(make_client, sandbox, sleeps):
    sandbox.faults.inject("hang", count=1, path="/wp-json/wc/v3/system_status")
    client = make_client(timeout=(2, 0.3))
    assert client.system_status()["environment"]["version"] == "9.8.1"
    assert sleeps.waits == [1]


# -- retries -------------------------------------------------------------------------------------
def test_429_is_retried_honouring_retry_after(client, sandbox, store, sleeps):
    store.seed_products(2)
    sandbox.faults.inject("429", count=2, path="/wp-json/wc/v3/products")
    assert len(list(client.iter_products())) == 2
    assert sleeps.waits == [1.0, 1.0]


def test_maintenance_503_is_retried_after_its_retry_after(client, store, sleeps):
    store.set_maintenance(1, retry_after=7)
    assert client.system_status()["settings"]["currency"] == "USD"
    assert sleeps.waits == [7.0]


def test_rate_limit_that_does_not_end(make_client, sandbox):
    sandbox.faults.inject("429", count=10)
    with pytest.raises(WooRateLimited) as caught:
        make_client(max_attempts=3).system_status()
    assert caught.value.code == "rate_limited"
    assert caught.value.retry_after == 1.0


def test_server_error_is_retried_for_reads_but_not_for_creates(client, sandbox, store, sleeps):
    product = store.add_product(name="Pinot", sku="PN-1", regular_price="20.00", manage_stock=True,
                                stock_quantity=5)
    sandbox.faults.inject("500", count=1, path="/wp-json/wc/v3/products")
    assert client.get_product(product)["sku"] == "PN-1"
    sandbox.faults.inject("500", count=1, path="/wp-json/wc/v3/orders")
    with pytest.raises(WooUnavailable) as caught:
        client.create_order({"line_items": [{"sku": "PN-1", "quantity": 1}]})
    assert caught.value.code == "server_error"
    assert store.orders == {}


def test_connection_reset_is_retried(client, sandbox, sleeps):
    sandbox.faults.inject("reset", count=1, path="/wp-json/wc/v3/system_status")
    assert client.system_status()["environment"]["version"] == "9.8.1"
    assert len(sleeps.waits) == 1


# -- catalogue -----------------------------------------------------------------------------------
def test_iter_products_pages_through_everything_in_id_order(client, store, sandbox):
    store.seed_products(250, variable_share=0)
    products = list(client.iter_products())
    ids = [p["id"] for p in products]
    assert len(ids) == 250 and ids == sorted(ids) and len(set(ids)) == 250
    pages = api_calls(sandbox, "/wc/v3/products")
    assert len(pages) == 3


def test_5000_product_catalogue_counts_and_pages(client, store):
    store.seed_products(5000)
    assert client.check_connection().product_count == 5000
    assert sum(1 for _ in client.iter_products(fields=("id", "sku"))) == 5000


def test_iter_catalog_includes_draft_variations_and_marks_them(client, store):
    store.seed_products(20, draft_every=3)  # 4 variable products, 16 variations, 5 of them drafts
    items = list(client.iter_catalog())
    variations = [i for i in items if i.kind == "variation"]
    drafts = [v for v in variations if v.is_draft]
    assert len(variations) == 16 and len(drafts) == 5
    for draft in drafts:
        assert draft.status == "draft"
        parent = client.get_product(draft.parent_id)
        assert draft.id not in parent["variations"]
    assert all(not i.is_draft for i in items if i.kind == "product")


def test_iter_catalog_uses_all_variations_route_on_woocommerce_10_3(client, store, sandbox):
    store.set_version("10.3.0")
    store.seed_products(20, draft_every=3)
    variations = [i for i in client.iter_catalog() if i.kind == "variation"]
    assert len(variations) == 16 and sum(v.is_draft for v in variations) == 5
    assert not [c for c in sandbox.faults.calls if "/variations" in c["path"] and "/products/" in c["path"]]


def test_incremental_catalog_by_modified_after(client, store):
    first = store.add_product(name="Old", sku="OLD-1")
    store.advance_clock(120)
    since = store.now()
    store.advance_clock(60)
    client.update_product(first, {"regular_price": "12.00"})
    store.add_product(name="New", sku="NEW-1")
    changed = [i.sku for i in client.iter_catalog(modified_after=since.replace(tzinfo=None))]
    assert sorted(changed) == ["NEW-1", "OLD-1"]


def test_find_by_sku_returns_variations_too(client, store):
    parent = store.add_product(name="Syrah", sku="SY")
    variation = store.add_variation(parent, sku="SY-750", regular_price="30.00")
    found = client.find_by_sku("SY-750")
    assert [(f["id"], f["parent_id"], f["type"]) for f in found] == [(variation, parent, "variation")]


def test_variation_get_and_update(client, store):
    parent = store.add_product(name="Syrah", sku="SY")
    variation = store.add_variation(parent, sku="SY-750", regular_price="30.00", manage_stock=True,
                                    stock_quantity=4)
    assert client.get_variation(parent, variation)["stock_quantity"] == 4
    updated = client.update_variation(parent, variation, {"stock_quantity": 9, "manage_stock": True})
    assert updated["stock_quantity"] == 9
    assert store.stock_levels(["SY-750"])[0]["stock_quantity"] == 9


def test_variation_managed_by_parent_reads_parent_stock(client, store):
    parent = store.add_product(name="Rosé", sku="RO", manage_stock=True, stock_quantity=11)
    variation = store.add_variation(parent, sku="RO-375")
    assert client.get_variation(parent, variation)["manage_stock"] == "parent"
    assert client.get_variation(parent, variation)["stock_quantity"] == 11


def test_create_and_update_product(client, store):
    created = client.create_product({"name": "Chardonnay 2022", "sku": "CH-22", "regular_price": "18.50",
                                     "manage_stock": True, "stock_quantity": 12})
    assert created["stock_status"] == "instock"
    updated = client.update_product(created["id"], {"stock_quantity": 0})
    assert updated["stock_status"] == "outofstock"
    assert store.stock_levels(["CH-22"])[0]["stock_quantity"] == 0


def test_duplicate_sku_across_products_and_variations(client, store):
    parent = store.add_product(name="Merlot", sku="ME")
    variation = store.add_variation(parent, sku="ME-750")
    with pytest.raises(WooRejected) as caught:
        client.create_product({"name": "Another", "sku": "me-750"})
    assert caught.value.code == "duplicate_sku"
    assert caught.value.resource_id == variation
    assert "Link the existing" in caught.value.message
    other = store.add_product(name="Other", sku="OT")
    with pytest.raises(WooRejected) as caught:
        client.update_variation(parent, variation, {"sku": "OT"})
    assert caught.value.resource_id == other
    assert store.stock_levels(["ME-750"])[0]["id"] == variation


def test_product_route_with_a_variation_id(client, store):
    parent = store.add_product(name="Merlot", sku="ME")
    variation = store.add_variation(parent, sku="ME-750")
    with pytest.raises(WooRejected) as caught:
        client.update_product(variation, {"stock_quantity": 3})
    assert caught.value.code == "not_found"
    assert caught.value.woo_code == "woocommerce_rest_invalid_product_id"


def test_validation_error_names_the_field(client, store):
    product = store.add_product(name="Cab", sku="CA")
    with pytest.raises(WooRejected) as caught:
        client.update_product(product, {"regular_price": 12.5})
    assert caught.value.woo_code == "rest_invalid_param"
    assert "regular_price is not of type string" in json.dumps(caught.value.data)
    assert isinstance(caught.value, PermanentRemoteError)


# -- batch updates -------------------------------------------------------------------------------
def test_batch_update_chunks_by_100_and_batches_variations_per_parent(client, store, sandbox):
    store.seed_products(250, variable_share=0)
    simple_ids = [p["id"] for p in store.stock_levels()]
    first_parent = store.add_product(name="Var A", sku="VA")
    second_parent = store.add_product(name="Var B", sku="VB")
    var_a = [store.add_variation(first_parent, sku=f"VA-{n}", manage_stock=True) for n in range(3)]
    var_b = [store.add_variation(second_parent, sku=f"VB-{n}", manage_stock=True) for n in range(2)]
    updates = [StockPriceUpdate(pid, stock_quantity=7, regular_price=Decimal("21.5")) for pid in simple_ids]
    updates += [StockPriceUpdate(v, parent_id=first_parent, stock_quantity=3) for v in var_a]
    updates += [StockPriceUpdate(v, parent_id=second_parent, stock_quantity=4) for v in var_b]
    results = client.batch_update(updates)
    assert len(results) == len(updates) and all(r.ok for r in results)
    levels = {row["id"]: row for row in store.stock_levels()}
    assert all(levels[pid]["stock_quantity"] == 7 for pid in simple_ids)
    assert all(levels[v]["stock_quantity"] == 3 for v in var_a)
    assert all(levels[v]["stock_quantity"] == 4 for v in var_b)
    assert store.product(simple_ids[0])["regular_price"] == "21.50"
    batch_calls = [c["path"] for c in sandbox.faults.calls if c["path"].endswith("/batch")]
    assert batch_calls.count("/wp-json/wc/v3/products/batch") == 3
    assert f"/wp-json/wc/v3/products/{first_parent}/variations/batch" in batch_calls
    assert f"/wp-json/wc/v3/products/{second_parent}/variations/batch" in batch_calls


def test_batch_update_returns_per_item_errors(client, store):
    good = store.add_product(name="Good", sku="G", manage_stock=True, stock_quantity=1)
    parent = store.add_product(name="Parent", sku="P")
    variation = store.add_variation(parent, sku="P-1", manage_stock=True, stock_quantity=1)
    results = client.batch_update([
        StockPriceUpdate(good, stock_quantity=5),
        StockPriceUpdate(999999, stock_quantity=5),
        StockPriceUpdate(variation, stock_quantity=5),  # a variation sent as a product
        StockPriceUpdate(good, parent_id=parent, stock_quantity=5),  # not this parent's variation
    ])
    assert [r.ok for r in results] == [True, False, False, False]
    assert results[1].error_code == "woocommerce_rest_product_invalid_id"
    assert results[2].error_code == "woocommerce_rest_invalid_product_id"
    assert results[3].error_code == "woocommerce_rest_product_variation_invalid_id"
    assert store.stock_levels(["G"])[0]["stock_quantity"] == 5
    assert store.stock_levels(["P-1"])[0]["stock_quantity"] == 1


def test_batch_update_refuses_float_money():
    from plugins.woocommerce.client import batch_item
    with pytest.raises(TypeError):
        batch_item(StockPriceUpdate(1, regular_price=12.5))


# -- orders --------------------------------------------------------------------------------------
def test_create_processing_order_lowers_stock_and_cancel_restores_it(client, store):
    store.add_product(name="Pinot", sku="PN", regular_price="20.00", manage_stock=True, stock_quantity=10)
    order = client.create_order({"status": "processing", "line_items": [{"sku": "PN", "quantity": 3}],
                                 "billing": {"email": "buyer@example.com"},
                                 "meta_data": [{"key": "_wms_source_id", "value": "SO-1"}]})
    assert order["status"] == "processing" and order["total"] == "60.00"
    assert store.stock_levels(["PN"])[0]["stock_quantity"] == 7
    notes = [n["note"] for n in client.list_order_notes(order["id"])]
    assert any(n.startswith("Stock levels reduced: Pinot (PN) 10&rarr;7") for n in notes)
    assert client.get_order(order["id"])["meta_data"][0]["value"] == "SO-1"
    client.update_order(order["id"], {"status": "cancelled"})
    assert store.stock_levels(["PN"])[0]["stock_quantity"] == 10


def test_create_order_with_unknown_sku_is_rejected(client, store):
    with pytest.raises(WooRejected) as caught:
        client.create_order({"line_items": [{"sku": "NOPE", "quantity": 1}]})
    assert caught.value.woo_code == "woocommerce_rest_required_product_reference"
    assert store.orders == {}


def test_create_order_with_unknown_customer_is_rejected(client):
    with pytest.raises(WooRejected) as caught:
        client.create_order({"customer_id": 4242, "line_items": []})
    assert caught.value.woo_code == "woocommerce_rest_invalid_customer_id"


def test_iter_orders_modified_after_pages_through(client, store):
    store.add_product(name="Pinot", sku="PN", regular_price="20.00", manage_stock=True, stock_quantity=1000)
    old = [store.place_paid_order([{"sku": "PN", "quantity": 1}])["id"] for _ in range(3)]
    store.advance_clock(3600)
    since = store.now()
    store.advance_clock(1)
    recent = [store.place_paid_order([{"sku": "PN", "quantity": 1}])["id"] for _ in range(130)]
    client.update_order(old[0], {"status": "completed"})
    seen = [o["id"] for o in client.iter_orders(modified_after=since, statuses=["processing", "completed"])]
    assert seen == sorted(recent + [old[0]])
    assert [o["id"] for o in client.iter_orders(statuses=["completed"])] == [old[0]]


def test_order_notes_private_and_for_the_customer(client, store):
    store.add_product(name="Pinot", sku="PN", regular_price="20.00")
    order = store.place_paid_order([{"sku": "PN", "quantity": 1}], billing={"email": "c@example.com"})
    private = client.add_order_note(order["id"], "Picked from bay 4")
    public = client.add_order_note(order["id"], "Your wine has shipped", customer_note=True)
    assert private["customer_note"] is False and public["customer_note"] is True
    customer_notes = client.list_order_notes(order["id"], kind="customer")
    assert [n["note"] for n in customer_notes] == ["Your wine has shipped"]
    assert {"to": "c@example.com", "template": "customer_note", "order_id": order["id"],
            "note": "Your wine has shipped"} in store.emails


def test_note_on_missing_order(client):
    with pytest.raises(WooRejected) as caught:
        client.add_order_note(123456, "hello")
    assert caught.value.code == "not_found"


# -- customers -----------------------------------------------------------------------------------
def test_find_or_create_customer_by_email(client, store):
    customer, created = client.find_or_create_customer("Ana@Example.com", first_name="Ana")
    assert created is True and customer["username"] == "ana"
    again, created = client.find_or_create_customer("ana@example.com")
    assert created is False and again["id"] == customer["id"]
    assert sum(1 for c in store.customers.values() if c["email"].lower() == "ana@example.com") == 1


def test_customer_email_used_by_an_administrator_is_found(client):
    found, created = client.find_or_create_customer("admin@sandbox.example")
    assert created is False and found["role"] == "administrator"


def test_customer_with_invalid_email(client):
    with pytest.raises(WooRejected) as caught:
        client.find_or_create_customer("not-an-email")
    assert caught.value.woo_code == "registration-error-invalid-email"


# -- webhooks ------------------------------------------------------------------------------------
def test_create_webhook_sends_unsigned_ping_then_signed_deliveries(client, store, sandbox, receiver, tls):
    store.add_product(name="Pinot", sku="PN", regular_price="20.00", manage_stock=True, stock_quantity=5)
    hook_created = client.create_webhook("order.created", receiver.url, "s3cret-created")
    hook_updated = client.create_webhook("order.updated", receiver.url, "s3cret-updated")
    assert hook_created.is_active and hook_updated.status == "active"
    pings = receiver.requests[:2]
    assert [webhook_ping_id(p["body"]) for p in pings] == [hook_created.id, hook_updated.id]
    assert all("X-WC-Webhook-Signature" not in p["headers"] for p in pings)

    _, ca_path = tls
    answer = requests.post(f"{sandbox.url}/_sandbox/woocommerce/orders", verify=ca_path,
                           json={"line_items": [{"sku": "PN", "quantity": 2}],
                                 "billing": {"email": "buyer@example.com"}})
    assert answer.status_code == 201
    order_id = answer.json()["id"]
    deliveries = receiver.requests[2:]
    assert receiver.topics()[2:] == ["order.created", "order.updated"]
    secrets_by_topic = {"order.created": "s3cret-created", "order.updated": "s3cret-updated"}
    for delivery in deliveries:
        headers, body = delivery["headers"], delivery["body"]
        topic = headers["X-WC-Webhook-Topic"]
        assert verify_webhook_signature(body, headers["X-WC-Webhook-Signature"], secrets_by_topic[topic])
        assert not verify_webhook_signature(body + b" ", headers["X-WC-Webhook-Signature"], secrets_by_topic[topic])
        assert headers["X-WC-Webhook-Resource"] == "order"
        assert headers["X-WC-Webhook-Source"] == sandbox.url + "/"
        assert headers["X-WC-Webhook-Delivery-ID"]
        assert headers["User-Agent"].startswith("WooCommerce/9.8.1 Hookshot")
        assert json.loads(body)["id"] == order_id
    assert json.loads(deliveries[1]["body"])["status"] == "processing"
    assert store.stock_levels(["PN"])[0]["stock_quantity"] == 3


def test_webhook_is_disabled_after_seven_failed_deliveries(client, store, receiver):
    store.add_product(name="Pinot", sku="PN", regular_price="20.00")
    order = client.create_order({"line_items": [{"sku": "PN", "quantity": 1}]})
    hook = client.create_webhook("order.updated", receiver.url, "secret")
    receiver.status = 500
    for n in range(6):
        client.update_order(order["id"], {"customer_note": f"try {n}"})
    assert client.get_webhook(hook.id).status == "active"
    client.update_order(order["id"], {"customer_note": "seventh"})
    disabled = client.get_webhook(hook.id)
    assert disabled.status == "disabled" and disabled.disabled_by_failures
    assert [w.id for w in client.list_webhooks(status="disabled")] == [hook.id]
    receiver.status = 200
    assert client.set_webhook_status(hook.id, "active").is_active
    client.update_order(order["id"], {"customer_note": "back"})
    assert json.loads(receiver.requests[-1]["body"])["customer_note"] == "back"


def test_redelivery_sends_the_same_request_again(client, store, sandbox, receiver, tls):
    store.add_product(name="Pinot", sku="PN", regular_price="20.00")
    client.create_webhook("order.created", receiver.url, "secret")
    store.place_paid_order([{"sku": "PN", "quantity": 1}])
    original = receiver.requests[-1]
    delivery_id = original["headers"]["X-WC-Webhook-Delivery-ID"]
    _, ca_path = tls
    answer = requests.post(f"{sandbox.url}/_sandbox/woocommerce/deliveries/{delivery_id}/redeliver", verify=ca_path)
    assert answer.status_code == 200 and answer.json()["ok"] is True
    again = receiver.requests[-1]
    assert again["body"] == original["body"]
    assert again["headers"]["X-WC-Webhook-Delivery-ID"] == delivery_id


def test_webhook_with_invalid_topic_is_rejected(client):
    with pytest.raises(WooRejected) as caught:
        client.create_webhook("order.shipped", "https://hooks.example/woo", "secret")
    assert caught.value.woo_code == "woocommerce_rest_webhook_invalid_topic"


def test_signature_verification_rejects_missing_or_wrong_values():
    body = b'{"id":1}'
    import base64
    import hashlib
    import hmac
    good = base64.b64encode(hmac.new(b"k", body, hashlib.sha256).digest()).decode()
    assert verify_webhook_signature(body, good, "k")
    assert not verify_webhook_signature(body, good, "other")
    assert not verify_webhook_signature(body, "", "k")
    assert not verify_webhook_signature(body, good, "")
    assert webhook_ping_id(b"webhook_id=12") == 12
    assert webhook_ping_id(body) is None
