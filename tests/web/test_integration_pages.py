"""Admin pages of the plugin framework: plugins, plugin settings, guide, stores, activity and failed work.

The plugin under test is `tests/web/fake_plugin.py` (a MarketplacePlugin named fakeshop)."""

import html
import json
import re

import pytest
from sqlalchemy import func, select

from tests.factories import ProductFactory, WarehouseFactory
from tests.web import fake_plugin
from wms.core.models import OutboxMessage
from wms.core.services import catalog
from wms.extensions import db
from wms.plugins import settings as plugin_settings
from wms.plugins.models import ActivityLog, PluginState, ProductMapping, RemoteLevel, StockPushState, Store, \
    StoreLocation
from wms.web import integrations

API_TOKEN = "tok-fake-abcdefgh-4321"
STORE_SECRET = "sk_store_secret_98765"


@pytest.fixture
def app_config():
    # No Redis in these tests: committed outbox rows stay pending, which is what they assert.
    return {"WMS_PLUGINS": ["tests.web.fake_plugin"], "WMS_RELAY_ON_COMMIT": False}


def page_text(response):
    return html.unescape(response.get_data(as_text=True))


def field_error(response, field_id):
    match = re.search(rf'<p class="error" id="{field_id}-error"[^>]*>(.*?)</p>', response.get_data(as_text=True), re.S)
    return html.unescape(match.group(1)).strip() if match else None


def section(response, element_id):
    """The HTML of the element with this id, up to the next element of the same tag closing."""
    text = page_text(response)
    match = re.search(rf'<(\w+)[^>]*id="{element_id}"[^>]*>(.*?)</\1>', text, re.S)
    return match.group(2) if match else None


def fresh(model, key):
    db.session.expire_all()
    return db.session.get(model, key)


def outbox_rows(topic):
    db.session.expire_all()
    query = select(OutboxMessage).where(OutboxMessage.topic == topic).order_by(OutboxMessage.id)
    return db.session.scalars(query).all()


def activate(name="fakeshop", active=True):
    state = plugin_settings.state_for(name)
    state.is_active = active
    db.session.commit()


@pytest.fixture
def active_plugin(app):
    activate()


@pytest.fixture
def store(app):
    row = Store(plugin="fakeshop", name="Online shop", remote_address="http://127.0.0.1:9",
                settings={"stock_sync": True}, credentials=plugin_settings.encrypt({"api_secret": STORE_SECRET}),
                status="pending")
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def east(app):
    wh = WarehouseFactory(code="EAST", name="East cellar", bins=("E-01",))
    db.session.commit()
    return wh


def stores_now():
    db.session.expire_all()
    return [(s.plugin, s.name, s.remote_address, s.status, s.status_message, s.settings, s.credentials)
            for s in db.session.scalars(select(Store).order_by(Store.id))]


def locations_now():
    db.session.expire_all()
    return [(loc.store_id, loc.remote_id, loc.remote_name, loc.warehouse_id, loc.shipping_process_id, loc.is_default)
            for loc in db.session.scalars(select(StoreLocation).order_by(StoreLocation.id))]


# -- access --------------------------------------------------------------------------------------

def test_operator_gets_403_on_every_integrations_route(app, operator_client, store):
    message = OutboxMessage(topic="fakeshop.order", payload={}, status="failed", attempts=1)
    db.session.add(message)
    db.session.commit()
    ids = {"name": "fakeshop", "store_id": store.id, "message_id": message.id}
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("integrations.")]
    assert len(rules) >= 14
    before = (stores_now(), locations_now(), fresh(PluginState, "fakeshop"), fresh(OutboxMessage, message.id).status)
    for rule in rules:
        path = rule.build({k: v for k, v in ids.items() if k in rule.arguments})[1]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = operator_client.open(path, method=method, data={"name": "X", "account": "x"})
            assert response.status_code == 403, (method, path)
    assert (stores_now(), locations_now(), fresh(PluginState, "fakeshop"),
            fresh(OutboxMessage, message.id).status) == before


def test_admin_menu_links_plugins_and_activity(admin_client):
    text = page_text(admin_client.get("/admin/plugins"))
    assert 'href="/admin/plugins"' in text and 'href="/admin/activity"' in text


# -- plugins page, activation --------------------------------------------------------------------

