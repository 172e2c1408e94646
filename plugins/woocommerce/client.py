"""The one module that talks to a WooCommerce store's REST API (wc/v3), over `RemoteHttp`.

Why not the PyPI ``woocommerce`` package: its last release is 3.0.0 (2021-03) and it is a thin
wrapper with no pagination helper, no retry or backoff, no 429 handling and no typed errors; its
default timeout is 5 s (too short for real Woo hosts) and its default user agent
``WooCommerce-Python-REST-API/3.0.0`` is blocked by some hosts' firewalls (wc-api-python#56, #67).
Since this integration requires HTTPS, Basic auth (or query-string keys) over `RemoteHttp` is all
the package would give us, and `RemoteHttp` already adds timeouts, the SSRF guard, typed errors
and redacted activity-log records.

Operations (all on `WooClient`)
-------------------------------
* ``store_info()`` -> `StoreInfo`: WP index (``permalink_structure``), wc/v3 namespace,
  ``system_status`` (WooCommerce/WordPress versions, currency); refuses WooCommerce < 6.
* ``check_connection()`` -> `ConnectionCheck`: store info, product count and a write-permission
  probe that changes nothing (an empty ``POST products/batch``).
* ``system_status(fields)`` -> dict.
* ``iter_products(**filters)``, ``iter_variations(product_id, **filters)``,
  ``iter_all_variations(**filters)`` -> raw dicts, paginated with per_page=100 and a stable order.
* ``iter_catalog(modified_after=None)`` -> `CatalogItem` for every product and variation,
  drafts included and marked (``is_draft``) although the parent's ``variations`` array omits them.
* ``find_by_sku(sku)``, ``get_product``, ``create_product``, ``update_product``, ``get_variation``,
  ``update_variation``.
* ``batch_update(updates)`` -> [`ItemResult`]: stock and price updates, 100 items a call,
  variations batched per parent, per-item errors returned (not raised).
* ``iter_orders(modified_after=None, statuses=None)``, ``get_order``, ``create_order``,
  ``update_order``, ``add_order_note`` (customer-visible or private), ``list_order_notes``.
* ``find_customer_by_email``, ``find_or_create_customer`` -> (dict, created).
* ``list_webhooks(status)``, ``get_webhook``, ``create_webhook``, ``set_webhook_status`` -> `Webhook`.
* Module functions ``verify_webhook_signature(raw_body, signature, secret)`` (constant time) and
  ``webhook_ping_id(raw_body)``.

Errors: every failure is a `RemoteError` subclass with ``code`` (one of `PROBLEMS`), ``message``
(what happened and the fix, for a winery admin), ``woo_code`` / ``woo_message`` (WooCommerce's own
words) and ``transient``. 429 and 503 are retried honouring ``Retry-After``; timeouts, resets and
other 5xx are retried with backoff for idempotent calls only (reads, updates, batch updates), never
for creates, which might have happened.
"""

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit

from wms.integrations.errors import (
    PermanentRemoteError,
    RemoteAuthError,
    RemoteRateLimited,
    RemoteRejected,
    RemoteTimeout,
    RemoteUnavailable,
)
from wms.integrations.http import RemoteHttp

PLUGIN = "woocommerce"
MIN_WC_VERSION = (6, 0)
ALL_VARIATIONS_ROUTE = "/wc/v3/variations"  # WooCommerce 10.3+
PAGE_SIZE = 100
BATCH_LIMIT = 100
DRAFT_STATUSES = ("draft", "pending")
KEYS_PAGE = "WooCommerce → Settings → Advanced → REST API"

