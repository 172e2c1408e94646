"""The sandbox's own contract, checked with plain HTTPS requests (no client in between)."""

import pytest
import requests

from .conftest import CONSUMER_KEY, CONSUMER_SECRET

AUTH = (CONSUMER_KEY, CONSUMER_SECRET)


@pytest.fixture
def api(sandbox, tls):
    _, ca_path = tls

    def call(method, path, **kw):
        kw.setdefault("auth", AUTH)
        return requests.request(method, f"{sandbox.url}{path}", verify=ca_path, timeout=5, **kw)

    return call


def test_seed_5000_products_with_variable_share(api, store):
    answer = api("POST", "/_sandbox/woocommerce/seed", json={"products": 5000, "variable_share": 0.2,
                                                            "variations_per_product": 4})
    assert answer.json() == {"products": 5000, "variations": 4000}
    listing = api("GET", "/wp-json/wc/v3/products", params={"per_page": 100, "type": "variable"})
    assert listing.headers["X-WP-Total"] == "1000" and listing.headers["X-WP-TotalPages"] == "10"


def test_pagination_headers_and_links(api, store):
    store.seed_products(25, variable_share=0)
    first = api("GET", "/wp-json/wc/v3/products", params={"per_page": 10, "orderby": "id", "order": "asc"})
    assert first.headers["X-WP-Total"] == "25" and first.headers["X-WP-TotalPages"] == "3"
    assert 'rel="next"' in first.headers["Link"] and 'rel="prev"' not in first.headers["Link"]
    assert "page=2" in first.headers["Link"]
    middle = api("GET", "/wp-json/wc/v3/products", params={"per_page": 10, "page": 2})
    assert 'rel="prev"' in middle.headers["Link"] and 'rel="next"' in middle.headers["Link"]
    beyond = api("GET", "/wp-json/wc/v3/products", params={"per_page": 10, "page": 9})
    assert beyond.status_code == 200 and beyond.json() == [] and beyond.headers["X-WP-Total"] == "25"


def test_per_page_over_100_is_invalid(api):
    answer = api("GET", "/wp-json/wc/v3/products", params={"per_page": 101})
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "rest_invalid_param"
    assert body["data"]["params"]["per_page"] == "per_page must be between 1 (inclusive) and 100 (inclusive)"


def test_batch_limit_is_100_items(api, store):
    product = store.add_product(name="A", sku="A")
    answer = api("POST", "/wp-json/wc/v3/products/batch",
                 json={"update": [{"id": product, "stock_quantity": 1}] * 60, "delete": [999] * 41})
    assert answer.status_code == 413
    assert answer.json()["code"] == "woocommerce_rest_request_entity_too_large"
    ok = api("POST", "/wp-json/wc/v3/products/batch", json={"create": [{"name": "B", "sku": "A"}],
                                                             "update": [{"id": product, "manage_stock": True,
                                                                         "stock_quantity": 1}]})
    assert ok.status_code == 200
    assert ok.json()["create"][0]["id"] == 0
    assert ok.json()["create"][0]["error"]["code"] == "product_invalid_sku"
    assert ok.json()["update"][0]["stock_quantity"] == 1
    unmanaged = api("POST", "/wp-json/wc/v3/products/batch",
                    json={"update": [{"id": product, "manage_stock": False, "stock_quantity": 4}]})
    assert unmanaged.json()["update"][0]["stock_quantity"] is None  # Woo clears unmanaged stock


def test_draft_variation_missing_from_parent_but_listed_with_status(api, store):
    parent = store.add_product(name="Riesling", sku="RI")
    published = store.add_variation(parent, sku="RI-1", status="publish")
    draft = store.add_variation(parent, sku="RI-2", status="draft")
    assert api("GET", f"/wp-json/wc/v3/products/{parent}").json()["variations"] == [published]
    listed = {v["id"]: v["status"] for v in api("GET", f"/wp-json/wc/v3/products/{parent}/variations").json()}
    assert listed == {published: "publish", draft: "draft"}


