"""Add Store, Test Connection with every known failure, webhook subscriptions and their status, over
real HTTPS against the sandbox."""

import pytest
from sqlalchemy import func, select

from plugins.woocommerce import store as woo_store
from plugins.woocommerce.client import PROBLEMS
from plugins.woocommerce.sandbox import make_tls
from wms.extensions import db
from wms.plugins.models import Store, WebhookEvent
from wms.plugins.settings import decrypt

from .conftest import CONSUMER_KEY, CONSUMER_SECRET, add_shop, connect, jobs


def stores():
    return db.session.scalar(select(func.count()).select_from(Store))


def add(web, **form):
    values = {"name": "Online shop", "remote_address": "https://shop.example.com", "consumer_key": CONSUMER_KEY,
              "consumer_secret": CONSUMER_SECRET}
    values.update(form)
    return web.post("/plugins/woocommerce/stores/new", data=values)


def test_http_store_url_is_refused_with_the_reason(web, active):
    response = add(web, remote_address="http://shop.example.com")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "must start with https://" in page
    assert "only accepts API keys over HTTPS" in page
    assert stores() == 0


def test_keys_and_name_are_checked_and_nothing_is_saved(web, active):
    response = add(web, name="", consumer_key="1234", consumer_secret="")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "A consumer key starts with ck_" in page and "A consumer secret starts with cs_" in page
    assert "Name the store" in page
    assert stores() == 0


def test_add_store_then_test_connection_makes_it_active(web, active, sandbox, store, warehouse):
    response = add(web, remote_address=sandbox.url)
    assert response.status_code == 302
    shop = db.session.scalar(select(Store))
    assert shop.status == "pending" and shop.setting("stock_authority") == "wms" and shop.setting("stock_sync")
    assert [(loc.remote_id, loc.warehouse_id) for loc in shop.locations] == [("default", None)]
    assert decrypt(shop.credentials) == {"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET}
    store.add_product(name="Cab", sku="CAB-1", regular_price="30.00")

    response = web.post(f"/plugins/woocommerce/stores/{shop.id}/test", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "is ACTIVE" in page and ">ACTIVE</span>" in page
    assert "WooCommerce 9.8.1" in page and "1 products" in page
    shop = db.session.get(Store, shop.id)
    assert shop.status == "connected"
    hooks = store.webhook_list()
    assert sorted(h["topic"] for h in hooks) == ["order.created", "order.updated"]
    assert {h["delivery_url"] for h in hooks} == {f"http://127.0.0.1:9/webhooks/woocommerce/{shop.id}"}
    secret = decrypt(shop.credentials)["webhook_secret"]
    assert len(secret) > 30 and {h["secret"] for h in hooks} == {secret}


def test_connecting_again_keeps_one_subscription_per_topic(active, sandbox, store, warehouse):
    shop = add_shop(sandbox, warehouse)
    connect(shop)
    connect(shop)
    assert len(store.webhook_list()) == 2


def failure_page(web, shop):
    response = web.post(f"/plugins/woocommerce/stores/{shop.id}/test", follow_redirects=True)
    return response.get_data(as_text=True).replace("&#39;", "'").replace("&#34;", '"').replace("&quot;", '"')


def assert_problem(page, code):
    summary, fix = PROBLEMS[code]
    assert summary in page, page
    assert fix.split(".")[0] in page


@pytest.mark.parametrize("make_key, code, status", [
    (lambda s: s.revoke_key(CONSUMER_KEY), "key_rejected", "token_issue"),
    (lambda s: s.add_key(CONSUMER_KEY + "x", CONSUMER_SECRET, permissions="read"), "read_only_key", "token_issue"),
])
def test_key_failures(web, active, sandbox, store, warehouse, make_key, code, status):
    make_key(store)
    key = CONSUMER_KEY + ("x" if code == "read_only_key" else "")
    shop = add_shop(sandbox, warehouse, consumer_key=key)
    page = failure_page(web, shop)
    assert_problem(page, code)
    if code == "key_rejected":
        assert "woocommerce_rest_cannot_view" in page
    else:
        assert "does not have write permissions" in page
    assert db.session.get(Store, shop.id).status == status
    assert store.webhook_list() == []


def test_wrong_secret(web, active, sandbox, store, warehouse):
    shop = add_shop(sandbox, warehouse, consumer_secret="cs_wrong")
    assert_problem(failure_page(web, shop), "secret_invalid")


def test_plain_permalinks(web, active, sandbox, store, warehouse):
    store.set_permalinks("plain")
    shop = add_shop(sandbox, warehouse)
    assert_problem(failure_page(web, shop), "plain_permalinks")
    assert db.session.get(Store, shop.id).status == "disconnected"


def test_woocommerce_missing(web, active, sandbox, store, warehouse):
    store.set_woocommerce_active(False)
    shop = add_shop(sandbox, warehouse)
    assert_problem(failure_page(web, shop), "woocommerce_missing")


def test_woocommerce_older_than_6(web, active, sandbox, store, warehouse):
    store.set_version("5.9.3")
    shop = add_shop(sandbox, warehouse)
    page = failure_page(web, shop)
    assert_problem(page, "woocommerce_too_old")
    assert "5.9.3" in page


def test_tls_certificate_not_trusted(web, app, active, sandbox, warehouse, tmp_path):
    _, other_ca = make_tls(tmp_path)
    app.config["WOOCOMMERCE_CA_FILE"] = other_ca
    shop = add_shop(sandbox, warehouse)
    assert_problem(failure_page(web, shop), "tls_error")


def test_timeout(web, app, active, sandbox, warehouse, sleeps):
    app.config["WOOCOMMERCE_TIMEOUT"] = (0.5, 0.3)
    sandbox.faults.inject("hang", count=20)
    shop = add_shop(sandbox, warehouse)
    assert_problem(failure_page(web, shop), "timeout")
    assert len(sleeps.waits) == 3  # four attempts with backoff between, not slept in tests


def test_signed_webhook_creates_the_order_once_and_the_ping_is_answered(app, live_server, active, sandbox, store,
                                                                        warehouse, product):
    app.config["WMS_PUBLIC_URL"] = live_server
    shop = add_shop(sandbox, warehouse)
    connect(shop)
    pings = [d for d in store.deliveries if d["topic"] == "ping"]
    assert [p["status"] for p in pings] == [200, 200]
    store.add_product(name="Cab", sku=product.sku, regular_price="42.00", manage_stock=True, stock_quantity=10)
    placed = store.place_paid_order([{"sku": product.sku, "quantity": 2}])
    signed = [d for d in store.deliveries if d["topic"] != "ping"]
    assert {d["status"] for d in signed} == {200}
    store.redeliver(signed[-1]["delivery_id"])
    jobs(app)
    from wms.core.models import Order
    orders = db.session.scalars(select(Order)).all()
    assert [(o.remote_id, o.number, o.source) for o in orders] == [(str(placed["id"]), f"#{placed['number']}",
                                                                  "woocommerce")]
    assert orders[0].lines[0].quantity == 2
    # created (pending, filtered) and updated (processing) are two order versions; the repeat was dropped
    assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) <= 2


def test_webhook_with_a_bad_signature_is_refused(app, active, sandbox, warehouse):
    shop = add_shop(sandbox, warehouse)
    connect(shop)
    client = app.test_client()
    response = client.post(f"/webhooks/woocommerce/{shop.id}", data=b'{"id": 1}',
                           headers={"X-WC-Webhook-Signature": "bm90IGl0", "X-WC-Webhook-Topic": "order.created",
                                    "Content-Type": "application/json"})
    assert response.status_code == 401
    assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) == 0


