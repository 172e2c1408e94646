"""Admin pages: warehouses, bins, shipping processes and users."""

import html
import re

import pytest
from flask import g
from sqlalchemy import select

from tests.conftest import login_as
from tests.factories import UserFactory, bin_of
from wms.core.models import Location, ShippingProcess, User, Warehouse
from wms.core.services import inventory
from wms.extensions import db


def page_text(response):
    return html.unescape(response.get_data(as_text=True))


def field_error(response, field_id):
    match = re.search(rf'<p class="error" id="{field_id}-error">(.*?)</p>', response.get_data(as_text=True), re.S)
    return html.unescape(match.group(1)).strip() if match else None


def form_alert(response):
    match = re.search(r'<div class="flash flash-error" role="alert">(.*?)</div>', response.get_data(as_text=True),
                      re.S)
    return html.unescape(match.group(1)).strip() if match else None


def snapshot(model, *columns):
    db.session.expire_all()
    return [tuple(getattr(row, c) for c in columns) for row in db.session.scalars(select(model).order_by(model.id))]


def warehouses_now():
    return snapshot(Warehouse, "code", "name", "address", "is_external", "allow_negative", "is_active")


def locations_now():
    return snapshot(Location, "warehouse_id", "code", "name", "barcode", "is_active")


def processes_now():
    return snapshot(ShippingProcess, "warehouse_id", "name", "handler", "is_active")


def users_now():
    return snapshot(User, "email", "name", "role", "is_active_user", "password_hash")


# -- access --------------------------------------------------------------------------------------

def test_operator_gets_403_on_every_admin_route(app, operator_client, warehouse, admin):
    ids = {"warehouse_id": warehouse.id, "location_id": bin_of(warehouse).id,
           "process_id": warehouse.shipping_processes[0].id, "user_id": admin.id}
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("admin.")]
    assert len(rules) >= 15
    before = (warehouses_now(), locations_now(), processes_now(), users_now())
    for rule in rules:
        path = rule.build({k: v for k, v in ids.items() if k in rule.arguments})[1]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = operator_client.open(path, method=method, data={"name": "X", "code": "X", "role": "operator",
                                                                        "password": "long enough pw"})
            assert response.status_code == 403, (method, path)
    assert (warehouses_now(), locations_now(), processes_now(), users_now()) == before


def test_every_admin_page_renders_for_admin(admin_client, admin, warehouse):
    for path in ("/admin/warehouses", "/admin/warehouses/new", f"/admin/warehouses/{warehouse.id}",
                 f"/admin/warehouses/{warehouse.id}/edit", "/admin/users", "/admin/users/new",
                 f"/admin/users/{admin.id}"):
        response = admin_client.get(path)
        assert response.status_code == 200, path
    assert "Main cellar" in page_text(admin_client.get("/admin/warehouses"))


# -- warehouses ----------------------------------------------------------------------------------

def test_create_warehouse(admin_client):
    response = admin_client.post("/admin/warehouses/new", data={
        "code": "napa-3pl", "name": "Napa fulfillment", "address": "1 Vine St, Napa", "is_external": "1"})
    assert response.status_code == 302
    warehouse = db.session.scalar(select(Warehouse).where(Warehouse.code == "NAPA-3PL"))
    assert (warehouse.name, warehouse.address, warehouse.is_external, warehouse.allow_negative) == (
        "Napa fulfillment", "1 Vine St, Napa", True, False)
    assert response.headers["Location"].endswith(f"/admin/warehouses/{warehouse.id}")


@pytest.mark.parametrize("data, field, message", [
    ({"code": "main", "name": "Second main"}, "code", "A warehouse with code MAIN exists."),
    ({"code": "has space", "name": "X"}, "code",
     "Code: letters, digits and . _ - only, at most 32 characters."),
    ({"code": "SOUTH", "name": " "}, "name", "Name is required."),
])
def test_invalid_warehouse_shows_message_and_writes_nothing(admin_client, warehouse, data, field, message):
    before = (warehouses_now(), locations_now(), processes_now())
    response = admin_client.post("/admin/warehouses/new", data=data)
    assert response.status_code == 400
    assert field_error(response, f"f-{field}") == message
    assert (warehouses_now(), locations_now(), processes_now()) == before


def test_edit_warehouse(admin_client, warehouse):
    response = admin_client.post(f"/admin/warehouses/{warehouse.id}/edit", data={
        "name": "Main barrel room", "address": "2 Cellar Rd", "allow_negative": "1"})
    assert response.status_code == 302
    db.session.expire_all()
    assert (warehouse.code, warehouse.name, warehouse.address, warehouse.is_external, warehouse.allow_negative) == (
        "MAIN", "Main barrel room", "2 Cellar Rd", False, True)