# code -> (what happened, the fix). Messages are for the winery admin who reads them.
PROBLEMS = {
    "https_required": (
        "The store address must start with https://.",
        "WooCommerce only accepts API keys over HTTPS, and sending them over plain HTTP would expose them. "
        "Enter the https:// address of the store (install a TLS certificate first if it has none)."),
    "key_rejected": (
        "WooCommerce did not accept the API key: it was revoked or deleted, or it was mistyped.",
        f"Create a new key with Read/Write permission under {KEYS_PAGE} and enter its consumer key and "
        "secret here. If the key is right, the host may strip the Authorization header: turn on "
        "\"send keys in the query string\"."),
    "secret_invalid": (
        "WooCommerce knows the consumer key, but the consumer secret does not match it.",
        f"Copy the consumer secret (it starts with cs_) again, or create a new key under {KEYS_PAGE}."),
    "read_only_key": (
        "The API key is read-only, so stock, prices and orders cannot be written.",
        f"Edit the key under {KEYS_PAGE} and set Permissions to Read/Write (or create a new Read/Write key)."),
    "write_only_key": (
        "The API key can write but not read.",
        f"Edit the key under {KEYS_PAGE} and set Permissions to Read/Write."),
    "user_lacks_capability": (
        "The API key belongs to a WordPress user who is not allowed to manage the shop.",
        "Create the key for a user with the Administrator or Shop manager role."),
    "plain_permalinks": (
        "The store answered a REST API request with a web page instead of JSON: WordPress permalinks are "
        "set to Plain, so /wp-json/ is not routed.",
        "In WordPress go to Settings → Permalinks, choose any structure other than Plain (e.g. Post name) "
        "and save. If permalinks are not Plain, a security plugin or the host is blocking /wp-json/."),
    "woocommerce_missing": (
        "WordPress answered, but the WooCommerce REST API (wc/v3) is not there.",
        "Install and activate WooCommerce 6.0 or newer on the store."),
    "woocommerce_too_old": (
        "The store runs a WooCommerce version older than 6.0, which this integration does not support.",
        "Update WooCommerce (Dashboard → Updates) to 6.0 or newer."),
    "blocked": (
        "The store's firewall or a security plugin refused the request with a web page.",
        "Allow requests to /wp-json/wc/ from this server (and its user agent) in the firewall or plugin."),
    "unexpected_answer": (
        "The store sent an answer that is not WooCommerce's JSON.",
        "Check the store address; it must be the WordPress site itself, not a page builder or proxy page."),
    "tls_error": (
        "The store's HTTPS certificate could not be verified.",
        "Install a valid certificate on the store (e.g. Let's Encrypt) with its full chain; self-signed or "
        "expired certificates are not accepted."),
    "timeout": (
        "The store did not answer in time.",
        "Check that the store is up. If it is just slow, ask the host about PHP limits; the sync will "
        "retry later."),
    "unreachable": (
        "The store could not be reached.",
        "Check the store address and that the site is online; the sync will retry later."),
    "rate_limited": (
        "The store (or its host) is limiting how fast it may be called.",
        "Nothing to change here: the sync slows down and retries later."),
    "server_error": (
        "The store had an internal error.",
        "Check WooCommerce → Status → Logs on the store; the sync will retry later."),
    "not_found": (
        "WooCommerce has no such record (it may have been deleted in the store).",
        "Re-link the item, or sync the catalogue again."),
    "duplicate_sku": (
        "Another product or variation in WooCommerce already uses this SKU.",
        "Link the existing WooCommerce product instead of creating a new one, or change the SKU."),
    "rejected": (
        "WooCommerce refused the data.",
        "Correct the value WooCommerce names below and try again."),
}


class WooProblem:
    """Mixin: a RemoteError whose ``code`` is one of PROBLEMS and whose message says the fix."""

    def __init__(self, code, *, detail=None, woo_code=None, woo_message=None, data=None, **kw):
        summary, fix = PROBLEMS[code]
        text = f"{summary} Fix: {fix}"
        if woo_code or woo_message:
            text += f" (WooCommerce said: {woo_code or ''}{': ' if woo_code and woo_message else ''}"
            text += f"{woo_message or ''})"
        if detail:
            text += f" [{detail}]"
        super().__init__(text, code=code, **kw)
        self.summary = summary
        self.fix = fix
        self.woo_code = woo_code
        self.woo_message = woo_message
        self.data = data or {}


class WooAuthError(WooProblem, RemoteAuthError):
    pass


class WooSetupError(WooProblem, PermanentRemoteError):
    pass


class WooRejected(WooProblem, RemoteRejected):
    @property
    def resource_id(self):
        """For duplicate_sku: the id of the product or variation that already has the SKU."""
        return self.data.get("resource_id")


class WooTimeout(WooProblem, RemoteTimeout):
    pass


class WooUnavailable(WooProblem, RemoteUnavailable):
    pass


class WooRateLimited(WooProblem, RemoteRateLimited):
    pass


