"""Admin pages: warehouses with their bins and shipping processes, and users.

Creating warehouses, bins and processes goes through `catalog`. There is no service yet for editing a
warehouse, switching bins and processes on and off, or managing users, so the few rules those need are
the `_`-prefixed functions below; they raise ServiceError like a service and never commit.
"""

import re

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from wms.core.errors import ServiceError
from wms.core.models import Location, LocationLevel, LocationUsage, ShippingProcess, User, Warehouse
from wms.core.models.users import ROLES
from wms.core.services import catalog
from wms.extensions import db

from . import access
from .forms import errors_from, refuse

bp = Blueprint("admin", __name__, url_prefix="/admin")
access.set_blueprint_rule(bp, "admin")

HANDLER_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256


def _get_or_404(model, object_id):
    row = db.session.get(model, object_id)
    if row is None:
        abort(404)
    return row


def _flag(form, name):
    return form.get(name) == "1"


# -- warehouses ----------------------------------------------------------------------------------

@bp.route("/warehouses")
def warehouses():
    rows = db.session.scalars(select(Warehouse).order_by(Warehouse.code)).all()
    return render_template("admin/warehouses.html", warehouses=rows)


@bp.route("/warehouses/new", methods=["GET", "POST"])
def warehouse_new():
    if request.method == "GET":
        return render_template("admin/warehouse_form.html", warehouse=None, errors={}, form={})
    form = request.form
    try:
        warehouse = catalog.create_warehouse(form.get("code", ""), form.get("name", ""),
                                             address=form.get("address", ""), is_external=_flag(form, "is_external"),
                                             allow_negative=_flag(form, "allow_negative"))
        db.session.commit()
    except ServiceError as exc:
        return refuse("admin/warehouse_form.html", exc, form=form, warehouse=None)
    flash(f"Created warehouse {warehouse.code} with bin "
          f"{', '.join(l.code for l in warehouse.locations if l.usage == LocationUsage.INTERNAL.value)}.", "success")
    return redirect(url_for("admin.warehouse", warehouse_id=warehouse.id))


def _update_warehouse(warehouse, form):
    name, address = form.get("name", "").strip(), form.get("address", "").strip()
    if not name:
        raise ServiceError("name_required", "Name is required.", field="name")
    if len(name) > 120:
        raise ServiceError("name_too_long", "At most 120 characters.", field="name")
    if len(address) > 255:
        raise ServiceError("address_too_long", "At most 255 characters.", field="address")
    warehouse.name, warehouse.address = name, address
    warehouse.is_external = _flag(form, "is_external")
    warehouse.allow_negative = _flag(form, "allow_negative")
    db.session.flush()


@bp.route("/warehouses/<int:warehouse_id>/edit", methods=["GET", "POST"])
def warehouse_edit(warehouse_id):
    warehouse = _get_or_404(Warehouse, warehouse_id)
    if request.method == "GET":
        form = {"name": warehouse.name, "address": warehouse.address,
                "is_external": "1" if warehouse.is_external else "",
                "allow_negative": "1" if warehouse.allow_negative else ""}
        return render_template("admin/warehouse_form.html", warehouse=warehouse, errors={}, form=form)
    try:
        _update_warehouse(warehouse, request.form)
        db.session.commit()
    except ServiceError as exc:
        return refuse("admin/warehouse_form.html", exc, form=request.form, warehouse=warehouse)
    flash(f"Saved warehouse {warehouse.code}.", "success")
    return redirect(url_for("admin.warehouse", warehouse_id=warehouse.id))


def handler_choices():
    """Suggestions for a shipping process's handler: in-house, then the configured plugins' names."""
    names = [module.rsplit(".", 1)[-1] for module in current_app.config.get("WMS_PLUGINS", [])]
    return ["in_house"] + sorted(set(names))


def _on_hand_by_location(warehouse):
    return dict(db.session.execute(
        select(LocationLevel.location_id, func.sum(LocationLevel.on_hand))
        .where(LocationLevel.warehouse_id == warehouse.id).group_by(LocationLevel.location_id)).all())