def test_edit_warehouse_without_name_changes_nothing(admin_client, warehouse):
    before = warehouses_now()
    response = admin_client.post(f"/admin/warehouses/{warehouse.id}/edit", data={"name": "", "address": "Elsewhere",
                                                                               "is_external": "1"})
    assert response.status_code == 400
    assert field_error(response, "f-name") == "Name is required."
    assert warehouses_now() == before


def test_warehouse_page_lists_bins_with_stock_and_processes(admin_client, admin, warehouse, product):
    inventory.receive(product, bin_of(warehouse, "A-02"), 17, user=admin)
    db.session.commit()
    body = admin_client.get(f"/admin/warehouses/{warehouse.id}").get_data(as_text=True)
    row = re.search(r"<td>A-02</td>.*?</tr>", body, re.S).group(0)
    assert ">17<" in row and "Deactivate" in row
    assert "In-house shipping" in body and "<code>in_house</code>" in body


# -- bins ----------------------------------------------------------------------------------------

def test_create_bin(admin_client, warehouse):
    response = admin_client.post(f"/admin/warehouses/{warehouse.id}/locations",
                                 data={"code": "c-01", "name": "Rack C, shelf 1", "barcode": "LOC-C01"})
    assert response.status_code == 302
    location = db.session.scalar(select(Location).where(Location.barcode == "LOC-C01"))
    assert (location.warehouse_id, location.code, location.name, location.is_active) == (
        warehouse.id, "C-01", "Rack C, shelf 1", True)


@pytest.mark.parametrize("data, field_id, message", [
    ({"code": "a-01"}, "bin-code", "MAIN already has a location A-01."),
    ({"code": ""}, "bin-code", "Code: letters, digits and . _ - only, at most 32 characters."),
])
def test_invalid_bin_shows_message_and_writes_nothing(admin_client, warehouse, data, field_id, message):
    before = locations_now()
    response = admin_client.post(f"/admin/warehouses/{warehouse.id}/locations", data=data)
    assert response.status_code == 400
    assert field_error(response, field_id) == message
    assert field_error(response, "process-name") is None
    assert locations_now() == before


def test_duplicate_bin_barcode_is_refused(admin_client, warehouse):
    admin_client.post(f"/admin/warehouses/{warehouse.id}/locations", data={"code": "C-01", "barcode": "LOC-1"})
    before = locations_now()
    response = admin_client.post(f"/admin/warehouses/{warehouse.id}/locations", data={"code": "C-02",
                                                                                   "barcode": "LOC-1"})
    assert field_error(response, "bin-barcode") == "Barcode LOC-1 is already used by a location."
    assert locations_now() == before


def test_deactivate_and_activate_empty_bin(admin_client, warehouse):
    location = bin_of(warehouse, "B-01")
    assert admin_client.post(f"/admin/locations/{location.id}/deactivate").status_code == 302
    db.session.expire_all()
    assert location.is_active is False
    admin_client.post(f"/admin/locations/{location.id}/activate")
    db.session.expire_all()
    assert location.is_active is True


def test_bin_holding_stock_cannot_be_deactivated(admin_client, admin, warehouse, product):
    location = bin_of(warehouse, "A-01")
    inventory.receive(product, location, 4, user=admin)
    db.session.commit()
    response = admin_client.post(f"/admin/locations/{location.id}/deactivate")
    assert response.status_code == 400
    assert form_alert(response) == "MAIN/A-01 still holds 4 bottle(s). Transfer them to another bin first."
    db.session.expire_all()
    assert location.is_active is True


def test_outbound_location_cannot_be_switched_off(admin_client, warehouse):
    outbound = next(l for l in warehouse.locations if l.usage == "outbound")
    response = admin_client.post(f"/admin/locations/{outbound.id}/deactivate")
    assert response.status_code == 400
    assert "is not a bin" in form_alert(response)
    db.session.expire_all()
    assert outbound.is_active is True


# -- shipping processes --------------------------------------------------------------------------

def test_create_plugin_shipping_process_and_toggle_it(admin_client, warehouse):
    response = admin_client.post(f"/admin/warehouses/{warehouse.id}/processes",
                                 data={"name": "Vinoshipper compliance", "handler": "vinoshipper"})
    assert response.status_code == 302
    process = db.session.scalar(select(ShippingProcess).where(ShippingProcess.name == "Vinoshipper compliance"))
    assert (process.warehouse_id, process.handler, process.is_active) == (warehouse.id, "vinoshipper", True)
    admin_client.post(f"/admin/processes/{process.id}/deactivate")
    db.session.expire_all()
    assert process.is_active is False
    admin_client.post(f"/admin/processes/{process.id}/activate")
    db.session.expire_all()
    assert process.is_active is True


