"""Product list and page for everyone; create, edit, (de)activate and CSV import/export for admins."""

import html
import io
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.factories import ProductFactory, WarehouseFactory, bin_of
from wms.core.models import Product
from wms.core.services import catalog, inventory
from wms.extensions import db

VALID_FORM = {"sku": "SYR-2022", "name": "Reserve Syrah 2022", "barcode": "0850009990011", "brand": "Hillside",
              "varietal": "Syrah", "appellation": "Paso Robles", "vintage": "2022", "bottle_size_ml": "750",
              "case_quantity": "6", "retail_price": "38.50", "alcohol_pct": "14.5", "weight_grams": "1400",
              "low_stock_threshold": "12"}


def page_text(response):
    return html.unescape(response.get_data(as_text=True))


def field_error(response, field_id):
    """The message shown under the field with this id, or None."""
    match = re.search(rf'<p class="error" id="{field_id}-error">(.*?)</p>', response.get_data(as_text=True), re.S)
    return html.unescape(match.group(1)).strip() if match else None


def product_rows():
    """Every product's fields, to show that a refused request wrote nothing."""
    db.session.expire_all()
    return [tuple(getattr(p, c) for c in ("sku", *catalog.PRODUCT_FIELDS, "is_active"))
            for p in db.session.scalars(select(Product).order_by(Product.id))]


# -- list ----------------------------------------------------------------------------------------

def test_operator_sees_list_with_available_total(operator_client, operator, warehouse, product):
    inventory.receive(product, bin_of(warehouse, "A-01"), 30, user=operator)
    inventory.receive(product, bin_of(warehouse, "B-01"), 6, user=operator)
    db.session.commit()
    response = operator_client.get("/products/")
    assert response.status_code == 200
    row = re.search(r"CAB-2021</a>.*?</tr>", response.get_data(as_text=True), re.S).group(0)
    assert "Estate Cabernet 2021" in row and ">36<" in row
    assert "New product" not in page_text(response)


@pytest.mark.parametrize("query", ["syr", "Grenache Blend", "0850077", "Mourv"])
def test_search_matches_sku_name_barcode_or_varietal(operator_client, query):
    ProductFactory(sku="SYR-2020", name="Grenache Blend", barcode="0850077000001", varietal="Mourvèdre")
    ProductFactory(sku="CHARD-1", name="Chardonnay", barcode="0850011000001", varietal="Chardonnay")
    db.session.commit()
    text = page_text(operator_client.get("/products/", query_string={"q": query}))
    assert "SYR-2020" in text and "CHARD-1" not in text


def test_status_filter(operator_client):
    ProductFactory(sku="OLD-1", is_active=False)
    ProductFactory(sku="NEW-1")
    db.session.commit()
    default = page_text(operator_client.get("/products/"))
    assert "NEW-1" in default and "OLD-1" not in default
    inactive = page_text(operator_client.get("/products/?status=inactive"))
    assert "OLD-1" in inactive and "NEW-1" not in inactive
    both = page_text(operator_client.get("/products/?status=all"))
    assert "OLD-1" in both and "NEW-1" in both


def test_list_is_paginated_by_fifty(operator_client):
    for n in range(51):
        ProductFactory(sku=f"P-{n:03d}")
    db.session.commit()
    first = page_text(operator_client.get("/products/"))
    assert "P-049" in first and "P-050" not in first and "Page 1 of 2" in first
    second = page_text(operator_client.get("/products/?page=2"))
    assert "P-050" in second and "P-049" not in second


# -- product page --------------------------------------------------------------------------------

def test_operator_sees_product_page_with_stock_movements_and_panels(app, operator_client, operator, warehouse,
                                                                    product):
    inventory.receive(product, bin_of(warehouse, "A-01"), 24, user=operator, reference="PO-77")
    inventory.receive(product, bin_of(warehouse, "A-02"), 5, user=operator)
    db.session.commit()
    app.extensions["wms.panels"] = lambda page, obj: (
        [f"<h2>Sync</h2><p>Synced {obj.sku}</p>"] if page == "product" else [])
    response = operator_client.get(f"/products/{product.id}")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    text = page_text(response)
    for fact in ("Cabernet Sauvignon", "Napa Valley", "2021", "750 ml", "$42.00", "14.2 %", "0850001000017"):
        assert fact in text
    warehouse_row = re.search(r'id="warehouse-stock".*?MAIN.*?</tr>', body, re.S).group(0)
    assert re.findall(r'class="num[^"]*">(\d+)<', warehouse_row) == ["29", "0", "29"]
    bins = re.search(r'id="bin-stock".*?</table>', body, re.S).group(0)
    assert "MAIN/A-01" in bins and ">24<" in bins and "MAIN/A-02" in bins and "MAIN/B-01" not in bins
    movements = re.search(r'id="movements".*?</table>', body, re.S).group(0)
    assert movements.count("receipt") == 2 and "PO-77" in movements
    assert '<section class="card panel"><h2>Sync</h2><p>Synced CAB-2021</p></section>' in body
    assert "Edit" not in re.search(r"</h1>(.*?)<section", body, re.S).group(1)