def test_plugins_page_lists_fakeshop_under_marketplaces(admin_client):
    response = admin_client.get("/admin/plugins")
    assert response.status_code == 200
    marketplaces = section(response, "section-marketplaces")
    assert "Fake Shop" in marketplaces and "A storefront that exists only in the tests." in marketplaces
    assert "inactive" in marketplaces and "Activate" in marketplaces
    assert 'href="/admin/plugins/fakeshop"' in marketplaces and 'href="/admin/plugins/fakeshop/guide"' in marketplaces
    assert "Fake Shop" not in section(response, "section-fulfillment")
    assert "No fulfillment plugin is installed." in section(response, "section-fulfillment")


def test_activate_and_deactivate_take_effect_without_restart(admin_client):
    assert admin_client.get("/fakeshop/ping").status_code == 404

    response = admin_client.post("/admin/plugins/fakeshop/activate", follow_redirects=True)
    assert "Fake Shop is now active." in page_text(response)
    assert fresh(PluginState, "fakeshop").is_active is True
    assert admin_client.get("/fakeshop/ping").get_data(as_text=True) == "pong from fakeshop"
    assert "Deactivate" in section(admin_client.get("/admin/plugins"), "section-marketplaces")

    response = admin_client.post("/admin/plugins/fakeshop/deactivate", follow_redirects=True)
    assert "Fake Shop is now inactive." in page_text(response)
    assert fresh(PluginState, "fakeshop").is_active is False
    assert admin_client.get("/fakeshop/ping").status_code == 404


def test_unknown_plugin_answers_404(admin_client):
    assert admin_client.get("/admin/plugins/nosuch").status_code == 404
    assert admin_client.post("/admin/plugins/nosuch/activate").status_code == 404
    assert fresh(PluginState, "nosuch") is None


# -- plugin settings -----------------------------------------------------------------------------

def test_settings_page_renders_form_guide_button_extra_fragment_and_add_store(admin_client):
    text = page_text(admin_client.get("/admin/plugins/fakeshop"))
    assert 'name="api_token" type="password"' in text and 'name="account"' in text
    assert 'id="guide-link" href="/admin/plugins/fakeshop/guide"' in text
    assert "Webhooks are registered for Fake Shop." in text          # plugin.settings_template
    assert 'id="add-store"\n       href="/admin/plugins/fakeshop/stores/new"' in text
    assert "Not set yet." in text


def test_add_store_links_to_the_plugins_own_endpoint_when_it_has_one(admin_client, monkeypatch):
    monkeypatch.setattr(fake_plugin.plugin, "add_store_endpoint", "integrations.activity")
    text = page_text(admin_client.get("/admin/plugins/fakeshop"))
    assert 'id="add-store"\n       href="/admin/activity"' in text


def test_settings_save_encrypts_the_secret_and_shows_it_masked(admin_client):
    response = admin_client.post("/admin/plugins/fakeshop", data={"api_token": API_TOKEN, "account": "hillside"},
                                 follow_redirects=True)
    assert "Saved the settings of Fake Shop." in page_text(response)
    state = fresh(PluginState, "fakeshop")
    assert state.settings == {"account": "hillside"}
    assert API_TOKEN not in (state.secrets or "") and API_TOKEN not in json.dumps(state.settings)
    assert plugin_settings.decrypt(state.secrets) == {"api_token": API_TOKEN}

    page = page_text(admin_client.get("/admin/plugins/fakeshop"))
    assert API_TOKEN not in page
    assert f"Stored: {plugin_settings.MASK}4321. Leave blank to keep it." in page
    assert 'value="hillside"' in page


def test_blank_secret_keeps_the_stored_one(admin_client):
    admin_client.post("/admin/plugins/fakeshop", data={"api_token": API_TOKEN, "account": "hillside"})
    response = admin_client.post("/admin/plugins/fakeshop", data={"api_token": "", "account": "valley"})
    assert response.status_code == 302
    state = fresh(PluginState, "fakeshop")
    assert state.settings == {"account": "valley"}
    assert plugin_settings.decrypt(state.secrets) == {"api_token": API_TOKEN}


def test_missing_required_setting_shows_error_next_to_it_and_saves_nothing(admin_client):
    admin_client.post("/admin/plugins/fakeshop", data={"api_token": API_TOKEN, "account": "hillside"})
    before = fresh(PluginState, "fakeshop")
    before = (before.settings, before.secrets)
    response = admin_client.post("/admin/plugins/fakeshop", data={"api_token": "tok-new-value-000000", "account": " "})
    assert response.status_code == 400
    assert field_error(response, "f-account") == "Required."
    assert "tok-new-value-000000" not in page_text(response)        # a typed secret is not echoed back
    after = fresh(PluginState, "fakeshop")
    assert (after.settings, after.secrets) == before


