"""An admin in a real browser, on the demo data: the dashboard shows the stock, the admin menu is there,
a product is created through its form and listed, and a duplicate SKU is refused next to the field with
nothing typed lost."""

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from wms import demo
from wms.core.models import Product, WarehouseLevel
from wms.extensions import db

pytestmark = pytest.mark.browser

ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "winery-demo"


def qty(n):
    return f"{n:,}"


@pytest.fixture
def demo_data(app):
    assert demo.seed(ADMIN_EMAIL, ADMIN_PASSWORD)
    db.session.commit()
    on_hand, committed = db.session.execute(select(func.sum(WarehouseLevel.on_hand),
                                                   func.sum(WarehouseLevel.committed))).one()
    return {"on_hand": on_hand, "committed": committed,
            "products": db.session.scalar(select(func.count()).select_from(Product))}


def test_admin_sees_demo_stock_and_creates_a_product(page, live_server, demo_data, sign_in, shoot):
    sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)

    # The dashboard shows the demo's stock, its open orders (one on hold) and its low-stock wines.
    assert demo_data["on_hand"] > 0 and demo_data["committed"] > 0
    expect(page.locator("#stat-available")).to_have_text(qty(demo_data["on_hand"] - demo_data["committed"]))
    expect(page.locator("main")).to_contain_text(
        f"{qty(demo_data['on_hand'])} on hand, {qty(demo_data['committed'])} committed")
    expect(page.locator("#stat-receipts")).to_have_text(qty(demo_data["on_hand"]))   # all received today
    expect(page.locator("#stat-open-orders")).to_have_text("3")
    expect(page.get_by_role("link", name="1 on hold")).to_be_visible()
    low_stock = page.locator("#low-stock")
    expect(low_stock).to_contain_text("BRUT-NV")            # 5 bottles, and an order wants 8
    expect(low_stock).to_contain_text("PORT-2018")          # 12 bottles, threshold 12
    expect(low_stock).not_to_contain_text("CAB-2021")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.locator("a.admin-link", has_text="Warehouses")).to_be_visible()
    expect(nav.locator("a.admin-link", has_text="Users")).to_be_visible()
    shoot(page, "dashboard-admin")

    # The admin pages open for an admin.
    nav.get_by_role("link", name="Warehouses").click()
    page.wait_for_url("**/admin/warehouses")
    expect(page.locator("#warehouses")).to_contain_text("NAPA")
    expect(page.locator("#warehouses")).to_contain_text("TASTING")

    # A new product, through the form.
    page.goto("/products/")
    expect(page.locator("#result-count")).to_have_text(f"{demo_data['products']} products.")
    with page.expect_navigation():
        page.get_by_role("link", name="New product").click()
    expect(page.locator("#f-sku")).to_be_focused()
    expect(page.locator("#f-bottle_size_ml")).to_have_value("750")
    page.fill("#f-sku", "GRN-2023")
    page.fill("#f-name", "Estate Grenache 2023")
    page.fill("#f-barcode", "0850001000116")
    page.fill("#f-brand", "Hillside Cellars")
    page.fill("#f-varietal", "Grenache")
    page.fill("#f-appellation", "Paso Robles")
    page.fill("#f-vintage", "2023")
    page.fill("#f-retail_price", "36.00")
    page.fill("#f-alcohol_pct", "14.0")
    with page.expect_navigation():
        page.get_by_role("button", name="Create product").click()
    expect(page.locator(".flash-success")).to_have_text("Created product GRN-2023 (Estate Grenache 2023).")
    expect(page.locator("h1")).to_contain_text("Estate Grenache 2023")
    facts = page.locator("#product-facts")
    expect(facts).to_contain_text("0850001000116")
    expect(facts).to_contain_text("$36.00")
    expect(facts).to_contain_text("2023")
    shoot(page, "product-created")

    page.goto("/products/")
    expect(page.locator("#result-count")).to_have_text(f"{demo_data['products'] + 1} products.")
    row = page.locator("#products tbody tr", has=page.get_by_role("link", name="GRN-2023", exact=True))
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Estate Grenache 2023")
    expect(row.locator("td.num")).to_have_text("0")          # nothing received yet
    shoot(page, "products-admin")


def test_duplicate_sku_is_refused_next_to_the_field(page, live_server, demo_data, sign_in, shoot):
    sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.goto("/products/new")
    page.fill("#f-sku", "cab-2021")                          # CAB-2021 exists; SKUs match whatever the case
    page.fill("#f-name", "A second Cabernet")
    page.fill("#f-varietal", "Cabernet Sauvignon")
    page.fill("#f-retail_price", "70.00")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Create product").click()
    assert navigation.value.status == 400

    sku = page.locator("#f-sku")
    error = page.locator("#f-sku-error")
    expect(error).to_have_text("SKU cab-2021 is already used by another product.")
    expect(error).to_be_visible()
    # Next to the field: in the same field block, tied to the input for screen readers.
    expect(page.locator(".field.has-error", has=sku).locator(".error")).to_have_text(error.inner_text())
    expect(sku).to_have_attribute("aria-invalid", "true")
    expect(sku).to_have_attribute("aria-describedby", "f-sku-error")
    sku_box, error_box = sku.bounding_box(), error.bounding_box()
    assert 0 <= error_box["y"] - (sku_box["y"] + sku_box["height"]) < 40, (sku_box, error_box)
    expect(page.locator(".flash-error")).to_contain_text("Nothing was saved")
    expect(page.locator(".error")).to_have_count(1)          # only the SKU is wrong
    # Nothing typed is lost.
    expect(sku).to_have_value("cab-2021")
    expect(page.locator("#f-name")).to_have_value("A second Cabernet")
    expect(page.locator("#f-varietal")).to_have_value("Cabernet Sauvignon")
    expect(page.locator("#f-retail_price")).to_have_value("70.00")
    shoot(page, "product-duplicate-sku")

    # Correcting the SKU saves it (the form re-rendered after the refusal still carries a valid token).
    sku.fill("CAB-2021-MAG")
    with page.expect_navigation():
        page.get_by_role("button", name="Create product").click()
    expect(page.locator(".flash-success")).to_contain_text("Created product CAB-2021-MAG (A second Cabernet)")
    page.goto("/products/?q=cab-2021")
    expect(page.locator("#result-count")).to_contain_text("2 products")
