"""WooCommerce pages: the stores, Add Store (https only), each store's page (Test Connection,
webhooks and Re-enable, Sync products with progress, Sync stock, Poll orders, sync records with
Retry). Store settings and location mapping stay on the core's store page. Admins only."""

from uuid import uuid4

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from wms import outbox
from wms.core.models import OutboxMessage
from wms.extensions import db
from wms.integrations.errors import RemoteError
from wms.integrations.http import check_remote_address
from wms.jobs import runner
from wms.plugins import settings as plugin_settings
from wms.plugins.models import Store, StoreLocation, SyncRecord
from wms.web import access

from . import catalog, orders, stock
from . import store as woo_store
from .client import PLUGIN, PROBLEMS

bp = Blueprint("woocommerce", __name__, url_prefix="/plugins/woocommerce", template_folder="templates")
access.set_blueprint_rule(bp, "admin")
SAFETY_DELAY_SECONDS = 60   # work started from a page runs in a worker then, should the request die
RECORDS_ON_PAGE = 50
JOB_TOPICS = {"order": orders.MIRROR_TOPIC, "cancel": orders.CANCEL_MIRROR_TOPIC, "shipment": orders.TRACKING_TOPIC}


def _store_or_404(store_id):
    store = db.get_or_404(Store, store_id)
    if store.plugin != PLUGIN:
        abort(404)
    return store


def _plugin():
    from wms.plugins.manager import plugin_host
    return plugin_host().get(PLUGIN)


@bp.route("/")
def stores():
    listed = db.session.scalars(select(Store).where(Store.plugin == PLUGIN).order_by(Store.name)).all()
    return render_template("woocommerce/stores.html", stores=listed, plugin=_plugin())


# -- Add Store -----------------------------------------------------------------------------------

def check_address(address):
    """The reason a store address is refused, or None."""
    if not address:
        return "Enter the store's address, such as https://shop.example.com."
    if address.lower().startswith("http://"):
        summary, fix = PROBLEMS["https_required"]
        return f"{summary} {fix}"
    if not address.lower().startswith("https://"):
        return "The store address must start with https://, such as https://shop.example.com."
    if len(address) > 255:
        return "At most 255 characters."
    try:
        check_remote_address(address, bool(current_app.config.get("WMS_ALLOW_PRIVATE_REMOTES")))
    except RemoteError as exc:
        return exc.message
    return None


def check_name(name):
    if not name:
        return "Name the store, such as “Online shop”."
    if len(name) > 120:
        return "At most 120 characters."
    taken = db.session.scalar(select(Store.id).where(Store.plugin == PLUGIN, func.lower(Store.name) == name.lower()))
    return f"WooCommerce already has a store named {name}." if taken else None


def check_keys(form):
    errors = {}
    key, secret = form.get("consumer_key", "").strip(), form.get("consumer_secret", "").strip()
    if not key.startswith("ck_"):
        errors["consumer_key"] = ("A consumer key starts with ck_: copy it from WooCommerce → Settings → "
                                  "Advanced → REST API.")
    if not secret.startswith("cs_"):
        errors["consumer_secret"] = "A consumer secret starts with cs_: it is shown once, when the key is made."
    return errors, key, secret


def default_settings():
    plugin = _plugin()
    values = {s.key: s.default for s in plugin.store_settings if not s.is_secret}
    values["stock_sync"] = True
    return values


@bp.route("/stores/new", methods=["GET", "POST"])
def add_store():
    if request.method == "GET":
        return render_template("woocommerce/add_store.html", errors={}, form={})
    form = request.form
    name, address = form.get("name", "").strip(), form.get("remote_address", "").strip().rstrip("/")
    errors, key, secret = check_keys(form)
    for field, problem in (("name", check_name(name)), ("remote_address", check_address(address))):
        if problem:
            errors[field] = problem
    if errors:
        return render_template("woocommerce/add_store.html", errors=errors, form=form), 400
    store = Store(plugin=PLUGIN, name=name, remote_address=address, status="pending", settings=default_settings(),
                  credentials=plugin_settings.encrypt({"consumer_key": key, "consumer_secret": secret}))
    for remote_id, remote_name in _plugin().remote_locations(store):  # WooCommerce has one stock location
        store.locations.append(StoreLocation(remote_id=remote_id, remote_name=remote_name))
    db.session.add(store)
    db.session.flush()
    outbox.emit("store.saved", {"store_id": store.id, "created": True})
    db.session.commit()
    flash(f"Added store {store.name}. Test its connection, then map its location to a warehouse.", "success")
    return redirect(url_for("woocommerce.store", store_id=store.id))