def test_product_page_totals_stock_over_warehouses(operator_client, operator, warehouse, product):
    other = WarehouseFactory(code="ANNEX", bins=("X-1",))
    inventory.receive(product, bin_of(warehouse), 10, user=operator)
    inventory.receive(product, bin_of(other), 7, user=operator)
    db.session.commit()
    body = operator_client.get(f"/products/{product.id}").get_data(as_text=True)
    total = re.search(r"<tfoot>.*?</tfoot>", body, re.S).group(0)
    assert "All warehouses" in total and re.findall(r'class="num[^"]*">(\d+)<', total) == ["17", "0", "17"]


def test_product_page_shows_only_last_twenty_movements(operator_client, operator, warehouse, product):
    for n in range(22):
        inventory.receive(product, bin_of(warehouse), 1, user=operator, reference=f"REF-{n:02d}")
    db.session.commit()
    movements = re.search(r'id="movements".*?</table>', operator_client.get(f"/products/{product.id}")
                          .get_data(as_text=True), re.S).group(0)
    assert movements.count("<tr>") == 21  # header + 20
    assert "REF-21" in movements and "REF-02" in movements and "REF-01" not in movements


def test_unknown_product_is_404(operator_client):
    assert operator_client.get("/products/9999").status_code == 404


# -- access --------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("get", "/products/new"), ("post", "/products/new"),
    ("get", "/products/{id}/edit"), ("post", "/products/{id}/edit"),
    ("post", "/products/{id}/activate"), ("post", "/products/{id}/deactivate"),
    ("get", "/products/export.csv"), ("get", "/products/import"), ("post", "/products/import"),
])
def test_operator_cannot_use_admin_actions(operator_client, product, method, path):
    before = product_rows()
    response = getattr(operator_client, method)(path.format(id=product.id), data=dict(VALID_FORM, name="Hacked"))
    assert response.status_code == 403
    assert product_rows() == before


def test_admin_pages_render(admin_client, product):
    for path in ("/products/", f"/products/{product.id}", "/products/new", f"/products/{product.id}/edit",
                 "/products/import"):
        assert admin_client.get(path).status_code == 200, path


# -- create and edit -----------------------------------------------------------------------------

def test_admin_creates_product(admin_client):
    response = admin_client.post("/products/new", data=VALID_FORM)
    assert response.status_code == 302
    product = db.session.scalar(select(Product).where(Product.sku == "SYR-2022"))
    assert (product.name, product.vintage, product.case_quantity, product.retail_price, product.alcohol_pct,
            product.low_stock_threshold) == ("Reserve Syrah 2022", 2022, 6, Decimal("38.50"), Decimal("14.5"), 12)
    assert response.headers["Location"].endswith(f"/products/{product.id}")
    assert "Created product SYR-2022" in page_text(admin_client.get(response.headers["Location"]))


@pytest.mark.parametrize("field, value, message", [
    ("sku", "CAB-2021", "SKU CAB-2021 is already used by another product."),
    ("retail_price", "twelve", "'twelve' is not a number."),
    ("retail_price", "-3", "Must be between 0 and 1000000."),
    ("vintage", "1700", "Must be at least 1800."),
    ("vintage", "21x", "'21x' is not a whole number."),
    ("name", "  ", "Required."),
])
def test_invalid_product_shows_message_next_to_field_and_writes_nothing(admin_client, product, field, value,
                                                                        message):
    before = product_rows()
    response = admin_client.post("/products/new", data=dict(VALID_FORM, **{field: value}))
    assert response.status_code == 400
    assert field_error(response, f"f-{field}") == message
    assert product_rows() == before
    assert 'value="Paso Robles"' in response.get_data(as_text=True)  # what was typed is kept


def test_admin_edits_product_including_low_stock_threshold(admin_client, product):
    response = admin_client.post(f"/products/{product.id}/edit",
                                 data=dict(VALID_FORM, sku="CAB-2021", name="Estate Cabernet 2021 Magnum",
                                           bottle_size_ml="1500", vintage="", low_stock_threshold="3"))
    assert response.status_code == 302
    db.session.expire_all()
    assert (product.name, product.bottle_size_ml, product.vintage, product.low_stock_threshold) == (
        "Estate Cabernet 2021 Magnum", 1500, None, 3)