@pytest.mark.parametrize("data, field_id, message", [
    ({"name": "In-house shipping", "handler": "in_house"}, "process-name",
     "MAIN already has a process named In-house shipping."),
    ({"name": "", "handler": "in_house"}, "process-name", "Name is required."),
    ({"name": "Courier", "handler": "Wine Direct!"}, "process-handler",
     "Type in_house or a plugin's name (lowercase letters, digits, _)."),
])
def test_invalid_process_shows_message_and_writes_nothing(admin_client, warehouse, data, field_id, message):
    before = processes_now()
    response = admin_client.post(f"/admin/warehouses/{warehouse.id}/processes", data=data)
    assert response.status_code == 400
    assert field_error(response, field_id) == message
    assert field_error(response, "bin-name") is None
    assert processes_now() == before


def test_handler_suggestions_come_from_configured_plugins(app, admin_client, warehouse):
    app.config["WMS_PLUGINS"] = ["plugins.winedirect"]
    body = admin_client.get(f"/admin/warehouses/{warehouse.id}").get_data(as_text=True)
    datalist = re.search(r'<datalist id="handler-options">(.*?)</datalist>', body, re.S).group(1)
    assert re.findall(r'value="([^"]+)"', datalist) == ["in_house", "winedirect"]


# -- users ---------------------------------------------------------------------------------------

def test_create_user_who_can_then_sign_in(admin_client, client):
    response = admin_client.post("/admin/users/new", data={"email": " Packer@Winery.test ", "name": "Pat Packer",
                                                           "role": "operator", "password": "cellar-door-9"})
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "packer@winery.test"))
    assert (user.name, user.role, user.is_active) == ("Pat Packer", "operator", True)
    assert user.check_password("cellar-door-9")


@pytest.mark.parametrize("data, field, message", [
    ({"password": "short7!"}, "password", "At least 8 characters."),
    ({"email": "OPERATOR@winery.test"}, "email", "A user with email operator@winery.test already exists."),
    ({"email": "not-an-email"}, "email", "Enter an email address, such as name@winery.com."),
    ({"role": "superuser"}, "role", "Choose a role."),
])
def test_invalid_user_shows_message_and_writes_nothing(admin_client, operator, data, field, message):
    before = users_now()
    form = {"email": "new@winery.test", "name": "New", "role": "operator", "password": "long enough pw", **data}
    response = admin_client.post("/admin/users/new", data=form)
    assert response.status_code == 400
    assert field_error(response, f"f-{field}") == message
    assert users_now() == before


def test_change_role(admin_client, operator):
    assert admin_client.post(f"/admin/users/{operator.id}/role", data={"role": "admin"}).status_code == 302
    db.session.expire_all()
    assert operator.role == "admin"


def test_admin_cannot_demote_themselves(admin_client, admin):
    before = users_now()
    response = admin_client.post(f"/admin/users/{admin.id}/role", data={"role": "operator"})
    assert response.status_code == 400
    assert field_error(response, "f-role") == "You cannot remove your own admin role. Ask another admin to do it."
    assert users_now() == before


def test_admin_cannot_deactivate_themselves(admin_client, admin):
    before = users_now()
    response = admin_client.post(f"/admin/users/{admin.id}/deactivate")
    assert response.status_code == 400
    assert form_alert(response) == "You cannot deactivate your own account. Ask another admin to do it."
    assert users_now() == before


def forget_loaded_user():
    """The test's app context outlives each request, so Flask-Login's user cached on `g` would leak
    from one client's request into the next client's; drop it when switching clients."""
    g.pop("_login_user", None)


def test_deactivated_user_is_signed_out_and_can_be_reactivated(app, admin_client, operator):
    operator_client = login_as(app.test_client(), operator)
    assert operator_client.get("/products/").status_code == 200
    forget_loaded_user()
    admin_client.post(f"/admin/users/{operator.id}/deactivate")
    db.session.expire_all()
    assert operator.is_active is False
    forget_loaded_user()
    assert operator_client.get("/products/").status_code == 302  # to the sign-in page
    forget_loaded_user()
    admin_client.post(f"/admin/users/{operator.id}/activate")
    db.session.expire_all()
    assert operator.is_active is True


def test_reset_password(admin_client, operator):
    response = admin_client.post(f"/admin/users/{operator.id}/password", data={"password": "new cellar pw"})
    assert response.status_code == 302
    db.session.expire_all()
    assert operator.check_password("new cellar pw") and not operator.check_password("correct horse battery")


def test_reset_to_short_password_is_refused(admin_client, operator):
    before = users_now()
    response = admin_client.post(f"/admin/users/{operator.id}/password", data={"password": "1234567"})
    assert response.status_code == 400
    assert field_error(response, "f-password") == "At least 8 characters."
    assert users_now() == before


def test_user_list_shows_roles_and_status(admin_client, admin):
    UserFactory(email="gone@winery.test", is_active_user=False)
    db.session.commit()
    row = re.search(r"gone@winery.test</a>.*?</tr>", admin_client.get("/admin/users").get_data(as_text=True),
                    re.S).group(0)
    assert "operator" in row and "inactive" in row