def test_test_connection_shows_the_remotes_answer(admin_client):
    admin_client.post("/admin/plugins/fakeshop", data={"api_token": API_TOKEN, "account": "hillside"})
    response = admin_client.post("/admin/plugins/fakeshop/test", follow_redirects=True)
    assert "Connection to Fake Shop works: Signed in as hillside." in page_text(response)

    admin_client.post("/admin/plugins/fakeshop", data={"api_token": "", "account": "refused"})
    response = admin_client.post("/admin/plugins/fakeshop/test", follow_redirects=True)
    assert response.status_code == 200
    assert ("Connection to Fake Shop failed: Fake Shop refused the API token for account refused."
            in page_text(response))


# -- guide ---------------------------------------------------------------------------------------

def test_guide_page_renders_the_plugins_template_in_the_layout(admin_client):
    response = admin_client.get("/admin/plugins/fakeshop/guide")
    assert response.status_code == 200
    text = page_text(response)
    assert "Create an API token in the Fake Shop partner dashboard" in text
    assert 'class="topbar"' in text                                   # inside base.html


def test_guide_page_answers_404_without_a_guide(admin_client, monkeypatch):
    monkeypatch.setattr(fake_plugin.plugin, "guide_template", None)
    assert admin_client.get("/admin/plugins/fakeshop/guide").status_code == 404
    assert "Integration Guide" not in page_text(admin_client.get("/admin/plugins/fakeshop"))


# -- adding a store ------------------------------------------------------------------------------

def test_add_store_encrypts_credentials_and_announces_it(admin_client):
    response = admin_client.post("/admin/plugins/fakeshop/stores/new", data={
        "name": "Online shop", "remote_address": "http://127.0.0.1:8123/", "api_secret": STORE_SECRET,
        "stock_sync": "1"})
    store = db.session.scalars(select(Store)).one()
    assert response.status_code == 302 and response.headers["Location"] == f"/admin/stores/{store.id}"
    assert (store.plugin, store.name, store.remote_address, store.status) == (
        "fakeshop", "Online shop", "http://127.0.0.1:8123", "pending")
    assert store.settings == {"stock_sync": True}
    assert STORE_SECRET not in store.credentials
    assert plugin_settings.decrypt(store.credentials) == {"api_secret": STORE_SECRET}
    assert [m.payload for m in outbox_rows("store.saved")] == [{"store_id": store.id, "created": True}]

    page = page_text(admin_client.get(f"/admin/stores/{store.id}"))
    assert STORE_SECRET not in page and f"{plugin_settings.MASK}8765" in page
    assert "pending" in section(admin_client.get(f"/admin/stores/{store.id}"), "store-status")


def test_add_store_refuses_a_duplicate_name(admin_client, store):
    before = stores_now()
    response = admin_client.post("/admin/plugins/fakeshop/stores/new", data={
        "name": "online SHOP", "remote_address": "http://127.0.0.1:8124", "api_secret": "other"})
    assert response.status_code == 400
    assert field_error(response, "f-name") == "Fake Shop already has a store named online SHOP."
    assert 'value="online SHOP"' in page_text(response)
    assert stores_now() == before and outbox_rows("store.saved") == []


def test_add_store_refuses_a_bad_address_next_to_the_field(admin_client):
    response = admin_client.post("/admin/plugins/fakeshop/stores/new", data={"name": "Shop", "remote_address": "shop"})
    assert response.status_code == 400
    assert field_error(response, "f-remote_address") == "Must start with https://"
    assert stores_now() == [] and outbox_rows("store.saved") == []


def test_add_store_is_only_for_marketplace_plugins(admin_client):
    assert admin_client.get("/admin/plugins/nosuch/stores/new").status_code == 404


# -- the store page ------------------------------------------------------------------------------

def test_store_test_connection_sets_the_status(admin_client, store, active_plugin):
    response = admin_client.post(f"/admin/stores/{store.id}/test", follow_redirects=True)
    assert "Connection to Online shop works: Online shop answers." in page_text(response)
    row = fresh(Store, store.id)
    assert (row.status, row.status_message) == ("connected", "Online shop answers.")

    admin_client.post(f"/admin/stores/{store.id}/settings", data={"api_secret": "wrong", "stock_sync": "1"})
    response = admin_client.post(f"/admin/stores/{store.id}/test", follow_redirects=True)
    row = fresh(Store, store.id)
    assert (row.status, row.status_message) == ("token_issue", "Fake Shop answered 401: the API secret was refused.")
    assert "Fake Shop answered 401: the API secret was refused." in section(response, "store-status")

    row.credentials = None
    db.session.commit()
    admin_client.post(f"/admin/stores/{store.id}/test")
    row = fresh(Store, store.id)
    assert (row.status, row.status_message) == ("disconnected", "No API secret is set for this store.")


