"""Fixtures: the WooCommerce sandbox over real HTTPS, clients for it, and a webhook receiver."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from plugins.woocommerce.client import WooClient
from plugins.woocommerce.sandbox import create_app, make_tls
from wms.sandbox.harness import SandboxServer

CONSUMER_KEY = "ck_" + "1" * 40
CONSUMER_SECRET = "cs_" + "2" * 40


@pytest.fixture(scope="session")
def tls(tmp_path_factory):
    """(server SSLContext, CA bundle path) from a throwaway CA."""
    return make_tls(tmp_path_factory.mktemp("woo-tls"))


@pytest.fixture(scope="session")
def sandbox_server(tls):
    context, _ = tls
    app = create_app({"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET})
    server = SandboxServer(app, ssl_context=context, hang_seconds=1.0).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server):
    """The shared HTTPS sandbox, with fresh state, no faults and an empty call log for each test."""
    sandbox_server.faults.clear()
    sandbox_server.faults.clear_calls()
    sandbox_server.app.reset_sandbox()
    return sandbox_server


@pytest.fixture
def store(sandbox):
    """The sandbox's state object (Python control surface)."""
    return sandbox.app.sandbox


class SleepRecorder:
    """Stands in for time.sleep so retries are asserted without waiting."""

    def __init__(self):
        self.waits = []

    def __call__(self, seconds):
        self.waits.append(seconds)


@pytest.fixture
def sleeps():
    return SleepRecorder()


@pytest.fixture
def calls():
    """Activity-log records the client hands to its recorder."""
    return []


@pytest.fixture
def make_client(sandbox, tls, sleeps, calls):
    _, ca_path = tls

    def make(consumer_key=CONSUMER_KEY, consumer_secret=CONSUMER_SECRET, **options):
        options.setdefault("verify", ca_path)
        options.setdefault("timeout", (2, 2))
        options.setdefault("sleep", sleeps)
        options.setdefault("recorder", calls.append)
        return WooClient(sandbox.url, consumer_key, consumer_secret, allow_private=True, **options)

    return make


@pytest.fixture
def client(make_client):
    return make_client()


class Receiver:
    """A webhook endpoint on loopback: records raw requests, answers `status`."""

    def __init__(self):
        self.requests = []
        self.status = 200
        self.event = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.event:
                    receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                    receiver.event.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/woo"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def topics(self):
        return [r["headers"].get("X-WC-Webhook-Topic") for r in self.requests]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    endpoint = Receiver()
    yield endpoint
    endpoint.stop()
