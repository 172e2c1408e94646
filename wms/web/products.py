"""Product pages: the catalog list and product page for everyone; create, edit, (de)activate and CSV
import/export for admins. Every field rule lives in `catalog.clean_product`."""

import csv
from datetime import date

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, or_, select

from wms.core.errors import ServiceError
from wms.core.models import Location, LocationLevel, Product, StockMovement, Warehouse, WarehouseLevel
from wms.core.services import catalog
from wms.extensions import db

from . import access
from .dashboard import current_app_panels
from .forms import int_or_none, refuse

bp = Blueprint("products", __name__, url_prefix="/products")

PER_PAGE = 50
STATUS_FILTERS = (("active", "Active"), ("inactive", "Inactive"), ("all", "All"))


def _available_by_product():
    return (select(WarehouseLevel.product_id,
                   func.sum(WarehouseLevel.on_hand - WarehouseLevel.committed).label("available"))
            .group_by(WarehouseLevel.product_id).subquery())


def _search(query, text, status):
    if text:
        query = query.where(or_(Product.sku.icontains(text, autoescape=True),
                                Product.name.icontains(text, autoescape=True),
                                Product.barcode.icontains(text, autoescape=True),
                                Product.varietal.icontains(text, autoescape=True)))
    if status == "active":
        query = query.where(Product.is_active)
    elif status == "inactive":
        query = query.where(Product.is_active.is_(False))
    return query


@bp.route("/")
def index():
    text = request.args.get("q", "").strip()
    status = request.args.get("status", "active")
    if status not in dict(STATUS_FILTERS):
        status = "active"
    total = db.session.scalar(_search(select(func.count()).select_from(Product), text, status))
    pages = max(1, -(-total // PER_PAGE))
    page = min(max(int_or_none(request.args.get("page")) or 1, 1), pages)
    available = _available_by_product()
    rows = db.session.execute(
        _search(select(Product, func.coalesce(available.c.available, 0))
                .outerjoin(available, available.c.product_id == Product.id), text, status)
        .order_by(Product.sku).offset((page - 1) * PER_PAGE).limit(PER_PAGE)).all()
    return render_template("products/index.html", rows=rows, q=text, status=status, statuses=STATUS_FILTERS,
                           page=page, pages=pages, total=total)


def _product_or_404(product_id):
    product = db.session.get(Product, product_id)
    if product is None:
        abort(404)
    return product


@bp.route("/<int:product_id>")
def detail(product_id):
    product = _product_or_404(product_id)
    warehouse_levels = db.session.scalars(
        select(WarehouseLevel).join(Warehouse).where(WarehouseLevel.product_id == product.id)
        .order_by(Warehouse.code)).all()
    bin_levels = db.session.scalars(
        select(LocationLevel).join(Location, LocationLevel.location_id == Location.id)
        .join(Warehouse, LocationLevel.warehouse_id == Warehouse.id)
        .where(LocationLevel.product_id == product.id, LocationLevel.on_hand != 0)
        .order_by(Warehouse.code, Location.code)).all()
    movements = db.session.scalars(
        select(StockMovement).where(StockMovement.product_id == product.id)
        .order_by(StockMovement.id.desc()).limit(20)).all()
    return render_template("products/detail.html", product=product, warehouse_levels=warehouse_levels,
                           bin_levels=bin_levels, movements=movements,
                           panels=current_app_panels("product", product))


def _form_values(product):
    """The product's fields as the form shows them (blank for unset optional numbers)."""
    return {key: "" if getattr(product, key) is None else getattr(product, key) for key in catalog.PRODUCT_FIELDS}


@bp.route("/new", methods=["GET", "POST"])
@access.admin_only
def new():
    if request.method == "GET":
        return render_template("products/form.html", product=None, errors={},
                               form={"bottle_size_ml": 750, "case_quantity": 12, "low_stock_threshold": 0})
    try:
        product = catalog.create_product(request.form)
        db.session.commit()
    except ServiceError as exc:
        return refuse("products/form.html", exc, form=request.form, product=None)
    flash(f"Created product {product.sku} ({product.name}).", "success")
    return redirect(url_for("products.detail", product_id=product.id))


@bp.route("/<int:product_id>/edit", methods=["GET", "POST"])
@access.admin_only
def edit(product_id):
    product = _product_or_404(product_id)
    if request.method == "GET":
        return render_template("products/form.html", product=product, errors={}, form=_form_values(product))
    try:
        catalog.update_product(product, request.form)
        db.session.commit()
    except ServiceError as exc:
        return refuse("products/form.html", exc, form=request.form, product=product)
    flash(f"Saved product {product.sku}.", "success")
    return redirect(url_for("products.detail", product_id=product.id))


def _set_active(product_id, active):
    product = _product_or_404(product_id)
    product.is_active = active
    db.session.commit()
    flash(f"Product {product.sku} is now {'active' if active else 'inactive'}.", "success")
    return redirect(url_for("products.detail", product_id=product.id))


@bp.route("/<int:product_id>/activate", methods=["POST"])
@access.admin_only
def activate(product_id):
    return _set_active(product_id, True)


@bp.route("/<int:product_id>/deactivate", methods=["POST"])
@access.admin_only
def deactivate(product_id):
    return _set_active(product_id, False)


@bp.route("/export.csv")
@access.admin_only
def export_csv():
    filename = f"products-{date.today().isoformat()}.csv"
    return Response(catalog.export_products_csv(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _uploaded_text():
    """The uploaded CSV as text, or a ServiceError naming what is wrong with the file."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ServiceError("file_required", "Choose a CSV file to import.", field="file")
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ServiceError("bad_encoding", "The file is not UTF-8 text. Save it as \"CSV UTF-8\" and try again.",
                           field="file") from None
    if not text.strip():
        raise ServiceError("empty_file", "The file is empty.", field="file")
    return text


@bp.route("/import", methods=["GET", "POST"])
@access.admin_only
def import_csv():
    if request.method == "GET":
        return render_template("products/import.html", errors={}, row_errors=[], columns=catalog.CSV_COLUMNS)
    try:
        created, updated = catalog.import_products_csv(_uploaded_text())
        db.session.commit()
    except ServiceError as exc:
        return refuse("products/import.html", exc, row_errors=getattr(exc, "row_errors", []),
                      columns=catalog.CSV_COLUMNS)
    except csv.Error as exc:
        return refuse("products/import.html", ServiceError("bad_csv", f"The file is not valid CSV: {exc}.",
                                                           field="file"),
                      row_errors=[], columns=catalog.CSV_COLUMNS)
    flash(f"Imported the file: {created} product(s) created, {updated} updated.", "success")
    return redirect(url_for("products.index", status="all"))
