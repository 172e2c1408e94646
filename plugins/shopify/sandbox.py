"""A faithful fake of the Shopify Admin API (GraphQL, 2026-04+ rules) for tests and the demo.

`create_app(config)` returns a Flask WSGI app; its state is `app.sandbox` (a `Sandbox`, see
`sandbox_state.py`). Serve it with `wms.sandbox.harness.SandboxServer`.

Which shop a request is for
    The client's base URL is `https://{shop}` in production. Against the sandbox point it at
    `{sandbox_url}/shops/{shop}` (e.g. `http://127.0.0.1:5123/shops/sandbox-winery.myshopify.com`);
    every Admin route below also answers under that prefix. A request whose Host is a
    `*.myshopify.com` name is for that shop; with no prefix and such Host, the only shop (when
    exactly one exists) is used.

What it fakes
    GET  /admin/oauth/authorize      client_id, scope, redirect_uri, state, grant_options[]: an HTML
                                     page with an Install button (form POST to the same path), which
                                     302s to redirect_uri?code&hmac&host&shop&state&timestamp (hex
                                     HMAC-SHA256 of the sorted query, key = app client secret).
    POST /admin/oauth/access_token   JSON or form. authorization_code (single use; `expiring=1` gives
                                     expires_in=3600 + refresh_token + refresh_token_expires_in) and
                                     grant_type=refresh_token (rotating: the refresh token works once).
                                     Bad code/secret: 400 {"error","error_description"}.
    POST /admin/api/{version}/graphql.json
        X-Shopify-Access-Token (else 401 {"errors":"[API] Invalid API key or access token ..."}).
        Every document is validated against Shopify's Admin schema (unstable 2025-09 dump + 2026
        extensions, compareQuantity/ignoreCompareQuantity removed) and refused with graphql-ruby's
        error shape (HTTP 200, {"errors":[{message, locations, extensions{code,...}}]}).
        Calculated cost (object 1, connection 2 + first x node, mutation 10), single query max
        1000 (MAX_COST_EXCEEDED), leaky bucket per app+shop (2000 points, 100/s; configurable),
        `extensions.cost {requestedQueryCost, actualQueryCost, throttleStatus}` on every answer,
        `THROTTLED` when the bucket lacks the requested cost. ACCESS_DENIED on missing scopes.
        Query fields: shop, locations/location, products/product, productVariants/productVariant,
        inventoryItems/inventoryItem, inventoryLevel, orders/order, fulfillmentOrder, return,
        webhookSubscriptions/webhookSubscription, currentBulkOperation, node, nodes.
        Mutations: inventorySetQuantities, inventoryAdjustQuantities (both: 2026-04 rules: required
        `@idempotent(key:)`, `changeFromQuantity` on every row, CHANGE_FROM_QUANTITY_STALE, replay of
        a key returns the first answer, IDEMPOTENCY_KEY_PARAMETER_MISMATCH, 250 rows max),
        inventoryActivate, fulfillmentCreate, returnRequest, returnApproveRequest,
        returnDeclineRequest, returnClose, tagsAdd and tagsRemove (Order, Product), orderClose,
        webhookSubscriptionCreate/Delete,
        bulkOperationRunQuery (runs in a thread; JSONL with __parentId served over HTTP).
    Webhooks: POSTed to subscribed URIs with X-Shopify-Topic, -Hmac-Sha256 (base64 HMAC of the raw
        body), -Shop-Domain, -Webhook-Id, -Event-Id, -Triggered-At, -API-Version; payload shapes from
        contracts/shopify/webhook-samples; non-2xx retried 8 times on a compressed schedule.
        Emitted on their own: orders/create (test order), orders/cancelled, orders/updated,
        orders/fulfilled|partially_fulfilled, fulfillments/create, returns/request|approve|decline|close,
        inventory_levels/update, bulk_operations/finish.

Control routes (under /_sandbox/shopify; JSON in and out)
    GET  /shops                                  shops and their ids
    POST /shops {domain, locations?}             add a shop
    POST /shops/{shop}/tokens {scopes?, expiring?, client_id?}   a token without the OAuth dance
    POST /tokens/{token}/expire                  expire an access token now
    POST /shops/{shop}/locations {locations:[name | {id?, name, is_active?}]}   replace the locations
    POST /shops/{shop}/seed {products, variants_per_product?, stock?, sku_prefix?}   bulk catalog
    POST /shops/{shop}/products {title, variants:[{sku, barcode?, price?, stock?, tracked?}]}
    GET  /shops/{shop}/levels?sku=&inventory_item_id=&location_id=   levels with every named quantity
    POST /shops/{shop}/levels {sku | inventory_item_id, location_id, name?, quantity}   out-of-band change
    POST /shops/{shop}/orders {lines:[{sku | variant_id, quantity, location_id?}], email?, location_id?,
                               financial_status?}   test order; delivers orders/create
    POST /shops/{shop}/orders/{id}/cancel        cancels; delivers orders/cancelled and orders/updated
    POST /shops/{shop}/orders/{id}/returns {lines?:[{fulfillment_line_item_id, quantity, reason?}]}
                                                 customer return request; delivers returns/request
    GET  /shops/{shop}/orders/{id}               the order as its orders/* webhook payload
    GET  /shops/{shop}/fulfillments?order_id=    fulfillments with tracking
    GET  /shops/{shop}/returns?order_id=         returns
    POST /shops/{shop}/webhooks/deliver {topic, order_id?, return_id?, email?, uri?, duplicates?, delay?,
                                         payload?}   deliver a topic (to subscriptions, or to `uri`)
    GET  /webhooks/deliveries?topic=&shop=       what was sent, attempts and answers
    POST /webhooks/wait {timeout?}               wait until no delivery is pending
    GET|POST /shops/{shop}/bucket {maximum?, restore_rate?, available?, client_id?}   the cost bucket
    POST /apps/{client_id}/compliance {uri}      where customers/redact, shop/redact go (app TOML)
    GET  /bulk/{shop}/{id}.jsonl                 a bulk operation's result file

Config (create_app(config), all optional)
    apps {client_id: client_secret}, shops [domains], bucket_size, restore_rate, clock (for the bucket),
    token_lifetime, refresh_token_lifetime, require_expiring_tokens, webhook_retries,
    webhook_first_retry_seconds, allow_http_webhooks, bulk_operation_seconds (how long each bulk
    operation stays RUNNING before it executes), contract_dir (else WMS_SHOPIFY_CONTRACT_DIR,
    else the copy in plugins/shopify/contract/), first_id.

Where it departs from the real API
    * Serves API versions 2026-04 ... 2027-01 and unstable, all with the 2026-04 rules; any other
      version answers 404 (Shopify falls forward from retired versions).
    * Wording/code of the runtime errors for a missing @idempotent or changeFromQuantity, page size
      errors and other unsourced details are in `proposals.py`.
    * The cost of a query is Shopify's published rule of thumb, not its exact calculator.
    * Bulk results are served by the sandbox itself (Shopify uses signed cloud-storage URLs).
    * http:// webhook URIs are accepted (config allow_http_webhooks); Shopify demands https.
    * Search syntax: `field:value`, `field:>=value`, `-field:value`, AND, OR; unknown fields ignored.
    * Returns: no reverse fulfillment orders, refunds or restocking; approve/close only move status.
    * Fields of the schema that the sandbox has no data for answer an error naming the field.
"""