def _warehouse_page(warehouse, status=200, **forms):
    """The warehouse page; `forms` may carry bin_errors/bin_form, process_errors/process_form, errors."""
    context = {"bin_errors": {}, "bin_form": {}, "process_errors": {}, "process_form": {}, "errors": {}}
    context.update(forms)
    return render_template("admin/warehouse.html", warehouse=warehouse, on_hand=_on_hand_by_location(warehouse),
                           handlers=handler_choices(), **context), status


@bp.route("/warehouses/<int:warehouse_id>")
def warehouse(warehouse_id):
    return _warehouse_page(_get_or_404(Warehouse, warehouse_id))


@bp.route("/warehouses/<int:warehouse_id>/locations", methods=["POST"])
def location_new(warehouse_id):
    warehouse = _get_or_404(Warehouse, warehouse_id)
    form = request.form
    try:
        location = catalog.create_location(warehouse, form.get("code", ""), form.get("name", ""),
                                           form.get("barcode", ""))
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        return _warehouse_page(warehouse, 400, bin_errors=errors_from(exc), bin_form=form)
    flash(f"Added bin {location.label}.", "success")
    return redirect(url_for("admin.warehouse", warehouse_id=warehouse.id))


def _set_bin_active(location, active):
    if location.usage != LocationUsage.INTERNAL.value:
        raise ServiceError("not_a_bin", f"{location.label} is not a bin; only bins can be switched on and off.")
    if not active:
        held = db.session.scalar(select(func.coalesce(func.sum(LocationLevel.on_hand), 0))
                                 .where(LocationLevel.location_id == location.id))
        if held:  # stock in an inactive bin could not be picked or moved out
            raise ServiceError("bin_has_stock", f"{location.label} still holds {held} bottle(s). "
                                                "Transfer them to another bin first.")
    location.is_active = active
    db.session.flush()


def _toggle_location(location_id, active):
    location = _get_or_404(Location, location_id)
    if location.warehouse is None:
        abort(404)
    try:
        _set_bin_active(location, active)
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        return _warehouse_page(location.warehouse, 400, errors=errors_from(exc))
    flash(f"Bin {location.label} is now {'active' if active else 'inactive'}.", "success")
    return redirect(url_for("admin.warehouse", warehouse_id=location.warehouse_id))


@bp.route("/locations/<int:location_id>/activate", methods=["POST"])
def location_activate(location_id):
    return _toggle_location(location_id, True)


@bp.route("/locations/<int:location_id>/deactivate", methods=["POST"])
def location_deactivate(location_id):
    return _toggle_location(location_id, False)


def _check_handler(handler):
    handler = handler.strip()
    if not HANDLER_PATTERN.match(handler):
        raise ServiceError("invalid_handler", "Type in_house or a plugin's name (lowercase letters, digits, _).",
                           field="handler")
    return handler


@bp.route("/warehouses/<int:warehouse_id>/processes", methods=["POST"])
def process_new(warehouse_id):
    warehouse = _get_or_404(Warehouse, warehouse_id)
    form = request.form
    try:
        process = catalog.create_shipping_process(warehouse, form.get("name", ""),
                                                  _check_handler(form.get("handler", "")))
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        return _warehouse_page(warehouse, 400, process_errors=errors_from(exc), process_form=form)
    flash(f"Added shipping process {process.name} ({process.handler}) to {warehouse.code}.", "success")
    return redirect(url_for("admin.warehouse", warehouse_id=warehouse.id))


def _toggle_process(process_id, active):
    process = _get_or_404(ShippingProcess, process_id)
    process.is_active = active
    db.session.commit()
    flash(f"Shipping process {process.name} is now {'active' if active else 'inactive'}.", "success")
    return redirect(url_for("admin.warehouse", warehouse_id=process.warehouse_id))


@bp.route("/processes/<int:process_id>/activate", methods=["POST"])
def process_activate(process_id):
    return _toggle_process(process_id, True)


@bp.route("/processes/<int:process_id>/deactivate", methods=["POST"])
def process_deactivate(process_id):
    return _toggle_process(process_id, False)


# -- users ---------------------------------------------------------------------------------------

