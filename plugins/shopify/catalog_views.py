"""The Product Mapping page (Sync Products, its progress and results) and the Returns page of a store.

`register(bp)` adds the routes to the plugin's blueprint, whose default rule is admin; the Returns
page and its actions are for operators too.
"""

from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from wms.core.errors import ServiceError
from wms.extensions import db
from wms.plugins.models import ProductMapping, Store, SyncRecord
from wms.web import access

from . import catalog, returns

POLL_MILLISECONDS = 1500


def register(bp):
    bp.add_url_rule("/stores/<int:store_id>/catalog", "catalog", catalog_page)
    bp.add_url_rule("/stores/<int:store_id>/catalog/sync", "catalog_sync", catalog_sync, methods=["POST"])
    bp.add_url_rule("/stores/<int:store_id>/catalog/progress", "catalog_progress", catalog_progress)
    bp.add_url_rule("/catalog-progress.js", "catalog_script", catalog_script)
    bp.add_url_rule("/stores/<int:store_id>/returns", "returns", returns_page)
    bp.add_url_rule("/stores/<int:store_id>/returns/<int:record_id>/receive", "return_receive", return_receive,
                    methods=["POST"])
    bp.add_url_rule("/stores/<int:store_id>/returns/<int:record_id>/retry", "return_retry", return_retry,
                    methods=["POST"])


def _store_or_404(store_id):
    store = db.session.get(Store, store_id)
    if store is None or store.plugin != catalog.PLUGIN:
        abort(404)
    return store


# -- product mapping ------------------------------------------------------------------------------------
@access.admin_only
def catalog_page(store_id):
    store = _store_or_404(store_id)
    record = catalog.progress_record(store)
    mapped = db.session.scalar(select(func.count()).select_from(ProductMapping)
                               .where(ProductMapping.store_id == store.id))
    return render_template("shopify/catalog.html", store=store, progress=catalog.progress(store),
                           results=(record.data or {}) if record is not None else {}, mapped=mapped,
                           list_limit=catalog.LIST_LIMIT, poll_ms=POLL_MILLISECONDS)


@access.admin_only
def catalog_sync(store_id):
    store = _store_or_404(store_id)
    try:
        catalog.start_sync(store)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("shopify.catalog", store_id=store.id))
    db.session.commit()
    flash(f"Sync Products started for {store.name}; progress shows below.", "success")
    return redirect(url_for("shopify.catalog", store_id=store.id))


@access.admin_only
def catalog_progress(store_id):
    return jsonify(catalog.progress(_store_or_404(store_id)))


@access.admin_only
def catalog_script():
    # served by the app itself: the Content-Security-Policy allows scripts from 'self' only
    return Response(render_template("shopify/catalog_progress.js"), mimetype="application/javascript")


# -- returns ------------------------------------------------------------------------------------------------
@access.operator
def returns_page(store_id):
    store = _store_or_404(store_id)
    show_all = request.args.get("all") == "1"
    records = returns.records_of(store, include_done=show_all)
    bins = {record.id: returns.receivable_locations(record) for record in records}
    return render_template("shopify/returns.html", store=store, records=records, bins=bins, show_all=show_all,
                           return_sync=bool(store.setting("return_sync")))


@access.operator
def return_receive(store_id, record_id):
    store = _store_or_404(store_id)
    record = _return_or_404(store, record_id)
    location = returns.location_by_id(request.form.get("location_id", type=int))
    try:
        returns.receive(record, location, user=current_user)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("shopify.returns", store_id=store.id))
    db.session.commit()
    flash(f"Return {record.data['return_name']} received into {location.label}; it is being closed in Shopify.",
          "success")
    return redirect(url_for("shopify.returns", store_id=store.id))


@access.operator
def return_retry(store_id, record_id):
    store = _store_or_404(store_id)
    record = _return_or_404(store, record_id)
    try:
        returns.retry_close(record)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("shopify.returns", store_id=store.id))
    db.session.commit()
    flash(f"Closing return {record.data['return_name']} in Shopify again.", "success")
    return redirect(url_for("shopify.returns", store_id=store.id))


def _return_or_404(store, record_id):
    record = db.session.get(SyncRecord, record_id)
    if record is None or record.store_id != store.id or record.object_type != returns.RECORD_TYPE:
        abort(404)
    return record