import hashlib
import hmac
import html
import time
import uuid
from base64 import b64encode
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, jsonify, request
from graphql import GraphQLError, execute, parse, validate
from graphql.execution.values import get_variable_values

from . import proposals
from .sandbox_resolvers import MUTATION_ROOT, QUERY_ROOT, Context, resolve_field
from .sandbox_schema import (
    CostCalculator,
    find_operation,
    load_schema,
    runtime_error_body,
    syntax_error_body,
    validation_error_body,
    variable_error_body,
)
from .sandbox_state import Sandbox, UserFacingError

SHOP_PATTERN = r"[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com"
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
CONTROL = "/_sandbox/shopify"


def oauth_hmac(secret, params):
    """Hex HMAC-SHA256 of `k=v` pairs sorted by key, joined with & (Shopify's OAuth query hmac)."""
    message = "&".join(f"{key}={value}" for key, value in sorted(params.items()) if key not in ("hmac", "signature"))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def create_app(config=None):
    config = dict(config or {})
    app = Flask(__name__)
    sandbox = Sandbox(config)
    app.sandbox = sandbox
    schema = load_schema(config.get("contract_dir"))

    def admin_route(rule, **options):
        def register(view):
            app.add_url_rule(rule, view_func=view, **options)
            app.add_url_rule("/shops/<shop_domain>" + rule, endpoint=f"prefixed_{view.__name__}",
                             view_func=view, **options)
            return view
        return register

    def current_shop(shop_domain):
        if shop_domain is None:
            host = request.host.split(":")[0]
            if host.endswith(".myshopify.com"):
                shop_domain = host
            elif len(sandbox.shops) == 1:
                shop_domain = next(iter(sandbox.shops))
        return sandbox.shops.get(shop_domain)

    def base_url():
        return request.host_url.rstrip("/")

    # -- OAuth --------------------------------------------------------------------------------------------
    @admin_route("/admin/oauth/authorize", methods=["GET", "POST"])
    def authorize(shop_domain=None):
        shop = current_shop(shop_domain)
        values = request.values
        client_id = values.get("client_id", "")
        redirect_uri = values.get("redirect_uri", "")
        if shop is None:
            return Response("There's no store at this address.", 404, mimetype="text/html")
        if client_id not in sandbox.apps:
            return _oauth_error_page("The api_key is invalid or the app is not installed on this store.")
        if urlsplit(redirect_uri).scheme not in ("http", "https"):
            return _oauth_error_page("The redirect_uri is missing or not a valid URL.")
        scopes = [s.strip() for s in values.get("scope", "").split(",") if s.strip()]
        per_user = values.get("grant_options[]") == "per-user"
        if request.method == "GET":
            return _install_page(request.path, shop, client_id, values, scopes)
        with sandbox.lock:
            code = sandbox.issue_code(shop.domain, client_id, scopes)
            sandbox.codes[code]["per_user"] = per_user
        params = {"code": code, "host": b64encode(f"{shop.domain}/admin".encode()).decode().rstrip("="),
                  "shop": shop.domain, "state": values.get("state", ""), "timestamp": str(int(time.time()))}
        params["hmac"] = oauth_hmac(sandbox.app(client_id).client_secret, params)
        separator = "&" if "?" in redirect_uri else "?"
        return Response(status=302, headers={"Location": f"{redirect_uri}{separator}{urlencode(params)}"})

    @admin_route("/admin/oauth/access_token", methods=["POST"])
    def access_token(shop_domain=None):
        shop = current_shop(shop_domain)
        body = request.get_json(silent=True) if request.is_json else request.form.to_dict()
        body = body or {}
        if shop is None:
            return jsonify(errors="Not Found"), 404
        app_record = sandbox.apps.get(body.get("client_id"))
        if app_record is None or not hmac.compare_digest(app_record.client_secret, str(body.get("client_secret", ""))):
            return jsonify(error="invalid_client", error_description="Client credentials are invalid"), 400
        with sandbox.lock:
            if body.get("grant_type") == "refresh_token":
                return _refresh(sandbox, shop, app_record, body)
            return _exchange_code(sandbox, shop, app_record, body)

    # -- GraphQL ------------------------------------------------------------------------------------------
    @admin_route("/admin/api/<version>/graphql.json", methods=["POST"])
    def graphql_endpoint(version, shop_domain=None):
        shop = current_shop(shop_domain)
        if shop is None or version not in proposals.SUPPORTED_API_VERSIONS:
            return jsonify(errors="Not Found"), 404
        token = sandbox.tokens.get(request.headers.get("X-Shopify-Access-Token", ""))
        if token is None or token.shop != shop.domain or not token.usable():
            return jsonify(errors=INVALID_TOKEN), 401
        if sandbox.require_expiring_tokens and token.expires_at is None:
            return jsonify(errors=proposals.NON_EXPIRING_TOKEN_REFUSED), 403
        if request.mimetype == "application/graphql":
            body = {"query": request.get_data(as_text=True)}
        else:
            body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str) or not body["query"].strip():
            return jsonify(errors={"query": "Required parameter missing or invalid"}), 400
        answer = run_graphql(schema, sandbox, shop, token, version, body, base_url())
        response = jsonify(answer)
        response.headers["X-Shopify-API-Version"] = version
        response.headers["X-Request-Id"] = str(uuid.uuid4())
        return response

    # -- control routes -------------------------------------------------------------------------------------
    def control_shop(shop_domain):
        return sandbox.shop(shop_domain)

    @app.errorhandler(UserFacingError)
    def user_facing(exc):
        return jsonify(error=str(exc)), exc.status

    @app.get(f"{CONTROL}/shops")
    def list_shops():
        return jsonify(shops=[{"domain": s.domain, "id": s.id, "locations": [
            {"id": loc.id, "name": loc.name} for loc in s.locations.values()]} for s in sandbox.shops.values()])

    @app.post(f"{CONTROL}/shops")
    def add_shop():
        body = request.get_json(force=True)
        shop = sandbox.add_shop(body["domain"], body.get("locations") or ("Main Cellar", "Tasting Room"))
        return jsonify(domain=shop.domain, id=shop.id)

    @app.post(f"{CONTROL}/shops/<shop_domain>/tokens")
    def make_token(shop_domain):
        body = request.get_json(silent=True) or {}
        control_shop(shop_domain)
        token = sandbox.create_token(shop_domain, body.get("scopes"), body.get("expiring", True),
                                     body.get("client_id"))
        return jsonify(access_token=token.value, refresh_token=token.refresh_token, scope=",".join(token.scopes))

    @app.post(f"{CONTROL}/tokens/<token>/expire")
    def expire_token(token):
        sandbox.expire_token(token)
        return jsonify(expired=True)

    @app.post(f"{CONTROL}/shops/<shop_domain>/locations")
    def set_locations(shop_domain):
        shop = control_shop(shop_domain)
        with sandbox.lock:
            locations = shop.set_locations(request.get_json(force=True)["locations"])
        return jsonify(locations=[{"id": loc.id, "name": loc.name, "is_active": loc.is_active} for loc in locations])

    @app.post(f"{CONTROL}/shops/<shop_domain>/seed")
    def seed(shop_domain):
        shop = control_shop(shop_domain)
        body = request.get_json(force=True)
        with sandbox.lock:
            created = shop.seed_catalog(int(body["products"]), int(body.get("variants_per_product", 1)),
                                        int(body.get("stock", 10)), body.get("sku_prefix", "SKU"))
        return jsonify(products=len(created), variants=sum(len(p.variant_ids) for p in created))

    @app.post(f"{CONTROL}/shops/<shop_domain>/products")
    def add_product(shop_domain):
        shop = control_shop(shop_domain)
        body = request.get_json(force=True)
        with sandbox.lock:
            product = shop.add_product(body["title"], body.get("variants") or [{}], tags=body.get("tags", ()))
            variants = [shop.variants[v] for v in product.variant_ids]
        return jsonify(id=product.id, variants=[{"id": v.id, "sku": v.sku, "inventory_item_id": v.inventory_item_id}
                                                for v in variants])

    @app.route(f"{CONTROL}/shops/<shop_domain>/levels", methods=["GET", "POST"])
    def levels(shop_domain):
        shop = control_shop(shop_domain)
        with sandbox.lock:
            if request.method == "POST":
                body = request.get_json(force=True)
                item_id = _item_id(shop, body)
                level = shop.set_out_of_band(item_id, int(body["location_id"]), body.get("name", "available"),
                                             body["quantity"])
                return jsonify(_level_json(shop, level))
            args = request.args
            item_ids = {_item_id(shop, args)} if ("sku" in args or "inventory_item_id" in args) else None
            location_id = int(args["location_id"]) if "location_id" in args else None
            return jsonify(levels=[_level_json(shop, level) for level in shop.levels.values()
                                   if (item_ids is None or level.item_id in item_ids)
                                   and (location_id is None or level.location_id == location_id)])

    @app.post(f"{CONTROL}/shops/<shop_domain>/orders")
    def place_order(shop_domain):
        shop = control_shop(shop_domain)
        body = request.get_json(force=True)
        with sandbox.lock:
            order = shop.place_order(body.get("lines") or [], email=body.get("email", "customer@example.com"),
                                     location_id=body.get("location_id"),
                                     financial_status=body.get("financial_status", "PAID"),
                                     tags=body.get("tags", ()), note=body.get("note"))
            payload = sandbox.payloads.order(shop, order, "orders/create")
        sandbox.webhooks.emit(shop, "orders/create", payload)
        return jsonify(id=order.id, admin_graphql_api_id=f"gid://shopify/Order/{order.id}", name=order.name,
                       fulfillment_order_ids=list(order.fulfillment_order_ids))

    @app.get(f"{CONTROL}/shops/<shop_domain>/orders/<int:order_id>")
    def get_order(shop_domain, order_id):
        shop = control_shop(shop_domain)
        with sandbox.lock:
            return jsonify(sandbox.payloads.order(shop, _order(shop, order_id), "orders/updated"))

    @app.post(f"{CONTROL}/shops/<shop_domain>/orders/<int:order_id>/cancel")
    def cancel_order(shop_domain, order_id):
        shop = control_shop(shop_domain)
        with sandbox.lock:
            order = _order(shop, order_id)
            shop.cancel_order(order, (request.get_json(silent=True) or {}).get("reason", "customer"))
            payloads = [(t, sandbox.payloads.order(shop, order, t)) for t in ("orders/cancelled", "orders/updated")]
        for topic, payload in payloads:
            sandbox.webhooks.emit(shop, topic, payload)
        return jsonify(id=order.id, cancelled_at=order.cancelled_at)

    @app.post(f"{CONTROL}/shops/<shop_domain>/orders/<int:order_id>/returns")
    def request_return(shop_domain, order_id):
        shop = control_shop(shop_domain)
        body = request.get_json(silent=True) or {}
        with sandbox.lock:
            order = _order(shop, order_id)
            lines = _return_lines(shop, order, body.get("lines"))
            ret = shop.request_return(order, lines)
            payload = sandbox.payloads.return_request(shop, ret)
        sandbox.webhooks.emit(shop, "returns/request", payload)
        return jsonify(id=ret.id, admin_graphql_api_id=f"gid://shopify/Return/{ret.id}", status=ret.status)

    @app.get(f"{CONTROL}/shops/<shop_domain>/fulfillments")
    def list_fulfillments(shop_domain):
        shop = control_shop(shop_domain)
        order_id = request.args.get("order_id", type=int)
        with sandbox.lock:
            return jsonify(fulfillments=[
                {"id": f.id, "order_id": f.order_id, "location_id": f.location_id, "name": f.name,
                 "status": f.status, "tracking": f.tracking, "notify_customer": f.notify_customer,
                 "fulfillment_order_ids": f.fulfillment_order_ids,
                 "lines": [{"id": line.id, "line_item_id": line.line_item_id, "quantity": line.quantity}
                           for line in f.lines]}
                for f in shop.fulfillments.values() if order_id is None or f.order_id == order_id])

    @app.get(f"{CONTROL}/shops/<shop_domain>/returns")
    def list_returns(shop_domain):
        shop = control_shop(shop_domain)
        order_id = request.args.get("order_id", type=int)
        with sandbox.lock:
            return jsonify(returns=[
                {"id": r.id, "order_id": r.order_id, "name": r.name, "status": r.status, "closed_at": r.closed_at,
                 "lines": [{"id": line.id, "fulfillment_line_item_id": line.fulfillment_line_item_id,
                            "quantity": line.quantity, "reason": line.return_reason} for line in r.lines]}
                for r in shop.returns.values() if order_id is None or r.order_id == order_id])

    @app.post(f"{CONTROL}/shops/<shop_domain>/webhooks/deliver")
    def deliver(shop_domain):
        shop = control_shop(shop_domain)
        body = request.get_json(force=True)
        deliveries = deliver_topic(sandbox, shop, body)
        return jsonify(deliveries=[{"webhook_id": d.webhook_id, "event_id": d.event_id, "uri": d.uri}
                                   for d in deliveries])

    @app.get(f"{CONTROL}/webhooks/deliveries")
    def list_deliveries():
        topic, shop_domain = request.args.get("topic"), request.args.get("shop")
        return jsonify(deliveries=[d.summary() for d in list(sandbox.webhooks.deliveries)
                                   if (topic is None or d.topic == topic) and (shop_domain is None or d.shop == shop_domain)])

    @app.post(f"{CONTROL}/webhooks/wait")
    def wait_webhooks():
        timeout = float((request.get_json(silent=True) or {}).get("timeout", 10))
        return jsonify(idle=sandbox.webhooks.wait_idle(timeout))

    @app.route(f"{CONTROL}/shops/<shop_domain>/bucket", methods=["GET", "POST"])
    def bucket(shop_domain):
        shop = control_shop(shop_domain)
        body = request.get_json(silent=True) or {}
        client_id = body.get("client_id") or request.args.get("client_id") or sandbox.default_client_id
        bucket = shop.bucket_for(client_id)
        if request.method == "POST":
            bucket.configure(body.get("maximum"), body.get("restore_rate"))
            shop.bucket_config = dict(shop.bucket_config, maximum=bucket.maximum, restore_rate=bucket.restore_rate)
            if "available" in body:
                bucket.set_available(body["available"])
        return jsonify(dict(bucket.status(), throttled=bucket.throttled_count))

    @app.post(f"{CONTROL}/apps/<client_id>/compliance")
    def compliance(client_id):
        if client_id not in sandbox.apps:
            raise UserFacingError("unknown app", 404)
        sandbox.apps[client_id].compliance_uri = request.get_json(force=True)["uri"]
        return jsonify(client_id=client_id, uri=sandbox.apps[client_id].compliance_uri)

    @app.get(f"{CONTROL}/bulk/<shop_domain>/<int:op_id>.jsonl")
    def bulk_result(shop_domain, op_id):
        op = control_shop(shop_domain).bulk_operations.get(op_id)
        if op is None or op.result is None:
            return Response("<Error><Code>NoSuchKey</Code></Error>", 404, mimetype="application/xml")
        return Response(op.result, mimetype="application/jsonl")

    return app


