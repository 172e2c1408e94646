"""The Shopify Admin API client of the WMS (GraphQL only, API version 2026-10).

Everything the plugin sends to Shopify goes through `ShopifyClient`, built on `RemoteHttp`.
Base URL: `https://{shop}` in production; against the sandbox `{sandbox_url}/shops/{shop}`.

Module functions (no network)
    valid_shop_domain(shop) -> bool                Shopify's rule ^[a-zA-Z0-9][a-zA-Z0-9-]*\\.myshopify\\.com$
    authorize_url(shop, client_id, scopes, redirect_uri, state, online=False, base_url=None) -> str
    verify_callback(query, client_secret, expected_state=None, max_age=90, now=None) -> shop
                                                   hmac (constant time), timestamp, state, shop; raises
                                                   OAuthCallbackRejected
    verify_webhook(raw_body, hmac_header, client_secret) -> bool   base64 HMAC-SHA256 of the raw body

ShopifyClient(shop, access_token=None, *, client_id=None, client_secret=None, refresh_token=None,
              base_url=None, api_version="2026-10", on_tokens=None, ...)
    exchange_code(code, expiring=True) -> TokenSet          OAuth code -> (expiring offline) token
    refresh_access_token() -> TokenSet                      rotate with the refresh token
    graphql(query, variables=None, retry_safe=None) -> data paces by throttleStatus; waits out THROTTLED
    shop_info() -> dict
    list_locations(include_inactive=True) -> [dict]
    subscribe_webhooks({topic: uri}) -> [dict]              idempotent: lists existing subscriptions first
    iter_products(query=None) / iter_variants(query=None) -> iterator of dicts (cursor pagination)
    bulk_variants(poll_interval=2.0, timeout=3600) -> [dict]   bulk operation + JSONL, for large catalogs
    set_quantities(rows, name="available", reason="correction", reference_document_uri=None,
                   idempotency_key=None) -> [change]       inventorySetQuantities, 250 rows a call
    adjust_quantities(rows, name="available", reason="correction", ...) -> [change]
    inventory_levels(inventory_item_ids, location_ids=None, names=...) -> [dict]
    orders_updated_since(since) -> iterator of order dicts (sorted by updated_at)
    fulfillment_orders(order_id) -> [dict]
    create_fulfillment(fulfillment_orders, carrier=None, tracking_number=None, tracking_url=None,
                       notify_customer=False) -> dict
    returns_of_order(order_id) -> [dict];  approve_return(id) -> dict;  close_return(id) -> dict
    add_tags(resource_id, tags) -> [str]                    tagsAdd on an Order or a Product
    remove_tags(resource_id, tags) -> [str]                 tagsRemove on an Order or a Product
    close_order(order_id) -> dict                           orderClose
    start_bulk_variants() -> operation id;  bulk_operation(id) / current_bulk_operation() -> dict | None
    iter_bulk_variants(url) -> iterator of variant dicts    streams a finished export's JSONL

Errors: `RemoteAuthError` (token refused, missing scope: ACCESS_DENIED), `RemoteRejected` (userErrors,
invalid documents; `.code` is Shopify's code, `.user_errors` the list), `StaleQuantity` (subclass of
RemoteRejected: a changeFromQuantity no longer matched; `.items` are the stale rows), and the transient
errors of `wms.integrations.errors` once retries are spent.
"""

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlencode

from wms.integrations.errors import (
    RemoteAuthError,
    RemoteRateLimited,
    RemoteRejected,
    TransientRemoteError,
)
from wms.integrations.http import RemoteHttp

API_VERSION = "2026-10"
SHOP_DOMAIN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com$")
MAX_ROWS_PER_CALL = 250  # input arrays are capped at 250 items (shopify.dev/docs/api/usage/limits)
TARGET_QUERY_COST = 900  # stay under the 1,000-point single query limit
DEFAULT_NAMES = ("available", "on_hand", "committed")


# -- errors ----------------------------------------------------------------------------------------------
class ShopifyRejected(RemoteRejected):
    """Shopify refused a mutation with userErrors (``code`` is the first error's code)."""

    def __init__(self, message, *, user_errors=(), **kw):
        super().__init__(message, **kw)
        self.user_errors = list(user_errors)


class StaleQuantity(ShopifyRejected):
    """A changeFromQuantity no longer matched Shopify's quantity: re-read the level, then retry.

    ``items`` are the stale rows ({inventory_item_id, location_id, change_from}); ``not_applied`` are all
    rows of the calls that were refused (a call is all-or-nothing); ``changes`` what other calls applied.
    """

    def __init__(self, message, *, items, not_applied, changes, **kw):
        super().__init__(message, **kw)
        self.items = items
        self.not_applied = not_applied
        self.changes = changes


class OAuthCallbackRejected(RemoteAuthError):
    """The OAuth callback query was forged, stale or for another login attempt."""


@dataclass
class TokenSet:
    access_token: str
    scopes: tuple
    expires_at: float | None = None
    refresh_token: str | None = None
    refresh_expires_at: float | None = None


# -- OAuth and webhook helpers (no network) -------------------------------------------------------------
def valid_shop_domain(shop):
    return isinstance(shop, str) and bool(SHOP_DOMAIN.match(shop))