def _password_error(password):
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"At least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"At most {MAX_PASSWORD_LENGTH} characters."
    return None


def _create_user(form):
    email = form.get("email", "").strip().lower()
    name = form.get("name", "").strip()
    role = form.get("role", "")
    password = form.get("password", "")
    errors = {}
    if not EMAIL_PATTERN.match(email) or len(email) > 255:
        errors["email"] = "Enter an email address, such as name@winery.com."
    elif db.session.scalar(select(User.id).where(func.lower(User.email) == email)) is not None:
        errors["email"] = f"A user with email {email} already exists."
    if len(name) > 120:
        errors["name"] = "At most 120 characters."
    if role not in ROLES:
        errors["role"] = "Choose a role."
    if _password_error(password):
        errors["password"] = _password_error(password)
    if errors:
        raise catalog.FieldErrors(errors)
    user = User(email=email, name=name or email.split("@")[0], role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


def _change_role(user, role, acting):
    if role not in ROLES:
        raise ServiceError("invalid_role", "Choose a role.", field="role")
    if user.id == acting.id and role != "admin":
        raise ServiceError("self_demotion", "You cannot remove your own admin role. Ask another admin to do it.",
                           field="role")
    user.role = role
    db.session.flush()


def _set_user_active(user, active, acting):
    if user.id == acting.id and not active:
        raise ServiceError("self_deactivation", "You cannot deactivate your own account. "
                                                "Ask another admin to do it.")
    user.is_active_user = active
    db.session.flush()


def _reset_password(user, password):
    problem = _password_error(password)
    if problem:
        raise ServiceError("bad_password", problem, field="password")
    user.set_password(password)
    db.session.flush()


@bp.route("/users")
def users():
    rows = db.session.scalars(select(User).order_by(User.email)).all()
    return render_template("admin/users.html", users=rows)


@bp.route("/users/new", methods=["GET", "POST"])
def user_new():
    roles = [(role, role) for role in ROLES]
    if request.method == "GET":
        return render_template("admin/user_form.html", errors={}, form={"role": "operator"}, roles=roles)
    try:
        user = _create_user(request.form)
        db.session.commit()
    except ServiceError as exc:
        return refuse("admin/user_form.html", exc, form=request.form, roles=roles)
    flash(f"Created {user.role} {user.email}. Give them their password in person or by phone.", "success")
    return redirect(url_for("admin.user", user_id=user.id))


def _user_page(user, status=200, errors=None, form=None):
    return render_template("admin/user.html", user=user, roles=[(role, role) for role in ROLES],
                           errors=errors or {}, form=form or {"role": user.role}), status


@bp.route("/users/<int:user_id>")
def user(user_id):
    return _user_page(_get_or_404(User, user_id))


def _user_action(user_id, action, done_message):
    """Run `action(user)`, commit and go back to the user page; on ServiceError show why on that page."""
    target = _get_or_404(User, user_id)
    try:
        action(target)
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        return _user_page(target, 400, errors_from(exc), {"role": request.form.get("role", target.role)})
    flash(done_message(target), "success")
    return redirect(url_for("admin.user", user_id=target.id))


@bp.route("/users/<int:user_id>/role", methods=["POST"])
def user_role(user_id):
    return _user_action(user_id, lambda u: _change_role(u, request.form.get("role", ""), current_user),
                        lambda u: f"{u.email} is now {u.role}.")


@bp.route("/users/<int:user_id>/password", methods=["POST"])
def user_password(user_id):
    return _user_action(user_id, lambda u: _reset_password(u, request.form.get("password", "")),
                        lambda u: f"New password set for {u.email}.")


@bp.route("/users/<int:user_id>/activate", methods=["POST"])
def user_activate(user_id):
    return _user_action(user_id, lambda u: _set_user_active(u, True, current_user),
                        lambda u: f"{u.email} can sign in again.")


@bp.route("/users/<int:user_id>/deactivate", methods=["POST"])
def user_deactivate(user_id):
    return _user_action(user_id, lambda u: _set_user_active(u, False, current_user),
                        lambda u: f"{u.email} is deactivated and can no longer sign in.")