# -- GraphQL pipeline -------------------------------------------------------------------------------------------
def cost_extension(bucket, requested, actual):
    return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                     "throttleStatus": bucket.status()}}


def run_graphql(schema, sandbox, shop, token, version, body, base_url):
    """One GraphQL request: parse, validate, price, throttle, execute. Returns the JSON answer."""
    bucket = shop.bucket_for(token.client_id)
    try:
        document = parse(body["query"])
    except GraphQLError as exc:
        return {"errors": [syntax_error_body(exc)], "extensions": cost_extension(bucket, 0, 0)}
    errors = validate(schema, document)
    if errors:
        return {"errors": [validation_error_body(e) for e in errors], "extensions": cost_extension(bucket, 0, 0)}
    try:
        operation = find_operation(document, body.get("operationName"))
    except GraphQLError as exc:
        return {"errors": [{"message": exc.message}], "extensions": cost_extension(bucket, 0, 0)}
    variables = body.get("variables") or {}
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
    if isinstance(coerced, list):
        types = {d.variable.name.value: _type_text(d.type) for d in operation.variable_definitions}
        return {"errors": [variable_error_body(e, types) for e in coerced], "extensions": cost_extension(bucket, 0, 0)}
    calculator = CostCalculator(schema, document, variables, operation)
    requested = calculator.requested()
    if requested > proposals.MAX_SINGLE_QUERY_COST:
        return {"errors": [runtime_error_body(
            f"Query cost is {requested}, which exceeds the single query max cost limit "
            f"({proposals.MAX_SINGLE_QUERY_COST}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits "
            "for more information on how the\ncost of a query is calculated.\n\nTo query larger amounts of data "
            "with fewer limits, bulk operations should be used instead.\nSee "
            "https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n",
            "MAX_COST_EXCEEDED", cost=requested, maxCost=proposals.MAX_SINGLE_QUERY_COST)],
            "extensions": cost_extension(bucket, requested, 0)}
    if not bucket.take(requested):
        return {"errors": [runtime_error_body("Throttled", "THROTTLED",
                                              documentation="https://shopify.dev/api/usage/rate-limits")],
                "extensions": cost_extension(bucket, requested, None)}
    context = Context(sandbox, shop, token, version, base_url)
    root = MUTATION_ROOT if operation.operation.value == "mutation" else QUERY_ROOT
    with sandbox.lock:
        result = execute(schema, document, root_value=root, context_value=context, variable_values=variables,
                         operation_name=body.get("operationName"), field_resolver=resolve_field)
    actual = min(requested, calculator.actual(result.data)) if result.data else 0
    bucket.refund(requested - actual)
    answer = {"data": result.data}
    if result.errors:
        answer["errors"] = [error.formatted for error in result.errors]
    answer["extensions"] = cost_extension(bucket, requested, actual)
    return answer