def test_store_test_connection_needs_an_active_plugin(admin_client, store):
    response = admin_client.post(f"/admin/stores/{store.id}/test", follow_redirects=True)
    assert "The fakeshop plugin is not active." in page_text(response)
    assert fresh(Store, store.id).status == "pending"


def test_store_settings_save_keeps_a_blank_secret_and_announces_it(admin_client, store):
    response = admin_client.post(f"/admin/stores/{store.id}/settings", data={"api_secret": ""})
    assert response.status_code == 302
    row = fresh(Store, store.id)
    assert row.settings == {"stock_sync": False}
    assert plugin_settings.decrypt(row.credentials) == {"api_secret": STORE_SECRET}
    assert [m.payload for m in outbox_rows("store.saved")] == [{"store_id": store.id, "created": False}]


def test_store_settings_save_keeps_what_the_plugin_wrote_itself(admin_client, store):
    store.settings = {"stock_sync": True, "orders_checked_at": "2026-12-01T10:00:00Z"}
    db.session.commit()
    admin_client.post(f"/admin/stores/{store.id}/settings", data={"api_secret": ""})
    assert fresh(Store, store.id).settings == {"stock_sync": False, "orders_checked_at": "2026-12-01T10:00:00Z"}


def test_refresh_locations_adds_new_ones_and_never_drops_a_mapped_one(admin_client, store, active_plugin, warehouse,
                                                                      monkeypatch):
    response = admin_client.post(f"/admin/stores/{store.id}/locations/refresh", follow_redirects=True)
    assert "Online shop lists 2 location(s); 2 new." in page_text(response)
    assert [(r[1], r[2], r[3]) for r in locations_now()] == [("loc-1", "Tasting room", None),
                                                              ("loc-2", "Online warehouse", None)]
    first = db.session.scalars(select(StoreLocation).where(StoreLocation.remote_id == "loc-1")).one()
    first.warehouse_id = warehouse.id
    first.shipping_process_id = warehouse.shipping_processes[0].id
    first.is_default = True
    db.session.commit()

    monkeypatch.setattr(fake_plugin, "REMOTE_LOCATIONS", [("loc-3", "Pop-up")])
    response = admin_client.post(f"/admin/stores/{store.id}/locations/refresh", follow_redirects=True)
    assert "still mapped, so kept: Tasting room." in page_text(response)
    assert [(r[1], r[3]) for r in locations_now()] == [("loc-1", warehouse.id), ("loc-3", None)]


def _two_locations(store):
    store.locations.extend([StoreLocation(remote_id="loc-1", remote_name="Tasting room"),
                            StoreLocation(remote_id="loc-2", remote_name="Online warehouse")])
    db.session.commit()
    return store.locations


def test_mapping_refuses_a_process_of_another_warehouse(admin_client, store, warehouse, east):
    first, second = _two_locations(store)
    east_process = east.shipping_processes[0]
    before = locations_now()
    response = admin_client.post(f"/admin/stores/{store.id}/locations", data={
        f"warehouse_{first.id}": warehouse.id, f"process_{first.id}": east_process.id, "default": first.id})
    assert response.status_code == 400
    assert field_error(response, f"f-process_{first.id}") == "In-house shipping belongs to EAST, not MAIN."
    assert locations_now() == before and outbox_rows("store.saved") == []


def test_mapping_needs_exactly_one_mapped_default(admin_client, store, warehouse, east):
    first, second = _two_locations(store)
    main_process, east_process = warehouse.shipping_processes[0], east.shipping_processes[0]
    before = locations_now()
    mapping = {f"warehouse_{first.id}": warehouse.id, f"process_{first.id}": main_process.id,
               f"warehouse_{second.id}": east.id, f"process_{second.id}": east_process.id}
    response = admin_client.post(f"/admin/stores/{store.id}/locations", data=mapping)
    assert response.status_code == 400
    assert field_error(response, "f-default") == "Mark one mapped location as the default for new orders."
    assert locations_now() == before

    unmapped = {f"warehouse_{first.id}": warehouse.id, f"process_{first.id}": main_process.id, "default": second.id}
    response = admin_client.post(f"/admin/stores/{store.id}/locations", data=unmapped)
    assert field_error(response, "f-default") == "The default for new orders must be a mapped location."
    assert locations_now() == before

    response = admin_client.post(f"/admin/stores/{store.id}/locations", data={**mapping, "default": second.id},
                                 follow_redirects=True)
    assert "New orders go to EAST (In-house shipping)." in page_text(response)
    assert [(r[1], r[3], r[4], r[5]) for r in locations_now()] == [
        ("loc-1", warehouse.id, main_process.id, False), ("loc-2", east.id, east_process.id, True)]
    assert [m.payload for m in outbox_rows("store.saved")] == [{"store_id": store.id, "created": False}]


