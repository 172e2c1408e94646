"""Admin pages of the plugin framework: plugins (activate, settings, test, guide), stores (add, test,
settings, location mapping, product mappings, failed stock pushes) and the activity log with the
failed background work.

Calls to a remote API (Test Connection, Refresh locations) happen before anything is written to the
session, so no write transaction stays open while the remote answers.
"""

import json

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from wms import outbox
from wms.core.errors import ServiceError
from wms.core.models import OutboxMessage, Product, ShippingProcess, Warehouse
from wms.core.services.catalog import FieldErrors
from wms.extensions import db
from wms.integrations.errors import RemoteAuthError, RemoteError
from wms.integrations.http import check_remote_address
from wms.jobs import runner, stock_push
from wms.plugins import settings as plugin_settings
from wms.plugins.manager import plugin_host
from wms.plugins.models import ActivityLog, PluginState, ProductMapping, RemoteLevel, Store, StoreLocation

from . import access
from .forms import errors_from, int_or_none

bp = Blueprint("integrations", __name__, url_prefix="/admin")
access.set_blueprint_rule(bp, "admin")

KIND_SECTIONS = (("marketplace", "Marketplaces"), ("fulfillment", "Fulfillment"))
RETRYABLE_STATUSES = ("failed", "dead", "skipped")
ACTIVITY_PER_PAGE = 100
MAPPINGS_PER_PAGE = 50
FAILURES_ON_PAGE = 100
MAX_STORE_NAME = 120
MAX_REMOTE_ADDRESS = 255


# -- rows other pages reuse ---------------------------------------------------------------------

def _calls_query(plugin=None, store_id=None, errors_only=False):
    query = select(ActivityLog).order_by(ActivityLog.at.desc(), ActivityLog.id.desc())
    if plugin:
        query = query.where(ActivityLog.plugin == plugin)
    if store_id:
        query = query.where(ActivityLog.store_id == store_id)
    if errors_only:
        query = query.where(or_(ActivityLog.error.is_not(None), ActivityLog.status.is_(None),
                                ActivityLog.status >= 400))
    return query


def recent_calls(plugin=None, store_id=None, limit=50, errors_only=False):
    """The newest remote calls (ActivityLog rows), for the activity page and plugin dashboards."""
    return db.session.scalars(_calls_query(plugin, store_id, errors_only).limit(limit)).all()


def _failures_query(topic_prefix=None):
    query = select(OutboxMessage).where(OutboxMessage.status.in_(RETRYABLE_STATUSES))
    if topic_prefix:
        escaped = topic_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(OutboxMessage.topic.like(f"{escaped}%", escape="\\"))
    return query


def failed_work(topic_prefix=None, limit=50):
    """Outbox messages waiting for a person's Retry (failed, dead, skipped), newest first."""
    query = _failures_query(topic_prefix).order_by(OutboxMessage.id.desc()).limit(limit)
    return db.session.scalars(query).all()


# -- helpers ------------------------------------------------------------------------------------

def _plugin_or_404(name):
    plugin = plugin_host().get(name)
    if plugin is None:
        abort(404)
    return plugin


def _marketplace_or_404(name):
    plugin = _plugin_or_404(name)
    if plugin.kind != "marketplace":
        abort(404)
    return plugin


def _readable_secrets(token):
    """(secrets, problem): the decrypted secrets, or {} and the reason they cannot be read."""
    try:
        return plugin_settings.decrypt(token), None
    except ServiceError as exc:
        return {}, exc.message


def _masked(settings, secrets):
    return {s.key: plugin_settings.mask(secrets.get(s.key)) for s in settings if s.is_secret}


def _submitted(settings, form):
    """What the form held, to show again after an error. Secrets are never echoed back."""
    values = {}
    for setting in settings:
        if setting.is_secret:
            continue
        if setting.type == "multichoice":
            values[setting.key] = form.getlist(setting.key)
        elif setting.type == "bool":
            values[setting.key] = form.get(setting.key, "") in ("1", "true", "on", "yes")
        else:
            values[setting.key] = form.get(setting.key, "")
    return values


def _with_defaults(settings, saved):
    values = {s.key: s.default for s in settings if not s.is_secret}
    values.update({k: v for k, v in (saved or {}).items() if k in values})
    return values


def _safe_back(default_endpoint):
    """The same-site page the form came from (its `next` field), else `default_endpoint`."""
    return access.safe_next(request.form.get("next"), default_endpoint)


