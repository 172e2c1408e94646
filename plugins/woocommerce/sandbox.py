"""A faithful fake of a WooCommerce store's REST API (wc/v3) and webhook sender.

Built from `shared/contracts/woocommerce/REPORT.md` and the real wc/v3 route index
(`wc_v3_routes.json`, copied next to this file). `create_app(config)` returns a Flask app;
its state lives on ``app.sandbox`` (a `WooStore`). Serve it over HTTPS with `make_tls()`:
WooCommerce only accepts API keys over HTTPS, and so does this fake.

What it fakes
-------------
* ``GET /wp-json/`` (WordPress index: namespaces, ``permalink_structure``), ``GET /wp-json/wc/v3``
  (the real route index, host rewritten), ``GET /`` (front page with the REST discovery ``Link``).
* Auth as WooCommerce's ``WC_REST_Authentication``: HTTP Basic (key/secret) or
  ``?consumer_key=&consumer_secret=`` (taken first), only over HTTPS. Wrong secret: 401
  ``woocommerce_rest_authentication_error`` "Consumer secret is invalid." plus ``WWW-Authenticate``.
  Unknown or revoked key: the request runs logged out and the endpoint answers 401
  ``woocommerce_rest_cannot_view`` / ``_cannot_create`` / ``_cannot_edit`` / ``_cannot_batch``.
  A read-only key writing: 401 ``woocommerce_rest_authentication_error`` "The API key provided
  does not have write permissions." (the REPORT's table; checked before routing, as Woo does in
  ``rest_pre_dispatch``). A key whose user is not a shop manager: 403 ``woocommerce_rest_cannot_*``.
* Argument validation from the route index (types, enums, required; ``per_page`` 1..100), with
  WordPress's ``rest_invalid_param`` / ``rest_missing_callback_param`` bodies; ``_fields``.
* products: list (page, per_page, offset, status, type, sku [comma list, also matches variations],
  search, include, exclude, parent, after/before, modified_after/modified_before, stock_status,
  orderby, order), get, create (201 + Location), update; ``products/batch`` (create/update/delete,
  100-item limit -> 413, per-item errors). A variation id on ``/products/<id>`` answers 404
  ``woocommerce_rest_invalid_product_id``.
* variations: ``/products/<id>/variations`` list/get/create/update and ``.../variations/batch``;
  ``GET /wc/v3/variations`` (all variations) only when the WooCommerce version is 10.3 or newer.
  Draft and pending variations are missing from the parent's ``variations`` array but listed by
  the variations routes. ``manage_stock`` reads ``"parent"`` when the parent holds the stock.
* SKUs unique across products and variations (case-insensitive, as MySQL compares them):
  400 ``product_invalid_sku`` with ``resource_id`` and ``unique_sku``.
* Stock: ``manage_stock``, ``stock_quantity``, ``stock_status`` (recomputed from the quantity and
  ``backorders``; quantity cleared when stock is not managed), ``inventory_delta`` on variations.
* orders: list (status list, modified_after/before, after/before, customer, include, page...),
  get, create (line items by sku > product_id > variation_id, ``set_paid``, customer check),
  update (status, addresses, note, meta). Entering processing/completed/on-hold lowers stock once
  (with the "Stock levels reduced" note); cancelled/pending gives it back. Status change notes.
* order notes: list (type any/customer/internal) and create (``customer_note``).
* customers: list (email, role, page...), create (email required and unique:
  ``registration-error-email-exists``, ``registration-error-invalid-email``).
* system_status with ``_fields`` per section; webhooks list/get/create/update.
* Webhooks: signed deliveries (``X-WC-Webhook-Signature`` = base64 HMAC-SHA256 of the exact body,
  PHP ``wp_json_encode`` style bytes), the ``webhook_id=N`` creation ping without signature, the
  failure counter that disables a webhook on the 7th consecutive failure (``failure_count > 5``),
  success = HTTP 200..302. Payloads are built at delivery time from the REST representation.
* Pagination headers ``X-WP-Total``, ``X-WP-TotalPages`` and ``Link`` (prev/next only, built from the
  request's query, so query-string keys appear in them as on a real store); a page past the end is ``[]``.

Switches (``config`` keys, Python methods, or ``POST /_sandbox/woocommerce/settings``)
------------------------------------------------------------------------------------
``permalinks`` "pretty"|"plain" (plain: ``/wp-json/*`` answers the theme's HTML 404 page and
``/?rest_route=/...`` works), ``woocommerce_active`` (False: no wc/v3 namespace, ``rest_no_route``),
``wc_version`` / ``wp_version``, ``latency_ms`` (added to every API request), ``webhook_delivery``
"immediate" (sent before the triggering call answers) | "manual" (queued until
``deliver_pending()``), ``maintenance`` (the next N API requests answer WordPress's maintenance
503 with ``Retry-After``), ``batch_limit`` (100).

Control routes (``/_sandbox/woocommerce/...``)
---------------------------------------------
``GET state`` · ``POST settings`` · ``POST reset`` · ``POST keys`` {permissions, user_role,
consumer_key, consumer_secret} · ``POST keys/<consumer_key>/revoke`` · ``POST seed`` {products,
variable_share, variations_per_product, draft_every} · ``POST orders`` (a storefront checkout that
is paid: fires order.created then order.updated, lowers stock) · ``GET stock?sku=a,b`` ·
``GET orders/<id>/notes`` · ``GET webhooks`` (with secret and failure_count) ·
``POST webhooks/deliver`` (send the queue) · ``GET deliveries`` ·
``POST deliveries/<delivery_id>/redeliver`` (send the same request again) ·
``POST clock/advance`` {seconds} · ``GET emails``.
Python: ``app.sandbox`` (`WooStore`: add_key, revoke_key, seed_products, add_product, add_variation,
place_paid_order, stock_levels, order_notes, configure / set_permalinks / set_woocommerce_active /
set_version / set_latency / set_maintenance, deliver_pending, redeliver, advance_clock) and
``app.reset_sandbox()``. `make_tls(tmp_dir)` gives the server SSLContext and the CA bundle path.

Where it departs from the real API
----------------------------------
* The site timezone is UTC, so ``date_x`` and ``date_x_gmt`` are equal.
* OAuth 1.0a over plain HTTP is not faked: over HTTP every request is logged out (401).
* Routes in the index that are not listed above (coupons, refunds, taxes, DELETE on items...)
  answer 404 ``rest_no_route``. Order updates that send ``line_items`` answer 400
  ``sandbox_unsupported`` instead of editing the lines. No taxes, coupons or shipping rules:
  totals are the sum of line totals and shipping line totals.
* The route index copy is from 2017-era docs; newer list arguments the REPORT documents
  (modified_after/modified_before, dates_are_gmt, stock_status, order status lists) are added in
  `ARG_OVERLAY` below.
* Deliveries are sent by the sandbox thread (no Action Scheduler, no HTTP/1.0); the
  10-minute "one pending delivery per resource" rule applies to the manual queue only.
  Delivery ids are unique (WooCommerce's can repeat within one second).
* A failed webhook is re-enabled with ``PUT /webhooks/<id> {"status":"active"}``, which also
  resets its failure count.
"""

import base64
import hashlib
import hmac
import itertools
import json
import math
import os
import re
import secrets
import ssl
import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
from flask import Flask, Response, jsonify, request

ROUTE_INDEX_PATH = os.path.join(os.path.dirname(__file__), "wc_v3_routes.json")
DEFAULT_WC_VERSION = "9.8.1"
DEFAULT_WP_VERSION = "6.7.1"
ALL_VARIATIONS_SINCE = (10, 3)
MAX_DELIVERY_FAILURES = 5  # filter woocommerce_max_webhook_delivery_failures
PRODUCT_STATUSES = ("draft", "pending", "private", "publish")
LISTED_VARIATION_STATUSES = ("publish", "private")  # read_children() in the variable data store
ORDER_STATUSES = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed")
ORDER_STATUS_LABELS = {"pending": "Pending payment", "processing": "Processing", "on-hold": "On hold",
                       "completed": "Completed", "cancelled": "Cancelled", "refunded": "Refunded",
                       "failed": "Failed"}
STOCK_REDUCING_STATUSES = ("processing", "completed", "on-hold")
STOCK_RESTORING_STATUSES = ("cancelled", "pending")
WEBHOOK_RESOURCES = ("coupon", "customer", "order", "product")
WEBHOOK_EVENTS = ("created", "updated", "deleted", "restored")
WEBHOOK_HOOKS = {
    "order.created": ["woocommerce_new_order"],
    "order.updated": ["woocommerce_update_order", "woocommerce_order_refunded"],
    "order.deleted": ["wp_trash_post"],
    "product.created": ["woocommerce_process_product_meta", "woocommerce_new_product",
                        "woocommerce_new_product_variation"],
    "product.updated": ["woocommerce_process_product_meta", "woocommerce_update_product",
                        "woocommerce_update_product_variation"],
    "product.deleted": ["wp_trash_post"],
    "customer.created": ["user_register", "woocommerce_created_customer", "woocommerce_new_customer"],
    "customer.updated": ["profile_update", "woocommerce_update_customer"],
}

# Newer list arguments the 2017 route index lacks (REPORT §1.4, §1.8). Kept in one place.
_DATE_ARG = {"required": False, "type": "string", "format": "date-time"}
ARG_OVERLAY = {
    "collection": {
        "page": {"required": False, "default": 1, "type": "integer", "minimum": 1},
        "per_page": {"required": False, "default": 10, "type": "integer", "minimum": 1, "maximum": 100},
        "offset": {"required": False, "type": "integer"},
        "after": _DATE_ARG, "before": _DATE_ARG,
        "modified_after": _DATE_ARG, "modified_before": _DATE_ARG,
        "dates_are_gmt": {"required": False, "type": "boolean"},
    },
    "products": {"stock_status": {"required": False, "type": "string",
                                  "enum": ["instock", "outofstock", "onbackorder"]}},
    "orders": {"status": {"required": False, "default": "any", "type": "array",
                          "items": {"type": "string", "enum": ["any", "trash", *ORDER_STATUSES]}}},
}

PAGE_NOT_FOUND_HTML = """<!DOCTYPE html>
<html lang="en-US"><head><meta charset="UTF-8"><title>Page not found &#8211; Sandbox Winery</title>
</head><body class="error404"><main id="main"><h1 class="page-title">Oops! That page can&rsquo;t be
found.</h1><p>It looks like nothing was found at this location.</p></main></body></html>"""


def make_tls(tmp_dir, hostnames=("127.0.0.1", "localhost")):
    """Return (server SSLContext, CA bundle path) for serving the sandbox over HTTPS.

    The certificate is issued by a throwaway CA (``trustme``); clients verify against the CA file.
    """
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert(*hostnames)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_path = os.path.join(str(tmp_dir), "woocommerce-sandbox-ca.pem")
    ca.cert_pem.write_to_path(ca_path)
    return context, ca_path


class RestError(Exception):
    """A WP_Error: answered as {"code", "message", "data": {"status", ...}}."""

    def __init__(self, status, code, message, headers=None, **data):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.data = {"status": status, **data}

    def body(self):
        return {"code": self.code, "message": self.message, "data": self.data}


def no_route():
    return RestError(404, "rest_no_route", "No route was found matching the URL and request method")


# --------------------------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------------------------
def wc_date(value):
    return value.strftime("%Y-%m-%dT%H:%M:%S") if value else None


