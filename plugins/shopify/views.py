"""Pages of the Shopify plugin: Add Store (shop domain, then Shopify's authorisation), the OAuth callback,
the compliance webhook endpoint, and a Shopify page per store (connection, webhooks, actions)."""

import os
import secrets

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from wms import outbox
from wms.extensions import csrf, db
from wms.plugins.models import Store, WebhookEvent
from wms.web import access

from . import connection, orders
from .client import valid_shop_domain, verify_webhook

bp = Blueprint("shopify", __name__, url_prefix="/plugins/shopify",
               template_folder=os.path.join(os.path.dirname(__file__), "templates"))
access.set_blueprint_rule(bp, "admin")

SESSION_BINDING = "shopify_oauth_binding"
MAX_NAME = 120


# -- adding a store ----------------------------------------------------------------------------------------
def normalize_shop(text):
    """What an admin types ("https://Winery.myshopify.com/admin") as a bare shop domain."""
    shop = (text or "").strip().lower()
    for prefix in ("https://", "http://"):
        if shop.startswith(prefix):
            shop = shop[len(prefix):]
    return shop.split("/")[0]


def shop_error(shop):
    if not shop:
        return "Enter the shop's domain, such as your-store.myshopify.com."
    if "." not in shop:
        return f"Enter the full myshopify domain: {shop}.myshopify.com (Shopify admin → Settings → Domains)."
    if not valid_shop_domain(shop):
        return ("Not a Shopify shop domain. Use the store's permanent address ending in .myshopify.com "
                "(letters, digits and hyphens), such as your-store.myshopify.com.")
    return None


def sandbox_default():
    """The demo sandbox's address, to prefill the form in demo mode."""
    from wms.sandbox.demo import sandbox_addresses
    return sandbox_addresses(current_app).get("shopify", "")


def store_for_shop(shop):
    return db.session.scalar(select(Store).where(Store.plugin == "shopify",
                                                 Store.remote_address == f"https://{shop}"))


def name_error(name, store):
    if len(name) > MAX_NAME:
        return f"At most {MAX_NAME} characters."
    taken = db.session.scalar(select(Store.id).where(Store.plugin == "shopify", func.lower(Store.name) == name.lower()))
    if taken is not None and (store is None or taken != store.id):
        return f"Another Shopify store is named {name}."
    return None


def check_add_form(form):
    """(shop, name, sandbox address, existing store, errors) of the Add Store form."""
    shop = normalize_shop(form.get("shop"))
    errors = {}
    problem = shop_error(shop)
    if problem:
        errors["shop"] = problem
    store = store_for_shop(shop) if not problem else None
    name = (form.get("name") or "").strip() or (store.name if store else shop)
    problem = name_error(name, store) if name else None
    if problem:
        errors["name"] = problem
    sandbox_url = (form.get("sandbox_url") or "").strip().rstrip("/")
    if sandbox_url and not connection.local_remotes_allowed():
        errors["sandbox_url"] = "A sandbox address is accepted only in demo and test modes."
    elif sandbox_url and not sandbox_url.startswith(("http://", "https://")):
        errors["sandbox_url"] = "Must start with http:// or https://"
    client_id, secret = connection.app_credentials()
    if not client_id or not secret:
        errors["_form"] = "Enter the app's client ID and secret on the Shopify settings page first."
    return shop, name, sandbox_url, store, errors


def add_page(errors=None, form=None, status=200):
    from .plugin import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
    return render_template("shopify/add_store.html", errors=errors or {}, form=form or {},
                           demo=connection.local_remotes_allowed(), sandbox_default=sandbox_default(),
                           demo_app=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
                           callback_url=connection.callback_url()), status


def open_store(shop, name, sandbox_url, store):
    if store is None:
        store = Store(plugin="shopify", name=name, remote_address=f"https://{shop}", status="pending",
                      settings=default_settings())
        db.session.add(store)
        db.session.flush()
        outbox.emit("store.saved", {"store_id": store.id, "created": True})
    else:
        store.name = name
    connection.remember(store, shop=shop, api_base_url=f"{sandbox_url}/shops/{shop}" if sandbox_url else None)
    return store


def default_settings():
    from .plugin import plugin
    return {s.key: s.default for s in plugin.store_settings}


@bp.route("/stores/add", methods=["GET", "POST"])
def add_store():
    if request.method == "GET":
        return add_page(form={"shop": request.args.get("shop", ""), "sandbox_url": sandbox_default()})
    shop, name, sandbox_url, store, errors = check_add_form(request.form)
    if errors:
        return add_page(errors, request.form, 400)
    try:
        store = open_store(shop, name, sandbox_url, store)
        binding = session.get(SESSION_BINDING) or secrets.token_hex(16)
        session[SESSION_BINDING] = binding
        target = connection.start_install(store, current_user.id, binding)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return add_page({"name": "That name was just taken; choose another."}, request.form, 400)
    return redirect(target)