# -- plugins ------------------------------------------------------------------------------------

@bp.route("/plugins")
def plugins():
    host = plugin_host()
    active = host.active_names()
    sections = [(label, host.plugins(kind)) for kind, label in KIND_SECTIONS]
    known = {kind for kind, _ in KIND_SECTIONS}
    others = [p for p in host.plugins() if p.kind not in known]
    if others:
        sections.append(("Other", others))
    return render_template("integrations/plugins.html", sections=sections, active=active)


def _set_active(name, active):
    plugin = _plugin_or_404(name)
    plugin_host().set_active(name, active)
    db.session.commit()
    flash(f"{plugin.title or plugin.name} is now {'active' if active else 'inactive'}.", "success")
    return redirect(_safe_back("integrations.plugins"))


@bp.route("/plugins/<name>/activate", methods=["POST"])
def plugin_activate(name):
    return _set_active(name, True)


@bp.route("/plugins/<name>/deactivate", methods=["POST"])
def plugin_deactivate(name):
    return _set_active(name, False)


def _settings_page(plugin, status=200, errors=None, values=None):
    state = db.session.get(PluginState, plugin.name)
    secrets, problem = _readable_secrets(state.secrets if state else None)
    if values is None:
        values = _with_defaults(plugin.settings, state.settings if state else {})
    stores = []
    if plugin.kind == "marketplace":
        stores = db.session.scalars(select(Store).where(Store.plugin == plugin.name).order_by(Store.name)).all()
    return render_template("integrations/plugin_settings.html", plugin=plugin, state=state, values=values,
                           masked=_masked(plugin.settings, secrets), secrets_problem=problem,
                           errors=errors or {}, stores=stores,
                           is_active=plugin_host().is_active(plugin.name)), status


@bp.route("/plugins/<name>", methods=["GET", "POST"])
def plugin_settings_page(name):
    plugin = _plugin_or_404(name)
    if request.method == "GET":
        return _settings_page(plugin)
    try:
        state = plugin_settings.state_for(plugin.name)
        if _readable_secrets(state.secrets)[1]:
            # Secrets no configured key can read are useless; the ones typed now replace them.
            state.secrets = None
        plugin_settings.save_plugin_settings(plugin, request.form)
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        return _settings_page(plugin, 400, errors_from(exc), _submitted(plugin.settings, request.form))
    flash(f"Saved the settings of {plugin.title or plugin.name}.", "success")
    return redirect(url_for("integrations.plugin_settings_page", name=plugin.name))


def _run_test(call):
    """(ok, message) of a connection test; a refused or failed call is a failed test, not an error page."""
    try:
        ok, message = call()
    except RemoteError as exc:
        return False, exc.message, exc
    except ServiceError as exc:
        return False, exc.message, exc
    return bool(ok), message or "", None


@bp.route("/plugins/<name>/test", methods=["POST"])
def plugin_test(name):
    plugin = _plugin_or_404(name)
    ok, message, _ = _run_test(plugin.test_connection)
    _flash_test(plugin.title or plugin.name, ok, message)
    return redirect(url_for("integrations.plugin_settings_page", name=plugin.name))


def _flash_test(subject, ok, message):
    if ok:
        flash(f"Connection to {subject} works: {message}".rstrip(": "), "success")
    else:
        flash(f"Connection to {subject} failed: {message or 'no reason given.'}", "error")


@bp.route("/plugins/<name>/guide")
def plugin_guide(name):
    plugin = _plugin_or_404(name)
    if not plugin.guide_template:
        abort(404)
    return render_template("integrations/guide.html", plugin=plugin)


# -- adding a store -----------------------------------------------------------------------------

def _check_store_name(plugin, name, store_id=None):
    if not name:
        return "Name the store, such as “Online shop”."
    if len(name) > MAX_STORE_NAME:
        return f"At most {MAX_STORE_NAME} characters."
    taken = db.session.scalar(select(Store.id).where(Store.plugin == plugin.name,
                                                     func.lower(Store.name) == name.lower()))
    if taken is not None and taken != store_id:
        return f"{plugin.title or plugin.name} already has a store named {name}."
    return None


def _check_remote_address(address):
    if not address:
        return "Enter the store's web address, such as https://shop.example.com."
    if len(address) > MAX_REMOTE_ADDRESS:
        return f"At most {MAX_REMOTE_ADDRESS} characters."
    if not address.startswith(("https://", "http://")):
        return "Must start with https://"
    try:
        check_remote_address(address, bool(current_app.config.get("WMS_ALLOW_PRIVATE_REMOTES")))
    except RemoteError as exc:
        return exc.message
    return None


