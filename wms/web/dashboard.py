"""The dashboard (today's receipts and picks, open orders, low stock) and the user's own account page."""

from datetime import datetime, time

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from wms.core.models import ApiToken, Order, Product, StockMovement, WarehouseLevel
from wms.core.models._base import utcnow
from wms.extensions import db

bp = Blueprint("dashboard", __name__)


def low_stock_products(limit=20):
    """Active products whose available units, over all warehouses, are at or below their threshold."""
    available = (select(WarehouseLevel.product_id,
                        func.sum(WarehouseLevel.on_hand - WarehouseLevel.committed).label("available"))
                 .group_by(WarehouseLevel.product_id).subquery())
    rows = db.session.execute(
        select(Product, func.coalesce(available.c.available, 0))
        .outerjoin(available, available.c.product_id == Product.id)
        .where(Product.is_active, Product.low_stock_threshold > 0,
               func.coalesce(available.c.available, 0) <= Product.low_stock_threshold)
        .order_by(func.coalesce(available.c.available, 0), Product.sku).limit(limit)).all()
    return rows


@bp.route("/")
def index():
    start_of_day = datetime.combine(utcnow().date(), time.min)
    today = {}
    for kind in ("receipt", "pick"):
        today[kind] = db.session.execute(
            select(func.count(), func.coalesce(func.sum(StockMovement.quantity), 0))
            .where(StockMovement.kind == kind, StockMovement.created_at >= start_of_day)).one()
    open_orders = db.session.scalar(select(func.count()).select_from(Order)
                                    .where(Order.status.in_(("open", "picking", "packed", "on_hold"))))
    on_hold = db.session.scalar(select(func.count()).select_from(Order).where(Order.status == "on_hold"))
    totals = db.session.execute(select(func.coalesce(func.sum(WarehouseLevel.on_hand), 0),
                                       func.coalesce(func.sum(WarehouseLevel.committed), 0))).one()
    panels = current_app_panels("dashboard", None)
    return render_template("dashboard/index.html", today=today, open_orders=open_orders, on_hold=on_hold,
                           on_hand=totals[0], committed=totals[1], low_stock=low_stock_products(),
                           panels=panels)


def current_app_panels(page, obj):
    from flask import current_app
    provider = current_app.extensions.get("wms.panels")
    return provider(page, obj) if provider else []


@bp.route("/account", methods=["GET", "POST"])
def account():
    new_token = None
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        if not name:
            flash("Give the token a name, such as the system that will use it.", "error")
        else:
            row, new_token = ApiToken.issue(current_user, name[:120])
            db.session.add(row)
            db.session.commit()
    tokens = db.session.scalars(select(ApiToken).where(ApiToken.user_id == current_user.id)
                                .order_by(ApiToken.created_at.desc())).all()
    return render_template("dashboard/account.html", tokens=tokens, new_token=new_token)


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
def revoke_token(token_id):
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id:
        return render_template("error.html", title="Not found", message="No such token."), 404
    token.revoked_at = token.revoked_at or utcnow()
    db.session.commit()
    flash(f"Token {token.name} revoked.", "success")
    return redirect(url_for("dashboard.account"))