# -- the store page --------------------------------------------------------------------------------

def _records(store):
    types = [orders.object_type(k, store) for k in ("order", "shipment")]
    failed = db.session.scalars(select(SyncRecord).where(
        SyncRecord.plugin == PLUGIN, SyncRecord.object_type.in_(types + [catalog.product_object_type(store)]),
        SyncRecord.status.in_(("failed", "pending"))).order_by(SyncRecord.updated_at.desc()).limit(RECORDS_ON_PAGE))
    recent = db.session.scalars(select(SyncRecord).where(
        SyncRecord.plugin == PLUGIN, SyncRecord.object_type.in_(types))
        .order_by(SyncRecord.updated_at.desc()).limit(RECORDS_ON_PAGE))
    return failed.all(), recent.all()


def _failed_work(store):
    messages = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.topic.like("woocommerce.%"), OutboxMessage.status.in_(("failed", "dead", "skipped")))
        .order_by(OutboxMessage.id.desc()).limit(100)).all()
    return [m for m in messages if (m.payload or {}).get("store_id") == store.id][:20]


@bp.route("/stores/<int:store_id>")
def store(store_id):
    from wms.web.integrations import recent_calls
    store = _store_or_404(store_id)
    state = woo_store.state(store)
    db.session.commit()
    failed, recent = _records(store)
    catalog_state = state.get("catalog") or {}
    return render_template(
        "woocommerce/store.html", store=store, state=state, catalog_state=catalog_state,
        catalog_running=catalog_state.get("phase") not in (None, "done", "failed"),
        catalog_summary=catalog.summary_text(catalog_state) if catalog_state.get("phase") == "done" else None,
        webhooks=state.get("webhooks") or [], failed=failed, recent=recent, failed_work=_failed_work(store),
        authority=woo_store.stock_authority(store), pull_minutes=woo_store.pull_minutes(store),
        calls=recent_calls(store_id=store.id, limit=20))


def _back(store):
    return redirect(url_for("woocommerce.store", store_id=store.id))


@bp.route("/stores/<int:store_id>/test", methods=["POST"])
def test(store_id):
    store = _store_or_404(store_id)
    try:
        message = woo_store.connect(store)
    except RemoteError as exc:
        db.session.rollback()
        store = _store_or_404(store_id)
        woo_store.note_failure(store, exc)
        db.session.commit()
        flash(f"Connection to {store.name} failed: {exc.message}", "error")
        return _back(store)
    store.status, store.status_message = "connected", message[:1000]
    db.session.commit()
    flash(f"{store.name} is ACTIVE: {message}", "success")
    return _back(store)


def _run_now(topic, payload):
    """Run one outbox message in this request (a worker runs it after a delay should the request die)."""
    message_id = outbox.emit(topic, payload, dedupe_key=f"{topic}:{uuid4().hex}", delay_seconds=SAFETY_DELAY_SECONDS)
    db.session.commit()
    outcome = runner.run(message_id)
    db.session.expire_all()
    message = db.session.get(OutboxMessage, message_id)
    return outcome, message.last_error if message else None


@bp.route("/stores/<int:store_id>/sync-products", methods=["POST"])
def sync_products(store_id):
    store = _store_or_404(store_id)
    if store.status != "connected":
        flash(f"Test the connection of {store.name} first: products sync once it is ACTIVE.", "error")
        return _back(store)
    catalog_state = woo_store.state(store).get("catalog") or {}
    if catalog_state.get("phase") not in (None, "done", "failed"):
        flash("A product sync is already running; its progress shows below.", "info")
        return _back(store)
    woo_store.save_state(store, catalog={"phase": "queued", "queued_at": woo_store.now_text()})
    outbox.emit(catalog.SYNC_TOPIC, {"store_id": store.id}, dedupe_key=f"{catalog.SYNC_TOPIC}:{uuid4().hex}")
    db.session.commit()
    flash("Product sync started: progress shows below and in the activity log.", "success")
    return _back(store)


