"""The WineDirect pages: dashboard (with the Orders tab) and the actions of the dashboard and of the
order and product panels. Admin-only unless marked `operator` (the order panel's actions)."""

from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from wms import outbox
from wms.core.errors import ServiceError
from wms.core.models import Order, Product, WarehouseLevel
from wms.core.models._base import utcnow
from wms.extensions import db
from wms.integrations.errors import RemoteError
from wms.plugins.models import SyncRecord
from wms.web import access

from . import sync

bp = Blueprint("winedirect", __name__, url_prefix="/plugins/winedirect", template_folder="templates")
ORDERS_PER_PAGE = 50
CHART_DAYS = 14
STATE_LABELS = {"connected": "Connected", "disconnected": "Disconnected", "token_issue": "Token Issue",
                "unknown": "Not checked yet"}


def _back(default="winedirect.dashboard", **values):
    return redirect(access.safe_next(request.form.get("next"), default) if request.form.get("next")
                    else url_for(default, **values))


def _order_records(since=None):
    query = select(SyncRecord).where(SyncRecord.plugin == sync.PLUGIN, SyncRecord.object_type == "order")
    return query if since is None else query.where(SyncRecord.created_at >= since)


def _pushed(records):
    return [r for r in records if (r.data or {}).get("stage") == "submitted"]


def statistics():
    now = utcnow()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    week_start = day_start - timedelta(days=day_start.weekday())
    month_start = day_start.replace(day=1)
    records = db.session.scalars(_order_records(min(month_start, day_start - timedelta(days=CHART_DAYS)))).all()
    pushed = _pushed(records)

    def submitted_at(rec):
        return rec.data.get("submitted_at") or rec.created_at.strftime("%Y-%m-%d %H:%M:%S")

    def count_since(moment):
        return sum(1 for r in pushed if submitted_at(r) >= moment.strftime("%Y-%m-%d %H:%M:%S"))

    attempted = [r for r in records if r.status in ("synced", "failed") or (r.data or {}).get("stage") == "submitted"]
    succeeded = [r for r in attempted if r.status != "failed"]
    per_day = []
    for offset in range(CHART_DAYS - 1, -1, -1):
        day = (day_start - timedelta(days=offset)).strftime("%Y-%m-%d")
        per_day.append((day, sum(1 for r in pushed if submitted_at(r)[:10] == day)))
    tracked = db.session.scalar(select(func.count()).select_from(WarehouseLevel).where(
        WarehouseLevel.warehouse_id.in_([w.id for w in sync.winedirect_warehouses()] or [-1]))) or 0
    return {"today": count_since(day_start), "week": count_since(week_start), "month": count_since(month_start),
            "success_rate": round(100.0 * len(succeeded) / len(attempted)) if attempted else None,
            "attempted": len(attempted), "tracked": tracked, "per_day": per_day}


def chart(per_day, width=560, height=120):
    """Bars of orders per day as SVG geometry (drawn by the template; no script)."""
    top = max((n for _, n in per_day), default=0) or 1
    slot = width / max(len(per_day), 1)
    bars = []
    for index, (day, count) in enumerate(per_day):
        bar_height = round((height - 20) * count / top, 1)
        bars.append({"x": round(index * slot + 2, 1), "y": round(height - 14 - bar_height, 1),
                     "w": round(slot - 4, 1), "h": bar_height, "day": day, "count": count,
                     "label": day[8:10]})
    return {"width": width, "height": height, "bars": bars, "top": top}


def low_stock():
    rows = []
    for warehouse in sync.winedirect_warehouses():
        levels = db.session.execute(select(WarehouseLevel, Product).join(Product, Product.id == WarehouseLevel.product_id)
                                    .where(WarehouseLevel.warehouse_id == warehouse.id)).all()
        for level, product in levels:
            available = level.on_hand - level.committed
            if available <= product.low_stock_threshold:
                rows.append({"warehouse": warehouse.code, "sku": product.sku, "name": product.name,
                             "available": available, "threshold": product.low_stock_threshold,
                             "product_id": product.id})
    return sorted(rows, key=lambda r: (r["available"], r["sku"]))


@bp.route("/")
def dashboard():
    from wms.web.integrations import failed_work, recent_calls
    state, message, data = sync.connection_state()
    tab = request.args.get("tab", "overview")
    page = db.paginate(
        select(SyncRecord).where(SyncRecord.plugin == sync.PLUGIN, SyncRecord.object_type == "order")
        .order_by(SyncRecord.id.desc()), page=int(request.args.get("page") or 1), per_page=ORDERS_PER_PAGE,
        error_out=False)
    by_id = {o.id: o for o in db.session.scalars(select(Order).where(
        Order.id.in_([r.object_id for r in page.items] or [-1])))}
    rows = [(r, by_id[r.object_id]) for r in page.items if r.object_id in by_id]
    stats = statistics()
    cfg = sync.config()
    return render_template(
        "winedirect/dashboard.html", state=state, state_label=STATE_LABELS.get(state, state), message=message,
        data=data, tab=tab, orders=rows, page=page, stats=stats, chart=chart(stats["per_day"]),
        calls=recent_calls(plugin=sync.PLUGIN, limit=20), error_calls=recent_calls(plugin=sync.PLUGIN, limit=10,
                                                                                  errors_only=True),
        failures=failed_work("winedirect.", 20), low_stock=low_stock(), cfg=cfg,
        warehouses=sync.winedirect_warehouses())


def _queue(topic, payload, label):
    try:
        sync.require_configured()
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(url_for("winedirect.dashboard"))
    outbox.emit(topic, payload)
    db.session.commit()
    flash(f"{label} started; it runs in the background. Results show below and in Recent Activity.", "success")
    return _back()


