"""Test setup of connected Shopify stores without the OAuth dance: the sandbox issues the token,
the Store row holds it encrypted as the plugin's OAuth callback would, and the plugin is active."""

from wms.extensions import db
from wms.plugins import settings as plugin_settings
from wms.plugins.manager import plugin_host
from wms.plugins.models import Store

from .conftest import CLIENT_ID, CLIENT_SECRET, SHOP


def activate_plugin():
    """The Shopify plugin active, with the test app's client id and secret (as its settings page saves them)."""
    host = plugin_host()
    host.set_active("shopify", True)
    state = plugin_settings.state_for("shopify")
    state.settings = {"client_id": CLIENT_ID}
    state.secrets = plugin_settings.encrypt({"client_secret": CLIENT_SECRET})
    db.session.commit()
    return host.get("shopify")


def connected_store(sandbox, shop_url, name="Cellar door shop", shop=SHOP, **settings):
    """A connected Store for `shop`, its API at the sandbox (`shop_url`), with `settings` on top."""
    token = sandbox.create_token(shop)
    store = Store(plugin="shopify", name=name, remote_address=f"https://{shop}", status="connected",
                  credentials=plugin_settings.encrypt({"access_token": token.value,
                                                       "refresh_token": token.refresh_token,
                                                       "expires_at": token.expires_at}),
                  settings={"shop": shop, "api_base_url": shop_url, **settings})
    db.session.add(store)
    db.session.commit()
    return store


def mapped_store(app, server, warehouse=None, **settings):
    """A connected store on the sandbox `server`, its first location mapped to `warehouse` (if given),
    and its products mapped by the plugin's own Sync Products."""
    from plugins.shopify import catalog
    from tests.framework.conftest import run_jobs
    from wms.plugins.models import StoreLocation
    activate_plugin()
    shop = server.app.sandbox.shops[SHOP]
    store = connected_store(server.app.sandbox, f"{server.url}/shops/{SHOP}", **settings)
    if warehouse is not None:
        store.locations.append(StoreLocation(
            remote_id=f"gid://shopify/Location/{shop.primary_location.id}", remote_name=shop.primary_location.name,
            warehouse_id=warehouse.id, shipping_process_id=warehouse.shipping_processes[0].id, is_default=True))
    catalog.start_sync(store)
    db.session.commit()
    run_jobs(app)
    return store