@bp.route("/stores/<int:store_id>/sync-stock", methods=["POST"])
def sync_stock(store_id):
    store = _store_or_404(store_id)
    if not woo_store.woo_is_authority(store):
        flash("The WMS is the stock authority of this store: its stock is pushed, not pulled.", "error")
        return _back(store)
    outcome, error = _run_now(stock.PULL_TOPIC, {"store_id": store.id})
    pull = woo_store.state(_store_or_404(store_id)).get("stock_pull") or {}
    if outcome == "done":
        flash(f"Stock pulled from WooCommerce: {pull.get('products', 0)} products read, "
              f"{pull.get('changed', 0)} changed in the WMS.", "success")
    else:
        reason = error or pull.get("error") or "see the activity log."
        flash(f"Stock sync did not finish ({outcome}): {reason}", "error")
    return _back(store)


@bp.route("/stores/<int:store_id>/poll-orders", methods=["POST"])
def poll_orders(store_id):
    store = _store_or_404(store_id)
    outcome, error = _run_now(orders.POLL_TOPIC, {"store_id": store.id})
    counts = woo_store.state(_store_or_404(store_id)).get("last_poll") or {}
    if outcome == "done":
        flash("Orders read from WooCommerce: " + (", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "none")
              + ".", "success")
    else:
        flash(f"Reading orders did not finish ({outcome}): {error or 'see the activity log.'}", "error")
    return _back(store)


@bp.route("/stores/<int:store_id>/webhooks/reenable", methods=["POST"])
def reenable_webhooks(store_id):
    store = _store_or_404(store_id)
    try:
        enabled = woo_store.reenable_webhooks(store)
        db.session.commit()
    except RemoteError as exc:
        db.session.rollback()
        flash(f"Could not re-enable the webhooks: {exc.message}", "error")
        return _back(store)
    message = f"Re-enabled: {', '.join(sorted(enabled))}." if enabled else "Every webhook subscription is active."
    flash(message, "success")
    return _back(store)


@bp.route("/stores/<int:store_id>/webhooks/refresh", methods=["POST"])
def refresh_webhooks(store_id):
    store = _store_or_404(store_id)
    try:
        woo_store.refresh_webhooks(store)
        db.session.commit()
    except RemoteError as exc:
        db.session.rollback()
        flash(f"Could not read the webhooks: {exc.message}", "error")
    return _back(store)


@bp.route("/records/<int:record_id>/retry", methods=["POST"])
def retry_record(record_id):
    record = db.get_or_404(SyncRecord, record_id)
    kind, _, store_part = record.object_type.partition("@")
    if record.plugin != PLUGIN or kind not in JOB_TOPICS or record.status == "synced":
        flash("Only a pending or failed order or tracking sync can be retried.", "error")
        return redirect(access.safe_next(request.form.get("next"), "woocommerce.stores"))
    record.status, record.message = "pending", "Retrying."
    key = "shipment_id" if kind == "shipment" else "order_id"
    outbox.emit(JOB_TOPICS[kind], {key: record.object_id, "store_id": int(store_part)},
                dedupe_key=f"{JOB_TOPICS[kind]}:{uuid4().hex}")
    db.session.commit()
    flash(f"The {kind} will be sent to WooCommerce again.", "success")
    return redirect(access.safe_next(request.form.get("next"), "woocommerce.stores"))


@bp.app_template_filter("woo_status")
def woo_status(store_status):
    """How a store's status reads on the WooCommerce pages."""
    return {"connected": "ACTIVE", "pending": "PENDING", "disconnected": "DISCONNECTED",
            "token_issue": "KEY PROBLEM"}.get(store_status, (store_status or "").upper())