@bp.route("/oauth/callback")
@access.public
def oauth_callback():
    user_id = current_user.id if current_user.is_authenticated else None
    try:
        store = connection.finish_install(request.args.to_dict(), user_id, session.get(SESSION_BINDING))
    except connection.InstallRefused as exc:
        db.session.rollback()
        return render_template("shopify/install_failed.html", message=exc.message, store=exc.store), 400
    flash(f"Connected {store.name}: {len(store.locations)} Shopify location(s) listed. Map them to warehouses "
          "below, then Sync Products on the store's Shopify page (menu Shopify); stock sync stays off until you "
          "turn it on.", "success")
    return redirect(url_for("integrations.store", store_id=store.id))


# -- compliance webhooks (one address per app, not per store) -----------------------------------------------
@bp.route("/webhooks/compliance", methods=["POST"])
@access.public
@csrf.exempt
def compliance_webhook():
    body = request.get_data(cache=False)
    _, secret = connection.app_credentials()
    if not secret or not verify_webhook(body, request.headers.get("X-Shopify-Hmac-Sha256"), secret):
        return jsonify(code="bad_signature", message="The webhook signature does not match."), 401
    topic = request.headers.get("X-Shopify-Topic", "")
    delivery = request.headers.get("X-Shopify-Event-Id") or request.headers.get("X-Shopify-Webhook-Id") or ""
    shop = request.headers.get("X-Shopify-Shop-Domain", "")
    stores = db.session.scalars(select(Store).where(Store.plugin == "shopify",
                                                    Store.remote_address == f"https://{shop}")).all()
    for store in stores:
        record_delivery(store, topic, f"{topic}:{delivery}", body)
    db.session.commit()
    return jsonify(ok=True, stores=len(stores))


def record_delivery(store, topic, delivery_id, body):
    """Store a delivery once per store (a repeated id changes nothing) and queue its processing."""
    exists = db.session.scalar(select(WebhookEvent.id).where(
        WebhookEvent.plugin == "shopify", WebhookEvent.store_id == store.id, WebhookEvent.delivery_id == delivery_id))
    if exists:
        return
    try:
        with db.session.begin_nested():
            event = WebhookEvent(plugin="shopify", store_id=store.id, topic=topic[:120], delivery_id=delivery_id[:200],
                                 payload=body.decode("utf-8", errors="replace"), status="received")
            db.session.add(event)
    except IntegrityError:
        return  # the same delivery stored by a concurrent request
    outbox.emit("webhook.received", {"event_id": event.id})


# -- the Shopify page of a store -----------------------------------------------------------------------------
def shopify_store_or_404(store_id):
    store = db.get_or_404(Store, store_id)
    if store.plugin != "shopify":
        from flask import abort
        abort(404)
    return store


@bp.route("/stores")
def stores():
    rows = db.session.scalars(select(Store).where(Store.plugin == "shopify").order_by(Store.name)).all()
    return render_template("shopify/stores.html", stores=rows)


@bp.route("/stores/<int:store_id>")
def store_overview(store_id):
    store = shopify_store_or_404(store_id)
    return render_template("shopify/store.html", store=store, shop=connection.shop_domain(store),
                           scopes=connection.written(store, "scopes", []),
                           webhooks=connection.written(store, "webhooks", []),
                           checked_at=connection.written(store, "orders_checked_at"),
                           wanted=connection.wanted_topics(store), webhook_url=connection.webhook_url(store),
                           missing_scopes=sorted(set(connection.SCOPES) - set(connection.written(store, "scopes", []))))


@bp.route("/stores/<int:store_id>/reconcile", methods=["POST"])
def reconcile(store_id):
    store = shopify_store_or_404(store_id)
    outbox.emit(orders.RECONCILE_STORE_TOPIC, {"store_id": store.id})
    db.session.commit()
    flash(f"Reading the orders {store.name} changed since the last check, in the background.", "success")
    return redirect(url_for("shopify.store_overview", store_id=store.id))


@bp.route("/stores/<int:store_id>/webhooks", methods=["POST"])
def resubscribe(store_id):
    store = shopify_store_or_404(store_id)
    outbox.emit(connection.SUBSCRIBE_TOPIC, {"store_id": store.id})
    db.session.commit()
    flash(f"Checking the webhook subscriptions of {store.name} in the background.", "success")
    return redirect(url_for("shopify.store_overview", store_id=store.id))


from . import catalog_views  # noqa: E402  (Sync Products and returns pages, on this blueprint)

catalog_views.register(bp)