def test_edit_form_is_prefilled(admin_client, product):
    body = admin_client.get(f"/products/{product.id}/edit").get_data(as_text=True)
    assert 'value="CAB-2021"' in body and 'value="42.00"' in body and 'value="14.2"' in body


def test_invalid_edit_changes_nothing(admin_client, product):
    other = ProductFactory(sku="MER-2020")
    db.session.commit()
    before = product_rows()
    response = admin_client.post(f"/products/{other.id}/edit", data=dict(VALID_FORM, sku="cab-2021",
                                                                          retail_price="abc"))
    assert response.status_code == 400
    assert field_error(response, "f-retail_price") == "'abc' is not a number."
    assert product_rows() == before


def test_deactivate_and_activate(admin_client, product):
    admin_client.post(f"/products/{product.id}/deactivate")
    db.session.expire_all()
    assert product.is_active is False
    assert "This product is inactive." in page_text(admin_client.get(f"/products/{product.id}"))
    admin_client.post(f"/products/{product.id}/activate")
    db.session.expire_all()
    assert product.is_active is True


# -- CSV -----------------------------------------------------------------------------------------

def upload(client, text, filename="products.csv"):
    return client.post("/products/import", data={"file": (io.BytesIO(text.encode()), filename)},
                       content_type="multipart/form-data")


def test_csv_export_then_import_round_trips(admin_client, product):
    ProductFactory(sku="ROSE-2023", name='Dry Rosé, "Vin Gris"', barcode=None, vintage=None, alcohol_pct=None)
    db.session.commit()
    before = product_rows()
    response = admin_client.get("/products/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    exported = response.get_data(as_text=True)
    assert exported.splitlines()[0] == ",".join(catalog.CSV_COLUMNS)

    db.session.execute(Product.__table__.delete())
    db.session.commit()
    response = upload(admin_client, exported)
    assert response.status_code == 302
    assert "2 product(s) created, 0 updated" in page_text(admin_client.get(response.headers["Location"]))
    assert product_rows() == before

    response = upload(admin_client, exported)
    assert "0 product(s) created, 2 updated" in page_text(admin_client.get(response.headers["Location"]))
    assert product_rows() == before


def test_csv_with_one_bad_row_imports_nothing_and_names_the_row(admin_client, product):
    before = product_rows()
    text = ("sku,name,vintage,retail_price\n"
            "NEW-1,Fine Pinot,2020,30\n"
            "CAB-2021,Renamed Cabernet,2021,44\n"
            "NEW-2,Broken Zin,twenty,30\n"
            "NEW-3,Fine Merlot,2019,25\n")
    response = upload(admin_client, text)
    assert response.status_code == 400
    assert product_rows() == before
    table = re.search(r'id="row-errors".*?</table>', response.get_data(as_text=True), re.S).group(0)
    rows = re.findall(r'<td class="num">(\d+)</td><td class="error">(.*?)</td>', table)
    assert [(n, html.unescape(m)) for n, m in rows] == [("4", "vintage: 'twenty' is not a whole number.")]
    assert field_error(response, "f-file") == "1 row(s) have errors; nothing was imported."


@pytest.mark.parametrize("text, message", [
    ("", "Choose a CSV file to import."),
    ("name,colour\nx,red\n", "The first row must name the columns, including sku."),
])
def test_csv_file_problems_show_next_to_file_field(admin_client, product, text, message):
    before = product_rows()
    response = (admin_client.post("/products/import", data={}, content_type="multipart/form-data") if not text
                else upload(admin_client, text))
    assert response.status_code == 400
    assert field_error(response, "f-file") == message
    assert product_rows() == before


def test_csv_that_is_not_utf8_is_refused(admin_client):
    response = admin_client.post("/products/import", data={"file": (io.BytesIO(b"sku,name\nA-1,Ros\xe9\n"),
                                                                    "p.csv")}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "not UTF-8" in field_error(response, "f-file")
    assert db.session.scalar(select(func.count()).select_from(Product)) == 0


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_product_form_carries_its_csrf_token(admin_client, app_config):
    assert admin_client.post("/products/new", data=VALID_FORM).status_code == 400
    assert product_rows() == []
    page = admin_client.get("/products/new").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert admin_client.post("/products/new", data=dict(VALID_FORM, csrf_token=token)).status_code == 302
    assert [row[0] for row in product_rows()] == ["SYR-2022"]
