"""Connecting a store by OAuth against the sandbox: Add Store, the sandbox's Install, the callback; and
every way a callback can be refused (forged hmac, replayed, expired or foreign state). Then tokens:
refreshed before they lapse, and a refused refresh shows "token issue" and is retried."""

import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import current_app

from plugins.shopify import connection
from tests.conftest import login_as
from wms.extensions import db
from wms.integrations.errors import TransientRemoteError
from wms.plugins.models import Store, SyncRecord

from .conftest import SHOP, connect_store, control_get


@pytest.fixture
def app_config(redis_url):
    return {"WMS_PLUGINS": ["plugins.shopify"], "REDIS_URL": redis_url, "WMS_RELAY_ON_COMMIT": True,
            "WMS_RETRY_BACKOFF": (1, 1, 1)}


@pytest.fixture
def web(app, admin):
    return login_as(app.test_client(), admin)


def add_store(web, server, shop=SHOP, **fields):
    response = web.post("/plugins/shopify/stores/add", data={"shop": shop, "sandbox_url": server.url, **fields})
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def install(authorize_url):
    """Press Install on the sandbox's page: the callback URL it redirects to (path and query)."""
    parts = urlsplit(authorize_url)
    page = requests.get(authorize_url, timeout=5)
    assert page.status_code == 200 and "Install" in page.text
    fields = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    answer = requests.post(f"{parts.scheme}://{parts.netloc}{parts.path}", data=fields, allow_redirects=False,
                           timeout=5)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    return f"{back.path}?{back.query}"


def store_of(shop=SHOP):
    db.session.expire_all()
    return db.session.query(Store).filter_by(remote_address=f"https://{shop}").one()


def test_add_store_install_and_back_connected_with_locations(shopify_active, web, server, sandbox):
    authorize = add_store(web, server, name="Online shop")
    assert authorize.startswith(f"{server.url}/shops/{SHOP}/admin/oauth/authorize?")
    query = parse_qs(urlsplit(authorize).query)
    assert query["redirect_uri"] == [f"{shopify_active}/plugins/shopify/oauth/callback"]
    assert "write_inventory" in query["scope"][0]
    assert store_of().status == "pending"

    landed = web.get(install(authorize))
    assert landed.status_code == 302
    store = store_of()
    assert landed.headers["Location"].endswith(f"/admin/stores/{store.id}")
    assert store.status == "connected" and store.name == "Online shop"
    assert sorted(loc.remote_name for loc in store.locations) == ["Main Cellar", "Tasting Room"]
    credentials = connection.stored_credentials(store)
    assert credentials["access_token"].startswith("shpat_") and credentials["refresh_token"]
    assert credentials["access_token"] not in (store.credentials or "")       # encrypted at rest

    page = web.get(f"/admin/stores/{store.id}")
    assert "Main Cellar" in page.text and "Tasting Room" in page.text

    from tests.framework.conftest import run_jobs
    run_jobs(current_app._get_current_object())
    subscriptions = sandbox.shops[SHOP].subscriptions.values()
    assert {s.topic for s in subscriptions} >= {"ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_PAID",
                                                 "ORDERS_CANCELLED", "APP_UNINSTALLED"}
    assert {s.uri for s in subscriptions} == {f"{shopify_active}/webhooks/shopify/{store.id}"}


def test_a_forged_callback_hmac_is_refused(shopify_active, web, server):
    callback = install(add_store(web, server))
    path, _, query = callback.partition("?")
    params = {k: v[0] for k, v in parse_qs(query).items()}
    params["hmac"] = "0" * 64
    refused = web.get(f"{path}?{urlencode(params)}")
    assert refused.status_code == 400
    assert "signature (hmac) does not match" in refused.text
    assert store_of().status == "pending" and not connection.stored_credentials(store_of())
    # The state was spent by the forged attempt: the genuine answer cannot be used afterwards either.
    assert web.get(callback).status_code == 400


def test_a_replayed_state_is_refused(shopify_active, web, server):
    callback = install(add_store(web, server))
    assert web.get(callback).status_code == 302
    replay = web.get(callback)
    assert replay.status_code == 400 and "already used" in replay.text


def test_a_state_from_another_session_is_refused(shopify_active, web, server, app, admin):
    callback = install(add_store(web, server))
    other_browser = login_as(app.test_client(), admin)
    refused = other_browser.get(callback)
    assert refused.status_code == 400 and "another browser session" in refused.text
    assert store_of().status == "pending"