def _create_store(plugin, form):
    name, address = form.get("name", "").strip(), form.get("remote_address", "").strip().rstrip("/")
    errors = {}
    for key, problem in (("name", _check_store_name(plugin, name)), ("remote_address", _check_remote_address(address))):
        if problem:
            errors[key] = problem
    try:
        values, secrets = plugin_settings.parse(plugin.store_settings, form)
    except FieldErrors as exc:
        errors.update(exc.errors)
    if errors:
        raise FieldErrors(errors)
    store = Store(plugin=plugin.name, name=name, remote_address=address, settings=values, status="pending",
                  credentials=plugin_settings.encrypt({k: v for k, v in secrets.items() if v}))
    db.session.add(store)
    db.session.flush()
    outbox.emit("store.saved", {"store_id": store.id, "created": True})
    return store


def _store_form(plugin, status=200, errors=None, form=None):
    form = form or {}
    values = _submitted(plugin.store_settings, form) if form else _with_defaults(plugin.store_settings, {})
    return render_template("integrations/store_new.html", plugin=plugin, errors=errors or {}, values=values,
                           form=form), status


@bp.route("/plugins/<name>/stores/new", methods=["GET", "POST"])
def store_new(name):
    plugin = _marketplace_or_404(name)
    if request.method == "GET":
        return _store_form(plugin)
    try:
        store = _create_store(plugin, request.form)
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        return _store_form(plugin, 400, errors_from(exc), request.form)
    except IntegrityError:  # the same name saved by someone else a moment ago
        db.session.rollback()
        name = request.form.get("name", "").strip()
        return _store_form(plugin, 400, {"name": _check_store_name(plugin, name) or "That name is taken."},
                           request.form)
    flash(f"Added store {store.name}. Test its connection and map its locations next.", "success")
    return redirect(url_for("integrations.store", store_id=store.id))


# -- the store page -----------------------------------------------------------------------------

def _warehouse_choices():
    warehouses = db.session.scalars(select(Warehouse).order_by(Warehouse.code)).all()
    options = [(w.id, f"{w.code} · {w.name}" + ("" if w.is_active else " (inactive)")) for w in warehouses]
    process_groups = [(w.code, [(p.id, p.name + ("" if p.is_active else " (inactive)")) for p in w.shipping_processes])
                      for w in warehouses]
    return options, process_groups


def _product_mappings(store):
    search = request.args.get("q", "").strip()
    query = (select(ProductMapping).join(Product, ProductMapping.product_id == Product.id)
             .where(ProductMapping.store_id == store.id).order_by(Product.sku))
    if search:
        like = f"%{search.lower()}%"
        query = query.where(or_(func.lower(Product.sku).like(like), func.lower(Product.name).like(like),
                                func.lower(ProductMapping.remote_sku).like(like),
                                ProductMapping.remote_product_id == search, ProductMapping.remote_variant_id == search))
    return db.paginate(query, page=int_or_none(request.args.get("page")) or 1, per_page=MAPPINGS_PER_PAGE,
                       error_out=False)


def _failed_levels(store):
    return db.session.execute(
        select(RemoteLevel, Product).join(Product, RemoteLevel.product_id == Product.id)
        .where(RemoteLevel.store_id == store.id, RemoteLevel.status == "failed")
        .order_by(Product.sku, RemoteLevel.remote_location_id)).all()


def _store_page(store, status=200, **forms):
    plugin = plugin_host().get(store.plugin)
    store_settings = plugin.store_settings if plugin else ()
    secrets, problem = _readable_secrets(store.credentials)
    context = {"settings_errors": {}, "settings_values": _with_defaults(store_settings, store.settings),
               "mapping_errors": {}, "mapping_form": None}
    context.update(forms)
    warehouses, process_groups = _warehouse_choices()
    return render_template(
        "integrations/store.html", store=store, plugin=plugin, store_settings=store_settings,
        masked=_masked(store_settings, secrets), secrets_problem=problem,
        plugin_active=plugin is not None and plugin_host().is_active(store.plugin),
        warehouses=warehouses, process_groups=process_groups, mappings=_product_mappings(store),
        failed_levels=_failed_levels(store), calls=recent_calls(store_id=store.id, limit=20), **context), status


