"""Sign in and out, with failed attempts limited per email and per address."""

from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, or_, select

from wms.core.models import LoginFailure, User
from wms.core.models._base import utcnow
from wms.extensions import db

from .access import public, safe_next

bp = Blueprint("auth", __name__)


def _too_many_failures(email, address):
    window = utcnow() - timedelta(seconds=current_app.config["WMS_LOGIN_WINDOW_SECONDS"])
    limit = current_app.config["WMS_LOGIN_ATTEMPTS"]
    by_email = db.session.scalar(select(func.count()).select_from(LoginFailure)
                                 .where(LoginFailure.email == email, LoginFailure.at >= window))
    by_address = db.session.scalar(select(func.count()).select_from(LoginFailure)
                                   .where(LoginFailure.address == address, LoginFailure.at >= window))
    return by_email >= limit or by_address >= limit * 4


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    error, email = None, ""
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()
        password = request.form.get("password", "")
        address = request.remote_addr or "unknown"
        if _too_many_failures(email, address):
            error = "Too many failed sign-ins. Wait a few minutes and try again."
            return render_template("auth/login.html", error=error, email=email), 429
        user = db.session.scalar(select(User).where(User.email == email)) if email else None
        if user is None:
            User.burn_password_check(password)
        if user is not None and user.is_active and user.check_password(password):
            db.session.execute(LoginFailure.__table__.delete().where(
                or_(LoginFailure.email == email, LoginFailure.address == address)))
            db.session.commit()
            login_user(user)
            return redirect(safe_next(request.args.get("next")))
        db.session.add(LoginFailure(email=email[:255], address=address[:64]))
        db.session.commit()
        error = "Email or password is wrong."
    return render_template("auth/login.html", error=error, email=email)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    logout_user()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))