def _type_text(type_node):
    kind = type_node.kind
    if kind == "non_null_type":
        return _type_text(type_node.type) + "!"
    if kind == "list_type":
        return f"[{_type_text(type_node.type)}]"
    return type_node.name.value


# -- OAuth helpers ------------------------------------------------------------------------------------------------
def _oauth_error_page(message):
    return Response(f"<!doctype html><title>Oauth error</title><h1>Oauth error invalid_request</h1>"
                    f"<p>{html.escape(message)}</p>", 400, mimetype="text/html")


def _install_page(action, shop, client_id, values, scopes):
    hidden = "".join(f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(values.get(name, ""))}">'
                     for name in ("client_id", "scope", "redirect_uri", "state", "grant_options[]"))
    scope_items = "".join(f"<li>{html.escape(scope)}</li>" for scope in scopes) or "<li>(scopes from the app TOML)</li>"
    page = (f"<!doctype html><html><head><title>Install app - {html.escape(shop.name)}</title></head><body>"
            f"<h1>Install app on {html.escape(shop.domain)}</h1><p>App <code>{html.escape(client_id)}</code> "
            f"asks for:</p><ul>{scope_items}</ul>"
            f'<form method="post" action="{html.escape(action)}">{hidden}'
            f'<button type="submit" name="install" value="1">Install</button></form></body></html>')
    return Response(page, 200, mimetype="text/html")