def money(value):
    return f"{value:.2f}"


def parse_money(text):
    try:
        return float(text) if text not in (None, "") else 0.0
    except (TypeError, ValueError):
        return 0.0


def php_json(payload):
    """The bytes `wp_json_encode` produces: no spaces, \\uXXXX for non-ASCII, escaped slashes."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()


def webhook_signature(body, secret):
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def human_list(items):
    """WordPress's %l list format: "a, b, and c"."""
    items = [str(i) for i in items]
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]


def version_tuple(text):
    parts = re.findall(r"\d+", text or "")
    return tuple(int(p) for p in parts[:3]) or (0,)


def parse_rest_date(text):
    """rest_parse_date(): ISO 8601 with or without zone; naive values are site time (UTC here)."""
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
                         str(text).strip())
    if not match:
        return None
    try:
        value = datetime.strptime(f"{match.group(1)}T{match.group(2)}", "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    zone = match.group(4)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        value -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return value.replace(tzinfo=timezone.utc)


def filter_fields(obj, fields):
    """Apply `_fields` (with nested `a.b`) the way WP's rest_filter_response_fields does."""
    if not fields:
        return obj
    if isinstance(obj, list):
        return [filter_fields(item, fields) for item in obj]
    if not isinstance(obj, dict):
        return obj
    result = {}
    for key, value in obj.items():
        if key in fields:
            result[key] = value
            continue
        nested = [f[len(key) + 1:] for f in fields if f.startswith(key + ".")]
        if nested:
            result[key] = filter_fields(value, nested)
    return result


# --------------------------------------------------------------------------------------------
# Argument validation (WordPress rest_validate_value_from_schema, the parts wc/v3 list and
# write endpoints use)
# --------------------------------------------------------------------------------------------
class _Invalid(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def _coerce_bool(value):
    if isinstance(value, bool):
        return value
    if value in (0, 1) and not isinstance(value, float):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", ""):
        return value.lower() in ("true", "1")
    return None


def _coerce_int(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def validate_value(name, value, spec):
    kind = spec.get("type")
    if kind == "integer":
        number = _coerce_int(value)
        if number is None:
            raise _Invalid("rest_invalid_type", f"{name} is not of type integer.")
        low, high = spec.get("minimum"), spec.get("maximum")
        if low is not None and high is not None and not low <= number <= high:
            raise _Invalid("rest_out_of_bounds", f"{name} must be between {low} (inclusive) and {high} (inclusive)")
        if low is not None and number < low:
            raise _Invalid("rest_out_of_bounds", f"{name} must be greater than or equal to {low}")
        value = number
    elif kind == "boolean":
        flag = _coerce_bool(value)
        if flag is None:
            raise _Invalid("rest_invalid_type", f"{name} is not of type boolean.")
        value = flag
    elif kind == "string":
        if not isinstance(value, str):
            raise _Invalid("rest_invalid_type", f"{name} is not of type string.")
        if spec.get("format") == "date-time" and parse_rest_date(value) is None:
            raise _Invalid("rest_invalid_date", "Invalid date.")
    elif kind == "array":
        items = value if isinstance(value, list) else [p for p in re.split(r"[\s,]+", str(value)) if p]
        item_spec = spec.get("items") or {}
        value = [validate_value(f"{name}[{i}]", item, item_spec) for i, item in enumerate(items)]
    if "enum" in spec and value not in spec["enum"]:
        raise _Invalid("rest_not_in_enum", f"{name} is not one of {human_list(spec['enum'])}.")
    return value


def validate_params(params, args):
    """Return params coerced to their types, or raise rest_missing_callback_param / rest_invalid_param."""
    missing = [name for name, spec in args.items() if spec.get("required") and name not in params]
    if missing:
        raise RestError(400, "rest_missing_callback_param", f"Missing parameter(s): {', '.join(missing)}",
                        params=missing)
    coerced, invalid, details = dict(params), {}, {}
    for name, spec in args.items():
        if name not in params:
            continue
        try:
            coerced[name] = validate_value(name, params[name], spec)
        except _Invalid as problem:
            invalid[name] = problem.message
            details[name] = {"code": problem.code, "message": problem.message, "data": None}
    if invalid:
        raise RestError(400, "rest_invalid_param", f"Invalid parameter(s): {', '.join(invalid)}",
                        params=invalid, details=details)
    return coerced


def load_route_index():
    with open(ROUTE_INDEX_PATH, encoding="utf-8") as handle:
        return json.load(handle)


def route_args(index, route_key, method, overlay_groups=()):
    """The args a route declares for a method, plus the overlay for newer list parameters."""
    args = {}
    for endpoint in index["routes"][route_key]["endpoints"]:
        if method in endpoint["methods"]:
            args = {name: dict(spec) for name, spec in endpoint["args"].items()}
            break
    for group in overlay_groups if method == "GET" else ():
        for name, spec in ARG_OVERLAY[group].items():
            args[name] = dict(spec)
    for spec in args.values():
        if spec.get("type") == "date-time":  # old schemas name a non-type; WordPress skips it
            spec.pop("type")
    return args


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------
class ApiKey:
    def __init__(self, consumer_key, consumer_secret, permissions="read_write", user_role="administrator"):
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.permissions = permissions
        self.user_role = user_role
        self.revoked = False

    @property
    def is_manager(self):
        return self.user_role in ("administrator", "shop_manager")

    def as_dict(self):
        return {"consumer_key": self.consumer_key, "consumer_secret": self.consumer_secret,
                "permissions": self.permissions, "user_role": self.user_role, "revoked": self.revoked}


class WooStore:
    """All sandbox state, guarded by one lock. Also the Python control surface."""

    def __init__(self, config=None):
        config = dict(config or {})
        self.lock = threading.RLock()
        self.index = load_route_index()
        self.settings = {
            "permalinks": config.get("permalinks", "pretty"),
            "woocommerce_active": config.get("woocommerce_active", True),
            "wc_version": config.get("wc_version", DEFAULT_WC_VERSION),
            "wp_version": config.get("wp_version", DEFAULT_WP_VERSION),
            "latency_ms": config.get("latency_ms", 0),
            "webhook_delivery": config.get("webhook_delivery", "immediate"),
            "webhook_timeout": config.get("webhook_timeout", 5.0),
            "batch_limit": config.get("batch_limit", 100),
            "currency": config.get("currency", "USD"),
            "site_name": config.get("site_name", "Sandbox Winery"),
        }
        self.maintenance = {"remaining": 0, "retry_after": 600}
        self.home_url = config.get("home_url", "https://example.com")
        self.clock_offset = timedelta(0)
        self._ids = itertools.count(config.get("first_id", 100))
        self._user_ids = itertools.count(2)
        self._note_ids = itertools.count(1000)
        self._line_ids = itertools.count(1)
        self._meta_ids = itertools.count(5000)
        self.keys = {}
        self.products = {}  # id -> product or variation (one post id space, as wp_posts)
        self.sku_owner = {}  # lower-cased sku -> id
        self.orders = {}
        self.customers = {1: self._new_user("admin@sandbox.example", "admin", "administrator")}
        self.webhooks = {}
        self.pending_deliveries = []  # (webhook_id, topic, resource_id)
        self.deliveries = []
        self.emails = []
        ck = config.get("consumer_key", "ck_" + secrets.token_hex(20))
        cs = config.get("consumer_secret", "cs_" + secrets.token_hex(20))
        self.default_key = self.add_key(ck, cs, permissions=config.get("permissions", "read_write"))

    # -- clock ------------------------------------------------------------------------------
    def now(self):
        return datetime.now(timezone.utc).replace(microsecond=0) + self.clock_offset

    def advance_clock(self, seconds):
        with self.lock:
            self.clock_offset += timedelta(seconds=seconds)

    # -- switches ---------------------------------------------------------------------------
    def configure(self, **changes):
        with self.lock:
            unknown = set(changes) - set(self.settings) - {"maintenance"}
            if unknown:
                raise ValueError(f"unknown sandbox settings: {sorted(unknown)}")
            if "maintenance" in changes:
                self.set_maintenance(**changes.pop("maintenance"))
            self.settings.update(changes)
            return dict(self.settings)

    def set_permalinks(self, structure):
        self.configure(permalinks=structure)

    def set_woocommerce_active(self, active):
        self.configure(woocommerce_active=bool(active))

    def set_version(self, wc_version):
        self.configure(wc_version=wc_version)

    def set_latency(self, milliseconds):
        self.configure(latency_ms=milliseconds)

    def set_maintenance(self, count, retry_after=600):
        with self.lock:
            self.maintenance = {"remaining": int(count), "retry_after": int(retry_after)}

    def take_maintenance(self):
        with self.lock:
            if self.maintenance["remaining"] <= 0:
                return None
            self.maintenance["remaining"] -= 1
            return self.maintenance["retry_after"]

    @property
    def has_all_variations_route(self):
        return version_tuple(self.settings["wc_version"]) >= ALL_VARIATIONS_SINCE

    # -- keys -------------------------------------------------------------------------------
    def add_key(self, consumer_key=None, consumer_secret=None, permissions="read_write",
                user_role="administrator"):
        if permissions not in ("read", "write", "read_write"):
            raise ValueError("permissions must be read, write or read_write")
        key = ApiKey(consumer_key or "ck_" + secrets.token_hex(20),
                     consumer_secret or "cs_" + secrets.token_hex(20), permissions, user_role)
        with self.lock:
            self.keys[key.consumer_key] = key
        return key

    def revoke_key(self, consumer_key):
        with self.lock:
            self.keys[consumer_key].revoked = True

    def find_key(self, consumer_key):
        with self.lock:
            key = self.keys.get(consumer_key)
            return key if key and not key.revoked else None

    # -- ids --------------------------------------------------------------------------------
    def next_id(self):
        return next(self._ids)

    # -- products ---------------------------------------------------------------------------
    def _blank_product(self, kind, parent_id=0):
        now = self.now()
        return {"id": self.next_id(), "kind": kind, "parent_id": parent_id, "name": "", "slug": "",
                "type": "simple", "status": "publish", "sku": "", "regular_price": "", "sale_price": "",
                "description": "", "short_description": "", "manage_stock": False, "stock_quantity": None,
                "stock_status": "instock", "backorders": "no", "weight": "", "attributes": [],
                "meta_data": [], "children": [], "menu_order": 0, "total_sales": 0,
                "date_created": now, "date_modified": now}

    def sku_conflict(self, sku, own_id):
        """The id of another product or variation that holds this SKU, if any."""
        owner = self.sku_owner.get(sku.lower()) if sku else None
        return owner if owner is not None and owner != own_id else None

    def unique_sku(self, sku):
        for n in itertools.count(1):
            candidate = f"{sku}-{n}"
            if candidate.lower() not in self.sku_owner:
                return candidate

    def set_sku(self, product, sku):
        sku = (sku or "").strip()
        owner = self.sku_conflict(sku, product["id"])
        if owner is not None:
            raise RestError(400, "product_invalid_sku", "Invalid or duplicated SKU.",
                            resource_id=owner, unique_sku=self.unique_sku(sku))
        if product["sku"]:
            self.sku_owner.pop(product["sku"].lower(), None)
        product["sku"] = sku
        if sku:
            self.sku_owner[sku.lower()] = product["id"]

    def _insert(self, product):
        self.products[product["id"]] = product
        if product["sku"]:
            self.sku_owner[product["sku"].lower()] = product["id"]
        if product["kind"] == "variation":
            self.products[product["parent_id"]]["children"].append(product["id"])

    def add_product(self, **fields):
        """Create a product directly (no REST checks except SKU uniqueness). Returns its id."""
        with self.lock:
            product = self._blank_product("product")
            product["slug"] = fields.get("slug") or slugify(fields.get("name", f"product-{product['id']}"))
            apply_product_fields(self, product, fields)
            self._insert(product)
            return product["id"]

    def add_variation(self, parent_id, **fields):
        with self.lock:
            parent = self.products[parent_id]
            parent["type"] = "variable"
            variation = self._blank_product("variation", parent_id)
            apply_product_fields(self, variation, fields)
            self._insert(variation)
            return variation["id"]

    def seed_products(self, count, variable_share=0.2, variations_per_product=4, draft_every=0,
                      sku_prefix="WINE"):
        """Add `count` products fast: every 1/variable_share-th is variable with N variations.

        ``draft_every=k`` makes every k-th variation a draft (missing from its parent's list).
        """
        variable_every = round(1 / variable_share) if variable_share else 0
        sizes = ("375ml", "750ml", "1500ml", "3000ml", "6000ml", "9000ml")
        made_products = made_variations = 0
        with self.lock:
            for n in range(1, count + 1):
                product = self._blank_product("product")
                serial = f"{sku_prefix}-{product['id']:06d}"
                product.update(name=f"Sandbox Wine {product['id']}", slug=f"sandbox-wine-{product['id']}",
                               regular_price=money(10 + n % 40), manage_stock=True,
                               stock_quantity=n % 50, sku=serial)
                if variable_every and n % variable_every == 0:
                    product.update(type="variable", manage_stock=False, stock_quantity=None, regular_price="")
                    product["attributes"] = [{"id": 0, "name": "Size", "position": 0, "visible": True,
                                              "variation": True, "options": list(sizes[:variations_per_product])}]
                refresh_stock_status(product)
                self._insert(product)
                made_products += 1
                if product["type"] != "variable":
                    continue
                for size in sizes[:variations_per_product]:
                    variation = self._blank_product("variation", product["id"])
                    made_variations += 1
                    draft = draft_every and made_variations % draft_every == 0
                    variation.update(sku=f"{serial}-{size.upper()}", regular_price=money(10 + n % 40),
                                     manage_stock=True, stock_quantity=(n + len(size)) % 30,
                                     status="draft" if draft else "publish",
                                     attributes=[{"id": 0, "name": "Size", "option": size}])
                    refresh_stock_status(variation)
                    self._insert(variation)
        return {"products": made_products, "variations": made_variations}

    def stock_levels(self, skus=None):
        with self.lock:
            wanted = {s.lower() for s in skus} if skus else None
            rows = []
            for product in self.products.values():
                if wanted is not None and product["sku"].lower() not in wanted:
                    continue
                view = stock_view(self, product)
                rows.append({"id": product["id"], "parent_id": product["parent_id"], "sku": product["sku"],
                             "status": product["status"], **view})
            return rows

    def product(self, product_id):
        with self.lock:
            return render_product(self, self.products[product_id])

    # -- customers --------------------------------------------------------------------------
    def _new_user(self, email, username, role, first_name="", last_name="", billing=None, shipping=None):
        now = self.now()
        return {"id": 1 if role == "administrator" else next(self._user_ids), "email": email,
                "username": username, "role": role, "first_name": first_name, "last_name": last_name,
                "billing": {**EMPTY_BILLING, **(billing or {})}, "shipping": {**EMPTY_SHIPPING, **(shipping or {})},
                "meta_data": [], "date_created": now, "date_modified": now}

    def find_customer(self, email):
        for customer in self.customers.values():
            if customer["email"].lower() == (email or "").lower():
                return customer
        return None

    # -- orders -----------------------------------------------------------------------------
    def place_paid_order(self, line_items, billing=None, payment_method="stripe",
                         payment_method_title="Credit card"):
        """A storefront checkout: a pending order (order.created), then paid (order.updated)."""
        with self.lock:
            events = EventBatch()
            order = create_order_record(self, {"line_items": line_items, "billing": billing or {},
                                               "payment_method": payment_method,
                                               "payment_method_title": payment_method_title}, events)
            order["created_via"] = "checkout"
            events.add("order.created", order["id"])
            payment_complete(self, order, events, transaction_id="ch_" + secrets.token_hex(8))
            events.add("order.updated", order["id"])
            order_id = order["id"]
        self.fire(events)
        return self.order(order_id)

    def order(self, order_id):
        with self.lock:
            return render_order(self, self.orders[order_id])

    def order_notes(self, order_id):
        with self.lock:
            return [render_note(self, self.orders[order_id], n) for n in reversed(self.orders[order_id]["notes"])]

    def add_note(self, order, text, customer_note=False, author="system"):
        note = {"id": next(self._note_ids), "note": text, "customer_note": bool(customer_note),
                "author": author, "date_created": self.now()}
        order["notes"].append(note)
        if customer_note:
            self.emails.append({"to": order["billing"].get("email", ""), "template": "customer_note",
                                "order_id": order["id"], "note": text})
        return note

    # -- webhooks ---------------------------------------------------------------------------
    def webhook_list(self):
        with self.lock:
            return [{**render_webhook(self, w), "secret": w["secret"], "failure_count": w["failure_count"]}
                    for w in self.webhooks.values()]

    def fire(self, events):
        """Queue deliveries for active webhooks subscribed to these events; send them if immediate."""
        with self.lock:
            for topic, resource_id in events.items():
                for webhook in self.webhooks.values():
                    if webhook["status"] != "active" or webhook["topic"] != topic:
                        continue
                    entry = (webhook["id"], topic, resource_id)
                    if entry not in self.pending_deliveries:
                        self.pending_deliveries.append(entry)
            immediate = self.settings["webhook_delivery"] == "immediate"
        if immediate:
            self.deliver_pending()

    def deliver_pending(self):
        """Send every queued delivery (payloads built now, as WooCommerce builds them at send time)."""
        with self.lock:
            queue, self.pending_deliveries = self.pending_deliveries, []
        return [self._deliver(*entry) for entry in queue]

    def _deliver(self, webhook_id, topic, resource_id):
        with self.lock:
            webhook = self.webhooks.get(webhook_id)
            if webhook is None or webhook["status"] != "active":
                return None
            body = php_json(webhook_payload(self, topic, resource_id))
            resource, event = topic.split(".", 1)
            delivery_id = hashlib.md5(f"{webhook_id}{time.time()}{secrets.token_hex(4)}".encode()).hexdigest()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": self.user_agent(),
                "X-WC-Webhook-Source": self.home_url + "/",
                "X-WC-Webhook-Topic": topic,
                "X-WC-Webhook-Resource": resource,
                "X-WC-Webhook-Event": event,
                "X-WC-Webhook-Signature": webhook_signature(body, webhook["secret"]),
                "X-WC-Webhook-ID": str(webhook_id),
                "X-WC-Webhook-Delivery-ID": delivery_id,
            }
            url = webhook["delivery_url"]
        return self._send(webhook_id, topic, url, body, headers)

    def _send(self, webhook_id, topic, url, body, headers):
        record = {"delivery_id": headers["X-WC-Webhook-Delivery-ID"], "webhook_id": webhook_id,
                  "topic": topic, "url": url, "headers": headers, "body": body.decode(),
                  "status": None, "error": None, "at": wc_date(self.now())}
        try:
            answer = requests.post(url, data=body, headers=headers, timeout=self.settings["webhook_timeout"],
                                   allow_redirects=False)
            record["status"] = answer.status_code
        except requests.RequestException as exc:
            record["error"] = f"{exc.__class__.__name__}: {exc}"
        record["ok"] = record["status"] is not None and 200 <= record["status"] < 303
        with self.lock:
            self.deliveries.append(record)
            webhook = self.webhooks.get(webhook_id)
            if webhook is not None:
                count_delivery_result(webhook, record["ok"])
        return record

    def redeliver(self, delivery_id):
        """Send a past delivery again, byte for byte (the duplicate deliveries receivers must absorb)."""
        with self.lock:
            past = next(d for d in self.deliveries if d["delivery_id"] == delivery_id)
        return self._send(past["webhook_id"], past["topic"], past["url"], past["body"].encode(),
                          dict(past["headers"]))

    def ping(self, webhook_id):
        """deliver_ping(): form body webhook_id=N, no X-WC-Webhook-* headers; the result is ignored."""
        with self.lock:
            url = self.webhooks[webhook_id]["delivery_url"]
        record = {"webhook_id": webhook_id, "topic": "ping", "url": url, "status": None, "error": None,
                  "body": f"webhook_id={webhook_id}", "at": wc_date(self.now())}
        try:
            answer = requests.post(url, data={"webhook_id": str(webhook_id)},
                                   headers={"User-Agent": self.user_agent()},
                                   timeout=self.settings["webhook_timeout"], allow_redirects=False)
            record["status"] = answer.status_code
        except requests.RequestException as exc:
            record["error"] = f"{exc.__class__.__name__}: {exc}"
        with self.lock:
            self.deliveries.append({**record, "delivery_id": None, "ok": record["status"] == 200})

    def user_agent(self):
        return f"WooCommerce/{self.settings['wc_version']} Hookshot (WordPress/{self.settings['wp_version']})"

    def summary(self):
        with self.lock:
            return {"settings": dict(self.settings), "maintenance": dict(self.maintenance),
                    "products": sum(1 for p in self.products.values() if p["kind"] == "product"),
                    "variations": sum(1 for p in self.products.values() if p["kind"] == "variation"),
                    "orders": len(self.orders), "customers": len(self.customers),
                    "webhooks": len(self.webhooks), "deliveries": len(self.deliveries),
                    "pending_deliveries": len(self.pending_deliveries),
                    "keys": [k.as_dict() for k in self.keys.values()], "now": wc_date(self.now())}


class EventBatch:
    """Webhook events raised by one request; a resource is processed once per topic per request."""

    def __init__(self):
        self._events = []
        self.pings = []

    def add(self, topic, resource_id):
        if (topic, resource_id) not in self._events:
            self._events.append((topic, resource_id))

    def items(self):
        return list(self._events)


def count_delivery_result(webhook, ok):
    """WC_Webhook::failed_delivery(): check, then increment; disabled on the 7th failure in a row."""
    if ok:
        webhook["failure_count"] = 0
    elif webhook["failure_count"] > MAX_DELIVERY_FAILURES:
        webhook["status"] = "disabled"
    else:
        webhook["failure_count"] += 1


def slugify(text):
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "product"


EMPTY_BILLING = {"first_name": "", "last_name": "", "company": "", "address_1": "", "address_2": "",
                 "city": "", "state": "", "postcode": "", "country": "", "email": "", "phone": ""}
EMPTY_SHIPPING = {k: "" for k in EMPTY_BILLING if k not in ("email", "phone")}


# --------------------------------------------------------------------------------------------
# Products: writing and rendering
# --------------------------------------------------------------------------------------------
def refresh_stock_status(product):
    """validate_props(): managed stock sets the status; unmanaged stock clears the quantity."""
    if product["manage_stock"]:
        quantity = product["stock_quantity"] or 0
        product["stock_quantity"] = quantity
        if quantity > 0:
            product["stock_status"] = "instock"
        else:
            product["stock_status"] = "outofstock" if product["backorders"] == "no" else "onbackorder"
    else:
        product["stock_quantity"] = None


def apply_product_fields(store, product, fields):
    """Write the REST fields the sandbox supports onto a product or variation."""
    for key in ("name", "slug", "description", "short_description", "regular_price", "sale_price", "weight",
                "menu_order", "attributes"):
        if key in fields and fields[key] is not None:
            product[key] = fields[key]
    if "status" in fields:
        product["status"] = fields["status"]
    if product["kind"] == "variation" and "visible" in fields and "status" not in fields:
        product["status"] = "publish" if _coerce_bool(fields["visible"]) else "private"
    if "type" in fields and product["kind"] == "product":
        product["type"] = fields["type"]
    if "backorders" in fields:
        product["backorders"] = fields["backorders"]
    if "manage_stock" in fields:
        product["manage_stock"] = fields["manage_stock"] is True or _coerce_bool(fields["manage_stock"]) is True
    if "stock_quantity" in fields and fields["stock_quantity"] is not None:
        product["stock_quantity"] = int(fields["stock_quantity"])
    elif "inventory_delta" in fields and product["manage_stock"]:
        product["stock_quantity"] = (product["stock_quantity"] or 0) + int(fields["inventory_delta"])
    if "stock_status" in fields and not product["manage_stock"]:
        product["stock_status"] = fields["stock_status"]
    if "in_stock" in fields and not product["manage_stock"]:
        product["stock_status"] = "instock" if _coerce_bool(fields["in_stock"]) else "outofstock"
    if "meta_data" in fields:
        merge_meta(store, product["meta_data"], fields["meta_data"])
    if "sku" in fields:
        store.set_sku(product, fields["sku"])
    refresh_stock_status(product)
    product["date_modified"] = store.now()


def merge_meta(store, existing, updates):
    for entry in updates or []:
        match = next((m for m in existing if m["key"] == entry.get("key")), None)
        if match:
            match["value"] = entry.get("value")
        else:
            existing.append({"id": next(store._meta_ids), "key": entry.get("key"), "value": entry.get("value")})


def listed_children(store, product):
    return [cid for cid in product["children"]
            if store.products[cid]["status"] in LISTED_VARIATION_STATUSES]


def stock_view(store, product):
    """manage_stock / stock_quantity / stock_status as the REST API shows them."""
    if product["kind"] == "variation" and not product["manage_stock"]:
        parent = store.products[product["parent_id"]]
        if parent["manage_stock"]:
            return {"manage_stock": "parent", "stock_quantity": parent["stock_quantity"],
                    "stock_status": parent["stock_status"]}
    if product["type"] == "variable" and not product["manage_stock"]:
        statuses = {store.products[c]["stock_status"] for c in listed_children(store, product)}
        status = next((s for s in ("instock", "onbackorder") if s in statuses), "outofstock")
        return {"manage_stock": False, "stock_quantity": None, "stock_status": status}
    return {"manage_stock": product["manage_stock"], "stock_quantity": product["stock_quantity"],
            "stock_status": product["stock_status"]}


def current_price(store, product):
    if product["type"] == "variable":
        prices = [parse_money(store.products[c]["sale_price"] or store.products[c]["regular_price"])
                  for c in listed_children(store, product)]
        return money(min(prices)) if prices else ""
    return product["sale_price"] or product["regular_price"]


def rest_url(store, route):
    if store.settings["permalinks"] == "plain":
        return f"{store.home_url}/index.php?rest_route={route}"
    return f"{store.home_url}/wp-json{route}"


def render_product(store, product, as_product=False):
    """The products (or variations) controller's response for one post."""
    if product["kind"] == "variation" and not as_product:
        return render_variation(store, product)
    stock = stock_view(store, product)
    price = current_price(store, product)
    links = {"self": [{"href": rest_url(store, f"/wc/v3/products/{product['id']}")}],
             "collection": [{"href": rest_url(store, "/wc/v3/products")}]}
    if product["parent_id"]:
        links["up"] = [{"href": rest_url(store, f"/wc/v3/products/{product['parent_id']}")}]
    return {
        "id": product["id"], "name": product["name"], "slug": product["slug"],
        "permalink": f"{store.home_url}/product/{product['slug']}/",
        "date_created": wc_date(product["date_created"]), "date_created_gmt": wc_date(product["date_created"]),
        "date_modified": wc_date(product["date_modified"]), "date_modified_gmt": wc_date(product["date_modified"]),
        "type": "variation" if product["kind"] == "variation" else product["type"],
        "status": product["status"], "featured": False, "catalog_visibility": "visible",
        "description": product["description"], "short_description": product["short_description"],
        "sku": product["sku"], "price": price, "regular_price": product["regular_price"],
        "sale_price": product["sale_price"], "date_on_sale_from": None, "date_on_sale_from_gmt": None,
        "date_on_sale_to": None, "date_on_sale_to_gmt": None,
        "price_html": f'<span class="woocommerce-Price-amount amount">{price}</span>' if price else "",
        "on_sale": bool(product["sale_price"]), "purchasable": bool(price), "total_sales": product["total_sales"],
        "virtual": False, "downloadable": False, "downloads": [], "download_limit": -1, "download_expiry": -1,
        "external_url": "", "button_text": "", "tax_status": "taxable", "tax_class": "",
        **stock, "backorders": product["backorders"], "backorders_allowed": product["backorders"] != "no",
        "backordered": False, "sold_individually": False, "weight": product["weight"],
        "dimensions": {"length": "", "width": "", "height": ""}, "shipping_required": True,
        "shipping_taxable": True, "shipping_class": "", "shipping_class_id": 0, "reviews_allowed": True,
        "average_rating": "0.00", "rating_count": 0, "related_ids": [], "upsell_ids": [], "cross_sell_ids": [],
        "parent_id": product["parent_id"], "purchase_note": "", "categories": [], "tags": [], "images": [],
        "attributes": product["attributes"], "default_attributes": [],
        "variations": listed_children(store, product), "grouped_products": [],
        "menu_order": product["menu_order"], "meta_data": product["meta_data"], "_links": links,
    }


def render_variation(store, variation):
    parent_id = variation["parent_id"]
    base = f"/wc/v3/products/{parent_id}/variations"
    price = variation["sale_price"] or variation["regular_price"]
    parent = store.products[parent_id]
    return {
        "id": variation["id"], "date_created": wc_date(variation["date_created"]),
        "date_created_gmt": wc_date(variation["date_created"]),
        "date_modified": wc_date(variation["date_modified"]),
        "date_modified_gmt": wc_date(variation["date_modified"]),
        "description": variation["description"],
        "permalink": f"{store.home_url}/product/{parent['slug']}/?attribute_size={variation['id']}",
        "sku": variation["sku"], "price": price, "regular_price": variation["regular_price"],
        "sale_price": variation["sale_price"], "date_on_sale_from": None, "date_on_sale_from_gmt": None,
        "date_on_sale_to": None, "date_on_sale_to_gmt": None, "on_sale": bool(variation["sale_price"]),
        "status": variation["status"], "purchasable": bool(price), "virtual": False, "downloadable": False,
        "downloads": [], "download_limit": -1, "download_expiry": -1, "tax_status": "taxable", "tax_class": "",
        **stock_view(store, variation), "backorders": variation["backorders"],
        "backorders_allowed": variation["backorders"] != "no", "backordered": False,
        "weight": variation["weight"], "dimensions": {"length": "", "width": "", "height": ""},
        "shipping_class": "", "shipping_class_id": 0, "image": None, "attributes": variation["attributes"],
        "menu_order": variation["menu_order"], "meta_data": variation["meta_data"],
        "name": " - ".join([parent["name"], *[a.get("option", "") for a in variation["attributes"]]]),
        "parent_id": parent_id,
        "_links": {"self": [{"href": rest_url(store, f"{base}/{variation['id']}")}],
                   "collection": [{"href": rest_url(store, base)}],
                   "up": [{"href": rest_url(store, f"/wc/v3/products/{parent_id}")}]},
    }


# --------------------------------------------------------------------------------------------
# Orders
# --------------------------------------------------------------------------------------------
def resolve_line_product(store, line):
    """get_product_id(): sku first, then product_id (without variation_id), then variation_id."""
    if line.get("sku"):
        owner = store.sku_owner.get(str(line["sku"]).lower())
        if owner is None:
            raise RestError(400, "woocommerce_rest_required_product_reference", "Product ID or SKU is required.")
        return store.products[owner]
    product_id = _coerce_int(line.get("product_id")) or 0
    variation_id = _coerce_int(line.get("variation_id")) or 0
    chosen = variation_id or product_id
    if not chosen:
        raise RestError(400, "woocommerce_rest_required_product_reference", "Product ID or SKU is required.")
    return store.products.get(chosen) or {"id": chosen, "missing": True}


def build_line_item(store, line):
    product = resolve_line_product(store, line)
    quantity = _coerce_int(line.get("quantity")) or 1
    if product.get("missing"):  # Woo keeps a line whose product does not exist, with no product
        return {"id": next(store._line_ids), "name": line.get("name", ""), "product_id": product["id"],
                "variation_id": 0, "quantity": quantity, "unit_price": parse_money(line.get("price")),
                "meta_data": [], "sku": "", "reduced_stock": 0}
    is_variation = product["kind"] == "variation"
    parent = store.products[product["parent_id"]] if is_variation else product
    name = parent["name"] + ("" if not is_variation else " - " + ", ".join(
        a.get("option", "") for a in product["attributes"]))
    unit = parse_money(line["total"]) / quantity if line.get("total") else parse_money(current_price(store, product))
    return {"id": next(store._line_ids), "name": name, "product_id": parent["id"],
            "variation_id": product["id"] if is_variation else 0, "quantity": quantity, "unit_price": unit,
            "meta_data": list(line.get("meta_data") or []), "sku": product["sku"], "reduced_stock": 0}


def create_order_record(store, body, events):
    customer_id = _coerce_int(body.get("customer_id")) or 0
    if customer_id and customer_id not in store.customers:
        raise RestError(400, "woocommerce_rest_invalid_customer_id", "Customer ID is invalid.")
    lines = [build_line_item(store, line) for line in body.get("line_items") or []]
    now = store.now()
    order_id = store.next_id()
    order = {"id": order_id, "status": "pending", "currency": body.get("currency") or store.settings["currency"],
             "customer_id": customer_id, "customer_note": body.get("customer_note", ""),
             "billing": {**EMPTY_BILLING, **(body.get("billing") or {})},
             "shipping": {**EMPTY_SHIPPING, **(body.get("shipping") or {})},
             "payment_method": body.get("payment_method", ""),
             "payment_method_title": body.get("payment_method_title", ""),
             "transaction_id": body.get("transaction_id", ""), "line_items": lines,
             "shipping_lines": [{"id": next(store._line_ids), "method_title": s.get("method_title", ""),
                                 "method_id": s.get("method_id", ""), "total": s.get("total", "0.00"),
                                 "total_tax": "0.00", "taxes": [], "meta_data": []}
                                for s in body.get("shipping_lines") or []],
             "meta_data": [], "notes": [], "created_via": "rest-api", "order_key": "wc_order_" + secrets.token_hex(6),
             "date_created": now, "date_modified": now, "date_paid": None, "date_completed": None,
             "stock_reduced": False}
    merge_meta(store, order["meta_data"], body.get("meta_data"))
    store.orders[order_id] = order
    return order


def set_order_status(store, order, new_status, events):
    old_status = order["status"]
    if new_status == old_status:
        return
    order["status"] = new_status
    if new_status == "completed":
        order["date_completed"] = store.now()
    store.add_note(order, f"Order status changed from {ORDER_STATUS_LABELS[old_status]} to "
                          f"{ORDER_STATUS_LABELS[new_status]}.")
    if new_status in STOCK_REDUCING_STATUSES and not order["stock_reduced"]:
        change_order_stock(store, order, -1, events)
    elif new_status in STOCK_RESTORING_STATUSES and order["stock_reduced"]:
        change_order_stock(store, order, +1, events)
    if new_status == "processing" and old_status == "pending":
        store.emails.append({"to": order["billing"]["email"], "template": "customer_processing_order",
                             "order_id": order["id"]})
    order["date_modified"] = store.now()


def stock_holder(store, line):
    """The product whose stock a line changes: the variation, or its parent for "parent" stock."""
    product = store.products.get(line["variation_id"] or line["product_id"])
    if product is None:
        return None
    if product["kind"] == "variation" and not product["manage_stock"]:
        product = store.products[product["parent_id"]]
    return product if product["manage_stock"] else None


def change_order_stock(store, order, direction, events):
    """wc_reduce_stock_levels() / wc_increase_stock_levels(), with the order note they add."""
    changes = []
    for line in order["line_items"]:
        holder = stock_holder(store, line)
        if holder is None:
            continue
        quantity = line["quantity"] if direction < 0 else line["reduced_stock"]
        if not quantity:
            continue
        before = holder["stock_quantity"]
        holder["stock_quantity"] = before + direction * quantity
        holder["total_sales"] += -direction * quantity
        refresh_stock_status(holder)
        holder["date_modified"] = store.now()
        line["reduced_stock"] = quantity if direction < 0 else 0
        label = f"{line['name']} ({holder['sku']})" if holder["sku"] else line["name"]
        changes.append(f"{label} {before}&rarr;{holder['stock_quantity']}")
        events.add("product.updated", holder["id"])
    order["stock_reduced"] = direction < 0
    if changes:
        verb = "reduced" if direction < 0 else "increased"
        store.add_note(order, f"Stock levels {verb}: " + ", ".join(changes))


def payment_complete(store, order, events, transaction_id=""):
    order["date_paid"] = store.now()
    if transaction_id:
        order["transaction_id"] = transaction_id
    if order["status"] in ("pending", "on-hold", "failed", "cancelled"):
        set_order_status(store, order, "processing", events)
    if not order["stock_reduced"]:
        change_order_stock(store, order, -1, events)


def order_totals(order):
    lines = sum(line["unit_price"] * line["quantity"] for line in order["line_items"])
    shipping = sum(parse_money(s["total"]) for s in order["shipping_lines"])
    return lines, shipping


def render_order(store, order):
    lines_total, shipping_total = order_totals(order)
    return {
        "id": order["id"], "parent_id": 0, "number": str(order["id"]), "order_key": order["order_key"],
        "created_via": order["created_via"], "version": store.settings["wc_version"], "status": order["status"],
        "currency": order["currency"], "date_created": wc_date(order["date_created"]),
        "date_created_gmt": wc_date(order["date_created"]), "date_modified": wc_date(order["date_modified"]),
        "date_modified_gmt": wc_date(order["date_modified"]), "discount_total": "0.00", "discount_tax": "0.00",
        "shipping_total": money(shipping_total), "shipping_tax": "0.00", "cart_tax": "0.00",
        "total": money(lines_total + shipping_total), "total_tax": "0.00", "prices_include_tax": False,
        "customer_id": order["customer_id"], "customer_ip_address": "", "customer_user_agent": "",
        "customer_note": order["customer_note"], "billing": order["billing"], "shipping": order["shipping"],
        "payment_method": order["payment_method"], "payment_method_title": order["payment_method_title"],
        "transaction_id": order["transaction_id"], "date_paid": wc_date(order["date_paid"]),
        "date_paid_gmt": wc_date(order["date_paid"]), "date_completed": wc_date(order["date_completed"]),
        "date_completed_gmt": wc_date(order["date_completed"]), "cart_hash": "", "meta_data": order["meta_data"],
        "line_items": [{"id": line["id"], "name": line["name"], "product_id": line["product_id"],
                        "variation_id": line["variation_id"], "quantity": line["quantity"], "tax_class": "",
                        "subtotal": money(line["unit_price"] * line["quantity"]), "subtotal_tax": "0.00",
                        "total": money(line["unit_price"] * line["quantity"]), "total_tax": "0.00", "taxes": [],
                        "meta_data": line["meta_data"] + ([{"id": 0, "key": "_reduced_stock",
                                                            "value": str(line["reduced_stock"])}]
                                                          if line["reduced_stock"] else []),
                        "sku": line["sku"], "price": line["unit_price"]} for line in order["line_items"]],
        "tax_lines": [], "shipping_lines": order["shipping_lines"], "fee_lines": [], "coupon_lines": [],
        "refunds": [],
        "_links": {"self": [{"href": rest_url(store, f"/wc/v3/orders/{order['id']}")}],
                   "collection": [{"href": rest_url(store, "/wc/v3/orders")}]},
    }


def render_note(store, order, note):
    base = f"/wc/v3/orders/{order['id']}/notes"
    return {"id": note["id"], "author": note["author"], "date_created": wc_date(note["date_created"]),
            "date_created_gmt": wc_date(note["date_created"]), "note": note["note"],
            "customer_note": note["customer_note"],
            "_links": {"self": [{"href": rest_url(store, f"{base}/{note['id']}")}],
                       "collection": [{"href": rest_url(store, base)}],
                       "up": [{"href": rest_url(store, f"/wc/v3/orders/{order['id']}")}]}}


def render_customer(store, customer):
    return {"id": customer["id"], "date_created": wc_date(customer["date_created"]),
            "date_created_gmt": wc_date(customer["date_created"]),
            "date_modified": wc_date(customer["date_modified"]),
            "date_modified_gmt": wc_date(customer["date_modified"]), "email": customer["email"],
            "first_name": customer["first_name"], "last_name": customer["last_name"], "role": customer["role"],
            "username": customer["username"], "billing": customer["billing"], "shipping": customer["shipping"],
            "is_paying_customer": False,
            "avatar_url": "https://secure.gravatar.com/avatar/"
                          + hashlib.md5(customer["email"].lower().encode()).hexdigest() + "?s=96",
            "meta_data": customer["meta_data"],
            "_links": {"self": [{"href": rest_url(store, f"/wc/v3/customers/{customer['id']}")}],
                       "collection": [{"href": rest_url(store, "/wc/v3/customers")}]}}


def render_webhook(store, webhook):
    resource, event = webhook["topic"].split(".", 1) if "." in webhook["topic"] else (webhook["topic"], "")
    return {"id": webhook["id"], "name": webhook["name"], "status": webhook["status"], "topic": webhook["topic"],
            "resource": resource, "event": event, "hooks": WEBHOOK_HOOKS.get(webhook["topic"], []),
            "delivery_url": webhook["delivery_url"], "date_created": wc_date(webhook["date_created"]),
            "date_created_gmt": wc_date(webhook["date_created"]),
            "date_modified": wc_date(webhook["date_modified"]),
            "date_modified_gmt": wc_date(webhook["date_modified"]),
            "_links": {"self": [{"href": rest_url(store, f"/wc/v3/webhooks/{webhook['id']}")}],
                       "collection": [{"href": rest_url(store, "/wc/v3/webhooks")}]}}


def webhook_payload(store, topic, resource_id):
    resource, event = topic.split(".", 1)
    if event == "deleted":
        return {"id": resource_id}
    if resource == "order" and resource_id in store.orders:
        return render_order(store, store.orders[resource_id])
    if resource == "product" and resource_id in store.products:
        return render_product(store, store.products[resource_id], as_product=True)
    if resource == "customer" and resource_id in store.customers:
        return render_customer(store, store.customers[resource_id])
    return {"id": resource_id}


def valid_webhook_topic(topic):
    """wc_is_webhook_valid_topic()."""
    if not isinstance(topic, str):
        return False
    if topic.startswith(("action.woocommerce_", "action.wc_")):
        return True
    parts = topic.split(".")
    return len(parts) == 2 and parts[0] in WEBHOOK_RESOURCES and parts[1] in WEBHOOK_EVENTS


# --------------------------------------------------------------------------------------------
# The REST server: routing, auth, handlers
# --------------------------------------------------------------------------------------------
class RestRequest:
    def __init__(self, method, route, query, body, key, match):
        self.method = method
        self.route = route
        self.query = query
        self.body = body
        self.key = key
        self.match = match
        self.params = {**query, **(body if isinstance(body, dict) else {})}

    def url_id(self, name="id"):
        return int(self.match.group(name))


def read_query(args):
    """PHP-style query parsing: `status[]=a&status[]=b` becomes a list under `status`."""
    query = {}
    for name in args:
        values = args.getlist(name)
        if name.endswith("[]"):
            query[name[:-2]] = values
        else:
            query[name] = values[-1]
    return query


def require_permission(req, kind):
    """The endpoint permission checks: 401 when logged out, 403 when the user lacks the capability."""
    if req.key is not None and req.key.is_manager:
        return
    codes = {"list": ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources."),
             "view": ("woocommerce_rest_cannot_view", "Sorry, you cannot view this resource."),
             "create": ("woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources."),
             "edit": ("woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource."),
             "batch": ("woocommerce_rest_cannot_batch",
                       "Sorry, you are not allowed to batch manipulate this resource.")}
    code, message = codes[kind]
    raise RestError(401 if req.key is None else 403, code, message)


class RestServer:
    """Dispatches /wp-json/... (or ?rest_route=...) requests against a WooStore."""

    def __init__(self, store):
        self.store = store
        p, v, o = r"(?P<id>[\d]+)", r"(?P<product_id>[\d]+)", r"(?P<order_id>[\d]+)"
        self.routes = [
            # (route index key, overlay groups, {method: (handler, permission)})
            ("/wc/v3/products", ("collection", "products"),
             {"GET": (self.list_products, "list"), "POST": (self.create_product, "create")}),
            ("/wc/v3/products/batch", (), dict.fromkeys(("POST", "PUT", "PATCH"), (self.batch_products, "batch"))),
            (f"/wc/v3/products/{p}", (), {"GET": (self.get_product, "view"),
                                          **dict.fromkeys(("POST", "PUT", "PATCH"), (self.update_product, "edit"))}),
            (f"/wc/v3/products/{v}/variations", ("collection", "products"),
             {"GET": (self.list_variations, "list"), "POST": (self.create_variation, "create")}),
            (f"/wc/v3/products/{v}/variations/batch", (),
             dict.fromkeys(("POST", "PUT", "PATCH"), (self.batch_variations, "batch"))),
            (f"/wc/v3/products/{v}/variations/{p}", (),
             {"GET": (self.get_variation, "view"),
              **dict.fromkeys(("POST", "PUT", "PATCH"), (self.update_variation, "edit"))}),
            ("/wc/v3/orders", ("collection", "orders"),
             {"GET": (self.list_orders, "list"), "POST": (self.create_order, "create")}),
            (f"/wc/v3/orders/{p}", (), {"GET": (self.get_order, "view"),
                                        **dict.fromkeys(("POST", "PUT", "PATCH"), (self.update_order, "edit"))}),
            (f"/wc/v3/orders/{o}/notes", (), {"GET": (self.list_notes, "list"), "POST": (self.create_note, "create")}),
            ("/wc/v3/customers", ("collection",),
             {"GET": (self.list_customers, "list"), "POST": (self.create_customer, "create")}),
            ("/wc/v3/webhooks", ("collection",),
             {"GET": (self.list_webhooks, "list"), "POST": (self.create_webhook, "create")}),
            (f"/wc/v3/webhooks/{p}", (), {"GET": (self.get_webhook, "view"),
                                          **dict.fromkeys(("POST", "PUT", "PATCH"), (self.update_webhook, "edit"))}),
            ("/wc/v3/system_status", (), {"GET": (self.system_status, "list")}),
        ]
        self.compiled = [(re.compile(key), key, groups, methods) for key, groups, methods in self.routes]
        self._args_cache = {}

    # -- entry ------------------------------------------------------------------------------
    def handle(self, method, route, query, raw_body, content_type, authorization, is_ssl=True):
        """Return (status, json body, headers), in WordPress's order: maintenance, auth, route, args."""
        store = self.store
        events = EventBatch()
        try:
            retry_after = store.take_maintenance()
            if retry_after is not None:
                raise RestError(503, "maintenance",
                                "Briefly unavailable for scheduled maintenance. Check back in a minute.",
                                headers={"Retry-After": str(retry_after)})
            if route in ("", "/"):
                return 200, self.wp_index(), {}
            is_woo = route.startswith("/wc/") and store.settings["woocommerce_active"]
            key = None
            if is_woo and is_ssl:  # Basic and query-string keys are only read over HTTPS
                key = self.authenticate(query, authorization)
                self.check_key_permissions(key, method)
            if route.rstrip("/") == "/wc/v3" and is_woo and method == "GET":
                return 200, self.namespace_index(), {}
            body = parse_body(raw_body, content_type)
            if not is_woo:
                raise no_route()
            status, payload, headers = self.dispatch(method, route, query, body, key, events)
            store.fire(events)
            for webhook_id in events.pings:
                store.ping(webhook_id)  # synchronous, as deliver_ping() is; its result is ignored
            return status, payload, headers
        except RestError as error:
            return error.status, error.body(), error.headers

    def dispatch(self, method, route, query, body, key, events):
        store = self.store
        for pattern, index_key, groups, methods in self.compiled:
            match = pattern.fullmatch(route)
            if match is None:
                continue
            if method not in methods:
                raise no_route()
            handler, permission = methods[method]
            req = RestRequest(method, route, query, body, key, match)
            req.params = validate_params(req.params, self.args_for(index_key, method, groups))
            require_permission(req, permission)
            with store.lock:
                status, payload, headers = handler(req, events)
            if method == "GET" and query.get("_fields"):
                fields = [f.strip() for f in str(query["_fields"]).split(",") if f.strip()]
                keep_id = [] if index_key.endswith("system_status") else ["id"]
                payload = filter_fields(payload, fields + keep_id)
            return status, payload, headers
        if route == "/wc/v3/variations" and store.has_all_variations_route and method == "GET":
            req = RestRequest(method, route, query, body, key, None)
            req.params = validate_params(req.params, self.args_for(
                r"/wc/v3/products/(?P<product_id>[\d]+)/variations", "GET", ("collection", "products")))
            require_permission(req, "list")
            with store.lock:
                return self.list_all_variations(req, events)
        raise no_route()

    def args_for(self, index_key, method, groups):
        cache_key = (index_key, method)
        if cache_key not in self._args_cache:
            self._args_cache[cache_key] = route_args(self.store.index, index_key, method, groups)
        return self._args_cache[cache_key]

    def authenticate(self, query, authorization):
        """WC_REST_Authentication::perform_basic_authentication() plus check_permissions()."""
        consumer_key = consumer_secret = None
        if query.get("consumer_key") and query.get("consumer_secret"):
            consumer_key, consumer_secret = query["consumer_key"], query["consumer_secret"]
        elif authorization and authorization.type == "basic":
            consumer_key, consumer_secret = authorization.username, authorization.password
        if not consumer_key or not consumer_secret:
            return None
        key = self.store.find_key(consumer_key)
        if key is None:
            return None  # no error: the request continues logged out
        if not hmac.compare_digest(key.consumer_secret, consumer_secret):
            raise RestError(401, "woocommerce_rest_authentication_error", "Consumer secret is invalid.",
                            headers={"WWW-Authenticate": 'Basic realm="WooCommerce API. Use a consumer key in the '
                                                         'username field and a consumer secret in the password '
                                                         'field."'})
        return key

    def check_key_permissions(self, key, method):
        if key is None:
            return
        needed = "read" if method in ("GET", "HEAD") else "write"
        if needed not in key.permissions.split("_"):
            raise RestError(401, "woocommerce_rest_authentication_error",
                            f"The API key provided does not have {needed} permissions.")

    # -- indexes ----------------------------------------------------------------------------
    def wp_index(self):
        store = self.store
        namespaces = ["oembed/1.0", "wp/v2", "wp-site-health/v1"]
        routes = {"/": {"namespace": "", "methods": ["GET"]}}
        if store.settings["woocommerce_active"]:
            namespaces[1:1] = ["wc/v1", "wc/v2", "wc/v3", "wc/store/v1"]
            routes.update({key: {"namespace": "wc/v3", "methods": value["methods"]}
                           for key, value in self.namespace_index()["routes"].items()})
        return {"name": store.settings["site_name"], "description": "A winery on the sandbox",
                "url": store.home_url, "home": store.home_url, "gmt_offset": "0", "timezone_string": "UTC",
                "permalink_structure": "" if store.settings["permalinks"] == "plain" else "/%postname%/",
                "namespaces": namespaces, "authentication": {}, "routes": routes,
                "_links": {"help": [{"href": "https://developer.wordpress.org/rest-api/"}]}}

    def namespace_index(self):
        store = self.store
        text = json.dumps(store.index).replace("https://example.com/wp-json", rest_url(store, "").rstrip("/"))
        index = json.loads(text)
        if store.has_all_variations_route:
            listing = index["routes"][r"/wc/v3/products/(?P<product_id>[\d]+)/variations"]
            index["routes"]["/wc/v3/variations"] = {
                "namespace": "wc/v3", "methods": ["GET"],
                "endpoints": [{"methods": ["GET"], "args": {k: v for k, v in listing["endpoints"][0]["args"].items()
                                                             if k != "product_id"}}],
                "_links": {"self": rest_url(store, "/wc/v3/variations")}}
        return index

    # -- collections ------------------------------------------------------------------------
    def paginate(self, req, items, route, render):
        """Slice a sorted list and answer with X-WP-Total, X-WP-TotalPages and Link prev/next."""
        per_page = req.params.get("per_page", 10)
        page = req.params.get("page", 1)
        offset = req.params.get("offset")
        start = offset if offset is not None else (page - 1) * per_page
        total = len(items)
        total_pages = math.ceil(total / per_page) if total else 0
        if offset is not None:  # WP computes pages from the count minus the offset
            total_pages = math.ceil(max(total - offset, 0) / per_page) if total else 0
        chunk = [render(item) for item in items[start:start + per_page]]
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(total_pages)}
        links = []
        base_query = {k: v if not isinstance(v, list) else ",".join(map(str, v)) for k, v in req.query.items()
                      if k != "page"}
        base = rest_url(self.store, route)
        joiner = "&" if "?" in base else "?"
        if page > 1:
            prev_page = min(page - 1, total_pages) if total_pages else 1
            links.append(f'<{base}{joiner}{urlencode({**base_query, "page": prev_page})}>; rel="prev"')
        if total_pages > page:
            links.append(f'<{base}{joiner}{urlencode({**base_query, "page": page + 1})}>; rel="next"')
        if links:
            headers["Link"] = ", ".join(links)
        return 200, chunk, headers

    def filter_catalogue(self, req, items):
        params = req.params
        status = params.get("status", "any")
        if status != "any":
            items = [p for p in items if p["status"] == status]
        else:
            items = [p for p in items if p["status"] != "trash"]
        if params.get("type"):
            items = [p for p in items if p["kind"] == "product" and p["type"] == params["type"]]
        if params.get("sku"):
            wanted = {s.strip().lower() for s in params["sku"].split(",") if s.strip()}
            items = [p for p in items if p["sku"].lower() in wanted]
        if params.get("search"):
            needle = params["search"].lower()
            items = [p for p in items if needle in p["name"].lower()]
        if params.get("stock_status"):
            items = [p for p in items if stock_view(self.store, p)["stock_status"] == params["stock_status"]]
        if params.get("parent"):
            items = [p for p in items if p["parent_id"] in params["parent"]]
        return self.filter_common(req, items)

    def filter_common(self, req, items):
        params = req.params
        if params.get("include"):
            items = [i for i in items if i["id"] in params["include"]]
        if params.get("exclude"):
            items = [i for i in items if i["id"] not in params["exclude"]]
        for name, field, after in (("after", "date_created", True), ("before", "date_created", False),
                                   ("modified_after", "date_modified", True),
                                   ("modified_before", "date_modified", False)):
            if params.get(name):
                bound = parse_rest_date(params[name])
                items = [i for i in items if (i[field] > bound if after else i[field] < bound)]
        return self.sort(req, items)

    def sort(self, req, items):
        orderby = req.params.get("orderby", "date")
        field = {"date": "date_created", "id": "id", "title": "name", "slug": "slug", "name": "name",
                 "modified": "date_modified", "registered_date": "date_created"}.get(orderby, "id")
        reverse = req.params.get("order", "desc") == "desc"
        if orderby == "include" and req.params.get("include"):
            position = {pid: n for n, pid in enumerate(req.params["include"])}
            return sorted(items, key=lambda i: position.get(i["id"], 0))
        def sort_key(item):
            value = item[field] if field in item else item.get("username", "")
            return (value if value is not None else "", item["id"])

        return sorted(items, key=sort_key, reverse=reverse)

    # -- products ---------------------------------------------------------------------------
    def list_products(self, req, events):
        store = self.store
        if req.params.get("sku"):  # sku makes the query cover product and product_variation posts
            items = list(store.products.values())
        else:
            items = [p for p in store.products.values() if p["kind"] == "product"]
        items = self.filter_catalogue(req, items)
        return self.paginate(req, items, "/wc/v3/products", lambda p: render_product(store, p, as_product=True))

    def product_or_error(self, product_id, status_for_missing=404):
        product = self.store.products.get(product_id)
        if product is None:
            raise RestError(status_for_missing, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        if product["kind"] == "variation":
            raise RestError(404, "woocommerce_rest_invalid_product_id",
                            "To manipulate product variations you should use the "
                            "/products/<product_id>/variations/<id> endpoint.")
        return product

    def get_product(self, req, events):
        return 200, render_product(self.store, self.product_or_error(req.url_id())), {}

    def create_product(self, req, events):
        product = self.insert_product(req.params, events)
        return 201, render_product(self.store, product), {"Location": rest_url(self.store, f"/wc/v3/products/{product['id']}")}

    def insert_product(self, fields, events, parent_id=0):
        store = self.store
        kind = "variation" if parent_id else "product"
        product = store._blank_product(kind, parent_id)
        if not parent_id:
            product["slug"] = fields.get("slug") or slugify(fields.get("name") or f"product-{product['id']}")
        try:
            apply_product_fields(store, product, fields)
        except RestError:
            if product["sku"]:
                store.sku_owner.pop(product["sku"].lower(), None)
            raise
        store._insert(product)
        events.add("product.created", product["id"])
        return product

    def update_product(self, req, events):
        product = self.product_or_error(req.url_id(), status_for_missing=400)
        self.write_product(product, req.params, events)
        return 200, render_product(self.store, product), {}

    def write_product(self, product, fields, events):
        apply_product_fields(self.store, product, fields)
        events.add("product.updated", product["id"])

    def run_batch(self, req, events, create, update, delete):
        """WC_REST_Controller::batch_items(): limit, then each item on its own, errors per item."""
        body = req.body if isinstance(req.body, dict) else {}
        parts = {name: body.get(name) or [] for name in ("create", "update", "delete")}
        limit = self.store.settings["batch_limit"]
        if sum(len(items) for items in parts.values()) > limit:
            raise RestError(413, "woocommerce_rest_request_entity_too_large",
                            f"Unable to accept more than {limit} items for this request.")
        response = {}
        for name, action in (("create", create), ("update", update), ("delete", delete)):
            if not parts[name]:
                continue
            response[name] = []
            for item in parts[name]:
                try:
                    response[name].append(action(item, events))
                except RestError as error:
                    item_id = 0 if name == "create" else (item.get("id") if isinstance(item, dict) else item)
                    response[name].append({"id": item_id, "error": {"code": error.code, "message": error.message,
                                                                    "data": error.data}})
        return 200, response or [], {}

    def batch_products(self, req, events):
        store = self.store

        def update(item, events):
            item_id = _coerce_int(item.get("id")) if isinstance(item, dict) else None
            product = self.product_or_error(item_id or 0, status_for_missing=400)
            self.write_product(product, item, events)
            return render_product(store, product)

        def delete(item_id, events):
            product = self.product_or_error(_coerce_int(item_id) or 0)
            rendered = render_product(store, product)
            self.remove_product(product, events)
            return rendered

        return self.run_batch(req, events, lambda item, ev: render_product(store, self.insert_product(item, ev)),
                              update, delete)

    def remove_product(self, product, events):
        store = self.store
        for child_id in list(product["children"]):
            self.remove_product(store.products[child_id], events)
        if product["sku"]:
            store.sku_owner.pop(product["sku"].lower(), None)
        if product["kind"] == "variation":
            store.products[product["parent_id"]]["children"].remove(product["id"])
        del store.products[product["id"]]
        events.add("product.deleted", product["id"])

    # -- variations -------------------------------------------------------------------------
    def variable_parent(self, product_id):
        parent = self.store.products.get(product_id)
        if parent is None or parent["kind"] != "product":
            raise RestError(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        return parent

    def list_variations(self, req, events):
        store = self.store
        parent = store.products.get(req.url_id("product_id"))
        children = [store.products[c] for c in parent["children"]] if parent and parent["kind"] == "product" else []
        items = self.filter_catalogue(req, children)
        return self.paginate(req, items, f"/wc/v3/products/{req.url_id('product_id')}/variations",
                             lambda v: render_variation(store, v))

    def list_all_variations(self, req, events):
        store = self.store
        items = self.filter_catalogue(req, [p for p in store.products.values() if p["kind"] == "variation"])
        return self.paginate(req, items, "/wc/v3/variations", lambda v: render_variation(store, v))

    def variation_or_error(self, parent_id, variation_id, status_for_missing=404):
        variation = self.store.products.get(variation_id)
        if variation is None or variation["kind"] != "variation":
            raise RestError(status_for_missing, "woocommerce_rest_product_variation_invalid_id", "Invalid ID.")
        return variation

    def get_variation(self, req, events):  # GET ignores the parent id (woocommerce#41373)
        variation = self.variation_or_error(req.url_id("product_id"), req.url_id())
        return 200, render_variation(self.store, variation), {}

    def create_variation(self, req, events):
        parent = self.variable_parent(req.url_id("product_id"))
        variation = self.insert_product(req.params, events, parent_id=parent["id"])
        location = rest_url(self.store, f"/wc/v3/products/{parent['id']}/variations/{variation['id']}")
        return 201, render_variation(self.store, variation), {"Location": location}

    def update_variation(self, req, events):
        variation = self.variation_or_error(req.url_id("product_id"), req.url_id(), status_for_missing=400)
        if variation["parent_id"] != req.url_id("product_id"):
            raise RestError(403, "woocommerce_rest_cannot_edit", "Parent product does not match current variation.")
        self.write_product(variation, req.params, events)
        return 200, render_variation(self.store, variation), {}

    def batch_variations(self, req, events):
        store = self.store
        parent = self.variable_parent(req.url_id("product_id"))

        def own_variation(item_id):
            variation = store.products.get(_coerce_int(item_id) or 0)
            if variation is None or variation.get("parent_id") != parent["id"] or variation["kind"] != "variation":
                raise RestError(400, "woocommerce_rest_product_variation_invalid_id", "Invalid ID.")
            return variation

        def update(item, events):
            variation = own_variation(item.get("id") if isinstance(item, dict) else None)
            self.write_product(variation, item, events)
            return render_variation(store, variation)

        def delete(item_id, events):
            variation = own_variation(item_id)
            rendered = render_variation(store, variation)
            self.remove_product(variation, events)
            return rendered

        def create(item, events):
            return render_variation(store, self.insert_product(item, events, parent_id=parent["id"]))

        return self.run_batch(req, events, create, update, delete)

    # -- orders -----------------------------------------------------------------------------
    def order_or_error(self, order_id, status_for_missing=404):
        order = self.store.orders.get(order_id)
        if order is None:
            raise RestError(status_for_missing, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        return order

    def list_orders(self, req, events):
        store = self.store
        items = list(store.orders.values())
        statuses = req.params.get("status") or ["any"]
        if "any" not in statuses:
            items = [o for o in items if o["status"] in statuses]
        if req.params.get("customer") is not None:
            items = [o for o in items if o["customer_id"] == req.params["customer"]]
        if req.params.get("product"):
            items = [o for o in items if any(req.params["product"] in (line["product_id"], line["variation_id"])
                                             for line in o["line_items"])]
        items = self.filter_common(req, items)
        return self.paginate(req, items, "/wc/v3/orders", lambda o: render_order(store, o))

    def get_order(self, req, events):
        return 200, render_order(self.store, self.order_or_error(req.url_id())), {}

    def create_order(self, req, events):
        """WC_REST_Orders_Controller::save_object(): props, totals, status, save, then set_paid."""
        store = self.store
        order = create_order_record(store, req.params, events)
        events.add("order.created", order["id"])
        set_order_status(store, order, req.params.get("status", "pending"), events)
        if req.params.get("set_paid") is True:
            payment_complete(store, order, events, req.params.get("transaction_id", ""))
        return 201, render_order(store, order), {"Location": rest_url(store, f"/wc/v3/orders/{order['id']}")}

    def update_order(self, req, events):
        store = self.store
        order = self.order_or_error(req.url_id(), status_for_missing=400)
        params = req.params
        if "line_items" in params:
            raise RestError(400, "sandbox_unsupported", "The sandbox does not edit line items of existing orders.")
        for key in ("customer_note", "payment_method", "payment_method_title", "transaction_id"):
            if key in params:
                order[key] = params[key]
        for key, empty in (("billing", EMPTY_BILLING), ("shipping", EMPTY_SHIPPING)):
            if isinstance(params.get(key), dict):
                order[key] = {**order[key], **{k: v for k, v in params[key].items() if k in empty}}
        if "meta_data" in params:
            merge_meta(store, order["meta_data"], params["meta_data"])
        if "status" in params:
            set_order_status(store, order, params["status"], events)
        if params.get("set_paid") is True and not order["date_paid"]:
            payment_complete(store, order, events, params.get("transaction_id", ""))
        order["date_modified"] = store.now()
        events.add("order.updated", order["id"])
        return 200, render_order(store, order), {}

    def list_notes(self, req, events):
        order = self.order_or_error(req.url_id("order_id"))
        kind = req.params.get("type", "any")
        notes = [n for n in reversed(order["notes"])
                 if kind == "any" or (kind == "customer") == n["customer_note"]]
        return 200, [render_note(self.store, order, n) for n in notes], {}

    def create_note(self, req, events):
        store = self.store
        order = store.orders.get(req.url_id("order_id"))
        if order is None:
            raise RestError(404, "woocommerce_rest_shop_order_invalid_id", "Invalid order ID.")
        if not str(req.params.get("note", "")).strip():
            raise RestError(400, "woocommerce_rest_invalid_order_note", "Invalid order note.")
        author = "admin" if _coerce_bool(req.params.get("added_by_user", False)) else "system"
        note = store.add_note(order, req.params["note"], req.params.get("customer_note", False) is True, author)
        location = rest_url(store, f"/wc/v3/orders/{order['id']}/notes/{note['id']}")
        return 201, render_note(store, order, note), {"Location": location}

    # -- customers --------------------------------------------------------------------------
    def list_customers(self, req, events):
        store = self.store
        items = list(store.customers.values())
        role = req.params.get("role", "customer")
        if role != "all":
            items = [c for c in items if c["role"] == role]
        if req.params.get("email"):
            items = [c for c in items if c["email"].lower() == req.params["email"].lower()]
        if req.params.get("search"):
            needle = req.params["search"].lower()
            items = [c for c in items if needle in c["email"].lower() or needle in c["username"].lower()]
        req.params.setdefault("orderby", "name")
        req.params.setdefault("order", "asc")
        items = self.filter_common(req, items)
        return self.paginate(req, items, "/wc/v3/customers", lambda c: render_customer(store, c))

    def create_customer(self, req, events):
        """wc_create_new_customer(): a valid, unused email; a username made up when none is given."""
        store = self.store
        email = str(req.params["email"]).strip()
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            raise RestError(400, "registration-error-invalid-email", "Please provide a valid email address.")
        if store.find_customer(email):
            raise RestError(400, "registration-error-email-exists",
                            f"An account is already registered with {email}. Please log in or use a different "
                            "email address.")
        taken = {c["username"].lower() for c in store.customers.values()}
        username = req.params.get("username")
        if username and username.lower() in taken:
            raise RestError(400, "registration-error-username-exists",
                            "An account is already registered with that username. Please choose another.")
        if not username:
            stem = re.sub(r"[^a-z0-9._-]", "", email.split("@")[0].lower()) or "customer"
            username = next(c for c in itertools.chain([stem], (f"{stem}{n}" for n in itertools.count(1)))
                            if c not in taken)
        customer = store._new_user(email, username, "customer", req.params.get("first_name", ""),
                                   req.params.get("last_name", ""), req.params.get("billing"),
                                   req.params.get("shipping"))
        store.customers[customer["id"]] = customer
        events.add("customer.created", customer["id"])
        return 201, render_customer(store, customer), {"Location": rest_url(store, f"/wc/v3/customers/{customer['id']}")}

    # -- webhooks ---------------------------------------------------------------------------
    def list_webhooks(self, req, events):
        store = self.store
        items = list(store.webhooks.values())
        status = req.params.get("status", "all")
        if status != "all":
            items = [w for w in items if w["status"] == status]
        items = self.filter_common(req, items)
        return self.paginate(req, items, "/wc/v3/webhooks", lambda w: render_webhook(store, w))

    def webhook_or_error(self, webhook_id, status_for_missing=404):
        webhook = self.store.webhooks.get(webhook_id)
        if webhook is None:
            raise RestError(status_for_missing, "woocommerce_rest_webhook_invalid_id", "Invalid ID.")
        return webhook

    def get_webhook(self, req, events):
        return 200, render_webhook(self.store, self.webhook_or_error(req.url_id())), {}

    @staticmethod
    def check_webhook_fields(params):
        if "topic" in params and not valid_webhook_topic(params["topic"]):
            raise RestError(400, "woocommerce_rest_webhook_invalid_topic", "Webhook topic is required and must be valid.")
        if "delivery_url" in params:
            parts = urlsplit(str(params["delivery_url"]))
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise RestError(400, "woocommerce_rest_webhook_invalid_delivery_url",
                                "Webhook delivery URL must be a valid URL starting with http:// or https://.")

    def create_webhook(self, req, events):
        store = self.store
        params = req.params
        self.check_webhook_fields(params)
        now = store.now()
        webhook = {"id": len(store.webhooks) + 1, "status": params.get("status", "active"), "topic": params["topic"],
                   "name": params.get("name") or f"Webhook created on {now.strftime('%b %d, %Y @ %I:%M %p')}",
                   "delivery_url": params["delivery_url"],
                   "secret": params.get("secret") or secrets.token_urlsafe(38), "failure_count": 0,
                   "date_created": now, "date_modified": now}
        store.webhooks[webhook["id"]] = webhook
        events.pings.append(webhook["id"])
        return 201, render_webhook(store, webhook), {"Location": rest_url(store, f"/wc/v3/webhooks/{webhook['id']}")}

    def update_webhook(self, req, events):
        store = self.store
        webhook = self.webhook_or_error(req.url_id(), status_for_missing=400)
        self.check_webhook_fields(req.params)
        for key in ("name", "topic", "delivery_url", "secret"):
            if req.params.get(key):
                webhook[key] = req.params[key]
        if "status" in req.params:
            if req.params["status"] == "active" and webhook["status"] != "active":
                webhook["failure_count"] = 0
            webhook["status"] = req.params["status"]
        webhook["date_modified"] = store.now()
        return 200, render_webhook(store, webhook), {}

    # -- system status ----------------------------------------------------------------------
    def system_status(self, req, events):
        store = self.store
        settings = store.settings
        report = {
            "environment": {"home_url": store.home_url, "site_url": store.home_url, "version": settings["wc_version"],
                            "log_directory": "/var/www/html/wp-content/uploads/wc-logs/",
                            "log_directory_writable": True, "wp_version": settings["wp_version"],
                            "wp_multisite": False, "wp_memory_limit": 268435456, "wp_debug_mode": False,
                            "wp_cron": True, "language": "en_US", "external_object_cache": None,
                            "server_info": "nginx/1.24.0", "php_version": "8.2.18", "php_post_max_size": 67108864,
                            "php_max_execution_time": 120, "php_max_input_vars": 5000, "curl_version": "8.5.0",
                            "max_upload_size": 67108864, "mysql_version": "8.0.36", "default_timezone": "UTC",
                            "remote_post_successful": True, "remote_post_response": 200,
                            "remote_get_successful": True, "remote_get_response": 200},
            "database": {"wc_database_version": settings["wc_version"], "database_prefix": "wp_"},
            "active_plugins": [{"plugin": "woocommerce/woocommerce.php", "name": "WooCommerce",
                                "version": settings["wc_version"], "version_latest": settings["wc_version"],
                                "url": "https://woocommerce.com/", "author_name": "Automattic",
                                "author_url": "https://woocommerce.com", "network_activated": False}],
            "inactive_plugins": [], "dropins_mu_plugins": {"dropins": [], "mu_plugins": []},
            "theme": {"name": "Storefront", "version": "4.6.0", "version_latest": "4.6.0",
                      "author_url": "https://woocommerce.com/", "is_child_theme": False,
                      "has_woocommerce_support": True, "has_woocommerce_file": False,
                      "has_outdated_templates": False, "overrides": [], "parent_name": "", "parent_version": "",
                      "parent_version_latest": "", "parent_author_url": ""},
            "settings": {"api_enabled": True, "force_ssl": False, "currency": settings["currency"],
                         "currency_symbol": "&#36;", "currency_position": "left", "thousand_separator": ",",
                         "decimal_separator": ".", "number_of_decimals": 2, "geolocation_enabled": False,
                         "taxonomies": {"external": "external", "grouped": "grouped", "simple": "simple",
                                        "variable": "variable"}},
            "security": {"secure_connection": store.home_url.startswith("https://"), "hide_errors": True},
            "pages": [],
            "post_type_counts": [{"type": "product", "count": str(sum(1 for p in store.products.values()
                                                                     if p["kind"] == "product"))}],
        }
        return 200, report, {}


def parse_body(raw, content_type):
    if not raw:
        return {}
    if "json" in (content_type or ""):
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise RestError(400, "rest_invalid_json", "Invalid JSON body passed.",
                            json_error_code=4, json_error_message=str(exc))
    if "x-www-form-urlencoded" in (content_type or ""):
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    return {}


# --------------------------------------------------------------------------------------------
# The Flask app
# --------------------------------------------------------------------------------------------
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def create_app(config=None):
    config = dict(config or {})
    app = Flask(__name__)

    def reset_sandbox():
        """Forget all state: a fresh store built from the same config."""
        app.sandbox = WooStore(config)
        app.rest = RestServer(app.sandbox)
        return app.sandbox

    app.reset_sandbox = reset_sandbox
    reset_sandbox()

    def store():
        return app.sandbox

    @app.before_request
    def follow_host():
        # The store's home URL is the address the client used, so links and the webhook source match it.
        if not request.path.startswith("/_sandbox/") and "home_url" not in config:
            store().home_url = request.host_url.rstrip("/")

    @app.route("/", defaults={"path": ""}, methods=ALL_METHODS)
    @app.route("/<path:path>", methods=ALL_METHODS)
    def front(path):
        path = "/" + path
        rest_route = request.args.get("rest_route")
        if path.startswith("/wp-json"):
            if store().settings["permalinks"] == "plain":
                return html_page(404)
            return serve_rest(path[len("/wp-json"):] or "/")
        if rest_route is not None and path in ("/", "/index.php"):
            return serve_rest(rest_route or "/")
        if path == "/":
            return html_page(200)
        return html_page(404)

    def html_page(status):
        body = PAGE_NOT_FOUND_HTML if status == 404 else (
            f"<!DOCTYPE html><html><head><title>{store().settings['site_name']}</title></head>"
            "<body><h1>Welcome to the sandbox winery</h1></body></html>")
        response = Response(body, status=status, content_type="text/html; charset=UTF-8")
        response.headers["Link"] = f'<{rest_url(store(), "/")}>; rel="https://api.w.org/"'
        return response

    def serve_rest(route):
        latency = store().settings["latency_ms"]
        if latency:
            time.sleep(latency / 1000)
        query = {k: v for k, v in read_query(request.args).items() if k != "rest_route"}
        method = request.method
        if method == "POST" and request.headers.get("X-HTTP-Method-Override"):
            method = request.headers["X-HTTP-Method-Override"].upper()
        status, payload, headers = app.rest.handle(method, route, query, request.get_data(), request.content_type,
                                                   request.authorization, is_ssl=request.scheme == "https")
        response = Response(json.dumps(payload), status=status, content_type="application/json; charset=UTF-8")
        response.headers["X-Robots-Tag"] = "noindex"
        response.headers["X-Content-Type-Options"] = "nosniff"
        for name, value in headers.items():
            response.headers[name] = value
        return response

    register_control_routes(app)
    return app


def register_control_routes(app):
    prefix = "/_sandbox/woocommerce"

    def body():
        return request.get_json(silent=True) or {}

    @app.get(f"{prefix}/state")
    def sandbox_state():
        return jsonify(app.sandbox.summary())

    @app.post(f"{prefix}/settings")
    def sandbox_settings():
        try:
            return jsonify(app.sandbox.configure(**body()))
        except (TypeError, ValueError) as exc:
            return jsonify({"error": str(exc)}), 400

    @app.post(f"{prefix}/reset")
    def sandbox_reset():
        return jsonify(app.reset_sandbox().summary())

    @app.post(f"{prefix}/keys")
    def sandbox_add_key():
        data = body()
        try:
            key = app.sandbox.add_key(data.get("consumer_key"), data.get("consumer_secret"),
                                      data.get("permissions", "read_write"), data.get("user_role", "administrator"))
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify(key.as_dict()), 201

    @app.post(f"{prefix}/keys/<consumer_key>/revoke")
    def sandbox_revoke_key(consumer_key):
        try:
            app.sandbox.revoke_key(consumer_key)
        except KeyError:
            return jsonify({"error": "no such key"}), 404
        return jsonify({"revoked": consumer_key})

    @app.post(f"{prefix}/seed")
    def sandbox_seed():
        data = body()
        return jsonify(app.sandbox.seed_products(int(data.get("products", 100)), float(data.get("variable_share", 0.2)),
                                                 int(data.get("variations_per_product", 4)),
                                                 int(data.get("draft_every", 0)))), 201

    @app.post(f"{prefix}/orders")
    def sandbox_place_order():
        data = body()
        try:
            order = app.sandbox.place_paid_order(data.get("line_items") or [], data.get("billing"))
        except RestError as error:
            return jsonify(error.body()), error.status
        return jsonify(order), 201

    @app.get(f"{prefix}/stock")
    def sandbox_stock():
        skus = [s for s in request.args.get("sku", "").split(",") if s]
        return jsonify(app.sandbox.stock_levels(skus or None))

    @app.get(f"{prefix}/orders/<int:order_id>/notes")
    def sandbox_notes(order_id):
        try:
            return jsonify(app.sandbox.order_notes(order_id))
        except KeyError:
            return jsonify({"error": "no such order"}), 404

    @app.get(f"{prefix}/webhooks")
    def sandbox_webhooks():
        return jsonify(app.sandbox.webhook_list())

    @app.post(f"{prefix}/webhooks/deliver")
    def sandbox_deliver():
        return jsonify([d for d in app.sandbox.deliver_pending() if d])

    @app.get(f"{prefix}/deliveries")
    def sandbox_deliveries():
        with app.sandbox.lock:
            return jsonify(list(app.sandbox.deliveries))

    @app.post(f"{prefix}/deliveries/<delivery_id>/redeliver")
    def sandbox_redeliver(delivery_id):
        try:
            return jsonify(app.sandbox.redeliver(delivery_id))
        except StopIteration:
            return jsonify({"error": "no such delivery"}), 404

    @app.post(f"{prefix}/clock/advance")
    def sandbox_advance_clock():
        app.sandbox.advance_clock(float(body().get("seconds", 0)))
        return jsonify({"now": wc_date(app.sandbox.now())})

    @app.get(f"{prefix}/emails")
    def sandbox_emails():
        with app.sandbox.lock:
            return jsonify(list(app.sandbox.emails))