@bp.route("/stores/<int:store_id>", endpoint="store")
def store_page(store_id):
    return _store_page(db.get_or_404(Store, store_id))


@bp.route("/stores/<int:store_id>/test", methods=["POST"])
def store_test(store_id):
    store = db.get_or_404(Store, store_id)
    try:
        plugin = plugin_host().plugin_for(store)
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(url_for("integrations.store", store_id=store.id))
    ok, message, error = _run_test(lambda: plugin.test_connection(store))
    if ok:
        store.status = "connected"
    else:
        store.status = "token_issue" if isinstance(error, RemoteAuthError) else "disconnected"
    store.status_message = (message or None) and message[:1000]
    db.session.commit()
    _flash_test(store.name, ok, message)
    return redirect(url_for("integrations.store", store_id=store.id))


@bp.route("/stores/<int:store_id>/settings", methods=["POST"])
def store_settings(store_id):
    store = db.get_or_404(Store, store_id)
    plugin = _plugin_or_404(store.plugin)
    try:
        current = _readable_secrets(store.credentials)[0]
        values, secrets = plugin_settings.parse(plugin.store_settings, request.form, current)
        # Keep what the plugin wrote itself (tokens, cursors) beside the declared settings.
        store.settings = {**(store.settings or {}), **values}
        store.credentials = plugin_settings.encrypt({**current, **{k: v for k, v in secrets.items() if v}})
        outbox.emit("store.saved", {"store_id": store.id, "created": False})
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        return _store_page(store, 400, settings_errors=errors_from(exc),
                           settings_values=_submitted(plugin.store_settings, request.form))
    flash(f"Saved the settings of {store.name}.", "success")
    return redirect(url_for("integrations.store", store_id=store.id))


def _refresh_locations(store, remote):
    """Add the remote's new locations, rename known ones, drop unmapped ones it no longer lists."""
    listed = {str(remote_id): name for remote_id, name in remote}
    known = {loc.remote_id: loc for loc in store.locations}
    added = [StoreLocation(remote_id=remote_id, remote_name=(name or remote_id)[:200])
             for remote_id, name in listed.items() if remote_id not in known]
    store.locations.extend(added)
    kept = []
    for remote_id, location in known.items():
        if remote_id in listed:
            location.remote_name = (listed[remote_id] or remote_id)[:200]
        elif location.warehouse_id:
            kept.append(location.remote_name or remote_id)
        else:
            store.locations.remove(location)
    db.session.flush()
    return added, kept


@bp.route("/stores/<int:store_id>/locations/refresh", methods=["POST"])
def store_refresh_locations(store_id):
    store = db.get_or_404(Store, store_id)
    try:
        remote = plugin_host().plugin_for(store).remote_locations(store)
    except (ServiceError, RemoteError) as exc:
        flash(f"Could not read the locations of {store.name}: {exc.message}", "error")
        return redirect(url_for("integrations.store", store_id=store.id))
    added, kept = _refresh_locations(store, remote)
    db.session.commit()
    flash(f"{store.name} lists {len(remote)} location(s); {len(added)} new.", "success")
    if kept:
        flash(f"No longer listed by the store but still mapped, so kept: {', '.join(kept)}.", "warning")
    return redirect(url_for("integrations.store", store_id=store.id))


def _location_choice(loc, form):
    """(warehouse, process, errors) chosen for one StoreLocation row."""
    warehouse_field, process_field = f"warehouse_{loc.id}", f"process_{loc.id}"
    warehouse_id, process_id = int_or_none(form.get(warehouse_field)), int_or_none(form.get(process_field))
    warehouse = db.session.get(Warehouse, warehouse_id) if warehouse_id else None
    process = db.session.get(ShippingProcess, process_id) if process_id else None
    if warehouse_id and (warehouse is None or not warehouse.is_active):
        return None, None, {warehouse_field: "Choose an active warehouse."}
    if process_id and process is None:
        return None, None, {process_field: "No such shipping process."}
    if warehouse is None:
        if process is not None:
            return None, None, {warehouse_field: "Choose the warehouse of this shipping process."}
        return None, None, {}
    if process is None:
        return None, None, {process_field: f"Choose how orders leave {warehouse.code}: one of its shipping processes."}
    if process.warehouse_id != warehouse.id:
        return None, None, {process_field: f"{process.name} belongs to {process.warehouse.code}, not {warehouse.code}."}
    if not process.is_active:
        return None, None, {process_field: f"{process.name} is inactive."}
    return warehouse, process, {}