def test_mapping_refuses_a_warehouse_without_a_process(admin_client, store, warehouse):
    first, _ = _two_locations(store)
    response = admin_client.post(f"/admin/stores/{store.id}/locations", data={
        f"warehouse_{first.id}": warehouse.id, "default": first.id})
    assert field_error(response, f"f-process_{first.id}") == \
        "Choose how orders leave MAIN: one of its shipping processes."
    assert all(r[3] is None for r in locations_now())


def test_mapping_offers_processes_grouped_by_warehouse(admin_client, store, warehouse, east):
    first, _ = _two_locations(store)
    catalog.create_shipping_process(east, "WineDirect fulfillment", "winedirect")
    db.session.commit()
    text = page_text(admin_client.get(f"/admin/stores/{store.id}"))
    assert '<optgroup label="EAST">' in text and '<optgroup label="MAIN">' in text
    assert "WineDirect fulfillment" in text


def test_product_mappings_table_searches(admin_client, store):
    cab = ProductFactory(sku="CAB-2021", name="Estate Cabernet 2021")
    merlot = ProductFactory(sku="MER-2020", name="Valley Merlot 2020")
    db.session.add_all([
        ProductMapping(store_id=store.id, product_id=cab.id, remote_product_id="p-11", remote_variant_id="v-11",
                       remote_sku="CAB-2021", matched_by="sku"),
        ProductMapping(store_id=store.id, product_id=merlot.id, remote_product_id="p-12", remote_variant_id="v-12",
                       remote_sku="MER-2020", matched_by="barcode")])
    db.session.commit()
    table = section(admin_client.get(f"/admin/stores/{store.id}"), "mappings")
    assert "CAB-2021" in table and "MER-2020" in table and "barcode" in table
    table = section(admin_client.get(f"/admin/stores/{store.id}?q=merlot"), "mappings")
    assert "MER-2020" in table and "CAB-2021" not in table
    assert "No product matches “nothing”." in page_text(admin_client.get(f"/admin/stores/{store.id}?q=nothing"))


def test_retry_of_failed_stock_pushes_marks_products_and_opens_a_window(admin_client, store, product):
    other = ProductFactory(sku="MER-2020")
    db.session.add_all([
        RemoteLevel(store_id=store.id, product_id=product.id, remote_location_id="loc-1", pushed_quantity=12,
                    status="failed", message="Fake Shop answered 422: unknown inventory item."),
        RemoteLevel(store_id=store.id, product_id=other.id, remote_location_id="loc-1", pushed_quantity=3,
                    status="synced"),
        StockPushState(store_id=store.id, product_id=product.id, change_seq=4, pushed_seq=4)])
    db.session.commit()
    assert "Fake Shop answered 422: unknown inventory item." in section(admin_client.get(f"/admin/stores/{store.id}"),
                                                                         "failed-levels")

    response = admin_client.post(f"/admin/stores/{store.id}/stock/retry", follow_redirects=True)
    assert "Pushing the current stock of 1 product(s) to Online shop again." in page_text(response)
    state = fresh(StockPushState, (store.id, product.id))
    assert state.change_seq > state.pushed_seq
    assert fresh(StockPushState, (store.id, other.id)) is None
    assert fresh(Store, store.id).push_due_at is not None
    assert [m.payload for m in outbox_rows("stock.push")] == [{"store_id": store.id}]


def test_retry_without_failed_pushes_changes_nothing(admin_client, store):
    response = admin_client.post(f"/admin/stores/{store.id}/stock/retry", follow_redirects=True)
    assert "No failed stock push for Online shop." in page_text(response)
    assert outbox_rows("stock.push") == [] and fresh(Store, store.id).push_due_at is None


def test_unknown_store_answers_404(admin_client):
    assert admin_client.get("/admin/stores/999").status_code == 404
    assert admin_client.post("/admin/stores/999/test").status_code == 404