def test_disabled_webhook_is_shown_and_re_enabled(web, active, sandbox, store, warehouse, product):
    shop = add_shop(sandbox, warehouse)
    connect(shop)  # deliveries go to an address where nothing listens
    store.add_product(name="Cab", sku=product.sku, regular_price="42.00")
    for _ in range(7):
        store.place_paid_order([{"sku": product.sku, "quantity": 1}])
    assert {h["status"] for h in store.webhook_list()} == {"disabled"}

    web.post(f"/plugins/woocommerce/stores/{shop.id}/webhooks/refresh")
    page = web.get(f"/plugins/woocommerce/stores/{shop.id}").get_data(as_text=True)
    assert "disabled" in page and "Re-enable webhooks" in page
    response = web.post(f"/plugins/woocommerce/stores/{shop.id}/webhooks/reenable", follow_redirects=True)
    assert "Re-enabled: order.created, order.updated." in response.get_data(as_text=True)
    assert {h["status"] for h in store.webhook_list()} == {"active"}
    assert {h["status"] for h in woo_store.state(db.session.get(Store, shop.id))["webhooks"]} == {"active"}


def test_guide_and_plugin_page(web, active):
    guide = web.get("/admin/plugins/woocommerce/guide").get_data(as_text=True)
    for heading in ("Set up", "Webhooks", "Stock authority", "Mirror orders to Woo", "Troubleshooting",
                    "Why this client"):
        assert heading in guide
    assert "<em>sync</em> movements" in guide and "March 2021" in guide
    settings = web.get("/admin/plugins/woocommerce").get_data(as_text=True)
    assert 'href="/plugins/woocommerce/stores/new"' in settings and "WooCommerce stores" in settings
