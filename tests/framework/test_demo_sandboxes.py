"""Demo mode serves the sandbox of each active plugin, and only of active ones."""

import requests

from wms.extensions import db
from wms.plugins.manager import plugin_host
from wms.sandbox import demo


def test_active_plugins_get_their_sandbox(app, tmp_path):
    running = {}
    try:
        demo.start_missing(app, running)
        assert running == {} and demo.sandbox_addresses(app) == {}
        plugin_host().set_active("sampleshop", True)
        db.session.commit()
        demo.start_missing(app, running)
        url = demo.sandbox_addresses(app)["sampleshop"]
        assert requests.get(f"{url}/levels", timeout=5).json()["pushes"] == 0
        demo.start_missing(app, running)            # already running: nothing new
        assert list(running) == ["sampleshop"]
    finally:
        for server in running.values():
            server.stop()


def test_plugin_pages_show_the_demo_sandbox_address(app, admin_client):
    import json
    app.config["WMS_DEMO"] = True
    with open(demo.addresses_path(app), "w") as fh:
        json.dump({"sampleshop": "http://127.0.0.1:5100"}, fh)
    for url in ("/admin/plugins/sampleshop", "/admin/plugins/sampleshop/stores/new"):
        assert "http://127.0.0.1:5100" in admin_client.get(url).get_data(as_text=True), url
    app.config["WMS_DEMO"] = False
    assert "http://127.0.0.1:5100" not in admin_client.get("/admin/plugins/sampleshop").get_data(as_text=True)