def test_processing_order_lowers_stock_and_control_routes_show_it(api, store):
    store.add_product(name="Gamay", sku="GA", regular_price="15.00", manage_stock=True, stock_quantity=2)
    order = api("POST", "/wp-json/wc/v3/orders", json={"status": "processing",
                                                        "line_items": [{"sku": "GA", "quantity": 2}]}).json()
    level = api("GET", "/_sandbox/woocommerce/stock", params={"sku": "GA"}).json()[0]
    assert level["stock_quantity"] == 0 and level["stock_status"] == "outofstock"
    notes = api("GET", f"/_sandbox/woocommerce/orders/{order['id']}/notes").json()
    assert any("Stock levels reduced" in n["note"] for n in notes)


def test_query_string_keys_are_taken_first(api, store):
    answer = api("GET", "/wp-json/wc/v3/system_status", auth=None,
                 params={"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET})
    assert answer.status_code == 200
    wrong = api("GET", "/wp-json/wc/v3/system_status",
                params={"consumer_key": CONSUMER_KEY, "consumer_secret": "cs_nope"})
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "woocommerce_rest_authentication_error"
    assert wrong.headers["WWW-Authenticate"].startswith('Basic realm="WooCommerce API.')


def test_write_endpoints_refuse_logged_out_requests_with_their_codes(api, store):
    product = store.add_product(name="A", sku="A")
    assert api("POST", "/wp-json/wc/v3/products", auth=None, json={}).json()["code"] == "woocommerce_rest_cannot_create"
    assert api("PUT", f"/wp-json/wc/v3/products/{product}", auth=None, json={}).json()["code"] == \
        "woocommerce_rest_cannot_edit"
    assert api("POST", "/wp-json/wc/v3/products/batch", auth=None, json={}).json()["code"] == \
        "woocommerce_rest_cannot_batch"
    assert api("GET", f"/wp-json/wc/v3/products/{product}", auth=None).json()["message"] == \
        "Sorry, you cannot view this resource."


def test_plain_permalinks_serve_html_404_but_rest_route_works(api, store):
    api("POST", "/_sandbox/woocommerce/settings", json={"permalinks": "plain"})
    page = api("GET", "/wp-json/wc/v3/products")
    assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html")
    fallback = api("GET", "/", params={"rest_route": "/wc/v3/products"})
    assert fallback.status_code == 200 and fallback.json() == []
    index = api("GET", "/", params={"rest_route": "/"}).json()
    assert index["permalink_structure"] == ""


def test_unfaked_or_wrong_method_routes_answer_rest_no_route(api):
    assert api("DELETE", "/wp-json/wc/v3/orders/1").json()["code"] == "rest_no_route"
    assert api("GET", "/wp-json/wc/v3/coupons").status_code == 404


def test_revoking_a_key_over_http_control_route(api, store):
    key = api("POST", "/_sandbox/woocommerce/keys", json={"permissions": "read"}).json()
    creds = (key["consumer_key"], key["consumer_secret"])
    assert api("GET", "/wp-json/wc/v3/orders", auth=creds).status_code == 200
    api("POST", f"/_sandbox/woocommerce/keys/{key['consumer_key']}/revoke")
    refused = api("GET", "/wp-json/wc/v3/orders", auth=creds)
    assert refused.status_code == 401 and refused.json()["code"] == "woocommerce_rest_cannot_view"


def test_all_variations_route_only_from_10_3(api, store):
    assert api("GET", "/wp-json/wc/v3/variations").json()["code"] == "rest_no_route"
    store.set_version("10.3.1")
    assert "/wc/v3/variations" in api("GET", "/wp-json/wc/v3").json()["routes"]
    assert api("GET", "/wp-json/wc/v3/variations").status_code == 200


def test_manual_delivery_queue_builds_payload_at_send_time(api, store, receiver):
    store.configure(webhook_delivery="manual")
    product = store.add_product(name="A", sku="A", manage_stock=True, stock_quantity=1)
    api("POST", "/wp-json/wc/v3/webhooks", json={"topic": "product.updated", "delivery_url": receiver.url,
                                                  "secret": "x"})
    api("PUT", f"/wp-json/wc/v3/products/{product}", json={"stock_quantity": 5})
    api("PUT", f"/wp-json/wc/v3/products/{product}", json={"stock_quantity": 8})
    assert receiver.topics() == [None]  # only the creation ping so far
    sent = api("POST", "/_sandbox/woocommerce/webhooks/deliver").json()
    assert len(sent) == 1 and receiver.topics() == [None, "product.updated"]
    assert b'"stock_quantity":8' in receiver.requests[-1]["body"]