def _exchange_code(sandbox, shop, app_record, body):
    grant = sandbox.codes.pop(str(body.get("code", "")), None)
    if grant is None or grant["shop"] != shop.domain or grant["client_id"] != app_record.client_id \
            or time.time() - grant["at"] > 600:
        return _json_error("invalid_request", "The authorization code was not found or was already used")
    expiring = str(body.get("expiring", "")) in ("1", "true", "True")
    if grant.get("per_user"):
        token = sandbox.issue_token(shop.domain, app_record.client_id, grant["scopes"], expiring=False)
        token.expires_at = time.time() + 86399
        return _json({"access_token": token.value, "scope": ",".join(token.scopes), "expires_in": 86399,
                      "associated_user_scope": ",".join(token.scopes),
                      "associated_user": {"id": 902541635, "first_name": "Sandbox", "last_name": "Owner",
                                          "email": shop.email, "account_owner": True, "locale": "en",
                                          "collaborator": False, "email_verified": True}})
    token = sandbox.issue_token(shop.domain, app_record.client_id, grant["scopes"], expiring=expiring)
    return _json(_token_body(sandbox, token))


def _refresh(sandbox, shop, app_record, body):
    old = sandbox.refresh_tokens.pop(str(body.get("refresh_token", "")), None)
    if old is None or old.shop != shop.domain or old.client_id != app_record.client_id \
            or time.time() > (old.refresh_expires_at or 0):
        return _json_error("invalid_request", "The refresh token is invalid, expired or was already used")
    token = sandbox.issue_token(shop.domain, app_record.client_id, old.scopes, expiring=True)
    return _json(_token_body(sandbox, token))


