import threading

import pytest
from flask import Flask, request

from plugins.vinoshipper.client import VinoshipperClient
from plugins.vinoshipper.sandbox import DEFAULT_API_KEY, DEFAULT_API_SECRET, create_app
from wms.sandbox.harness import SandboxServer

HANG_SECONDS = 1.0


@pytest.fixture
def start_sandbox():
    """Start a sandbox with a config; every one started is stopped at teardown."""
    servers = []

    def start(config=None):
        server = SandboxServer(create_app(config), hang_seconds=HANG_SECONDS).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def shared_server():
    server = SandboxServer(create_app(), hang_seconds=HANG_SECONDS).start()
    yield server
    server.stop()


@pytest.fixture
def server(shared_server):
    """The default sandbox, as new: one server for the session (a stop costs half a second)."""
    sandbox = shared_server.app.sandbox
    sandbox.flush_webhooks()
    sandbox.reset()
    shared_server.faults.clear()
    shared_server.faults.clear_calls()
    return shared_server


@pytest.fixture
def sandbox(server):
    return server.app.sandbox


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def records():
    return []


@pytest.fixture
def make_client(server, sleeps, records):
    def make(target=None, key=DEFAULT_API_KEY, secret=DEFAULT_API_SECRET, **options):
        options.setdefault("timeout", (2, 5))
        return VinoshipperClient(key, secret, base_url=(target or server).url, allow_private=True,
                                 recorder=records.append, sleep=sleeps.append, **options)
    return make


@pytest.fixture
def client(make_client):
    return make_client()


class WebhookReceiver:
    """A loopback endpoint that keeps every webhook it is sent: raw body and headers."""

    def __init__(self):
        self.received = []
        self._lock = threading.Lock()
        app = Flask(__name__)

        @app.post("/hooks/vinoshipper")
        def receive():
            with self._lock:
                self.received.append({"body": request.get_data(), "headers": dict(request.headers)})
            return "", 200

        self.server = SandboxServer(app)

    @property
    def url(self):
        return f"{self.server.url}/hooks/vinoshipper"


@pytest.fixture(scope="session")
def shared_receiver():
    hooks = WebhookReceiver()
    hooks.server.start()
    yield hooks
    hooks.server.stop()


@pytest.fixture
def receiver(shared_receiver):
    shared_receiver.received.clear()
    return shared_receiver