def _require_shop(shop):
    if not valid_shop_domain(shop):
        raise ValueError(f"{shop!r} is not a Shopify shop domain (expected something like "
                         "your-store.myshopify.com)")
    return shop


def authorize_url(shop, client_id, scopes, redirect_uri, state, online=False, base_url=None):
    """Where to send the merchant to install the app (authorization code grant)."""
    _require_shop(shop)
    params = {"client_id": client_id, "scope": ",".join(scopes), "redirect_uri": redirect_uri, "state": state,
              "grant_options[]": "per-user" if online else ""}
    return f"{(base_url or f'https://{shop}').rstrip('/')}/admin/oauth/authorize?{urlencode(params)}"


def new_state():
    """A nonce for the `state` parameter (hex of 32 random bytes, as Shopify's JS library does)."""
    return uuid.uuid4().hex + uuid.uuid4().hex


def _callback_message(query):
    # Shopify's Python library: sorted "k=v" with % and = escaped in keys, % in values, & everywhere.
    def escape(text, key):
        text = str(text).replace("%", "%25").replace("&", "%26")
        return text.replace("=", "%3D") if key else text
    pairs = [f"{escape(k, True)}={escape(v, False)}" for k, v in query.items() if k not in ("hmac", "signature")]
    return "&".join(sorted(pairs))


def verify_callback(query, client_secret, expected_state=None, max_age=90, now=None):
    """Check an OAuth callback query (dict); return its shop. Raises OAuthCallbackRejected."""
    query = dict(query)
    given = str(query.get("hmac", ""))
    digest = hmac.new(client_secret.encode(), _callback_message(query).encode(), hashlib.sha256).hexdigest()
    if not given or not hmac.compare_digest(digest, given):
        raise OAuthCallbackRejected("Shopify callback refused: its signature (hmac) does not match the app secret")
    try:
        timestamp = int(query.get("timestamp", ""))
    except ValueError:
        raise OAuthCallbackRejected("Shopify callback refused: no valid timestamp") from None
    if abs((time.time() if now is None else now) - timestamp) > max_age:
        raise OAuthCallbackRejected("Shopify callback refused: it is too old (or the server clock is wrong)")
    if expected_state is not None and not hmac.compare_digest(str(query.get("state", "")), expected_state):
        raise OAuthCallbackRejected("Shopify callback refused: the state does not match this login attempt")
    shop = query.get("shop", "")
    if not valid_shop_domain(shop):
        raise OAuthCallbackRejected(f"Shopify callback refused: {shop!r} is not a shop domain")
    return shop