def _token_body(sandbox, token):
    body = {"access_token": token.value, "scope": ",".join(token.scopes)}
    if token.refresh_token:
        body.update(expires_in=int(sandbox.token_lifetime), refresh_token=token.refresh_token,
                    refresh_token_expires_in=int(sandbox.refresh_lifetime))
    return body


def _json(body, status=200):
    response = jsonify(body)
    response.status_code = status
    return response


def _json_error(error, description):
    return _json({"error": error, "error_description": description}, 400)


# -- control helpers ----------------------------------------------------------------------------------------------
def _item_id(shop, values):
    if values.get("inventory_item_id"):
        item_id = int(values["inventory_item_id"])
        if item_id not in shop.items:
            raise UserFacingError("unknown inventory item", 404)
        return item_id
    variant = shop.variant_by_sku(values.get("sku"))
    if variant is None:
        raise UserFacingError(f"no variant with sku {values.get('sku')!r}", 404)
    return variant.inventory_item_id


def _level_json(shop, level):
    variant = shop.variants[shop.items[level.item_id].variant_id]
    return {"inventory_item_id": level.item_id, "location_id": level.location_id, "sku": variant.sku,
            "quantities": dict(level.quantities), "updated_at": level.updated_at}


def _order(shop, order_id):
    order = shop.orders.get(order_id)
    if order is None:
        raise UserFacingError(f"no order {order_id}", 404)
    return order


