"""An operator's day in a real browser: sign in, receive by scanning, take an order, pick it by scanning
the bin, and see the stock follow. Also: the admin pages stay closed, and Receive works on a phone.

The `product` (CAB-2021, barcode 0850001000017), `warehouse` (MAIN with bins A-01, A-02, B-01) and
`operator` fixtures come from tests/conftest.py; every form is the real one, CSRF token included.
"""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

BARCODE = "0850001000017"


def level_cells(page, product_id, warehouse_id):
    """On hand, committed and available of the product's row on the stock page."""
    row = page.locator(f"#level-{product_id}-{warehouse_id}")
    expect(row).to_be_visible()
    return row.locator("td.num")


def test_operator_receives_by_scan_takes_an_order_and_picks_it(page, live_server, operator, warehouse, product,
                                                               sign_in, shoot):
    product_id, warehouse_id = product.id, warehouse.id
    sign_in(page, operator.email)
    expect(page.locator("#stat-available")).to_have_text("0")
    expect(page.locator("#low-stock")).to_contain_text("CAB-2021")               # nothing yet: low stock

    # Receive: choose the bin, scan the bottle (the scanner types the code and presses Enter), type the
    # quantity and press Enter.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Receive").click()
    page.wait_for_url("**/stock/receive")
    expect(page.locator("#f-product")).to_be_focused()          # autofocus: ready for the first scan
    page.select_option("#f-location", label="MAIN/A-01")
    page.locator("#f-product").press_sequentially(BARCODE)
    page.locator("#f-product").press("Enter")
    expect(page.locator("#f-quantity")).to_be_focused()         # Enter after a scan moves on, does not post
    assert "/stock/receive" in page.url and not page.locator(".flash").count()
    page.keyboard.type("12")
    with page.expect_navigation():
        page.keyboard.press("Enter")                             # Enter in the last field submits
    flash = page.locator(".flash-success")
    expect(flash).to_contain_text("Received 12 × CAB-2021 into MAIN/A-01")
    expect(flash).to_contain_text("Available in MAIN: 12")
    # The next receipt starts on a clean form in the same bin, ready for the next scan.
    expect(page.locator("#f-product")).to_have_value("")
    expect(page.locator("#f-location option:checked")).to_have_text("MAIN/A-01")
    shoot(page, "receive")

    page.goto("/stock/levels")
    on_hand, committed, available = level_cells(page, product_id, warehouse_id).all()
    expect(on_hand).to_have_text("12")
    expect(committed).to_have_text("0")
    expect(available).to_have_text("12")
    expect(page.locator(f"#level-{product_id}-{warehouse_id}")).to_contain_text("A-01: 12")

    # An order for 2 bottles, through the New order page (the SKU field is a scan field too).
    page.goto("/orders/new")
    page.fill("#f-customer_name", "Avery Chen")
    page.fill("#f-ship_name", "Avery Chen")
    page.fill("#f-ship_address1", "100 Vineyard Lane")
    page.fill("#f-ship_city", "Napa")
    page.fill("#f-ship_state", "CA")
    page.fill("#f-ship_postal_code", "94558")
    page.locator("#f-line-0-sku").press_sequentially("CAB-2021")
    page.locator("#f-line-0-sku").press("Enter")
    expect(page.locator("#f-line-0-quantity")).to_be_focused()
    page.keyboard.type("2")
    expect(page.locator("#f-warehouse_id option:checked")).to_contain_text("MAIN")
    with page.expect_navigation():
        page.get_by_role("button", name="Create order").click()
    expect(page.locator(".flash-success")).to_contain_text("every line is reserved at MAIN")
    order_url = page.url
    assert re.search(r"/orders/\d+$", order_url), order_url
    expect(page.locator("h1")).to_contain_text("open")
    expect(page.locator("#reservations")).to_contain_text("CAB-2021")

    # Reserved, not yet picked: 12 on hand, 2 committed, 10 available.
    page.goto("/stock/levels")
    on_hand, committed, available = level_cells(page, product_id, warehouse_id).all()
    expect(on_hand).to_have_text("12")
    expect(committed).to_have_text("2")
    expect(available).to_have_text("10")

    # The order is on the order list; open it from there and pick by scanning the bin.
    page.goto("/orders/")
    page.get_by_role("link", name=re.compile(r"WMS-\d+")).first.click()
    page.wait_for_url(order_url)
    line = page.locator("#lines tbody tr").first
    expect(line.locator("td.num").nth(0)).to_have_text("2")                       # ordered
    expect(line.locator("td.num").nth(1)).to_have_text("2")                       # reserved
    expect(line).to_contain_text("In A-01 (12)")                                  # where to find it
    shoot(page, "order")
    bin_field = line.locator("input[name=location]")
    quantity_field = line.locator("input[name=quantity]")
    bin_field.click()
    bin_field.press_sequentially("A-01")
    bin_field.press("Enter")
    expect(quantity_field).to_be_focused()
    page.keyboard.type("2")                                                        # replaces the suggested 2
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator(".flash-success")).to_contain_text("Picked 2 × CAB-2021 from MAIN/A-01: 2 of 2 picked")
    line = page.locator("#lines tbody tr").first
    expect(line.locator("td.num").nth(2)).to_have_text("2")                       # picked
    expect(line).to_contain_text("picked")
    expect(page.locator("#pack")).to_be_visible()
    shoot(page, "order-picked")

    # The bottles left the bin for the outbound area; still committed to the order until it ships.
    page.goto("/stock/levels")
    on_hand, committed, available = level_cells(page, product_id, warehouse_id).all()
    expect(available).to_have_text("10")
    expect(page.locator(f"#level-{product_id}-{warehouse_id}")).to_contain_text("A-01: 10")
    page.goto(f"/products/{product_id}")
    stock = page.locator("#warehouse-stock tbody tr", has_text="MAIN")
    expect(stock.locator("td.num").nth(2)).to_have_text("10")
    shoot(page, "product")

    # Dashboard: today's receipt and pick are counted.
    page.goto("/")
    expect(page.locator("#stat-receipts")).to_have_text("12")
    expect(page.locator("#stat-picks")).to_have_text("2")
    expect(page.locator("#stat-open-orders")).to_have_text("1")
    expect(page.locator("#stat-available")).to_have_text("10")
    expect(page.locator("main")).to_contain_text("12 on hand, 2 committed")
    shoot(page, "dashboard")