@dataclass
class StoreInfo:
    wc_version: str
    wp_version: str
    currency: str
    home_url: str
    permalink_structure: str | None
    secure_connection: bool | None
    has_all_variations_route: bool


@dataclass
class ConnectionCheck:
    store: StoreInfo
    product_count: int
    can_write: bool


@dataclass
class CatalogItem:
    id: int
    parent_id: int
    kind: str  # "product" or "variation"
    type: str  # simple, variable, grouped, external, variation...
    sku: str
    name: str
    status: str
    is_draft: bool  # draft or pending: not sold, and missing from the parent's `variations` array
    manage_stock: bool | str  # True, False, or "parent" (the parent product holds the stock)
    stock_quantity: int | None
    stock_status: str
    price: str
    regular_price: str
    sale_price: str
    date_modified_gmt: str | None
    raw: dict = field(repr=False, default_factory=dict)


@dataclass
class StockPriceUpdate:
    """One batch item. ``parent_id`` is set for variations. Money as str or Decimal."""

    id: int
    parent_id: int = 0
    stock_quantity: int | None = None
    manage_stock: bool | None = None
    regular_price: str | Decimal | None = None
    sale_price: str | Decimal | None = None
    inventory_delta: int | None = None  # added to Woo's current stock (when stock_quantity is None)


@dataclass
class ItemResult:
    id: int
    parent_id: int
    ok: bool
    error_code: str | None = None
    error_message: str | None = None
    item: dict | None = field(repr=False, default=None)


@dataclass
class Webhook:
    id: int
    name: str
    topic: str
    status: str  # active, paused, or disabled (WooCommerce disables it after repeated failed deliveries)
    delivery_url: str

    @property
    def is_active(self):
        return self.status == "active"

    @property
    def disabled_by_failures(self):
        return self.status == "disabled"


def verify_webhook_signature(raw_body, signature, secret):
    """True when ``X-WC-Webhook-Signature`` is base64(HMAC-SHA256(raw body, secret)). Constant time."""
    if not signature or not secret or raw_body is None:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest())
    given = signature.strip().encode() if isinstance(signature, str) else signature.strip()
    return hmac.compare_digest(expected, given)


def webhook_ping_id(raw_body):
    """The webhook id of WooCommerce's unsigned creation ping (form body ``webhook_id=N``), else None."""
    try:
        values = parse_qs(raw_body.decode("ascii"), strict_parsing=True)
    except (UnicodeDecodeError, ValueError, AttributeError):
        return None
    if set(values) != {"webhook_id"} or not values["webhook_id"][0].isdigit():
        return None
    return int(values["webhook_id"][0])


def version_tuple(text):
    return tuple(int(p) for p in re.findall(r"\d+", text or "")[:3]) or (0,)


def gmt_text(moment):
    """A datetime (naive = UTC) or ISO text as WooCommerce's GMT filter format."""
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def money_text(value):
    if value is None:
        return None
    if isinstance(value, float):
        raise TypeError("pass money as str or Decimal, not float")
    return str(Decimal(str(value)).quantize(Decimal("0.01")))