def _return_lines(shop, order, specs):
    if specs is None:
        specs = [{"fulfillment_line_item_id": line.id, "quantity": shop.returnable_quantity(line.id)}
                 for f_id in order.fulfillment_ids for line in shop.fulfillments[f_id].lines
                 if shop.returnable_quantity(line.id)]
    if not specs:
        raise UserFacingError("nothing on this order has been fulfilled, so nothing can be returned")
    lines = []
    for spec in specs:
        fl_id = int(spec["fulfillment_line_item_id"])
        if fl_id not in shop.fulfillment_lines or shop.fulfillments[shop.fulfillment_lines[fl_id][0]].order_id != order.id:
            raise UserFacingError(f"fulfillment line item {fl_id} is not on order {order.id}")
        if not 0 < int(spec["quantity"]) <= shop.returnable_quantity(fl_id):
            raise UserFacingError("quantity is not available for return")
        lines.append((fl_id, int(spec["quantity"]), spec.get("reason", "UNWANTED"), spec.get("note")))
    return lines


def deliver_topic(sandbox, shop, spec):
    """Deliver `spec["topic"]` with a payload built from the shop's state (or `spec["payload"]`)."""
    topic = spec["topic"]
    with sandbox.lock:
        payload = spec.get("payload") or _topic_payload(sandbox, shop, topic, spec)
    duplicates, delay = int(spec.get("duplicates", 0)), float(spec.get("delay", 0))
    if spec.get("uri"):
        return sandbox.webhooks.deliver(shop, topic, payload, spec["uri"], spec.get("api_version", "2026-10"),
                                        duplicates=duplicates, delay=delay, client_id=spec.get("client_id"))
    if topic in ("customers/redact", "shop/redact", "customers/data_request"):
        app_record = sandbox.app(spec.get("client_id"))
        if not app_record.compliance_uri:
            raise UserFacingError("the app has no compliance webhook URI (POST /_sandbox/shopify/apps/<id>/compliance)")
        return sandbox.webhooks.deliver(shop, topic, payload, app_record.compliance_uri, "2026-10",
                                        duplicates=duplicates, delay=delay, client_id=app_record.client_id)
    enum_name = topic.upper().replace("/", "_")
    subscriptions = [s for s in shop.subscriptions.values() if s.topic == enum_name]
    if not subscriptions:
        raise UserFacingError(f"no subscription to {topic} in {shop.domain}")
    created = []
    for sub in subscriptions:
        created += sandbox.webhooks.deliver(shop, topic, payload, sub.uri, sub.api_version, duplicates=duplicates,
                                            delay=delay)
    return created


