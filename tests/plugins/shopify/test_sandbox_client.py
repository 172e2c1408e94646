"""The Shopify client driven against the sandbox over real HTTP on loopback."""

import base64
import json
import time
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from plugins.shopify import client as shopify
from plugins.shopify.client import ShopifyClient, ShopifyRejected, StaleQuantity
from plugins.shopify.sandbox import create_app
from wms.sandbox.harness import SandboxServer
from wms.integrations.errors import RemoteAuthError, RemoteRejected, RemoteTimeout, RemoteUnavailable

from .conftest import CLIENT_ID, CLIENT_SECRET, SHOP


def control(server, method, path, body=None):
    response = requests.request(method, f"{server.url}/_sandbox/shopify{path}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def add_wine(shop, sku="CAB-2019", stock=12, **variant):
    product = shop.add_product(f"Wine {sku}", [dict({"sku": sku, "barcode": f"BC-{sku}", "price": "42.00"},
                                                    **variant)], stock=stock)
    return shop.variants[product.variant_ids[0]]


def level_of(shop, variant, location_id):
    return shop.levels[(variant.inventory_item_id, location_id)].quantities


def location_ids(shop):
    return list(shop.locations)


# -- shop domains, OAuth ------------------------------------------------------------------------------------
def test_shop_domain_validation():
    assert shopify.valid_shop_domain("my-winery.myshopify.com")
    for bad in ("my_winery.myshopify.com", "-x.myshopify.com", "evil.com", "x.myshopify.com.evil.com",
                "https://x.myshopify.com", "", None):
        assert not shopify.valid_shop_domain(bad)
    with pytest.raises(ValueError):
        shopify.ShopifyClient("evil.example.com", "token")


def test_oauth_install_exchange_and_refresh(server, shop_url, make_client):
    state = shopify.new_state()
    url = shopify.authorize_url(SHOP, CLIENT_ID, ["read_products", "write_inventory", "read_locations"],
                                "https://wms.example/shopify/callback", state, base_url=shop_url)
    page = requests.get(url, timeout=5)
    assert page.status_code == 200 and "<button" in page.text and "Install" in page.text
    form = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    answer = requests.post(f"{shop_url}/admin/oauth/authorize", data=form, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert location.netloc == "wms.example"
    query = dict(parse_qsl(location.query))
    assert set(query) == {"code", "hmac", "host", "shop", "state", "timestamp"}
    assert shopify.verify_callback(query, CLIENT_SECRET, expected_state=state) == SHOP

    installer = make_client(token="")
    tokens = installer.exchange_code(query["code"])
    assert tokens.refresh_token and tokens.expires_at > time.time()
    assert set(tokens.scopes) == {"read_products", "write_inventory", "read_locations"}
    assert installer.shop_info()["myshopify_domain"] == SHOP

    old_refresh = tokens.refresh_token
    rotated = installer.refresh_access_token()
    assert rotated.access_token != tokens.access_token and rotated.refresh_token != old_refresh
    assert installer.list_locations()
    installer.refresh_token = old_refresh  # refresh tokens work once
    with pytest.raises(RemoteAuthError):
        installer.refresh_access_token()
    with pytest.raises(RemoteAuthError):  # so do authorization codes
        installer.exchange_code(query["code"])


def test_forged_or_stale_callback_is_refused(server, shop_url):
    state = shopify.new_state()
    form = {"client_id": CLIENT_ID, "scope": "read_products", "redirect_uri": "https://wms.example/cb",
            "state": state}
    answer = requests.post(f"{shop_url}/admin/oauth/authorize", data=form, allow_redirects=False, timeout=5)
    query = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
    for forged in (dict(query, shop="other-shop.myshopify.com"), dict(query, hmac="0" * 64),
                   {k: v for k, v in query.items() if k != "hmac"}):
        with pytest.raises(shopify.OAuthCallbackRejected, match="signature"):
            shopify.verify_callback(forged, CLIENT_SECRET, expected_state=state)
    with pytest.raises(shopify.OAuthCallbackRejected, match="signature"):
        shopify.verify_callback(query, "another-app-secret", expected_state=state)
    with pytest.raises(shopify.OAuthCallbackRejected, match="state"):
        shopify.verify_callback(query, CLIENT_SECRET, expected_state=shopify.new_state())
    with pytest.raises(shopify.OAuthCallbackRejected, match="too old"):
        shopify.verify_callback(query, CLIENT_SECRET, expected_state=state, now=int(query["timestamp"]) + 3600)


def test_expired_token_is_refreshed_once_and_reported(server, sandbox, make_client):
    token = sandbox.create_token(SHOP)
    saved = []
    client = make_client(token=token.value, refresh_token=token.refresh_token, on_tokens=saved.append)
    control(server, "POST", f"/tokens/{token.value}/expire")
    assert client.shop_info()["name"]
    assert len(saved) == 1 and saved[0].access_token == client.access_token != token.value

    plain = make_client(token=sandbox.create_token(SHOP).value)
    control(server, "POST", f"/tokens/{plain.access_token}/expire")
    with pytest.raises(RemoteAuthError, match="reconnect the store"):
        plain.shop_info()


def test_bad_token_and_token_of_another_shop_are_refused(server, sandbox, make_client):
    with pytest.raises(RemoteAuthError):
        make_client(token="shpat_wrong").shop_info()
    sandbox.add_shop("other-winery.myshopify.com")
    other = sandbox.create_token("other-winery.myshopify.com")
    with pytest.raises(RemoteAuthError):
        make_client(token=other.value).shop_info()


# -- GraphQL validation, scopes, limits ---------------------------------------------------------------------------
def test_invalid_document_is_refused_with_shopify_error_shape(server, shop_url, client, sandbox):
    with pytest.raises(RemoteRejected) as refused:
        client.graphql("{ shop { name nonsense } }")
    assert refused.value.code == "undefinedField"
    assert "Field 'nonsense' doesn't exist on type 'Shop'" in refused.value.message
    raw = requests.post(f"{shop_url}/admin/api/2026-10/graphql.json",
                        json={"query": "mutation { inventorySetQuantities(input: {name: \"available\", "
                                       "reason: \"correction\", ignoreCompareQuantity: true, quantities: []}) "
                                       "{ userErrors { code } } }"},
                        headers={"X-Shopify-Access-Token": client.access_token}, timeout=5).json()
    assert raw["errors"][0]["extensions"]["code"] == "argumentNotAccepted"  # removed in 2026-04
    assert "data" not in raw and "cost" in raw["extensions"]


def test_missing_scope_is_access_denied(server, sandbox, make_client):
    client = make_client(token=sandbox.create_token(SHOP, scopes=("read_products",)).value)
    with pytest.raises(RemoteAuthError, match="write_inventory") as denied:
        client.set_quantities([{"inventory_item_id": 1, "location_id": 1, "quantity": 1, "change_from": None}])
    assert denied.value.code == "ACCESS_DENIED"


def test_runtime_rules_of_2026_04(server, client, shop):
    variant = add_wine(shop)
    row = {"inventoryItemId": f"gid://shopify/InventoryItem/{variant.inventory_item_id}",
           "locationId": f"gid://shopify/Location/{location_ids(shop)[0]}", "quantity": 3}
    no_key = ("mutation($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) "
              "{ userErrors { code } } }")
    base = {"name": "available", "reason": "correction"}
    with pytest.raises(RemoteRejected, match="@idempotent"):
        client.graphql(no_key, {"input": dict(base, quantities=[dict(row, changeFromQuantity=None)])})
    with pytest.raises(RemoteRejected, match="changeFromQuantity is required"):
        client.graphql(shopify.SET_MUTATION, {"input": dict(base, quantities=[row]), "key": "k-1"})
    with pytest.raises(RemoteRejected, match="maximum allowed of 250") as too_many:
        client.graphql(shopify.SET_MUTATION, {"key": "k-2", "input": dict(base, quantities=[
            dict(row, changeFromQuantity=None) for _ in range(251)])})
    assert too_many.value.code == "MAX_INPUT_SIZE_EXCEEDED"
    assert level_of(shop, variant, location_ids(shop)[0])["available"] == 12


# -- rate limits and faults ------------------------------------------------------------------------------------
CHEAP_QUERY = "{ locations(first: 5) { nodes { id name } } }"  # 2 + 5 x 1 = 7 points


def test_burst_is_paced_so_shopify_never_throttles(server, shop, client):
    control(server, "POST", f"/shops/{SHOP}/bucket", {"client_id": CLIENT_ID, "maximum": 20, "restore_rate": 200})
    for _ in range(15):
        assert client.graphql(CHEAP_QUERY)["locations"]["nodes"]
    state = control(server, "GET", f"/shops/{SHOP}/bucket?client_id={CLIENT_ID}")
    assert state["throttled"] == 0
    assert client.sleep.waits  # it did have to wait for the bucket


class ManualClock:
    """Time for the sandbox's bucket and the client's pacing that moves only when the client sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.waits = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.waits.append(seconds)
        self.now += seconds


def test_throttled_answer_waits_as_long_as_the_bucket_needs():
    clock = ManualClock()
    app = create_app({"apps": {CLIENT_ID: CLIENT_SECRET}, "shops": [SHOP], "clock": clock, "restore_rate": 100})
    with SandboxServer(app) as server:
        client = ShopifyClient(SHOP, app.sandbox.create_token(SHOP).value, base_url=f"{server.url}/shops/{SHOP}",
                               allow_private=True, timeout=(2, 5), sleep=clock.sleep, clock=clock)
        app.sandbox.shops[SHOP].bucket_for(CLIENT_ID).set_available(0)
        assert client.graphql(CHEAP_QUERY)["locations"]["nodes"]
        assert app.sandbox.shops[SHOP].bucket_for(CLIENT_ID).throttled_count == 1
        assert clock.waits == [pytest.approx(0.07)]  # (7 requested - 0 available) / 100 points per s
        # 7 taken, 3 refunded (actual cost 2 + 2 locations = 4): 3 left. Knowing the cost, it waits first.
        assert client.graphql(CHEAP_QUERY)
        assert clock.waits[1] == pytest.approx(0.04)
        assert app.sandbox.shops[SHOP].bucket_for(CLIENT_ID).throttled_count == 1


def test_transient_faults_are_retried_when_safe(server, shop, client):
    variant = add_wine(shop)
    server.faults.inject("500", count=1, path="/shops")
    server.faults.inject("reset", count=1, path="/shops")
    assert client.shop_info()["name"]
    location = location_ids(shop)[0]
    server.faults.inject("429", count=1, path="/shops")
    client.adjust_quantities([{"inventory_item_id": variant.inventory_item_id, "location_id": location, "delta": 4,
                               "change_from": 12}])
    assert level_of(shop, variant, location)["available"] == 16
    assert client.sleep.waits[-1] == 1.0  # Retry-After of the 429


def test_timeouts_and_unsafe_mutations_are_not_retried(server, shop, make_client):
    client = make_client(timeout=(1, 0.5), retries=0)
    server.faults.inject("hang", count=1, path="/shops")
    with pytest.raises(RemoteTimeout):
        client.shop_info()
    server.faults.inject("500", count=1, path="/shops")
    with pytest.raises(RemoteUnavailable):
        make_client().create_fulfillment(["gid://shopify/FulfillmentOrder/1"])


# -- catalog -----------------------------------------------------------------------------------------------------
def test_shop_info_and_locations(server, client):
    control(server, "POST", f"/shops/{SHOP}/locations", {"locations": [
        "Winery", {"name": "Warehouse B"}, {"name": "Old Barn", "is_active": False}]})
    assert client.shop_info() == {"id": client.shop_info()["id"], "name": "Sandbox Winery",
                                  "email": f"owner@{SHOP}", "myshopify_domain": SHOP, "currency": "USD",
                                  "timezone": "America/Los_Angeles", "plan": "Basic"}
    # Shopify sorts locations by name unless told otherwise
    assert [(loc["name"], loc["is_active"]) for loc in client.list_locations()] == [
        ("Old Barn", False), ("Warehouse B", True), ("Winery", True)]
    assert [loc["name"] for loc in client.list_locations(include_inactive=False)] == ["Warehouse B", "Winery"]


def test_variants_and_products_are_paginated(server, shop, client):
    control(server, "POST", f"/shops/{SHOP}/seed", {"products": 230, "stock": 3})
    server.faults.clear_calls()
    variants = list(client.iter_variants(page_size=100))
    assert len({v["id"] for v in variants}) == 230
    assert len(server.faults.calls) == 3
    first = variants[0]
    assert first["sku"] == "SKU-000001-1" and first["inventory_item_id"].startswith("gid://shopify/InventoryItem/")
    assert [v["sku"] for v in client.iter_variants(query="sku:SKU-000007-1")] == ["SKU-000007-1"]
    assert [v["sku"] for v in client.iter_variants(query=f"barcode:{first['barcode']}")] == ["SKU-000001-1"]
    products = list(client.iter_products(page_size=50))
    assert len(products) == 230 and products[0]["variant_count"] == 1


def test_bulk_variants_small_catalog(server, client):
    control(server, "POST", f"/shops/{SHOP}/seed", {"products": 40, "variants_per_product": 3})
    variants = client.bulk_variants(poll_interval=0.05, timeout=30)
    assert len(variants) == 120 and len({v["sku"] for v in variants}) == 120
    assert all(v["product_id"] and v["inventory_item_id"] for v in variants)


@pytest.mark.slow
def test_bulk_operation_over_50000_variants(server, client):
    started = time.monotonic()
    control(server, "POST", f"/shops/{SHOP}/seed", {"products": 10_000, "variants_per_product": 5, "stock": 1})
    assert time.monotonic() - started < 10  # seeding 50,000 variants takes a few seconds at most
    variants = client.bulk_variants(poll_interval=0.25, timeout=240)
    assert len(variants) == 50_000
    assert len({v["inventory_item_id"] for v in variants}) == 50_000


# -- stock -----------------------------------------------------------------------------------------------------------
def test_set_quantities_and_read_levels(server, shop, client):
    wines = [add_wine(shop, f"SKU-{n}") for n in range(3)]
    main, tasting = location_ids(shop)
    changes = client.set_quantities([{"inventory_item_id": w.inventory_item_id, "location_id": main,
                                      "quantity": 20 + n, "change_from": 12} for n, w in enumerate(wines)],
                                    reference_document_uri="gid://winery-wms/StockSync/1")
    assert {(c["name"], c["quantity_after"]) for c in changes} >= {("available", 20), ("available", 22)}
    assert [level_of(shop, w, main)["available"] for w in wines] == [20, 21, 22]
    assert level_of(shop, wines[0], main)["on_hand"] == 20
    levels = client.inventory_levels([w.inventory_item_id for w in wines])
    by_key = {(lv["inventory_item_id"], lv["location_id"]): lv["quantities"] for lv in levels}
    assert by_key[(f"gid://shopify/InventoryItem/{wines[1].inventory_item_id}", f"gid://shopify/Location/{main}")] \
        == {"available": 21, "on_hand": 21, "committed": 0}
    assert by_key[(f"gid://shopify/InventoryItem/{wines[1].inventory_item_id}",
                   f"gid://shopify/Location/{tasting}")]["available"] == 12
    only_tasting = client.inventory_levels([wines[0].inventory_item_id], location_ids=[tasting])
    assert [lv["location_id"] for lv in only_tasting] == [f"gid://shopify/Location/{tasting}"]


def test_set_more_than_250_quantities_in_several_calls(server, shop, client):
    control(server, "POST", f"/shops/{SHOP}/seed", {"products": 300, "stock": 5})
    main = location_ids(shop)[0]
    rows = [{"inventory_item_id": item_id, "location_id": main, "quantity": 9, "change_from": 5}
            for item_id in list(shop.items)]
    server.faults.clear_calls()
    client.set_quantities(rows)
    assert len(server.faults.calls) == 2
    assert all(shop.levels[(item_id, main)].quantities["available"] == 9 for item_id in shop.items)


def test_stale_change_from_quantity_is_a_distinct_error(server, shop, client):
    fresh, raced = add_wine(shop, "FRESH"), add_wine(shop, "RACED")
    main = location_ids(shop)[0]
    control(server, "POST", f"/shops/{SHOP}/levels", {"sku": "RACED", "location_id": main, "quantity": 7})
    with pytest.raises(StaleQuantity) as stale:
        client.set_quantities([{"inventory_item_id": w.inventory_item_id, "location_id": main, "quantity": 30,
                                "change_from": 12} for w in (fresh, raced)])
    assert stale.value.code == "CHANGE_FROM_QUANTITY_STALE" and isinstance(stale.value, RemoteRejected)
    assert [(i["inventory_item_id"], i["change_from"]) for i in stale.value.items] == [(raced.inventory_item_id, 12)]
    assert len(stale.value.not_applied) == 2
    assert level_of(shop, fresh, main)["available"] == 12 and level_of(shop, raced, main)["available"] == 7
    with pytest.raises(StaleQuantity):
        client.adjust_quantities([{"inventory_item_id": raced.inventory_item_id, "location_id": main, "delta": -1,
                                   "change_from": 12}])
    client.set_quantities([{"inventory_item_id": raced.inventory_item_id, "location_id": main, "quantity": 30,
                            "change_from": None}])  # explicit null: no compare-and-swap
    assert level_of(shop, raced, main)["available"] == 30


def test_idempotent_replay_and_key_mismatch(server, shop, client):
    wine = add_wine(shop)
    main = location_ids(shop)[0]
    row = {"inventory_item_id": wine.inventory_item_id, "location_id": main, "delta": -2, "change_from": 12}
    first = client.adjust_quantities([row], idempotency_key="sync-42")
    replay = client.adjust_quantities([row], idempotency_key="sync-42")
    assert replay == first and first[0]["quantity_after"] == 10
    assert level_of(shop, wine, main)["available"] == 10  # applied once
    with pytest.raises(ShopifyRejected) as mismatch:
        client.adjust_quantities([dict(row, delta=-3)], idempotency_key="sync-42")
    assert mismatch.value.code == "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"
    assert level_of(shop, wine, main)["available"] == 10


def test_user_errors_surface_with_their_code(server, shop, client):
    wine = add_wine(shop)
    main = location_ids(shop)[0]
    with pytest.raises(ShopifyRejected) as refused:
        client.set_quantities([{"inventory_item_id": wine.inventory_item_id, "location_id": main, "quantity": 1,
                                "change_from": None}], reason="because")
    assert refused.value.code == "INVALID_REASON" and "reason" in refused.value.message
    control(server, "POST", f"/shops/{SHOP}/locations", {"locations": [{"id": main, "name": "Main"}, "New shed"]})
    with pytest.raises(ShopifyRejected) as not_stocked:
        client.set_quantities([{"inventory_item_id": wine.inventory_item_id, "location_id": location_ids(shop)[1],
                                "quantity": 1, "change_from": None}])
    assert not_stocked.value.code == "ITEM_NOT_STOCKED_AT_LOCATION"


# -- orders, fulfillment, returns, tags -----------------------------------------------------------------------------
def place(server, *lines, **extra):
    return control(server, "POST", f"/shops/{SHOP}/orders", dict({"lines": list(lines)}, **extra))


def test_orders_updated_since_are_paginated(server, shop, client):
    add_wine(shop, "A"), add_wine(shop, "B")
    before = "2000-01-01T00:00:00Z"
    ids = [place(server, {"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2})["id"] for _ in range(3)]
    orders = list(client.orders_updated_since(before, page_size=2))
    assert [o["id"] for o in orders] == [f"gid://shopify/Order/{i}" for i in ids]
    assert [(li["sku"], li["quantity"]) for li in orders[0]["line_items"]] == [("A", 1), ("B", 2)]
    assert orders[0]["fulfillment_status"] == "UNFULFILLED" and orders[0]["financial_status"] == "PAID"
    assert list(client.orders_updated_since("2999-01-01T00:00:00Z")) == []


def test_fulfillment_with_tracking(server, shop, client):
    wine = add_wine(shop)
    main = location_ids(shop)[0]
    order = place(server, {"sku": "CAB-2019", "quantity": 3}, location_id=main)
    assert level_of(shop, wine, main)["committed"] == 3
    [fo] = client.fulfillment_orders(order["id"])
    assert fo["status"] == "OPEN" and fo["location_id"] == f"gid://shopify/Location/{main}"
    line = fo["line_items"][0]
    partial = client.create_fulfillment({fo["id"]: {line["id"]: 1}}, carrier="UPS", tracking_number="1Z999",
                                        tracking_url="https://ups.example/1Z999", notify_customer=True)
    assert partial["tracking"] == [{"company": "UPS", "number": "1Z999", "url": "https://ups.example/1Z999"}]
    assert client.fulfillment_orders(order["id"])[0]["status"] == "IN_PROGRESS"
    client.create_fulfillment([fo["id"]], carrier="FedEx", tracking_number="7777")
    shipped = control(server, "GET", f"/shops/{SHOP}/fulfillments?order_id={order['id']}")["fulfillments"]
    assert [(f["tracking"][0]["company"], f["notify_customer"], f["lines"][0]["quantity"]) for f in shipped] == [
        ("UPS", True, 1), ("FedEx", False, 2)]
    assert client.fulfillment_orders(order["id"])[0]["status"] == "CLOSED"
    assert {k: level_of(shop, wine, main)[k] for k in ("available", "committed", "on_hand")} == {
        "available": 9, "committed": 0, "on_hand": 9}
    with pytest.raises(ShopifyRejected, match="unfulfillable status"):
        client.create_fulfillment([fo["id"]])


def test_returns_request_approve_close(server, shop, client, receiver):
    add_wine(shop)
    client.subscribe_webhooks({"returns/request": f"{receiver.url}/hooks/returns"})
    order = place(server, {"sku": "CAB-2019", "quantity": 2})
    [fo] = client.fulfillment_orders(order["id"])
    client.create_fulfillment([fo["id"]])
    requested = control(server, "POST", f"/shops/{SHOP}/orders/{order['id']}/returns")
    [ret] = client.returns_of_order(order["id"])
    assert ret["id"] == requested["admin_graphql_api_id"] and ret["status"] == "REQUESTED"
    assert ret["line_items"][0]["quantity"] == 2 and ret["line_items"][0]["sku"] == "CAB-2019"
    with pytest.raises(ShopifyRejected) as not_open:
        client.close_return(ret["id"])
    assert not_open.value.code == "INVALID_STATE"
    assert client.approve_return(ret["id"])["status"] == "OPEN"
    assert client.close_return(ret["id"])["status"] == "CLOSED"
    assert control(server, "GET", f"/shops/{SHOP}/returns?order_id={order['id']}")["returns"][0]["status"] == "CLOSED"
    control(server, "POST", "/webhooks/wait")
    [hook] = receiver.of_topic("returns/request")
    assert json.loads(hook["body"])["admin_graphql_api_id"] == ret["id"]


def test_tags_add_on_order_and_product(server, shop, client):
    wine = add_wine(shop)
    order = place(server, {"sku": "CAB-2019", "quantity": 1}, tags=["web"])
    assert client.add_tags(order["admin_graphql_api_id"], ["wms-picked", "web"]) == ["web", "wms-picked"]
    assert shop.orders[order["id"]].tags == ["web", "wms-picked"]
    product_gid = f"gid://shopify/Product/{wine.product_id}"
    assert client.add_tags(product_gid, ["allocated"]) == ["allocated"]
    with pytest.raises(ShopifyRejected):
        client.add_tags("gid://shopify/Order/1", ["x"])


# -- webhooks ----------------------------------------------------------------------------------------------------------
def test_subscribe_webhooks_is_idempotent(server, shop, client, receiver):
    wanted = {"orders/create": f"{receiver.url}/hooks/orders", "app/uninstalled": f"{receiver.url}/hooks/app"}
    first = client.subscribe_webhooks(wanted)
    again = client.subscribe_webhooks(wanted)
    assert [s["created"] for s in first] == [True, True] and [s["created"] for s in again] == [False, False]
    assert {s["id"] for s in first} == {s["id"] for s in again}
    assert len(shop.subscriptions) == 2


def test_signed_webhooks_are_verified_and_forgeries_refused(server, shop, client, receiver):
    add_wine(shop)
    client.subscribe_webhooks({"orders/create": f"{receiver.url}/hooks/orders",
                               "orders/paid": f"{receiver.url}/hooks/orders"})
    order = place(server, {"sku": "CAB-2019", "quantity": 2})
    control(server, "POST", f"/shops/{SHOP}/webhooks/deliver", {"topic": "orders/paid", "order_id": order["id"],
                                                                "duplicates": 1})
    control(server, "POST", "/webhooks/wait")
    [created] = receiver.of_topic("orders/create")
    headers, body = created["headers"], created["body"]
    assert shopify.verify_webhook(body, headers["X-Shopify-Hmac-Sha256"], CLIENT_SECRET)
    assert headers["X-Shopify-Shop-Domain"] == SHOP and headers["X-Shopify-Api-Version"] == "2026-10"
    assert headers["X-Shopify-Webhook-Id"] and headers["X-Shopify-Event-Id"] and headers["X-Shopify-Triggered-At"]
    payload = json.loads(body)
    assert payload["id"] == order["id"] > 2 ** 53 and payload["line_items"][0]["sku"] == "CAB-2019"
    assert not shopify.verify_webhook(body.replace(b'"quantity": 2', b'"quantity": 9'),
                                      headers["X-Shopify-Hmac-Sha256"], CLIENT_SECRET)
    assert not shopify.verify_webhook(body, base64.b64encode(b"x" * 32).decode(), CLIENT_SECRET)
    assert not shopify.verify_webhook(body, headers["X-Shopify-Hmac-Sha256"], "another-secret")
    assert not shopify.verify_webhook(b"", headers["X-Shopify-Hmac-Sha256"], CLIENT_SECRET)
    paid = receiver.of_topic("orders/paid")
    assert len(paid) == 2 and len({p["headers"]["X-Shopify-Event-Id"] for p in paid}) == 1


def test_failed_deliveries_are_retried_and_compliance_topics_go_to_the_app(server, shop, client, receiver):
    client.subscribe_webhooks({"app/uninstalled": f"{receiver.url}/hooks/app"})
    receiver.statuses = [500, 503]
    control(server, "POST", f"/shops/{SHOP}/webhooks/deliver", {"topic": "app/uninstalled"})
    control(server, "POST", f"/apps/{CLIENT_ID}/compliance", {"uri": f"{receiver.url}/hooks/compliance"})
    control(server, "POST", f"/shops/{SHOP}/webhooks/deliver", {"topic": "shop/redact", "delay": 0.05})
    control(server, "POST", "/webhooks/wait")
    assert len(receiver.of_topic("app/uninstalled")) == 3
    [delivery] = control(server, "GET", "/webhooks/deliveries?topic=app/uninstalled")["deliveries"]
    assert [a["status"] for a in delivery["attempts"]] == [500, 503, 200] and delivery["delivered"]
    [redact] = receiver.of_topic("shop/redact")
    assert json.loads(redact["body"]) == {"shop_id": shop.id, "shop_domain": SHOP}


def test_inventory_changes_emit_inventory_levels_update(server, shop, client, receiver):
    wine = add_wine(shop)
    client.subscribe_webhooks({"inventory_levels/update": f"{receiver.url}/hooks/inventory"})
    main = location_ids(shop)[0]
    client.set_quantities([{"inventory_item_id": wine.inventory_item_id, "location_id": main, "quantity": 5,
                            "change_from": 12}])
    control(server, "POST", "/webhooks/wait")
    [hook] = receiver.of_topic("inventory_levels/update")
    assert json.loads(hook["body"])["available"] == 5
