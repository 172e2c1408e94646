"""The webhook endpoints of every built-in marketplace plugin, fuzzed with random bodies and headers:
never a server error, and nothing stored (no event, no job)."""

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from wms.config import BUILTIN_PLUGINS
from wms.core.models import OutboxMessage
from wms.extensions import db
from wms.plugins import settings as plugin_settings
from wms.plugins.manager import plugin_host
from wms.plugins.models import Store, WebhookEvent

# The headers the stores really send, so the fuzz reaches past the first "missing header" check.
KNOWN_HEADERS = [
    "X-Shopify-Hmac-Sha256", "X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Event-Id",
    "X-Shopify-Webhook-Id", "X-Shopify-Triggered-At", "X-Shopify-API-Version",
    "X-WC-Webhook-Signature", "X-WC-Webhook-Topic", "X-WC-Webhook-Source", "X-WC-Webhook-Delivery-ID",
    "X-WC-Webhook-ID", "X-WC-Webhook-Resource", "X-WC-Webhook-Event", "Content-Type",
]
header_value = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
    st.binary(min_size=32, max_size=32).map(lambda b: __import__("base64").b64encode(b).decode()),
    st.sampled_from(["orders/create", "order.created", "application/json", "sandbox-winery.myshopify.com", ""]),
)
headers = st.dictionaries(st.one_of(st.sampled_from(KNOWN_HEADERS),
                                    st.from_regex(r"X-[A-Za-z]{1,12}", fullmatch=True)),
                          header_value, max_size=8)
bodies = st.one_of(st.binary(max_size=2000),
                   st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                                lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                            max_size=4),
                                max_leaves=20).map(lambda v: __import__("json").dumps(v).encode()))


@pytest.fixture
def app_config():
    return {"WMS_PLUGINS": list(BUILTIN_PLUGINS)}


@pytest.fixture
def stores(app):
    """One active store per marketplace plugin, with secrets the fuzz does not know."""
    made = []
    for plugin in plugin_host().plugins("marketplace"):
        plugin_settings.state_for(plugin.name).is_active = True
        secrets = {s.key: "unguessable-" + s.key for s in plugin.settings if s.is_secret}
        plugin_settings.state_for(plugin.name).secrets = plugin_settings.encrypt(secrets)
        store = Store(plugin=plugin.name, name=f"{plugin.name} store", remote_address="https://shop.example.com",
                      status="connected", settings={},
                      credentials=plugin_settings.encrypt({"webhook_secret": "unguessable-store",
                                                           "access_token": "unguessable-token"}))
        db.session.add(store)
        made.append(store)
    db.session.commit()
    assert made, "no marketplace plugin is built in"
    return [(s.plugin, s.id) for s in made]


def stored_count():
    return (db.session.scalar(select(func.count()).select_from(WebhookEvent)),
            db.session.scalar(select(func.count()).select_from(OutboxMessage)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, sent_headers=headers, pick=st.integers(min_value=0))
def test_random_deliveries_never_fail_and_store_nothing(client, stores, body, sent_headers, pick):
    plugin_name, store_id = stores[pick % len(stores)]
    before = stored_count()
    response = client.post(f"/webhooks/{plugin_name}/{store_id}", data=body, headers=sent_headers)
    assert response.status_code < 500
    assert response.status_code in (200, 400, 401, 404)
    assert response.is_json
    db.session.expire_all()
    assert stored_count() == before


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.one_of(st.text(max_size=30), st.sampled_from(["shopify/0", "woocommerce/99999", "nope/1"])),
       body=st.binary(max_size=200))
def test_random_webhook_paths_never_fail(client, stores, path, body):
    response = client.post("/webhooks/" + path.replace("?", "").replace("#", ""), data=body)
    assert response.status_code in (200, 400, 401, 404, 405, 308)
