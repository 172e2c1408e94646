"""Who may reach which endpoint. Default deny: every endpoint needs a signed-in user unless marked.

Rules, from most open to least:
* ``public``   no login (sign-in page, static files, webhooks, OAuth callbacks);
* ``token``    the JSON API, which checks its own bearer token;
* ``operator`` any signed-in user (the default);
* ``admin``    signed-in admins only.

Mark a view with `@public`, `@admin_only` or `@token_auth`, or a whole blueprint with
`set_blueprint_rule(bp, rule)`. `rule_for(app, endpoint)` is what the request check and the URL-map
test both read.
"""

from urllib.parse import urlsplit

from flask import abort, current_app, request, url_for
from flask_login import current_user

from wms.extensions import login_manager

RULES = ("public", "token", "operator", "admin")
_BLUEPRINT_RULES = {}


def _mark(rule):
    def decorator(view):
        view._wms_access = rule
        return view
    return decorator


public = _mark("public")
operator = _mark("operator")      # any signed-in user, on a blueprint whose default is admin
admin_only = _mark("admin")
token_auth = _mark("token")


def set_blueprint_rule(blueprint, rule):
    if rule not in RULES:
        raise ValueError(rule)
    _BLUEPRINT_RULES[blueprint.name] = rule


def blueprint_rules():
    return dict(_BLUEPRINT_RULES)


def rule_for(app, endpoint):
    if endpoint == "static" or endpoint.endswith(".static"):
        return "public"
    view = app.view_functions.get(endpoint)
    marked = getattr(view, "_wms_access", None)
    if marked:
        return marked
    blueprint = endpoint.rsplit(".", 1)[0] if "." in endpoint else None
    return _BLUEPRINT_RULES.get(blueprint, "operator")


def init_access(app):
    @app.before_request
    def check_access():
        if request.endpoint is None:
            return None
        rule = rule_for(current_app, request.endpoint)
        if rule in ("public", "token"):
            return None
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if rule == "admin" and not current_user.is_admin:
            abort(403)
        return None


def safe_next(target, default_endpoint="dashboard.index"):
    """Only same-site relative paths: '/orders/3' yes; '//evil', 'https://evil', '/\\evil' no."""
    if target:
        parts = urlsplit(target)
        if (not parts.scheme and not parts.netloc and target.startswith("/")
                and not target.startswith("//") and not target.startswith("/\\") and "\\" not in target):
            return target
    return url_for(default_endpoint)


OPERATOR_NAV = [
    ("dashboard.index", "Dashboard"),
    ("stock.receive", "Receive"),
    ("orders.index", "Orders"),
    ("stock.adjust", "Adjust"),
    ("stock.transfer", "Transfer"),
    ("stock.levels", "Stock"),
    ("stock.movements", "Movements"),
    ("products.index", "Products"),
]
ADMIN_NAV = [
    ("admin.warehouses", "Warehouses"),
    ("admin.users", "Users"),
    ("integrations.plugins", "Plugins"),
    ("integrations.activity", "Activity"),
]


def nav_items():
    """Menu entries for the signed-in user: (endpoint, label)."""
    if not current_user.is_authenticated:
        return [], []
    extra = current_app.extensions.get("wms.admin_menu", lambda: [])()
    admin = ADMIN_NAV + extra if current_user.is_admin else []
    return OPERATOR_NAV, admin
