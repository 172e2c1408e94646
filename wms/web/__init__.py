"""Core blueprints, and the rules every request passes: login, roles, CSRF, security headers."""

from flask import jsonify, render_template, request, session
from flask_wtf.csrf import CSRFError

from wms.extensions import db, login_manager

from . import access


def init_web(app):
    from wms.core.models import User

    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in."
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def load_user(user_id):
        user = db.session.get(User, int(user_id)) if str(user_id).isdigit() else None
        return user if user is not None and user.is_active else None

    from . import admin, api, auth, dashboard, integrations, orders, products, stock, webhooks

    for module in (auth, dashboard, stock, orders, products, admin, integrations, api, webhooks):
        app.register_blueprint(module.bp)
    access.init_access(app)
    app.after_request(_security_headers)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(404, _not_found)
    app.register_error_handler(403, _forbidden)
    app.register_error_handler(413, _too_large)
    app.jinja_env.globals["nav_items"] = access.nav_items
    app.jinja_env.filters["qty"] = lambda n: f"{n:,}" if isinstance(n, int) else n


def _wants_json():
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _csrf_error(error):
    if _wants_json():
        return jsonify(code="csrf_failed", message=error.description), 400
    return render_template("error.html", title="Form expired",
                           message="This form was open too long or came from another site. "
                                   "Go back, reload the page and submit again."), 400


def _not_found(error):
    if _wants_json():
        return jsonify(code="not_found", message="No such resource."), 404
    return render_template("error.html", title="Not found", message="There is no page here."), 404


def _forbidden(error):
    if _wants_json():
        return jsonify(code="forbidden", message="Your role cannot do this."), 403
    return render_template("error.html", title="Not allowed",
                           message="This page is for admins. Ask an admin if you need it."), 403


def _too_large(error):
    if _wants_json():
        return jsonify(code="body_too_large", message="The request body is too large."), 413
    return render_template("error.html", title="Too large", message="The upload is too large."), 413


def _security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy",
                       "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                       "frame-ancestors 'none'")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if session.get("_user_id"):   # a signed-in page: read from the session, without loading the user
        headers.setdefault("Cache-Control", "no-store")
    return response
