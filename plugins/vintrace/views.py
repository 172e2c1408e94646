"""The Vintrace Settings page: settings checked against Vintrace on save, Test Connection, Sync
Orders with per-order results, recent orders, failed work and the call log. Admins only."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from wms.core.errors import ServiceError
from wms.core.models import Order
from wms.extensions import db
from wms.integrations.errors import RemoteAuthError, RemoteError
from wms.plugins import settings as plugin_settings
from wms.plugins.manager import plugin_host
from wms.plugins.models import PluginState, SyncRecord
from wms.web import access
from wms.web.forms import errors_from

from . import sync

bp = Blueprint("vintrace", __name__, url_prefix="/plugins/vintrace", template_folder="templates")
access.set_blueprint_rule(bp, "admin")
RECENT_ORDERS = 25


def _plugin():
    return plugin_host().get("vintrace")


def _secrets():
    state = db.session.get(PluginState, "vintrace")
    try:
        return plugin_settings.decrypt(state.secrets if state else None), None
    except ServiceError as exc:
        return {}, exc.message


def _recent_records(status=None):
    query = select(SyncRecord, Order).join(Order, Order.id == SyncRecord.object_id).where(
        SyncRecord.plugin == sync.PLUGIN, SyncRecord.object_type == sync.OBJECT_TYPE)
    if status:
        query = query.where(SyncRecord.status == status)
    return db.session.execute(query.order_by(SyncRecord.updated_at.desc(), SyncRecord.id.desc())
                              .limit(RECENT_ORDERS)).all()


def _page(status=200, errors=None, values=None, results=None, names_text=""):
    from wms.web.integrations import failed_work, recent_calls
    plugin = _plugin()
    state = db.session.get(PluginState, plugin.name)
    secrets, problem = _secrets()
    config = plugin.config()
    if values is None:
        values = {s.key: config.get(s.key) for s in plugin.settings if not s.is_secret}
    masked = {s.key: plugin_settings.mask(secrets.get(s.key)) for s in plugin.settings if s.is_secret}
    return render_template(
        "vintrace/settings.html", plugin=plugin, state=state, values=values, masked=masked,
        secrets_problem=problem, errors=errors or {}, results=results, names_text=names_text,
        is_active=plugin_host().is_active(plugin.name),
        configured=not sync.missing_settings(config), verified=sync.settings_verified(config),
        failed=_recent_records("failed"), recent=_recent_records(),
        failures=failed_work(topic_prefix="vintrace.", limit=20),
        tag_failures=[m for m in failed_work(topic_prefix=sync.TAG_TOPIC, limit=20)],
        calls=recent_calls(plugin="vintrace", limit=20)), status


@bp.route("/")
def settings():
    return _page()


def _check_remote(values, secrets):
    """{field: message} for what Vintrace says is wrong with these settings (empty: all good)."""
    config = {**values, **secrets}
    try:
        client = sync.make_client(config)
        if client.find_customer(config["customer_name"]) is None:
            errors = {"customer_name": f"Vintrace has no customer named exactly '{config['customer_name']}'. "
                                       "Names must match exactly, capitals and spaces included: copy it from "
                                       "the customer's record in Vintrace."}
        else:
            errors = {}
        if client.find_price_list(config["price_list"]) is None:
            errors["price_list"] = (f"Vintrace has no sales price list named exactly '{config['price_list']}'. "
                                    "Copy its name from Vintrace (capitals and spaces included).")
        return errors
    except RemoteAuthError as exc:
        return {"api_key": exc.message}
    except RemoteError as exc:
        return {"base_url": f"Could not check the settings with Vintrace: {exc.message}"}
    except ValueError as exc:
        return {"api_key": str(exc)}


@bp.route("/settings", methods=["POST"])
def save_settings():
    plugin = _plugin()
    current, _problem = _secrets()
    try:
        values, secrets = plugin_settings.parse(plugin.settings, request.form, current)
    except ServiceError as exc:
        return _page(400, errors_from(exc), _submitted(plugin, request.form))
    # Vintrace is asked before anything is written, so no transaction stays open meanwhile.
    errors = _check_remote(values, secrets)
    if errors:
        return _page(400, errors, _submitted(plugin, request.form))
    state = plugin_settings.state_for(plugin.name)
    state.settings = {**values, sync.VERIFIED_KEY: sync.verified_marker(values)}
    state.secrets = plugin_settings.encrypt({k: v for k, v in secrets.items() if v})
    db.session.commit()
    flash(f"Saved the Vintrace settings: customer '{values['customer_name']}' and price list "
          f"'{values['price_list']}' exist in Vintrace.", "success")
    return redirect(url_for("vintrace.settings"))


def _submitted(plugin, form):
    return {s.key: form.get(s.key, "") for s in plugin.settings if not s.is_secret}


@bp.route("/test", methods=["POST"])
def test():
    plugin = _plugin()
    try:
        ok, message = plugin.test_connection()
    except (RemoteError, ServiceError) as exc:
        ok, message = False, exc.message
    if ok:
        flash(f"Connection to Vintrace works: {message}", "success")
    else:
        flash(f"Connection to Vintrace failed: {message}", "error")
    return redirect(url_for("vintrace.settings"))


@bp.route("/sync", methods=["POST"])
def sync_orders():
    text = request.form.get("orders", "")
    names = sync.parse_order_names(text)
    back = access.safe_next(request.form.get("next"), "vintrace.settings") if request.form.get("next") else None
    if not names:
        return _page(400, {"orders": "Enter one or more order names, such as #1001, separated by commas, "
                                     "spaces or new lines."}, names_text=text)
    if len(names) > sync.MAX_NAMES:
        return _page(400, {"orders": f"At most {sync.MAX_NAMES} orders at a time; {len(names)} given."},
                     names_text=text)
    results = sync.sync_orders(names)
    if back:
        for result in results:
            flash(f"{result.number or result.name}: {result.message}", "success" if result.ok else "error")
        return redirect(back)
    return _page(results=results, names_text=text)
