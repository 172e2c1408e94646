"""The world the fault drills run in: one warehouse of 500 wines, two Shopify stores (Absolute and
Delta) on one Shopify sandbox, one WooCommerce store on the HTTPS WooCommerce sandbox, every product
mapped by each plugin's own product sync, and stock at zero on every side to begin with."""

import random
from dataclasses import dataclass, field

from sqlalchemy import select

from plugins.shopify import catalog as shopify_catalog
from plugins.woocommerce import catalog as woo_catalog
from plugins.woocommerce import store as woo_store
from tests.factories import bin_of
from tests.framework.conftest import run_jobs
from wms.core.models import WarehouseLevel
from wms import outbox
from wms.core.services import catalog, inventory
from wms.extensions import db
from wms.plugins import settings as plugin_settings
from wms.plugins.manager import plugin_host
from wms.plugins.models import ProductMapping, Store, StoreLocation

SHOPIFY_CLIENT_ID, SHOPIFY_SECRET = "drill-app", "shpss_drill_secret_77"
SHOPS = ("drill-absolute.myshopify.com", "drill-delta.myshopify.com")
WOO_KEY, WOO_SECRET = "ck_" + "d" * 40, "cs_" + "e" * 40


@dataclass
class World:
    warehouse: object
    bins: list
    products: list
    shopify: object            # the Shopify SandboxServer
    woo: object                # the WooCommerce SandboxServer
    stores: list = field(default_factory=list)

    # -- what each remote shows -----------------------------------------------------------------
    def remote_levels(self, store):
        """{sku: available} as the store's sandbox holds it, at the mapped location."""
        if store.plugin == "shopify":
            shop = self.shopify.app.sandbox.shops[store.setting("shop")]
            location_id = int(store.locations[0].remote_id.rsplit("/", 1)[1])
            levels = {}
            for product in self.products:
                variant = shop.variant_by_sku(product.sku)
                level = shop.levels.get((variant.inventory_item_id, location_id))
                levels[product.sku] = level.quantities["available"] if level else 0
            return levels
        sandbox = self.woo.app.sandbox
        return {p.sku: sandbox.products[sandbox.sku_owner[p.sku.lower()]]["stock_quantity"] or 0
                for p in self.products}

    def wms_levels(self):
        rows = db.session.scalars(select(WarehouseLevel).where(WarehouseLevel.warehouse_id == self.warehouse.id)
                                  .execution_options(populate_existing=True))
        by_product = {r.product_id: r.available for r in rows}
        return {p.sku: max(by_product.get(p.id, 0), 0) for p in self.products}

    def mismatches(self):
        """[(store, sku, remote, wms)] wherever a store shows something else than the WMS."""
        db.session.expire_all()
        wms = self.wms_levels()
        found = []
        for store in self.stores:
            remote = self.remote_levels(store)
            found += [(store.name, sku, remote[sku], wms[sku]) for sku in wms if remote[sku] != wms[sku]]
        return found


def build(app, shopify_server, woo_server, products=500):
    warehouse = catalog.create_warehouse("DRILL", "Drill cellar", bins=("A-01", "A-02"))
    items = [catalog.create_product({"sku": f"DR-{n:04d}", "name": f"Drill wine {n}"}) for n in range(products)]
    db.session.commit()
    for shop_domain in SHOPS:
        shop = shopify_server.app.sandbox.shops[shop_domain]
        for product in items:
            shop.add_product(product.name, [{"sku": product.sku, "price": "20.00"}], stock=0)
    for product in items:
        woo_server.app.sandbox.add_product(name=product.name, sku=product.sku, regular_price="20.00",
                                           manage_stock=True, stock_quantity=0)
    world = World(warehouse, [bin_of(warehouse, "A-01"), bin_of(warehouse, "A-02")], items, shopify_server, woo_server)
    activate_plugins()
    world.stores = [shopify_store(shopify_server, SHOPS[0], "Absolute shop", "absolute", warehouse),
                    shopify_store(shopify_server, SHOPS[1], "Delta shop", "delta", warehouse),
                    woo_shop(woo_server, warehouse)]
    for store in world.stores[:2]:
        shopify_catalog.start_sync(store)
    db.session.commit()
    run_jobs(app)
    woo_catalog.sync_products(world.stores[2])
    db.session.commit()
    for store in world.stores:
        mapped = db.session.scalar(select(db.func.count()).select_from(ProductMapping).where(
            ProductMapping.store_id == store.id))
        assert mapped == products, f"{store.name}: {mapped} of {products} products mapped"
        # What the store page's Save does: the setting, then store.saved for the plugin (Delta baselines).
        store.settings = {**store.settings, "stock_sync": True}
        outbox.emit("store.saved", {"store_id": store.id, "created": False})
    db.session.commit()
    run_jobs(app)
    return world