def test_operator_is_refused_the_admin_pages_and_sees_no_admin_menu(page, live_server, operator, sign_in, shoot):
    sign_in(page, operator.email)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Receive")).to_be_visible()
    expect(nav.locator("a.admin-link")).to_have_count(0)
    for label in ("Warehouses", "Users"):
        expect(nav.get_by_role("link", name=label)).to_have_count(0)
    expect(page.locator("a[href^='/admin']")).to_have_count(0)
    for path in ("/admin/warehouses", "/admin/users"):
        response = page.goto(path)
        assert response.status == 403, (path, response.status)
        expect(page.locator("h1")).to_have_text("Not allowed")
        expect(page.locator("main")).to_contain_text("This page is for admins")
    shoot(page, "operator-forbidden")


def test_receive_page_fits_a_phone(phone_page, live_server, operator, warehouse, product, sign_in, shoot):
    page = phone_page
    sign_in(page, operator.email)
    page.goto("/stock/receive")
    width = page.viewport_size["width"]
    for selector in ("#f-product", "#f-quantity", "#f-location", "main button[type=submit]"):
        field = page.locator(selector)
        expect(field).to_be_visible()
        field.scroll_into_view_if_needed()
        box = field.bounding_box()
        assert box is not None, selector
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box, width)
        assert box["height"] >= 32, (selector, box)         # big enough to tap
    # Nothing on the page makes it scroll sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    shoot(page, "receive-phone")
    # And it still works there: scan, Enter, quantity, Enter.
    page.locator("#f-product").press_sequentially(BARCODE)
    page.locator("#f-product").press("Enter")
    expect(page.locator("#f-quantity")).to_be_focused()
    page.keyboard.type("6")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator(".flash-success")).to_contain_text("Received 6 × CAB-2021")