@bp.route("/sync/products", methods=["POST"])
def sync_products():
    return _queue("winedirect.sync_products", {}, "Sync Products")


@bp.route("/sync/inventory", methods=["POST"])
def sync_inventory():
    return _queue("winedirect.sync_inventory", {}, "Sync Inventory")


@bp.route("/sync/shipments", methods=["POST"])
def sync_shipments():
    return _queue("winedirect.sync_shipments", {}, "Sync Shipments")


@bp.route("/auto-sync", methods=["POST"])
def auto_sync():
    from wms.plugins.settings import state_for
    raw = (request.form.get("interval") or "").strip()
    if not raw.isdigit() or not 5 <= int(raw) <= 1440:
        flash("The auto-sync interval must be a whole number of minutes between 5 and 1440.", "error")
        return redirect(url_for("winedirect.dashboard"))
    state = state_for(sync.PLUGIN)
    settings = dict(state.settings or {})
    settings["inventory_auto_sync"] = request.form.get("enabled") in ("1", "on", "true")
    settings["inventory_sync_minutes"] = int(raw)
    state.settings = settings
    db.session.commit()
    flash("Inventory auto-sync is " + (f"on, every {raw} minutes." if settings["inventory_auto_sync"] else "off."),
          "success")
    return redirect(url_for("winedirect.dashboard"))


@bp.route("/warehouses/setup", methods=["POST"])
def setup_warehouses():
    try:
        remote = sync.call(lambda cl: cl.list_warehouses())
    except RemoteError as exc:
        db.session.commit()
        flash(f"Could not read the WineDirect warehouses: {exc.message}", "error")
        return redirect(url_for("winedirect.dashboard"))
    try:
        created, completed = sync.set_up_warehouses(remote)
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        flash(f"Could not set up the warehouses: {exc.message}", "error")
        return redirect(url_for("winedirect.dashboard"))
    flash(f"WineDirect lists {len(remote)} warehouse(s): {len(created)} created"
          + (f" ({', '.join(created)})" if created else "") + (f", {len(completed)} completed" if completed else "")
          + ", the others already set up.", "success")
    return redirect(url_for("winedirect.dashboard"))


# -- order panel actions (operators) ------------------------------------------------------------

def _to_order(order):
    return redirect(url_for("orders.detail", order_id=order.id))


@bp.route("/orders/<int:order_id>/sync", methods=["POST"])
@access.operator
def order_sync(order_id):
    order = db.get_or_404(Order, order_id)
    rec = sync.record("order", order.id)
    if rec is None or (rec.data or {}).get("stage") != "submitted":
        flash("This order has not been submitted to WineDirect yet.", "warning")
        return _to_order(order)
    try:
        status = sync.refresh_order(order, rec)
        db.session.commit()
    except (RemoteError, ServiceError) as exc:
        db.session.rollback()
        db.session.commit()
        flash(f"Could not read the status from WineDirect: {exc.message}", "error")
        return _to_order(order)
    flash(f"WineDirect status: {status.status_name or status.status_code}"
          + (f" ({status.reason})" if status.reason else "") + ".", "success")
    return _to_order(order)


@bp.route("/orders/<int:order_id>/cancel", methods=["POST"])
@access.operator
def order_cancel(order_id):
    from flask_login import current_user
    from wms.core.services import orders as order_service
    order = db.get_or_404(Order, order_id)
    try:
        ok, message = sync.cancel_at_winedirect(order)
    except RemoteError as exc:
        db.session.rollback()
        db.session.commit()
        flash(f"Cancel refused: {exc.message}", "error")
        return _to_order(order)
    if not ok:
        db.session.commit()
        flash(f"Cancel refused: {message}", "error")
        return _to_order(order)
    order = db.session.get(Order, order_id)
    try:
        if not order.is_closed:
            order_service.cancel(order, reason="Cancelled at WineDirect from the WineDirect panel.", user=current_user)
        db.session.commit()
    except ServiceError as exc:
        db.session.commit()
        flash(f"Cancelled at WineDirect, but the WMS order could not be cancelled: {exc.message}", "warning")
        return _to_order(order)
    flash(f"Order {order.number} is cancelled at WineDirect and in the WMS.", "success")
    return _to_order(order)


@bp.route("/orders/<int:order_id>/submit", methods=["POST"])
@access.operator
def order_submit(order_id):
    order = db.get_or_404(Order, order_id)
    rec = sync.record("order", order.id)
    if not sync._handled(order):
        flash("This order is not routed to a WineDirect shipping process.", "error")
    elif rec is not None and (rec.data or {}).get("stage") == "submitted" and rec.status != "failed":
        flash("WineDirect already has this order; use Sync Status.", "warning")
    else:
        if rec is not None:
            rec.attempts += 1
        sync.queue_order(order, force=True)
        db.session.commit()
        flash("The order will be submitted to WineDirect (after checking that WineDirect does not have it).",
              "success")
    return _to_order(order)


# -- product panel actions ----------------------------------------------------------------------

@bp.route("/products/<int:product_id>/sync", methods=["POST"])
def product_sync(product_id):
    product = db.session.get(Product, product_id)
    if product is None:
        from flask import abort
        abort(404)
    outbox.emit("winedirect.sync_products", {"product_ids": [product.id]})
    db.session.commit()
    flash(f"{product.sku} will be sent to WineDirect in the background.", "success")
    return redirect(url_for("products.detail", product_id=product.id))


@bp.route("/products/<int:product_id>/inventory", methods=["POST"])
def product_inventory(product_id):
    product = db.session.get(Product, product_id)
    if product is None:
        from flask import abort
        abort(404)
    outbox.emit("winedirect.sync_inventory", {})
    db.session.commit()
    flash("WineDirect inventory will be pulled in the background.", "success")
    return redirect(url_for("products.detail", product_id=product.id))