class WooClient:
    """A WooCommerce store. ``store_url`` is the WordPress site address (https only)."""

    def __init__(self, store_url, consumer_key, consumer_secret, *, verify=True, timeout=(5, 30),
                 query_string_auth=False, recorder=None, store_id=None, allow_private=None,
                 max_attempts=4, max_wait=60.0, sleep=time.sleep):
        parts = urlsplit((store_url or "").strip())
        if parts.scheme != "https" or not parts.hostname:
            raise WooSetupError("https_required", detail=f"got {store_url!r}")
        self.store_url = store_url.strip().rstrip("/")
        self.query_string_auth = query_string_auth
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self.sleep = sleep
        self._credentials = {"consumer_key": consumer_key, "consumer_secret": consumer_secret}
        self.http = RemoteHttp(
            self.store_url + "/wp-json/", plugin=PLUGIN, store_id=store_id,
            auth=None if query_string_auth else (consumer_key, consumer_secret),
            headers={"Accept": "application/json"}, timeout=timeout, verify=verify,
            secrets=(consumer_key, consumer_secret), recorder=recorder, allow_private=allow_private,
            raise_for_status=False)
        self._has_all_variations = None

    # -- transport --------------------------------------------------------------------------
    def _request(self, method, path, *, params=None, json=None, idempotent=None, auth=True):
        """One API call with retries; returns (decoded JSON, response)."""
        idempotent = method in ("GET", "PUT") if idempotent is None else idempotent
        params = dict(params or {})
        if auth and self.query_string_auth:
            params.update(self._credentials)
        for attempt in range(1, self.max_attempts + 1):
            last = attempt == self.max_attempts
            try:
                response = self.http.request(method, path, params=params or None, json=json)
            except RemoteTimeout as exc:
                if last or not idempotent:
                    raise WooTimeout("timeout", detail=f"{method} {path}, attempt {attempt}") from exc
                self.sleep(self._backoff(attempt))
                continue
            except RemoteUnavailable as exc:
                if exc.code == "tls_error":
                    raise WooSetupError("tls_error", detail=exc.message) from exc
                if last or not idempotent:
                    raise WooUnavailable("unreachable", detail=exc.message) from exc
                self.sleep(self._backoff(attempt))
                continue
            status = response.status_code
            busy = status in (429, 503)
            if busy or status >= 500:
                if last or not (busy or idempotent):
                    raise self._error(response)
                self.sleep(self._wait_for(response, attempt))
                continue
            if status >= 400:
                raise self._error(response)
            return self._decode(response), response
        raise AssertionError("unreachable")

    def _backoff(self, attempt):
        return min(self.max_wait, 2 ** (attempt - 1))

    def _wait_for(self, response, attempt):
        """Retry-After in seconds or as an HTTP date; backoff when absent."""
        header = response.headers.get("Retry-After")
        if header:
            try:
                return min(self.max_wait, max(0.0, float(header)))
            except ValueError:
                try:
                    when = parsedate_to_datetime(header)
                    return min(self.max_wait, max(0.0, (when - datetime.now(timezone.utc)).total_seconds()))
                except (TypeError, ValueError):
                    pass
        return self._backoff(attempt)

    def _decode(self, response):
        try:
            return response.json()
        except ValueError:
            raise self._not_json(response) from None

    def _not_json(self, response):
        body = response.text[:2000]
        looks_html = "html" in response.headers.get("Content-Type", "") or body.lstrip().startswith("<")
        status = response.status_code
        if looks_html and status == 404:
            return WooSetupError("plain_permalinks", status=status, body=body)
        if looks_html and status in (401, 403, 406, 429):
            return WooSetupError("blocked", status=status, body=body, detail=f"HTTP {status}")
        return WooSetupError("unexpected_answer", status=status, body=body, detail=f"HTTP {status}")

    def _error(self, response):
        status = response.status_code
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or "code" not in payload:
            if status == 429:
                return WooRateLimited("rate_limited", status=status, body=response.text[:2000],
                                      retry_after=self._wait_for(response, 1))
            if status >= 500:
                return WooUnavailable("server_error", status=status, body=response.text[:2000],
                                      detail=f"HTTP {status}")
            return self._not_json(response)
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        return self._classify(status, woo_code=payload.get("code"), woo_message=payload.get("message"),
                              data=data, body=response.text[:2000])

    @staticmethod
    def _classify(status, *, woo_code, woo_message, data, body):
        text = woo_message or ""
        woo = {"woo_code": woo_code, "woo_message": woo_message, "data": data, "status": status, "body": body}
        if status == 401:
            if "write permission" in text:
                return WooAuthError("read_only_key", **woo)
            if "read permission" in text:
                return WooAuthError("write_only_key", **woo)
            if "secret is invalid" in text:
                return WooAuthError("secret_invalid", **woo)
            return WooAuthError("key_rejected", **woo)
        if status == 403:
            return WooAuthError("user_lacks_capability", **woo)
        if status == 429:
            return WooRateLimited("rate_limited", **woo)
        if status >= 500:
            return WooUnavailable("server_error", **woo)
        if woo_code == "rest_no_route":
            return WooSetupError("woocommerce_missing", **woo)
        if woo_code == "product_invalid_sku":
            return WooRejected("duplicate_sku", **woo)
        if status == 404 or (woo_code or "").endswith("invalid_id"):
            return WooRejected("not_found", **woo)
        return WooRejected("rejected", **woo)

    def _get(self, path, params=None):
        return self._request("GET", path, params=params)[0]

    def _paginate(self, path, params=None):
        """Every item of a collection, page by page (per_page=100), bounded by X-WP-TotalPages."""
        params = {"per_page": PAGE_SIZE, **(params or {})}
        page = 1
        while True:
            items, response = self._request("GET", path, params={**params, "page": page})
            if not isinstance(items, list):
                raise WooSetupError("unexpected_answer", detail=f"{path} did not answer a list")
            yield from items
            total_pages = response.headers.get("X-WP-TotalPages")
            if total_pages is not None and total_pages.isdigit():
                if page >= int(total_pages):
                    return
            elif len(items) < params["per_page"]:
                return
            if not items:
                return
            page += 1

    # -- store ------------------------------------------------------------------------------
    def system_status(self, fields=("environment", "settings", "security")):
        params = {"_fields": ",".join(fields)} if fields else None
        return self._get("wc/v3/system_status", params)

    def store_info(self):
        """Versions and settings, after checking WordPress routes REST and WooCommerce is there."""
        wp_index = self._request("GET", "", auth=False)[0]
        if "wc/v3" not in (wp_index.get("namespaces") or []):
            raise WooSetupError("woocommerce_missing", detail="the wc/v3 namespace is not registered")
        namespace = self._get("wc/v3")
        self._has_all_variations = ALL_VARIATIONS_ROUTE in (namespace.get("routes") or {})
        status = self.system_status()
        environment, settings = status.get("environment", {}), status.get("settings", {})
        version = environment.get("version", "")
        if version_tuple(version) < MIN_WC_VERSION:
            raise WooSetupError("woocommerce_too_old", detail=f"the store runs WooCommerce {version or 'unknown'}")
        return StoreInfo(wc_version=version, wp_version=environment.get("wp_version", ""),
                         currency=settings.get("currency", ""),
                         home_url=environment.get("home_url") or wp_index.get("home", ""),
                         permalink_structure=wp_index.get("permalink_structure"),
                         secure_connection=status.get("security", {}).get("secure_connection"),
                         has_all_variations_route=self._has_all_variations)

    def check_write_permission(self):
        """An empty products batch: a read-only key is refused before anything runs; nothing changes."""
        self._request("POST", "wc/v3/products/batch", json={}, idempotent=True)
        return True

    def check_connection(self):
        info = self.store_info()
        _, response = self._request("GET", "wc/v3/products", params={"per_page": 1, "_fields": "id"})
        count = int(response.headers.get("X-WP-Total", "0") or 0)
        return ConnectionCheck(store=info, product_count=count, can_write=self.check_write_permission())

    # -- catalogue --------------------------------------------------------------------------
    def iter_products(self, *, status="any", modified_after=None, fields=None, **filters):
        params = {"orderby": "id", "order": "asc", "status": status, **filters}
        if modified_after is not None:
            params.update(modified_after=gmt_text(modified_after), dates_are_gmt="true")
        if fields:
            params["_fields"] = ",".join(fields)
        return self._paginate("wc/v3/products", params)

    def products_page(self, page, *, status="any"):
        """One page of the full product listing in id order, and the number of pages (for parallel reads)."""
        params = {"orderby": "id", "order": "asc", "status": status, "per_page": PAGE_SIZE, "page": int(page)}
        items, response = self._request("GET", "wc/v3/products", params=params)
        if not isinstance(items, list):
            raise WooSetupError("unexpected_answer", detail="wc/v3/products did not answer a list")
        pages = response.headers.get("X-WP-TotalPages")
        return items, int(pages) if pages and pages.isdigit() else page

    def iter_variations(self, product_id, *, status="any", modified_after=None, **filters):
        params = {"orderby": "id", "order": "asc", "status": status, **filters}
        if modified_after is not None:
            params.update(modified_after=gmt_text(modified_after), dates_are_gmt="true")
        for variation in self._paginate(f"wc/v3/products/{int(product_id)}/variations", params):
            variation.setdefault("parent_id", int(product_id))
            yield variation

    def iter_variation_list(self, product_id):
        """Every variation of one product, drafts included, as a list."""
        return list(self.iter_variations(product_id))

    def has_all_variations_route(self):
        if self._has_all_variations is None:
            namespace = self._get("wc/v3")
            self._has_all_variations = ALL_VARIATIONS_ROUTE in (namespace.get("routes") or {})
        return self._has_all_variations

    def iter_all_variations(self, *, modified_after=None):
        """Every variation of every product, drafts included: one listing on WooCommerce 10.3+,
        else per variable product (never the parent's `variations` array, which omits drafts)."""
        if self.has_all_variations_route():
            params = {"orderby": "id", "order": "asc", "status": "any"}
            if modified_after is not None:
                params.update(modified_after=gmt_text(modified_after), dates_are_gmt="true")
            yield from self._paginate("wc/v3/variations", params)
            return
        parents = [p["id"] for p in self.iter_products(type="variable", fields=("id",))]
        for parent_id in parents:
            yield from self.iter_variations(parent_id, modified_after=modified_after)

    def iter_catalog(self, modified_after=None):
        """Products then variations as `CatalogItem`s."""
        for product in self.iter_products(modified_after=modified_after):
            yield catalog_item(product, "product")
        for variation in self.iter_all_variations(modified_after=modified_after):
            yield catalog_item(variation, "variation")

    def find_by_sku(self, sku):
        """Products and variations with exactly this SKU (Woo searches both when `sku` is given)."""
        return list(self._paginate("wc/v3/products", {"sku": sku, "status": "any"}))

    def get_product(self, product_id):
        return self._get(f"wc/v3/products/{int(product_id)}")

    def create_product(self, fields):
        """Raises WooRejected code duplicate_sku (``resource_id`` = the owner) for a used SKU."""
        return self._request("POST", "wc/v3/products", json=fields, idempotent=False)[0]

    def update_product(self, product_id, fields):
        return self._request("PUT", f"wc/v3/products/{int(product_id)}", json=fields)[0]

    def get_variation(self, product_id, variation_id):
        return self._get(f"wc/v3/products/{int(product_id)}/variations/{int(variation_id)}")

    def update_variation(self, product_id, variation_id, fields):
        return self._request("PUT", f"wc/v3/products/{int(product_id)}/variations/{int(variation_id)}",
                             json=fields)[0]

    def batch_update(self, updates, *, idempotent=True):
        """Stock/price updates; products via products/batch, variations via their parent's batch.

        Returns one `ItemResult` per update, in order. Item errors do not raise; call errors do.
        Pass ``idempotent=False`` for ``inventory_delta`` updates: a retry could apply them twice.
        """
        updates = list(updates)
        groups = {}
        for position, update in enumerate(updates):
            groups.setdefault(int(update.parent_id or 0), []).append((position, update))
        results = [None] * len(updates)
        for parent_id, members in groups.items():
            path = f"wc/v3/products/{parent_id}/variations/batch" if parent_id else "wc/v3/products/batch"
            for start in range(0, len(members), BATCH_LIMIT):
                chunk = members[start:start + BATCH_LIMIT]
                answer = self._request("POST", path, json={"update": [batch_item(u) for _, u in chunk]},
                                       idempotent=idempotent)[0]
                answered = answer.get("update", []) if isinstance(answer, dict) else []
                for (position, update), item in zip(chunk, answered):
                    results[position] = item_result(update, item)
                for position, update in chunk[len(answered):]:
                    results[position] = ItemResult(update.id, parent_id, False, "missing_answer",
                                                   "WooCommerce did not answer for this item.")
        return results

    # -- orders -----------------------------------------------------------------------------
    def iter_orders(self, modified_after=None, statuses=None):
        """Orders oldest id first; ``modified_after`` (datetime, UTC when naive) is exclusive."""
        params = {"orderby": "id", "order": "asc"}
        if modified_after is not None:
            params.update(modified_after=gmt_text(modified_after), dates_are_gmt="true")
        if statuses:
            params["status"] = ",".join(statuses)
        return self._paginate("wc/v3/orders", params)

    def get_order(self, order_id):
        return self._get(f"wc/v3/orders/{int(order_id)}")

    def create_order(self, order):
        """POST /orders. Not retried after a timeout (it may have been created): look it up by meta."""
        return self._request("POST", "wc/v3/orders", json=order, idempotent=False)[0]

    def update_order(self, order_id, fields):
        return self._request("PUT", f"wc/v3/orders/{int(order_id)}", json=fields)[0]

    def add_order_note(self, order_id, note, *, customer_note=False):
        """A private note, or with customer_note=True one the customer sees (and is emailed)."""
        return self._request("POST", f"wc/v3/orders/{int(order_id)}/notes",
                             json={"note": note, "customer_note": bool(customer_note)}, idempotent=False)[0]

    def list_order_notes(self, order_id, kind="any"):
        return self._get(f"wc/v3/orders/{int(order_id)}/notes", {"type": kind})

    # -- customers --------------------------------------------------------------------------
    def find_customer_by_email(self, email):
        found = self._get("wc/v3/customers", {"email": email.strip(), "role": "all"})
        return found[0] if found else None

    def find_or_create_customer(self, email, *, first_name="", last_name="", billing=None, shipping=None):
        """(customer, created). A customer created meanwhile by someone else is looked up again."""
        existing = self.find_customer_by_email(email)
        if existing:
            return existing, False
        body = {"email": email.strip(), "first_name": first_name, "last_name": last_name}
        if billing:
            body["billing"] = billing
        if shipping:
            body["shipping"] = shipping
        try:
            return self._request("POST", "wc/v3/customers", json=body, idempotent=False)[0], True
        except WooRejected as exc:
            if exc.woo_code != "registration-error-email-exists":
                raise
        existing = self.find_customer_by_email(email)
        if existing is None:
            raise WooRejected("rejected", woo_code="registration-error-email-exists",
                              woo_message="the email belongs to a WordPress user this key cannot list")
        return existing, False

    # -- webhooks ---------------------------------------------------------------------------
    def list_webhooks(self, status="all"):
        return [webhook_from(w) for w in self._paginate("wc/v3/webhooks", {"status": status})]

    def get_webhook(self, webhook_id):
        return webhook_from(self._get(f"wc/v3/webhooks/{int(webhook_id)}"))

    def create_webhook(self, topic, delivery_url, secret, *, name=None, status="active"):
        body = {"topic": topic, "delivery_url": delivery_url, "secret": secret, "status": status}
        if name:
            body["name"] = name
        return webhook_from(self._request("POST", "wc/v3/webhooks", json=body, idempotent=False)[0])

    def set_webhook_status(self, webhook_id, status):
        """E.g. re-activate a webhook WooCommerce disabled after failed deliveries."""
        return webhook_from(self.update_webhook(webhook_id, {"status": status}))

    def update_webhook(self, webhook_id, fields):
        return self._request("PUT", f"wc/v3/webhooks/{int(webhook_id)}", json=fields)[0]