def activate_plugins():
    host = plugin_host()
    host.set_active("shopify", True)
    host.set_active("woocommerce", True)
    state = plugin_settings.state_for("shopify")
    state.settings = {"client_id": SHOPIFY_CLIENT_ID}
    state.secrets = plugin_settings.encrypt({"client_secret": SHOPIFY_SECRET})
    db.session.commit()


def shopify_store(server, shop_domain, name, mode, warehouse):
    token = server.app.sandbox.create_token(shop_domain)
    store = Store(plugin="shopify", name=name, remote_address=f"https://{shop_domain}", status="connected",
                  credentials=plugin_settings.encrypt({"access_token": token.value,
                                                       "refresh_token": token.refresh_token,
                                                       "expires_at": token.expires_at}),
                  settings={"shop": shop_domain, "api_base_url": f"{server.url}/shops/{shop_domain}",
                            "stock_sync": False, "stock_mode": mode})
    shop = server.app.sandbox.shops[shop_domain]
    store.locations.append(StoreLocation(remote_id=f"gid://shopify/Location/{shop.primary_location.id}",
                                         remote_name=shop.primary_location.name, warehouse_id=warehouse.id,
                                         shipping_process_id=warehouse.shipping_processes[0].id, is_default=True))
    db.session.add(store)
    db.session.commit()
    return store


def woo_shop(server, warehouse):
    from plugins.woocommerce.plugin import plugin
    values = {s.key: s.default for s in plugin.store_settings if not s.is_secret}
    values.update(stock_sync=False, stock_authority="wms")
    store = Store(plugin="woocommerce", name="Woo shop", remote_address=server.url, status="pending", settings=values,
                  credentials=plugin_settings.encrypt({"consumer_key": WOO_KEY, "consumer_secret": WOO_SECRET}))
    store.locations.append(StoreLocation(remote_id="default", remote_name="Store stock", warehouse_id=warehouse.id,
                                         shipping_process_id=warehouse.shipping_processes[0].id, is_default=True))
    db.session.add(store)
    db.session.commit()
    woo_store.connect(store)
    store.status = "connected"
    db.session.commit()
    return store


def post_movements(world, count, seed=10):
    """`count` movements, one per transaction as scanners post them: receipts, adjustments down (never
    below zero) and transfers between the two bins. Returns how many of each."""
    rng = random.Random(seed)
    on_hand = {(p.id, b.id): 0 for p in world.products for b in world.bins}
    kinds = {"receipt": 0, "adjustment": 0, "transfer": 0}
    for _ in range(count):
        product, where = rng.choice(world.products), rng.choice(world.bins)
        other = world.bins[1] if where is world.bins[0] else world.bins[0]
        held = on_hand[(product.id, where.id)]
        roll = rng.random()
        if roll < 0.5 or held == 0:
            quantity = rng.randint(1, 12)
            inventory.receive(product, where, quantity)
            on_hand[(product.id, where.id)] += quantity
            kinds["receipt"] += 1
        elif roll < 0.8:
            quantity = rng.randint(1, held)
            inventory.adjust(product, where, -quantity, "breakage")
            on_hand[(product.id, where.id)] -= quantity
            kinds["adjustment"] += 1
        else:
            quantity = rng.randint(1, held)
            inventory.transfer(product, where, other, quantity)
            on_hand[(product.id, where.id)] -= quantity
            on_hand[(product.id, other.id)] += quantity
            kinds["transfer"] += 1
        db.session.commit()
    return kinds