def verify_webhook(raw_body, hmac_header, client_secret):
    """True when `hmac_header` is base64(HMAC-SHA256(client secret, raw body)); empty bodies fail."""
    if not raw_body or not hmac_header:
        return False
    expected = base64.b64encode(hmac.new(client_secret.encode(), raw_body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, str(hmac_header))


def to_gid(kind, value):
    text = str(value)
    return text if text.startswith("gid://") else f"gid://shopify/{kind}/{text}"


def _iso(moment):
    if isinstance(moment, datetime):
        moment = moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return str(moment)


# -- the documents -------------------------------------------------------------------------------------
SHOP_QUERY = """query ShopInfo { shop { id name email myshopifyDomain currencyCode ianaTimezone
  plan { publicDisplayName partnerDevelopment shopifyPlus } } }"""

LOCATIONS_QUERY = """query Locations($first: Int!, $after: String, $includeInactive: Boolean) {
  locations(first: $first, after: $after, includeInactive: $includeInactive) {
    nodes { id legacyResourceId name isActive fulfillsOnlineOrders shipsInventory
      address { address1 address2 city provinceCode zip countryCode } }
    pageInfo { hasNextPage endCursor } } }"""

WEBHOOKS_QUERY = """query Webhooks($first: Int!, $after: String) {
  webhookSubscriptions(first: $first, after: $after) {
    nodes { id topic uri format apiVersion { handle } } pageInfo { hasNextPage endCursor } } }"""

WEBHOOK_CREATE = """mutation WebhookCreate($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
    webhookSubscription { id topic uri format } userErrors { field message } } }"""

VARIANT_FIELDS = "id sku barcode price title product { id title } inventoryItem { id tracked }"
VARIANTS_QUERY = """query Variants($first: Int!, $after: String, $query: String) {
  productVariants(first: $first, after: $after, query: $query) {
    nodes { %s } pageInfo { hasNextPage endCursor } } }""" % VARIANT_FIELDS

PRODUCTS_QUERY = """query Products($first: Int!, $after: String, $query: String) {
  products(first: $first, after: $after, query: $query) {
    nodes { id title handle status vendor productType tags updatedAt variantsCount { count } }
    pageInfo { hasNextPage endCursor } } }"""

BULK_VARIANTS = "{ productVariants { edges { node { %s } } } }" % VARIANT_FIELDS
BULK_RUN = """mutation Bulk($query: String!) { bulkOperationRunQuery(query: $query, groupObjects: false) {
  bulkOperation { id status } userErrors { code field message } } }"""
BULK_POLL = """query BulkStatus($id: ID!) { node(id: $id) { ... on BulkOperation {
  id status errorCode objectCount url } } }"""

SET_MUTATION = """mutation SetQuantities($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id reason referenceDocumentUri
      changes { name delta quantityAfterChange item { id } location { id } } }
    userErrors { code field message } } }"""

ADJUST_MUTATION = """mutation AdjustQuantities($input: InventoryAdjustQuantitiesInput!, $key: String!) {
  inventoryAdjustQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id reason referenceDocumentUri
      changes { name delta quantityAfterChange item { id } location { id } } }
    userErrors { code field message } } }"""

ORDER_FIELDS = """id name email createdAt updatedAt cancelledAt closed displayFinancialStatus
  displayFulfillmentStatus tags note
  shippingAddress { name company address1 address2 city provinceCode zip countryCodeV2 phone }
  lineItems(first: 20) { nodes { id sku title quantity unfulfilledQuantity variant { id }
    originalUnitPriceSet { shopMoney { amount } } } pageInfo { hasNextPage endCursor } }"""
ORDERS_QUERY = """query Orders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    nodes { %s } pageInfo { hasNextPage endCursor } } }""" % ORDER_FIELDS
ORDER_QUERY = """query Order($id: ID!) { order(id: $id) { %s } }""" % ORDER_FIELDS
ORDER_LINES_QUERY = """query OrderLines($id: ID!, $after: String) { order(id: $id) {
  lineItems(first: 100, after: $after) { nodes { id sku title quantity unfulfilledQuantity variant { id }
    originalUnitPriceSet { shopMoney { amount } } }
    pageInfo { hasNextPage endCursor } } } }"""

FULFILLMENT_ORDERS_QUERY = """query FulfillmentOrders($id: ID!, $first: Int!, $after: String) { order(id: $id) {
  fulfillmentOrders(first: $first, after: $after) {
    nodes { id status assignedLocation { name location { id } }
      lineItems(first: 50) { nodes { id sku totalQuantity remainingQuantity inventoryItemId lineItem { id } } } }
    pageInfo { hasNextPage endCursor } } } }"""

FULFILLMENT_CREATE = """mutation Fulfil($fulfillment: FulfillmentInput!) { fulfillmentCreate(fulfillment: $fulfillment) {
  fulfillment { id name status createdAt trackingInfo { company number url } location { id } }
  userErrors { field message } } }"""

RETURNS_QUERY = """query Returns($id: ID!, $first: Int!, $after: String) { order(id: $id) { returns(first: $first, after: $after) {
  nodes { id name status createdAt closedAt returnLineItems(first: 25) { nodes { ... on ReturnLineItem {
    id quantity returnReason customerNote fulfillmentLineItem { id lineItem { id sku } } } } } }
  pageInfo { hasNextPage endCursor } } } }"""
RETURN_APPROVE = """mutation Approve($input: ReturnApproveRequestInput!) { returnApproveRequest(input: $input) {
  return { id status } userErrors { code field message } } }"""
RETURN_CLOSE = """mutation Close($id: ID!) { returnClose(id: $id) { return { id status closedAt }
  userErrors { code field message } } }"""

TAGS_ADD = """mutation Tags($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) {
  node { id ... on Order { tags } ... on Product { tags } } userErrors { field message } } }"""

TAGS_REMOVE = """mutation TagsRemove($id: ID!, $tags: [String!]!) { tagsRemove(id: $id, tags: $tags) {
  node { id ... on Order { tags } ... on Product { tags } } userErrors { field message } } }"""
ORDER_CLOSE = """mutation OrderClose($input: OrderCloseInput!) { orderClose(input: $input) {
  order { id closed closedAt } userErrors { field message } } }"""
CURRENT_BULK = """query CurrentBulk { currentBulkOperation(type: QUERY) { id status errorCode objectCount url } }"""


# -- the client -----------------------------------------------------------------------------------------
class ShopifyClient:
    def __init__(self, shop, access_token=None, *, client_id=None, client_secret=None, refresh_token=None,
                 base_url=None, api_version=API_VERSION, timeout=(5, 30), recorder=None, allow_private=None,
                 store_id=None, on_tokens=None, retries=3, backoff_seconds=1.0, max_throttle_waits=8,
                 sleep=time.sleep, clock=time.monotonic):
        self.shop = _require_shop(shop)
        self.access_token = access_token
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.api_version = api_version
        self.on_tokens = on_tokens
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.max_throttle_waits = max_throttle_waits
        self.sleep = sleep
        self.clock = clock
        self.base_url = (base_url or f"https://{shop}").rstrip("/")
        self.http = RemoteHttp(self.base_url, plugin="shopify", store_id=store_id, timeout=timeout,
                               recorder=recorder, allow_private=allow_private,
                               secrets=[s for s in (access_token, client_secret, refresh_token) if s])
        self._pace_lock = threading.Lock()
        self._bucket = None  # (currently available, restore rate, maximum, at)
        self._query_costs = {}

    # -- OAuth tokens ---------------------------------------------------------------------------------
    def exchange_code(self, code, expiring=True):
        body = {"client_id": self.client_id, "client_secret": self.client_secret, "code": code}
        if expiring:
            body["expiring"] = "1"
        return self._token_call(body, "exchange the authorization code")

    def refresh_access_token(self):
        if not self.refresh_token:
            raise RemoteAuthError("Shopify: no refresh token is stored for this shop; reinstall the app")
        body = {"client_id": self.client_id, "client_secret": self.client_secret,
                "refresh_token": self.refresh_token, "grant_type": "refresh_token"}
        return self._token_call(body, "refresh the access token")

    def _token_call(self, body, what):
        self.http.secrets.extend(body[k] for k in ("client_secret", "code", "refresh_token") if body.get(k))
        response = self.http.post("/admin/oauth/access_token", json=body, raise_for_status=False)
        answer = _json_or_none(response)
        if response.status_code != 200 or not answer or "access_token" not in answer:
            detail = (answer or {}).get("error_description") or (answer or {}).get("error") or response.status_code
            raise RemoteAuthError(f"Shopify refused to {what} for {self.shop}: {detail}. Reinstall the app "
                                  "from the store's admin if this keeps happening.", status=response.status_code,
                                  code=(answer or {}).get("error"))
        now = time.time()
        tokens = TokenSet(access_token=answer["access_token"],
                          scopes=tuple(s for s in answer.get("scope", "").split(",") if s),
                          expires_at=now + answer["expires_in"] if answer.get("expires_in") else None,
                          refresh_token=answer.get("refresh_token"),
                          refresh_expires_at=now + answer["refresh_token_expires_in"]
                          if answer.get("refresh_token_expires_in") else None)
        self.access_token, self.refresh_token = tokens.access_token, tokens.refresh_token or self.refresh_token
        self.http.secrets.extend(s for s in (tokens.access_token, tokens.refresh_token) if s)
        if self.on_tokens:
            self.on_tokens(tokens)
        return tokens

    # -- GraphQL transport -------------------------------------------------------------------------------
    def graphql(self, query, variables=None, retry_safe=None):
        """POST one document; return `data`. Paces itself on throttleStatus and waits out THROTTLED.

        Transport failures are retried when the call is safe to repeat: queries, and mutations the
        caller marks `retry_safe` (the @idempotent ones: a replayed key returns the first answer).
        """
        if retry_safe is None:
            retry_safe = not query.lstrip().startswith("mutation")
        body = {"query": query, "variables": variables or {}}
        throttled, failures, refreshed = 0, 0, False
        while True:
            self._pace(query)
            try:
                answer = self._post(body)
            except RemoteAuthError:
                if refreshed or not (self.refresh_token and self.client_secret):
                    raise
                self.refresh_access_token()
                refreshed = True
                continue
            except TransientRemoteError as exc:
                failures += 1
                if not retry_safe or failures > self.retries:
                    raise
                self.sleep(self._backoff(exc, failures))
                continue
            cost = self._note_cost(query, answer)
            errors = answer.get("errors")
            if errors and _code(errors[0]) == "THROTTLED":
                throttled += 1
                if throttled > self.max_throttle_waits:
                    raise RemoteRateLimited(f"Shopify kept throttling {self.shop}; try again later",
                                            code="THROTTLED")
                self.sleep(_throttle_wait(cost))
                continue
            if errors:
                raise _graphql_error(self.shop, errors)
            return answer.get("data") or {}

    def _post(self, body):
        url = f"/admin/api/{self.api_version}/graphql.json"
        try:
            response = self.http.post(url, json=body, headers={"X-Shopify-Access-Token": self.access_token or ""})
        except RemoteAuthError as exc:
            raise RemoteAuthError(f"Shopify refused the access token for {self.shop} (expired, revoked or the app "
                                  "was uninstalled); reconnect the store", status=exc.status, body=exc.body) from exc
        except RemoteRejected as exc:
            if exc.status == 404:
                raise RemoteRejected(f"Shopify: {self.shop} or API version {self.api_version} was not found",
                                     status=404, body=exc.body) from exc
            raise
        answer = _json_or_none(response)
        if answer is None:
            raise RemoteRejected(f"Shopify answered {self.shop} with something that is not JSON",
                                 status=response.status_code, body=response.text[:500])
        return answer

    def _backoff(self, exc, failures):
        retry_after = getattr(exc, "retry_after", None)
        return retry_after if retry_after is not None else min(self.backoff_seconds * 2 ** (failures - 1), 30.0)

    def _note_cost(self, query, answer):
        cost = (answer.get("extensions") or {}).get("cost") or {}
        status = cost.get("throttleStatus")
        with self._pace_lock:
            if cost.get("requestedQueryCost") is not None:
                self._query_costs[query] = cost["requestedQueryCost"]
            if status:
                self._bucket = (float(status["currentlyAvailable"]), float(status["restoreRate"]),
                                float(status["maximumAvailable"]), self.clock())
        return cost

    def _pace(self, query):
        """Sleep until the bucket (as Shopify last reported it, refilled since) holds this query's cost."""
        with self._pace_lock:
            if self._bucket is None or query not in self._query_costs:
                return
            available, rate, maximum, at = self._bucket
            now = self.clock()
            available = min(maximum, available + (now - at) * rate)
            needed = self._query_costs[query]
            if needed <= available or rate <= 0:
                self._bucket = (available - needed, rate, maximum, now)
                return
            wait = (needed - available) / rate
            self._bucket = (0.0, rate, maximum, now + wait)
        self.sleep(wait)

    def _pages(self, query, variables, path, page_size):
        """Yield the nodes of a connection, page after page."""
        after = None
        while True:
            data = self.graphql(query, dict(variables, first=page_size, after=after))
            connection = _dig(data, path)
            if connection is None:
                return
            yield from connection["nodes"]
            if not connection["pageInfo"]["hasNextPage"]:
                return
            after = connection["pageInfo"]["endCursor"]

    def _mutate(self, query, variables, field, what, retry_safe=False):
        payload = self.graphql(query, variables, retry_safe=retry_safe).get(field) or {}
        errors = payload.get("userErrors") or []
        if errors:
            raise _rejected(self.shop, what, errors)
        return payload

    # -- operations ----------------------------------------------------------------------------------------
    def shop_info(self):
        shop = self.graphql(SHOP_QUERY)["shop"]
        return {"id": shop["id"], "name": shop["name"], "email": shop["email"],
                "myshopify_domain": shop["myshopifyDomain"], "currency": shop["currencyCode"],
                "timezone": shop["ianaTimezone"], "plan": shop["plan"]["publicDisplayName"]}

    def list_locations(self, include_inactive=True):
        return [{"id": node["id"], "legacy_id": int(node["legacyResourceId"]), "name": node["name"],
                 "is_active": node["isActive"], "fulfills_online_orders": node["fulfillsOnlineOrders"],
                 "ships_inventory": node["shipsInventory"], "address": node["address"]}
                for node in self._pages(LOCATIONS_QUERY, {"includeInactive": include_inactive}, ("locations",), 100)]

    def webhook_subscriptions(self):
        return [{"id": n["id"], "topic": n["topic"], "uri": n["uri"], "format": n["format"],
                 "api_version": n["apiVersion"]["handle"]}
                for n in self._pages(WEBHOOKS_QUERY, {}, ("webhookSubscriptions",), 100)]

    def subscribe_webhooks(self, topics):
        """Make sure each {topic ('orders/create' or 'ORDERS_CREATE'): uri} is subscribed, once."""
        existing = {(s["topic"], s["uri"]): s for s in self.webhook_subscriptions()}
        result = []
        for topic, uri in topics.items():
            enum_name = topic.upper().replace("/", "_")
            if (enum_name, uri) in existing:
                result.append(dict(existing[(enum_name, uri)], created=False))
                continue
            payload = self._mutate(WEBHOOK_CREATE, {"topic": enum_name, "sub": {"uri": uri, "format": "JSON"}},
                                   "webhookSubscriptionCreate", f"subscribe to {topic}")
            sub = payload["webhookSubscription"]
            result.append({"id": sub["id"], "topic": sub["topic"], "uri": sub["uri"], "format": sub["format"],
                           "api_version": self.api_version, "created": True})
        return result

    def iter_products(self, query=None, page_size=100):
        for node in self._pages(PRODUCTS_QUERY, {"query": query}, ("products",), page_size):
            yield {"id": node["id"], "title": node["title"], "handle": node["handle"], "status": node["status"],
                   "vendor": node["vendor"], "product_type": node["productType"], "tags": node["tags"],
                   "updated_at": node["updatedAt"], "variant_count": node["variantsCount"]["count"]}

    def iter_variants(self, query=None, page_size=100):
        for node in self._pages(VARIANTS_QUERY, {"query": query}, ("productVariants",), page_size):
            yield _variant(node)

    def bulk_variants(self, poll_interval=2.0, timeout=3600.0):
        """Every variant of the shop through a bulk operation (for catalogs too big to page through)."""
        payload = self._mutate(BULK_RUN, {"query": BULK_VARIANTS}, "bulkOperationRunQuery",
                               "start a bulk export of variants")
        operation_id = payload["bulkOperation"]["id"]
        deadline = self.clock() + timeout
        while True:
            operation = self.graphql(BULK_POLL, {"id": operation_id})["node"]
            if operation["status"] == "COMPLETED":
                break
            if operation["status"] in ("FAILED", "CANCELED", "EXPIRED"):
                raise RemoteRejected(f"Shopify's bulk export of {self.shop} ended {operation['status']} "
                                     f"({operation.get('errorCode')})", code=operation.get("errorCode"))
            if self.clock() > deadline:
                raise RemoteRejected(f"Shopify's bulk export of {self.shop} did not finish in {timeout:.0f} s",
                                     code="TIMEOUT")
            self.sleep(poll_interval)
        if not operation["url"]:
            return []  # an empty catalog has no result file
        response = self.http.get(operation["url"])  # a signed URL: no token goes with it
        return [_variant(json.loads(line)) for line in response.text.splitlines() if line.strip()]

    def set_quantities(self, rows, name="available", reason="correction", reference_document_uri=None,
                       idempotency_key=None):
        """Absolute quantities. rows: {inventory_item_id, location_id, quantity, change_from (int|None)}."""
        def build(chunk):
            return {"name": name, "reason": reason, "referenceDocumentUri": reference_document_uri,
                    "quantities": [{"inventoryItemId": to_gid("InventoryItem", r["inventory_item_id"]),
                                    "locationId": to_gid("Location", r["location_id"]), "quantity": r["quantity"],
                                    "changeFromQuantity": r.get("change_from")} for r in chunk]}
        return self._stock_calls(SET_MUTATION, "inventorySetQuantities", "quantities", rows, build, idempotency_key,
                                 "set stock quantities")

    def adjust_quantities(self, rows, name="available", reason="correction", reference_document_uri=None,
                          ledger_document_uri=None, idempotency_key=None):
        """Deltas. rows: {inventory_item_id, location_id, delta, change_from (int|None)}."""
        def build(chunk):
            return {"name": name, "reason": reason, "referenceDocumentUri": reference_document_uri,
                    "changes": [{"inventoryItemId": to_gid("InventoryItem", r["inventory_item_id"]),
                                 "locationId": to_gid("Location", r["location_id"]), "delta": r["delta"],
                                 "changeFromQuantity": r.get("change_from"),
                                 **({"ledgerDocumentUri": ledger_document_uri} if ledger_document_uri else {})}
                                for r in chunk]}
        return self._stock_calls(ADJUST_MUTATION, "inventoryAdjustQuantities", "changes", rows, build,
                                 idempotency_key, "adjust stock quantities")

    def _stock_calls(self, mutation, field, list_name, rows, build, idempotency_key, what):
        """One idempotent call per 250 rows; stale rows are collected and raised as StaleQuantity."""
        rows = list(rows)
        base_key = idempotency_key or str(uuid.uuid4())
        changes, stale, not_applied, stale_errors = [], [], [], []
        for start in range(0, len(rows), MAX_ROWS_PER_CALL):
            chunk = rows[start:start + MAX_ROWS_PER_CALL]
            key = base_key if len(rows) <= MAX_ROWS_PER_CALL else f"{base_key}-{start // MAX_ROWS_PER_CALL}"
            payload = self.graphql(mutation, {"input": build(chunk), "key": key}, retry_safe=True).get(field) or {}
            errors = payload.get("userErrors") or []
            stale_here = [e for e in errors if e.get("code") == "CHANGE_FROM_QUANTITY_STALE"]
            if errors and len(stale_here) < len(errors):
                raise _rejected(self.shop, what, [e for e in errors if e not in stale_here] + stale_here)
            if stale_here:
                stale += [_stale_row(chunk, e, list_name) for e in stale_here]
                not_applied += chunk
                stale_errors += stale_here
                continue
            changes += _changes(payload.get("inventoryAdjustmentGroup"))
        if stale:
            raise StaleQuantity(
                f"Shopify refused to {what} for {self.shop}: {len(stale)} quantit"
                f"{'y' if len(stale) == 1 else 'ies'} changed in Shopify since they were read; re-read and retry",
                items=stale, not_applied=not_applied, changes=changes, user_errors=stale_errors,
                code="CHANGE_FROM_QUANTITY_STALE")
        return changes

    def inventory_levels(self, inventory_item_ids, location_ids=None, names=DEFAULT_NAMES):
        """Named quantities of the given items at the given locations (all active locations if None)."""
        if location_ids is None:
            location_ids = [loc["id"] for loc in self.list_locations(include_inactive=False)]
        locations = [to_gid("Location", loc) for loc in location_ids]
        items = [to_gid("InventoryItem", item) for item in inventory_item_ids]
        if not items or not locations:
            return []
        per_item_cost = 1 + 3 * len(locations)
        chunk_size = max(1, min(MAX_ROWS_PER_CALL, TARGET_QUERY_COST // per_item_cost))
        query = _levels_query(len(locations))
        levels = []
        for start in range(0, len(items), chunk_size):
            variables = {"ids": items[start:start + chunk_size], "names": list(names)}
            variables.update({f"l{i}": loc for i, loc in enumerate(locations)})
            for node in self.graphql(query, variables)["nodes"]:
                if not node:
                    continue
                for i, location in enumerate(locations):
                    level = node.get(f"l{i}")
                    if level:
                        levels.append({"inventory_item_id": node["id"], "location_id": location,
                                       "quantities": {q["name"]: q["quantity"] for q in level["quantities"]}})
        return levels

    def orders_updated_since(self, since, page_size=10):
        """Orders updated at or after `since` (datetime or ISO text), oldest change first."""
        search = f"updated_at:>='{_iso(since)}'"
        for node in self._pages(ORDERS_QUERY, {"query": search}, ("orders",), page_size):
            yield _order(node, self._all_lines(node))

    def get_order(self, order_id):
        """One order as it stands now (the shape orders_updated_since yields), or None when Shopify has none."""
        node = self.graphql(ORDER_QUERY, {"id": to_gid("Order", order_id)}).get("order")
        return None if node is None else _order(node, self._all_lines(node))

    def _all_lines(self, node):
        """An order's line items: the first page came with the order, the rest are read page by page."""
        lines = list(node["lineItems"]["nodes"])
        page = node["lineItems"]["pageInfo"]
        while page["hasNextPage"]:
            more = self.graphql(ORDER_LINES_QUERY, {"id": node["id"], "after": page["endCursor"]})
            lines += more["order"]["lineItems"]["nodes"]
            page = more["order"]["lineItems"]["pageInfo"]
        return lines

    def fulfillment_orders(self, order_id):
        nodes = self._pages(FULFILLMENT_ORDERS_QUERY, {"id": to_gid("Order", order_id)},
                            ("order", "fulfillmentOrders"), 5)
        return [{"id": fo["id"], "status": fo["status"],
                 "location_id": (fo["assignedLocation"]["location"] or {}).get("id"),
                 "location_name": fo["assignedLocation"]["name"],
                 "line_items": [{"id": li["id"], "line_item_id": li["lineItem"]["id"], "sku": li["sku"],
                                 "total_quantity": li["totalQuantity"], "remaining_quantity": li["remainingQuantity"],
                                 "inventory_item_id": li["inventoryItemId"]} for li in fo["lineItems"]["nodes"]]}
                for fo in nodes]

    def create_fulfillment(self, fulfillment_orders, carrier=None, tracking_number=None, tracking_url=None,
                           notify_customer=False):
        """Ship. fulfillment_orders: [fo id] (all remaining) or {fo id: {fo line item id: quantity}}.

        Not retried on a transport failure (Shopify has no idempotency key here): after a timeout,
        read `fulfillment_orders()` to see whether it happened.
        """
        if isinstance(fulfillment_orders, dict):
            groups = [{"fulfillmentOrderId": to_gid("FulfillmentOrder", fo),
                       "fulfillmentOrderLineItems": [{"id": to_gid("FulfillmentOrderLineItem", line), "quantity": q}
                                                     for line, q in lines.items()]}
                      for fo, lines in fulfillment_orders.items()]
        else:
            groups = [{"fulfillmentOrderId": to_gid("FulfillmentOrder", fo)} for fo in fulfillment_orders]
        tracking = {k: v for k, v in (("company", carrier), ("number", tracking_number), ("url", tracking_url)) if v}
        fulfillment = {"lineItemsByFulfillmentOrder": groups, "notifyCustomer": bool(notify_customer)}
        if tracking:
            fulfillment["trackingInfo"] = tracking
        created = self._mutate(FULFILLMENT_CREATE, {"fulfillment": fulfillment}, "fulfillmentCreate",
                               "create the fulfillment")["fulfillment"]
        return {"id": created["id"], "name": created["name"], "status": created["status"],
                "created_at": created["createdAt"], "tracking": created["trackingInfo"],
                "location_id": (created["location"] or {}).get("id")}

    def returns_of_order(self, order_id):
        return [{"id": r["id"], "name": r["name"], "status": r["status"], "created_at": r["createdAt"],
                 "closed_at": r["closedAt"],
                 "line_items": [{"id": li["id"], "quantity": li["quantity"], "reason": li["returnReason"],
                                 "customer_note": li["customerNote"],
                                 "fulfillment_line_item_id": li["fulfillmentLineItem"]["id"],
                                 "line_item_id": li["fulfillmentLineItem"]["lineItem"]["id"],
                                 "sku": li["fulfillmentLineItem"]["lineItem"]["sku"]}
                                for li in r["returnLineItems"]["nodes"]]}
                for r in self._pages(RETURNS_QUERY, {"id": to_gid("Order", order_id)}, ("order", "returns"), 10)]

    def approve_return(self, return_id, notify_customer=False):
        payload = self._mutate(RETURN_APPROVE, {"input": {"id": to_gid("Return", return_id),
                                                          "notifyCustomer": notify_customer}},
                               "returnApproveRequest", "approve the return", retry_safe=True)
        return payload["return"]

    def close_return(self, return_id):
        return self._mutate(RETURN_CLOSE, {"id": to_gid("Return", return_id)}, "returnClose",
                            "close the return", retry_safe=True)["return"]

    def add_tags(self, resource_id, tags):
        """tagsAdd on an Order or Product gid; returns the resource's tags afterwards."""
        payload = self._mutate(TAGS_ADD, {"id": resource_id, "tags": list(tags)}, "tagsAdd", "add tags",
                               retry_safe=True)
        return payload["node"]["tags"]

    def remove_tags(self, resource_id, tags):
        """tagsRemove on an Order or Product gid (removing a tag it does not carry is a no-op)."""
        payload = self._mutate(TAGS_REMOVE, {"id": resource_id, "tags": list(tags)}, "tagsRemove", "remove tags",
                               retry_safe=True)
        return payload["node"]["tags"]

    def close_order(self, order_id):
        """orderClose; closing an order that is closed already changes nothing."""
        payload = self._mutate(ORDER_CLOSE, {"input": {"id": to_gid("Order", order_id)}}, "orderClose",
                               "close the order", retry_safe=True)
        return payload["order"]

    def start_bulk_variants(self):
        """Start the bulk export of every variant; returns the operation's id (poll it with bulk_operation)."""
        payload = self._mutate(BULK_RUN, {"query": BULK_VARIANTS}, "bulkOperationRunQuery",
                               "start a bulk export of variants")
        return payload["bulkOperation"]["id"]

    def bulk_operation(self, operation_id):
        """{id, status, error_code, object_count, url} of a bulk operation, or None when Shopify has none."""
        return _bulk_status(self.graphql(BULK_POLL, {"id": operation_id})["node"])

    def current_bulk_operation(self):
        """The shop's newest bulk query operation of this app, or None."""
        return _bulk_status(self.graphql(CURRENT_BULK)["currentBulkOperation"])

    def iter_bulk_variants(self, url, chunk_size=65536):
        """Stream a finished bulk export's JSONL line by line (memory stays flat however big the file)."""
        response = self.http.get(url, stream=True)  # a signed URL: no token goes with it
        try:
            for line in response.iter_lines(chunk_size=chunk_size):
                if line.strip():
                    yield _variant(json.loads(line))
        finally:
            response.close()


# -- answer helpers ----------------------------------------------------------------------------------------
def _json_or_none(response):
    try:
        return response.json()
    except ValueError:
        return None


def _code(error):
    return (error.get("extensions") or {}).get("code")


def _throttle_wait(cost):
    """Exactly as long as the bucket needs to hold the requested cost again."""
    status = cost.get("throttleStatus") or {}
    rate = float(status.get("restoreRate") or 50.0)
    missing = float(cost.get("requestedQueryCost") or 0) - float(status.get("currentlyAvailable") or 0)
    return max(0.0, missing / rate)


def _graphql_error(shop, errors):
    first = errors[0]
    code = _code(first)
    text = "; ".join(e.get("message", "") for e in errors)
    if code == "ACCESS_DENIED":
        required = (first.get("extensions") or {}).get("requiredAccess") or "a missing access scope"
        return RemoteAuthError(f"Shopify denied access on {shop}: the app needs {required} Reinstall or update "
                               "the app to grant it.", code=code, body=json.dumps(errors)[:2000])
    return RemoteRejected(f"Shopify refused the request for {shop}: {text}", code=code,
                          body=json.dumps(errors)[:2000])


def _rejected(shop, what, errors):
    text = "; ".join(f"{e['message']}" + (f" ({'.'.join(e['field'])})" if e.get("field") else "") for e in errors)
    return ShopifyRejected(f"Shopify refused to {what} for {shop}: {text}", code=errors[0].get("code"),
                           user_errors=errors)


def _dig(data, path):
    for key in path:
        data = (data or {}).get(key)
    return data


def _stale_row(chunk, error, list_name):
    field = error.get("field") or []
    index = int(field[2]) if len(field) > 2 and field[1] == list_name and str(field[2]).isdigit() else None
    row = chunk[index] if index is not None and index < len(chunk) else {}
    return {"inventory_item_id": row.get("inventory_item_id"), "location_id": row.get("location_id"),
            "change_from": row.get("change_from"), "message": error.get("message")}


def _changes(group):
    if not group:
        return []
    return [{"name": c["name"], "delta": c["delta"], "quantity_after": c["quantityAfterChange"],
             "inventory_item_id": (c["item"] or {}).get("id"), "location_id": (c["location"] or {}).get("id")}
            for c in group["changes"]]


def _levels_query(location_count):
    declared = "".join(f", $l{i}: ID!" for i in range(location_count))
    aliases = " ".join(f"l{i}: inventoryLevel(locationId: $l{i}) {{ quantities(names: $names) {{ name quantity }} }}"
                       for i in range(location_count))
    return (f"query Levels($ids: [ID!]!, $names: [String!]!{declared}) {{ nodes(ids: $ids) {{ "
            f"... on InventoryItem {{ id {aliases} }} }} }}")


def _variant(node):
    return {"id": node["id"], "sku": node.get("sku"), "barcode": node.get("barcode"), "price": node.get("price"),
            "title": node.get("title"), "product_id": (node.get("product") or {}).get("id"),
            "product_title": (node.get("product") or {}).get("title"),
            "inventory_item_id": (node.get("inventoryItem") or {}).get("id"),
            "tracked": (node.get("inventoryItem") or {}).get("tracked")}


def _order(node, lines):
    return {"id": node["id"], "name": node["name"], "email": node["email"], "created_at": node["createdAt"],
            "updated_at": node["updatedAt"], "cancelled_at": node["cancelledAt"], "closed": node["closed"],
            "financial_status": node["displayFinancialStatus"], "fulfillment_status": node["displayFulfillmentStatus"],
            "tags": node["tags"], "note": node["note"], "shipping_address": node["shippingAddress"],
            "line_items": [{"id": li["id"], "sku": li["sku"], "title": li["title"], "quantity": li["quantity"],
                            "unfulfilled_quantity": li["unfulfilledQuantity"],
                            "variant_id": (li["variant"] or {}).get("id"),
                            "price": _dig(li, ("originalUnitPriceSet", "shopMoney", "amount"))} for li in lines]}


def _bulk_status(node):
    if not node:
        return None
    return {"id": node["id"], "status": node["status"], "error_code": node.get("errorCode"),
            "object_count": int(node.get("objectCount") or 0), "url": node.get("url")}
