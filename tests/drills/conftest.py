"""Fixtures of the fault drills: a Redis of their own (a drill stops and starts it), the Shopify and
WooCommerce sandboxes over HTTP(S), and the world of stores built on them."""

import shutil
import tempfile

import pytest
import redis

from plugins.shopify.sandbox import create_app as create_shopify_sandbox
from plugins.woocommerce.sandbox import create_app as create_woo_sandbox, make_tls
from tests.conftest import RedisProcess
from wms.sandbox.harness import SandboxServer

from . import world as drill_world

HANG_SECONDS = 4.0     # past the clients' read timeouts below
CLIENT_TIMEOUT = (2, 3)


@pytest.fixture
def drill_redis():
    folder = tempfile.mkdtemp(prefix="wms-drill-redis-")
    server = RedisProcess(folder).start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def tls(tmp_path):
    folder = tmp_path / "woo-tls"
    folder.mkdir()
    return make_tls(folder)


@pytest.fixture
def app_config(drill_redis, tls):
    return {"WMS_PLUGINS": ["plugins.shopify", "plugins.woocommerce"], "REDIS_URL": drill_redis.url,
            "WMS_RELAY_ON_COMMIT": True, "WMS_PUSH_WINDOW_SECONDS": 1, "WOOCOMMERCE_CA_FILE": tls[1],
            "WOOCOMMERCE_TIMEOUT": CLIENT_TIMEOUT, "SHOPIFY_TIMEOUT": CLIENT_TIMEOUT,
            "WMS_PUBLIC_URL": "http://127.0.0.1:9"}


@pytest.fixture
def shopify_server():
    app = create_shopify_sandbox({"apps": {drill_world.SHOPIFY_CLIENT_ID: drill_world.SHOPIFY_SECRET},
                                  "shops": list(drill_world.SHOPS)})
    with SandboxServer(app, hang_seconds=HANG_SECONDS) as server:
        yield server


@pytest.fixture
def woo_server(tls):
    app = create_woo_sandbox({"consumer_key": drill_world.WOO_KEY, "consumer_secret": drill_world.WOO_SECRET})
    with SandboxServer(app, ssl_context=tls[0], hang_seconds=HANG_SECONDS) as server:
        yield server


@pytest.fixture
def world(app, shopify_server, woo_server):
    return drill_world.build(app, shopify_server, woo_server)


def flush_redis(server):
    redis.Redis(unix_socket_path=server.socket).flushall()