# -- activity and failed work --------------------------------------------------------------------

@pytest.fixture
def seeded_activity(store):
    db.session.add_all([
        ActivityLog(plugin="fakeshop", store_id=store.id, method="GET", path="/admin/api/locations.json", status=200,
                    duration_ms=41),
        ActivityLog(plugin="fakeshop", store_id=store.id, method="POST", path="/admin/api/inventory_levels/set.json",
                    status=422, duration_ms=87, error="Unknown inventory item 7788."),
        ActivityLog(plugin="otherplugin", method="GET", path="/v1/ping", status=200, duration_ms=5)])
    failed = OutboxMessage(topic="fakeshop.order.push", payload={"order_id": 42}, status="failed", attempts=3,
                           last_error="RemoteRejected: order 42 refused")
    dead = OutboxMessage(topic="winedirect.sync", payload={"order_id": 7}, status="dead", attempts=9,
                         last_error="RemoteTimeout: gave up")
    done = OutboxMessage(topic="fakeshop.order.push", payload={"order_id": 43}, status="done", attempts=1)
    db.session.add_all([failed, dead, done])
    db.session.commit()
    return failed, dead, done


def test_activity_page_lists_calls_and_failed_work(admin_client, seeded_activity):
    failed, dead, done = seeded_activity
    response = admin_client.get("/admin/activity")
    assert response.status_code == 200
    calls = section(response, "calls")
    assert "/admin/api/inventory_levels/set.json" in calls and "Unknown inventory item 7788." in calls
    assert calls.index("/v1/ping") < calls.index("/admin/api/locations.json")          # newest first
    work = section(response, "failed-work")
    assert "RemoteRejected: order 42 refused" in work and "RemoteTimeout: gave up" in work
    assert f'id="failure-{done.id}"' not in work
    assert '{"order_id": 42}' in work


def test_activity_filters(admin_client, store, seeded_activity):
    calls = section(admin_client.get("/admin/activity?errors=1"), "calls")
    assert "set.json" in calls and "locations.json" not in calls and "/v1/ping" not in calls
    calls = section(admin_client.get("/admin/activity?plugin=otherplugin"), "calls")
    assert "/v1/ping" in calls and "set.json" not in calls
    calls = section(admin_client.get(f"/admin/activity?store_id={store.id}"), "calls")
    assert "set.json" in calls and "/v1/ping" not in calls
    work = section(admin_client.get("/admin/activity?topic=winedirect"), "failed-work")
    assert "winedirect.sync" in work and "fakeshop.order.push" not in work


def test_retry_sets_failed_work_back_to_pending(admin_client, seeded_activity):
    failed, dead, done = seeded_activity
    response = admin_client.post(f"/admin/outbox/{failed.id}/retry", data={"next": "/admin/activity?topic=fakeshop"})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/activity?topic=fakeshop"
    row = fresh(OutboxMessage, failed.id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 0, None)
    assert f'id="failure-{failed.id}"' not in section(admin_client.get("/admin/activity"), "failed-work")


def test_retry_refuses_work_that_did_not_fail_and_foreign_next(admin_client, seeded_activity):
    failed, dead, done = seeded_activity
    response = admin_client.post(f"/admin/outbox/{done.id}/retry", follow_redirects=True)
    assert "only failed, dead or skipped work can be retried" in page_text(response)
    assert (fresh(OutboxMessage, done.id).status, fresh(OutboxMessage, done.id).attempts) == ("done", 1)
    response = admin_client.post(f"/admin/outbox/{dead.id}/retry", data={"next": "https://evil.example/"})
    assert response.headers["Location"] == "/admin/activity"
    assert fresh(OutboxMessage, dead.id).status == "pending"


def test_recent_calls_and_failed_work_for_plugin_dashboards(app, store, seeded_activity):
    failed, dead, done = seeded_activity
    assert [c.path for c in integrations.recent_calls(plugin="fakeshop", errors_only=True)] == [
        "/admin/api/inventory_levels/set.json"]
    assert len(integrations.recent_calls(store_id=store.id)) == 2
    assert len(integrations.recent_calls(limit=1)) == 1
    assert [m.id for m in integrations.failed_work()] == [dead.id, failed.id]
    assert [m.id for m in integrations.failed_work(topic_prefix="fakeshop")] == [failed.id]
    assert integrations.failed_work(topic_prefix="fakeshop_") == []          # _ is not a wildcard
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 3
