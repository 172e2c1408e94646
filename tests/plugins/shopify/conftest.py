"""Fixtures: a Shopify sandbox served over loopback, a client pointed at it, a webhook receiver."""

import threading

import pytest
from flask import Flask, request

from plugins.shopify.client import ShopifyClient
from plugins.shopify.sandbox import create_app
from plugins.shopify.sandbox_schema import load_schema
from wms.sandbox.harness import SandboxServer

SHOP = "sandbox-winery.myshopify.com"
CLIENT_ID = "wms-test-app"
CLIENT_SECRET = "shpss_test_secret_0123456789"


@pytest.fixture(scope="session", autouse=True)
def schema():
    return load_schema()  # built once per session (about 3 s)


@pytest.fixture
def sandbox_app():
    return create_app({"apps": {CLIENT_ID: CLIENT_SECRET}, "shops": [SHOP], "webhook_first_retry_seconds": 0.01,
                       "webhook_retries": 3})


@pytest.fixture
def server(sandbox_app):
    with SandboxServer(sandbox_app, hang_seconds=2.0) as running:
        yield running


@pytest.fixture
def sandbox(sandbox_app):
    return sandbox_app.sandbox


@pytest.fixture
def shop(sandbox):
    return sandbox.shops[SHOP]


@pytest.fixture
def shop_url(server):
    return f"{server.url}/shops/{SHOP}"


class SleepRecorder:
    """Really sleeps (the sandbox's bucket runs on real time) and remembers each wait."""

    def __init__(self):
        self.waits = []

    def __call__(self, seconds):
        self.waits.append(seconds)
        threading.Event().wait(seconds)


@pytest.fixture
def make_client(sandbox, shop_url):
    def build(token=None, **options):
        if token is None:
            token = sandbox.create_token(SHOP).value
        options.setdefault("timeout", (2, 5))
        options.setdefault("sleep", SleepRecorder())
        options.setdefault("backoff_seconds", 0.05)
        return ShopifyClient(SHOP, token, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=shop_url,
                             allow_private=True, **options)
    return build


@pytest.fixture
def client(make_client):
    return make_client()


class Receiver:
    """A tiny app that records webhook POSTs (raw body and headers) and answers `statuses` in turn."""

    def __init__(self):
        self.requests = []
        self.statuses = []
        self.lock = threading.Lock()
        self.app = Flask("webhook-receiver")
        self.app.add_url_rule("/hooks/<path:name>", view_func=self.receive, methods=["POST"])

    def receive(self, name):
        with self.lock:
            self.requests.append({"path": request.path, "body": request.get_data(), "headers": dict(request.headers)})
            status = self.statuses.pop(0) if self.statuses else 200
        return "", status

    def of_topic(self, topic):
        return [r for r in self.requests if r["headers"].get("X-Shopify-Topic") == topic]


@pytest.fixture
def receiver():
    hooks = Receiver()
    with SandboxServer(hooks.app) as running:
        hooks.url = running.url
        yield hooks
