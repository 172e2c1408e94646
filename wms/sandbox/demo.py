"""Demo mode: serve the sandbox of every active plugin on loopback, so a newcomer can add a sandbox
store and watch stock, orders and tracking flow with no outside account.

`flask wms sandboxes` (started by `flask wms run` when WMS_DEMO is on) keeps one SandboxServer per
active plugin that declares `sandbox = "module:factory"`, starting new ones as plugins are activated,
and writes their addresses to instance/sandboxes.json for the admin pages to show.
"""

import importlib
import json
import logging
import os
import time

from wms.plugins.manager import plugin_host

from .harness import SandboxServer

log = logging.getLogger(__name__)
FIRST_PORT = 5100


def addresses_path(app):
    return os.path.join(app.instance_path, "sandboxes.json")


def sandbox_addresses(app):
    """{plugin name: sandbox URL} of the demo sandboxes now running (empty outside demo mode)."""
    try:
        with open(addresses_path(app)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def load_factory(dotted):
    module, _, attribute = dotted.partition(":")
    return getattr(importlib.import_module(module), attribute or "create_app")


def start_missing(app, running):
    """Start the sandbox of each active plugin that has one and is not running yet."""
    with app.app_context():
        host = plugin_host()
        active = host.active_names()
        wanted = [p for p in host.plugins() if p.name in active and getattr(p, "sandbox", None)]
    for plugin in wanted:
        if plugin.name in running:
            continue
        port = FIRST_PORT + host.plugin_names.index(plugin.name)
        factory = load_factory(plugin.sandbox)
        sandbox_config = plugin.sandbox_config(app) if hasattr(plugin, "sandbox_config") else {}
        ssl_context = plugin.sandbox_ssl_context(app) if hasattr(plugin, "sandbox_ssl_context") else None
        running[plugin.name] = SandboxServer(factory(sandbox_config), port=port, ssl_context=ssl_context).start()
        log.info("sandbox of %s on %s", plugin.name, running[plugin.name].url)
    _write(app, running)
    return running


def _write(app, running):
    path = addresses_path(app)
    with open(path + ".tmp", "w") as fh:
        json.dump({name: server.url for name, server in running.items()}, fh)
    os.replace(path + ".tmp", path)


def serve_forever(app, poll_seconds=2.0):
    running = {}
    try:
        while True:
            try:
                start_missing(app, running)
            except Exception:  # noqa: BLE001 - a broken sandbox must not stop the others
                log.exception("could not start a sandbox")
            time.sleep(poll_seconds)
    finally:
        for server in running.values():
            server.stop()
        _write(app, {})