def test_an_expired_state_is_refused(shopify_active, web, server):
    callback = install(add_store(web, server))
    record = db.session.query(SyncRecord).filter_by(plugin="shopify", object_type=connection.OAUTH_RECORD).one()
    record.data = dict(record.data, expires_at=time.time() - 1)
    db.session.commit()
    refused = web.get(callback)
    assert refused.status_code == 400 and "took too long" in refused.text
    assert store_of().status == "pending"


def test_bad_shop_domains_get_a_clear_message_and_nothing_is_created(shopify_active, web, server):
    for typed, message in (("", "Enter the shop"), ("winery", "winery.myshopify.com"),
                           ("shop.example.com", "Not a Shopify shop domain"),
                           ("-bad.myshopify.com", "Not a Shopify shop domain")):
        response = web.post("/plugins/shopify/stores/add", data={"shop": typed, "sandbox_url": server.url})
        assert response.status_code == 400 and message in response.text, typed
    assert db.session.query(Store).count() == 0


def test_an_admin_typing_the_full_address_is_understood(shopify_active, web, server):
    add_store(web, server, shop=f"https://{SHOP.upper()}/admin")
    assert store_of().remote_address == f"https://{SHOP}"


def test_an_expiring_token_is_refreshed_and_saved(shopify_active, sandbox, server):
    store = connect_store(sandbox, server)
    old = connection.stored_credentials(store)
    connection.save_credentials(store, dict(old, expires_at=time.time() + 10))
    db.session.commit()
    info = connection.client_for(store).shop_info()
    assert info["myshopify_domain"] == SHOP
    new = connection.stored_credentials(store_of())
    assert new["access_token"] != old["access_token"] and new["refresh_token"] != old["refresh_token"]
    assert new["expires_at"] > time.time() + 3000


def test_a_refused_refresh_shows_token_issue_and_is_retried(shopify_active, sandbox, server):
    store = connect_store(sandbox, server)
    credentials = connection.stored_credentials(store)
    connection.save_credentials(store, dict(credentials, refresh_token="shprt_revoked", expires_at=time.time()))
    db.session.commit()
    with pytest.raises(TransientRemoteError):
        connection.client_for(store)
    store = store_of()
    assert store.status == "token_issue" and "Reconnect the store" in store.status_message


def test_settings_saved_on_the_store_page_keep_the_connection(shopify_active, sandbox, server, web):
    store = connect_store(sandbox, server)
    response = web.post(f"/admin/stores/{store.id}/settings", data={"stock_mode": "absolute", "stock_sync": "1",
                                                                   "order_status": "open"})
    assert response.status_code == 302
    from tests.framework.conftest import run_jobs
    run_jobs(current_app._get_current_object())
    store = store_of()
    assert store.setting("stock_mode") == "absolute"
    assert connection.client_for(store).shop_info()["myshopify_domain"] == SHOP
    assert control_get(server, "shops")["shops"]


def test_test_connection_names_the_shop(shopify_active, sandbox, server):
    from plugins.shopify.plugin import plugin
    store = connect_store(sandbox, server)
    ok, message = plugin.test_connection(store)
    assert ok and SHOP in message


def test_the_demo_sandbox_knows_the_configured_app(shopify_active, app):
    from plugins.shopify.plugin import plugin
    from plugins.shopify.sandbox import create_app as create_sandbox
    config = plugin.sandbox_config(app)
    assert config["apps"] == {"wms-test-app": "shpss_test_secret_0123456789"}
    assert "wms-test-app" in create_sandbox(config).sandbox.apps


def test_guide_and_shopify_store_page_render(shopify_active, sandbox, server, web):
    store = connect_store(sandbox, server)
    guide = web.get("/admin/plugins/shopify/guide")
    assert guide.status_code == 200 and "Delta" in guide.text and "/plugins/shopify/oauth/callback" in guide.text
    page = web.get(f"/plugins/shopify/stores/{store.id}")
    assert page.status_code == 200
    assert f"/plugins/shopify/stores/{store.id}/catalog" in page.text
    assert f"/plugins/shopify/stores/{store.id}/returns" in page.text
    assert web.get("/plugins/shopify/stores").status_code == 200
    settings = web.get("/admin/plugins/shopify")
    assert "/plugins/shopify/stores/add" in settings.text
