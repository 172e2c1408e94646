"""An admin activates a plugin, saves its settings and reads its Integration Guide, in Chromium."""

import pytest

from tests.factories import AdminFactory
from wms.extensions import db
from wms.plugins.models import PluginState


@pytest.fixture
def app_config(tmp_path):
    return {"WTF_CSRF_ENABLED": True, "WMS_PLUGINS": ["tests.framework.sample_plugin"]}


@pytest.mark.browser
def test_admin_activates_a_plugin_and_reads_its_guide(app, page, live_server, sign_in, shoot):
    admin = AdminFactory(email="boss@winery.test")
    db.session.commit()
    sign_in(page, admin.email)
    page.click("header nav >> text=Plugins")
    page.wait_for_selector("text=Marketplaces")
    card = page.locator("section, li, tr, div.card").filter(has_text="Sample Shop").last
    card.locator("button:has-text('Activate')").click()
    page.wait_for_selector("button:has-text('Deactivate')")
    shoot(page, "plugins")
    assert db.session.get(PluginState, "sampleshop", populate_existing=True).is_active

    page.click("a:has-text('Settings')")
    page.fill("#f-shop_label", "Cellar door shop")
    page.fill("#f-api_secret", "plugin-secret-value-9876")
    page.click("button:has-text('Save settings')")
    page.wait_for_selector(".flash")
    assert "plugin-secret-value-9876" not in page.content()
    assert "9876" in page.content()                     # masked: only the last four characters
    shoot(page, "plugin-settings")

    page.click("#guide-link")
    page.wait_for_selector("text=Sample Shop integration guide")
    assert "orders flow in by webhook" in page.inner_text(".guide-body")
    shoot(page, "plugin-guide")