def _topic_payload(sandbox, shop, topic, spec):
    payloads = sandbox.payloads
    if topic.startswith("orders/") or topic == "refunds/create":
        order = _order(shop, int(spec["order_id"])) if spec.get("order_id") else _latest(shop.orders, "order")
        return payloads.refund(shop, order) if topic == "refunds/create" else payloads.order(shop, order, topic)
    if topic.startswith("returns/"):
        ret = shop.returns.get(int(spec["return_id"])) if spec.get("return_id") else _latest(shop.returns, "return")
        if ret is None:
            raise UserFacingError("no such return", 404)
        return payloads.return_request(shop, ret)
    if topic == "app/uninstalled":
        return payloads.shop(shop)
    if topic == "shop/redact":
        return payloads.shop_redact(shop)
    if topic in ("customers/redact", "customers/data_request"):
        return payloads.customers_redact(shop, spec.get("email", "customer@example.com"))
    if topic == "inventory_levels/update":
        level = next(iter(shop.levels.values()), None)
        if spec.get("inventory_item_id") or spec.get("sku"):
            level = shop.levels.get((_item_id(shop, spec), int(spec["location_id"])))
        if level is None:
            raise UserFacingError("no such inventory level", 404)
        return {"inventory_item_id": level.item_id, "location_id": level.location_id,
                "available": level.quantities["available"], "updated_at": level.updated_at,
                "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{level.location_id}"
                                        f"?inventory_item_id={level.item_id}"}
    raise UserFacingError(f"the sandbox cannot build a {topic} payload; pass one in `payload`")


def _latest(table, what):
    if not table:
        raise UserFacingError(f"no {what} yet", 404)
    return table[next(reversed(table))]