def _save_location_mapping(store, form):
    errors, plan = {}, []
    for loc in store.locations:
        warehouse, process, problems = _location_choice(loc, form)
        errors.update(problems)
        plan.append((loc, warehouse, process))
    mapped = {loc.id for loc, warehouse, _ in plan if warehouse is not None}
    default_id = int_or_none(form.get("default"))
    if default_id is not None and default_id not in {loc.id for loc in store.locations}:
        errors["default"] = "Choose one of this store's locations as the default."
    elif mapped and default_id not in mapped and not errors:
        errors["default"] = ("Mark one mapped location as the default for new orders." if default_id is None
                             else "The default for new orders must be a mapped location.")
    elif not mapped and default_id is not None and not errors:
        errors["default"] = "Map a location to a warehouse before making it the default."
    if errors:
        raise FieldErrors(errors)
    for loc, warehouse, process in plan:
        loc.warehouse_id = warehouse.id if warehouse else None
        loc.shipping_process_id = process.id if process else None
        loc.is_default = loc.id == default_id
    outbox.emit("store.saved", {"store_id": store.id, "created": False})
    db.session.flush()


@bp.route("/stores/<int:store_id>/locations", methods=["POST"])
def store_locations(store_id):
    store = db.get_or_404(Store, store_id)
    try:
        _save_location_mapping(store, request.form)
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        return _store_page(store, 400, mapping_errors=errors_from(exc), mapping_form=request.form)
    default = store.default_location
    flash(f"Saved the location mapping of {store.name}." +
          (f" New orders go to {default.warehouse.code} ({default.shipping_process.name})." if default else ""),
          "success")
    return redirect(url_for("integrations.store", store_id=store.id))


@bp.route("/stores/<int:store_id>/stock/retry", methods=["POST"])
def store_retry_push(store_id):
    store = db.get_or_404(Store, store_id)
    product_ids = sorted({level.product_id for level, _ in _failed_levels(store)})
    if not product_ids:
        flash(f"No failed stock push for {store.name}.", "info")
        return redirect(url_for("integrations.store", store_id=store.id))
    stock_push.mark_dirty(store, product_ids, window_seconds=0)
    db.session.commit()
    flash(f"Pushing the current stock of {len(product_ids)} product(s) to {store.name} again.", "success")
    if store.status != "connected" or not store.setting("stock_sync"):
        flash(f"{store.name} pushes stock only when it is connected and stock sync is on.", "warning")
    return redirect(url_for("integrations.store", store_id=store.id))


# -- activity -----------------------------------------------------------------------------------

@bp.route("/activity")
def activity():
    args = request.args
    plugin, store_id = args.get("plugin") or None, int_or_none(args.get("store_id"))
    errors_only, topic = args.get("errors") == "1", args.get("topic", "").strip()
    page = db.paginate(_calls_query(plugin, store_id, errors_only), page=int_or_none(args.get("page")) or 1,
                       per_page=ACTIVITY_PER_PAGE, error_out=False)
    stores = db.session.scalars(select(Store).order_by(Store.plugin, Store.name)).all()
    return render_template(
        "integrations/activity.html", page=page, calls=page.items, args=args, errors_only=errors_only,
        plugin_options=[(p.name, p.title or p.name) for p in plugin_host().plugins()],
        store_options=[(s.id, f"{s.plugin}: {s.name}") for s in stores], store_names={s.id: s.name for s in stores},
        failures=failed_work(topic or None, FAILURES_ON_PAGE),
        failures_total=db.session.scalar(select(func.count()).select_from(_failures_query(topic or None).subquery())))


@bp.route("/outbox/<int:message_id>/retry", methods=["POST"])
def outbox_retry(message_id):
    message = db.session.get(OutboxMessage, message_id)
    if message is None:
        abort(404)
    if not message.can_retry:
        flash(f"Work #{message.id} ({message.topic}) is {message.status}; only failed, dead or skipped work "
              "can be retried.", "error")
    else:
        runner.retry(message)
        db.session.commit()
        flash(f"Work #{message.id} ({message.topic}) will run again.", "success")
    return redirect(_safe_back("integrations.activity"))


def payload_summary(payload, limit=120):
    text = json.dumps(payload or {}, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit - 1] + "…"


bp.add_app_template_filter(payload_summary, "payload_summary")