def catalog_item(raw, kind):
    status = raw.get("status", "")
    return CatalogItem(
        id=raw["id"], parent_id=raw.get("parent_id") or 0, kind=kind,
        type="variation" if kind == "variation" else raw.get("type", ""), sku=raw.get("sku") or "",
        name=raw.get("name") or "", status=status, is_draft=status in DRAFT_STATUSES,
        manage_stock=raw.get("manage_stock"), stock_quantity=raw.get("stock_quantity"),
        stock_status=raw.get("stock_status", ""), price=raw.get("price") or "",
        regular_price=raw.get("regular_price") or "", sale_price=raw.get("sale_price") or "",
        date_modified_gmt=raw.get("date_modified_gmt"), raw=raw)


def batch_item(update):
    item = {"id": int(update.id)}
    if update.stock_quantity is not None:
        item["stock_quantity"] = int(update.stock_quantity)
        item["manage_stock"] = True if update.manage_stock is None else bool(update.manage_stock)
    elif update.inventory_delta is not None:
        item["inventory_delta"] = int(update.inventory_delta)
        item["manage_stock"] = True
    elif update.manage_stock is not None:
        item["manage_stock"] = bool(update.manage_stock)
    if update.regular_price is not None:
        item["regular_price"] = money_text(update.regular_price)
    if update.sale_price is not None:
        item["sale_price"] = "" if update.sale_price == "" else money_text(update.sale_price)
    return item


def item_result(update, item):
    error = item.get("error") if isinstance(item, dict) else None
    if error:
        return ItemResult(update.id, update.parent_id or 0, False, error.get("code"), error.get("message"), item)
    return ItemResult(update.id, update.parent_id or 0, True, item=item)


def webhook_from(raw):
    return Webhook(id=raw["id"], name=raw.get("name", ""), topic=raw.get("topic", ""),
                   status=raw.get("status", ""), delivery_url=raw.get("delivery_url", ""))

