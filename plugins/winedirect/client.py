"""The only module that talks to the WineDirect Fulfillment (WD-FS) REST API.

Operations (`WineDirectClient`):

    login()                                   get an access token (done on demand by every call)
    test_connection()                         -> ConnectionCheck (never raises for remote errors)
    list_warehouses()                         -> [Warehouse]
    get_product(sku)                          -> WineProduct | None
    upsert_product(product)                   -> ProductResult (created / updated / unchanged)
    upsert_products(products)                 -> [ProductResult] (a refused product is reported, not raised)
    get_inventory(warehouse_code, sku)        -> [InventoryLevel] per warehouse and subinventory
    submit_orders(orders, batch_number, check_existing=True)
                                              -> SubmitResult; checks each number first, because
                                                 WineDirect has no duplicate protection
    find_order(order_number)                  -> OrderHeader | None
    get_order_status(order_number)            -> OrderStatus with its shipments
    cancel_order(order_number, rename_order)  -> [messages]; a refusal raises RemoteRejected
    list_shipments(order_number | start, end) -> [Shipment]
    get_shipment(shipment_id)                 -> Shipment
    list_shipment_updates(since, until)       -> [ShipmentUpdate] (tracking events in the window)

Errors: `RemoteAuthError` when the login is refused (also after a failed refresh and re-login),
`RemoteRejected` with WineDirect's own message for every ``isSuccess: false`` answer and 4xx,
`RemoteRateLimited` / `RemoteUnavailable` / `RemoteTimeout` (transient) once retries are spent.

Tokens: a 401 on any call re-authenticates (refresh token first, then username and password)
and retries the call once; that is invisible to the caller except for
``last_call_refreshed_token`` (the last HTTP call) and ``token_refreshes`` (a counter, for
operations that make several calls), which the plugin uses to show "Token Issue" for a moment.
Reads are retried on 429 (after Retry-After), 5xx, resets and timeouts; writes only on 429,
since a write whose answer was lost may have been applied (`submit_orders` checks first).
"""

import json as jsonlib
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from wms.integrations.errors import (
    RemoteAuthError,
    RemoteRateLimited,
    RemoteRejected,
    RemoteUnavailable,
    TransientRemoteError,
)
from wms.integrations.http import DEFAULT_TIMEOUT, RemoteHttp

from . import contract as c

PLUGIN = "winedirect"


# --- values going out --------------------------------------------------------------------
@dataclass
class WineProduct:
    sku: str
    brand: str
    name: str | None
    varietal: str | None
    appellation: str
    bottle_size_ml: int
    case_quantity: int
    retail_price: Decimal
    alcohol_percent: Decimal
    alcohol_type: str = "STILL"
    vintage: str | None = None
    region_of_origin: str | None = None
    vineyard_designation: str | None = None
    cola_number: str | None = None


@dataclass
class Address:
    first_name: str | None
    last_name: str | None
    address1: str | None
    city: str | None
    state: str | None
    postal_code: str | None
    company: str | None = None
    middle_name: str | None = None
    address2: str | None = None
    address3: str | None = None
    country: str = "US"


@dataclass
class OrderLine:
    sku: str
    quantity: int
    unit_price: Decimal | None = None


@dataclass
class OrderSubmission:
    order_number: str
    ship_to: Address
    lines: list[OrderLine]
    club: bool = False
    order_type: str | None = None  # overrides the CLUB / STND choice, e.g. "SPCL" or "VC"
    service_level: str = "UPSGROUND"
    requested_ship_date: date | None = None
    warehouse_code: str | None = None
    sub_inventory_code: str | None = None
    sold_to: Address | None = None
    deliver_to: Address | None = None  # e.g. hold at a carrier location
    is_on_site_purchase: bool = False
    gift_message: str | None = None
    shipping_instructions: str | None = None
    packing_slip_code: str | None = None
    shipping_charge: Decimal = Decimal("0")
    handling_fee: Decimal = Decimal("0")
    sales_tax: Decimal = Decimal("0")
    total_charge: Decimal = Decimal("0")


# --- values coming back ------------------------------------------------------------------
@dataclass
class Warehouse:
    code: str
    name: str
    city: str | None
    state: str | None


@dataclass
class ConnectionCheck:
    ok: bool
    message: str
    warehouses: list[Warehouse] = field(default_factory=list)


@dataclass
class ProductResult:
    sku: str
    action: str  # created | updated | unchanged | failed
    wine_direct_sku: str | None = None
    error: str | None = None


@dataclass
class InventoryLevel:
    warehouse_code: str
    warehouse_name: str | None
    sku: str
    sub_inventory: str | None
    on_hand: int
    committed: int
    available: int


@dataclass
class OrderHeader:
    order_number: str
    wine_direct_order_number: str
    status_code: str
    status_name: str | None
    state: str
    warehouse_code: str | None
    order_type: str | None
    batch_number: str | None
    ordered_at: datetime | None
    requested_ship_date: date | None
    shipment_count: int
    first_hold_name: str | None


@dataclass
class SubmitResult:
    submitted: list[str]
    already_present: dict[str, OrderHeader]
    notifications: list[str]
    batch_number: str | None
    is_warning: bool = False


@dataclass
class Shipment:
    shipment_id: str
    order_number: str | None
    carrier_code: str | None
    carrier_name: str | None
    tracking_number: str | None
    tracking_url: str | None
    status_code: str | None
    state: str | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    returned_at: datetime | None = None
    return_reason: str | None = None
    signed_for_by: str | None = None
    lines: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class OrderStatus:
    order_number: str
    wine_direct_order_number: str
    status_code: str
    status_name: str | None
    state: str
    reason: str | None
    is_cancellable: bool
    requested_ship_date: date | None
    holds: list[str]
    messages: list[str]
    shipments: list[Shipment] = field(default_factory=list)


@dataclass
class TrackingEvent:
    at: datetime | None
    city: str | None
    state: str | None
    description: str | None


@dataclass
class ShipmentUpdate:
    shipment_id: str
    order_number: str | None
    carrier_name: str | None
    tracking_number: str | None
    tracking_url: str | None
    status_code: str | None
    state: str | None
    status_description: str | None
    shipped_at: datetime | None
    lines: list[tuple[str, int]]
    events: list[TrackingEvent]


# --- helpers -----------------------------------------------------------------------------
def _parse_time(value):
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _parse_date(value):
    return date.fromisoformat(value[:10]) if value else None


def _money(value):
    return float(value) if value is not None else None


def _pacific(moment):
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(ZoneInfo(c.PACIFIC_TIMEZONE)).strftime(c.PACIFIC_DATETIME_FORMAT)


def _state_of(status_code):
    return c.ORDER_STATES.get(status_code, "unknown") if status_code else None


def _address_body(address):
    if address is None:
        return None
    return {"firstName": address.first_name, "middleName": address.middle_name, "lastName": address.last_name,
            "companyName": address.company, "address1": address.address1, "address2": address.address2,
            "address3": address.address3, "city": address.city, "stateOrProvince": address.state,
            "postalCode": address.postal_code, "countryCode": address.country}


def _order_body(order):
    order_type = order.order_type or ("CLUB" if order.club else "STND")
    body = {
        "customerOrderId": order.order_number,
        "orderType": order_type,
        "isOnSitePurchase": "true" if order.is_on_site_purchase else "false",
        "shippingPriority": order.service_level,
        "consumerHandlingFeeOrShippingHandling": _money(order.handling_fee),
        "consumerShippingCharge": _money(order.shipping_charge),
        "salesTaxAmount": _money(order.sales_tax),
        "totalChargeToConsumer": _money(order.total_charge),
        "soldToAddress": _address_body(order.sold_to or order.ship_to),
        "shipToAddress": _address_body(order.ship_to),
        "deliverToAddress": _address_body(order.deliver_to),
        "requestedShipDate": order.requested_ship_date.isoformat() if order.requested_ship_date else None,
        "warehouseCode": order.warehouse_code,
        "subInventoryCode": order.sub_inventory_code,
        "packingSlipCode": order.packing_slip_code,
        "shippingInstructions": order.shipping_instructions,
        "giftMessage": order.gift_message,
        "lineItems": [{"lineNumber": str(n), "sku": line.sku, "quantity": line.quantity,
                       "unitPrice": _money(line.unit_price), "vasOrderPersonalizations": []}
                      for n, line in enumerate(order.lines, start=1)],
    }
    return {key: value for key, value in body.items() if value is not None}


def _product_from_header(header):
    return WineProduct(
        sku=header["sku"], brand=header.get("brandName"), name=header.get("fancifulName"),
        varietal=header.get("varietal"), appellation=header.get("appellation"),
        bottle_size_ml=int(header["bottleSizeMl"]) if header.get("bottleSizeMl") else None,
        case_quantity=int(header["unitsPerCase"]) if header.get("unitsPerCase") else None,
        retail_price=Decimal(str(header["retailPrice"])) if header.get("retailPrice") is not None else None,
        alcohol_percent=Decimal(str(header["alcoholPercentage"])) if header.get("alcoholPercentage") else None,
        alcohol_type=header.get("alcoholTypeCode"), vintage=header.get("vintage"),
        region_of_origin=header.get("regionOfOrigin"), vineyard_designation=header.get("vineyardDesignation"),
        cola_number=header.get("ttbApprovalNumber"),
    )


def _header(row):
    return OrderHeader(
        order_number=row["orderNumber"], wine_direct_order_number=row["wineDirectOrderNumber"],
        status_code=row["statusCode"], status_name=row.get("statusName"), state=_state_of(row["statusCode"]),
        warehouse_code=row.get("warehouseCode"), order_type=row.get("orderTypeCode"),
        batch_number=row.get("batchNumber"), ordered_at=_parse_time(row.get("orderedDate")),
        requested_ship_date=_parse_date(row.get("requestedDate")), shipment_count=row.get("shipmentCount") or 0,
        first_hold_name=row.get("firstHoldName"),
    )


def _shipment(row):
    status = row.get("deliveryStatusCode")
    return Shipment(
        shipment_id=row["shipmentId"], order_number=row.get("orderNumber"), carrier_code=row.get("carrierCode"),
        carrier_name=row.get("carrierName"), tracking_number=row.get("trackingNumber"),
        tracking_url=row.get("trackingNumberUrl"), status_code=status, state=_state_of(status),
        shipped_at=_parse_time(row.get("fulfillmentDate") or row.get("shipDate")),
        delivered_at=_parse_time(row.get("deliveredDate") or row.get("deliveryDate")),
        returned_at=_parse_time(row.get("returnDate")), return_reason=row.get("returnReason"),
        signed_for_by=row.get("signedForBy"),
        lines=[(line["sku"], line.get("qtyShipped") or 0) for line in row.get("lineItems") or []],
    )


def _shipment_update(row):
    head = row["header"]
    return ShipmentUpdate(
        shipment_id=head["containerId"], order_number=head.get("orderNumber"), carrier_name=head.get("carrierName"),
        tracking_number=head.get("trackingNumber"), tracking_url=head.get("trackingNumberUrl"),
        status_code=head.get("statusCode"), state=_state_of(head.get("statusCode")),
        status_description=head.get("statusDescription"), shipped_at=_parse_time(head.get("shipDate")),
        lines=[(line["sku"], line.get("quantity") or 0) for line in row.get("lineItems") or []],
        events=[TrackingEvent(_parse_time(e.get("eventTime")), e.get("city"), e.get("stateOrProvince"),
                              e.get("description")) for e in row.get("events") or []],
    )


def _reason(header, holds, messages):
    status = header["orderStatusCode"]
    if status == c.STATUS_NEEDING_ACTION:
        errors = [m["message"] for m in messages if m.get("messageType") == "ERROR"]
        return "; ".join(errors) or header.get("orderStatusName")
    if status == c.STATUS_ON_HOLD:
        return "; ".join(h["holdName"] for h in holds if h.get("holdName")) or header.get("orderStatusName")
    return None


# --- the client --------------------------------------------------------------------------
class WineDirectClient:
    """One WineDirect Fulfillment login (UAT or Production) and the account it serves."""

    def __init__(self, base_url, *, username, password, account_number, supplier_id, store_id=None,
                 timeout=DEFAULT_TIMEOUT, recorder=None, allow_private=None, token_state=None,
                 max_retries=3, max_retry_wait=30.0, backoff=0.5, sleep=time.sleep):
        self.username = username
        self.password = password
        self.account_number = account_number
        self.supplier_id = supplier_id
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.backoff = backoff
        self._sleep = sleep
        self.http = RemoteHttp(base_url, plugin=PLUGIN, store_id=store_id, timeout=timeout, recorder=recorder,
                               allow_private=allow_private, secrets=[password],
                               headers={"Accept": "application/json"})
        self._auth_lock = threading.Lock()
        self._access_token = None
        self._refresh_token = None
        self._expires_at = None
        self.last_call_refreshed_token = False
        self.token_refreshes = 0  # every recovery from a refused token, over this client's life
        if token_state:
            self._store_tokens(token_state)

    # -- tokens --------------------------------------------------------------------------
    def token_state(self):
        """The current tokens, for a caller that keeps them between client instances."""
        return {c.ACCESS_TOKEN_FIELD: self._access_token, c.REFRESH_TOKEN_FIELD: self._refresh_token,
                c.EXPIRATION_FIELD: self._expires_at}

    def _store_tokens(self, payload):
        if not isinstance(payload, dict) or not payload.get(c.ACCESS_TOKEN_FIELD):
            raise RemoteUnavailable("WineDirect answered the login without an access token")
        self._access_token = payload[c.ACCESS_TOKEN_FIELD]
        self._refresh_token = payload.get(c.REFRESH_TOKEN_FIELD)
        self._expires_at = payload.get(c.EXPIRATION_FIELD)
        self.http.secrets = [s for s in (self.password, self._access_token, self._refresh_token) if s]

    def login(self):
        body = {c.LOGIN_USERNAME_FIELD: self.username, c.LOGIN_PASSWORD_FIELD: self.password}
        try:
            payload = self._send("POST", c.TOKEN_PATH, action="the login", json=body, safe=True, token=False)
        except RemoteAuthError as exc:
            raise RemoteAuthError(
                f"WineDirect refused the API username or password ({self._api_message(exc)}). "
                "Check the WineDirect login in this integration's settings.", status=exc.status, body=exc.body,
            ) from exc
        self._store_tokens(payload)
        return self.token_state()

    def _reauthenticate(self, refused_token):
        with self._auth_lock:
            if self._access_token != refused_token:
                return  # another thread already got a fresh token
            if self._refresh_token:
                try:
                    payload = self._send("POST", c.TOKEN_REFRESH_PATH, action="the token refresh",
                                         json={c.REFRESH_TOKEN_FIELD: self._refresh_token}, safe=True, token=False)
                    self._store_tokens(payload)
                    return
                except RemoteAuthError:
                    self._refresh_token = None  # fall back to a full login
            self.login()

    # -- transport -----------------------------------------------------------------------
    def _call(self, method, path, *, action, params=None, json=None):
        """An authenticated call; returns the envelope's payload."""
        self.last_call_refreshed_token = False
        if self._access_token is None:
            self.login()
        safe = method == "GET"
        token = self._access_token
        try:
            return self._send(method, path, action=action, params=params, json=json, safe=safe)
        except RemoteAuthError as exc:
            if exc.status != 401:  # 403: a permission, which a new token does not change
                raise
        self._reauthenticate(token)
        self.last_call_refreshed_token = True
        self.token_refreshes += 1
        try:
            return self._send(method, path, action=action, params=params, json=json, safe=safe)
        except RemoteAuthError as exc:
            raise RemoteAuthError(
                f"WineDirect refused a freshly issued access token for {action} ({self._api_message(exc)}). "
                "The API login may lack permission for this call.", status=exc.status, body=exc.body,
            ) from exc

    def _send(self, method, path, *, action, params=None, json=None, safe, token=True):
        attempt = 0
        while True:
            headers = {"Authorization": f"Bearer {self._access_token}"} if token else None
            try:
                response = self.http.request(method, path, params=params, json=json, headers=headers)
            except RemoteRateLimited as exc:
                wait = exc.retry_after if exc.retry_after is not None else self.backoff * 2 ** attempt
                if attempt >= self.max_retries or wait > self.max_retry_wait:
                    raise RemoteRateLimited(
                        f"WineDirect is limiting our request rate ({action}); it asks to retry in {wait:g} s.",
                        retry_after=wait, status=exc.status, body=exc.body) from exc
                attempt += 1
                self._sleep(wait)
                continue
            except TransientRemoteError:
                if not safe or attempt >= self.max_retries:
                    raise
                self._sleep(self.backoff * 2 ** attempt)
                attempt += 1
                continue
            except RemoteAuthError:
                raise
            except RemoteRejected as exc:
                raise RemoteRejected(f"WineDirect refused {action}: {self._api_message(exc)}",
                                     status=exc.status, body=exc.body,
                                     code="not_found" if exc.status == 404 else None) from exc
            return self._payload(response, action)

    @staticmethod
    def _api_message(exc):
        try:
            message = jsonlib.loads(exc.body or "").get("message")
        except (ValueError, AttributeError):
            message = None
        return message or f"HTTP {exc.status}"

    @staticmethod
    def _payload(response, action):
        try:
            envelope = response.json()
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict) or "isSuccess" not in envelope:
            raise RemoteUnavailable(f"WineDirect sent an unexpected answer to {action} (not its JSON envelope)",
                                    status=response.status_code, body=response.text[:2000])
        if not envelope["isSuccess"]:
            raise RemoteRejected(f"WineDirect refused {action}: {envelope.get('message') or 'no reason given'}",
                                 status=response.status_code, body=response.text[:2000])
        return envelope.get("payload")

    # -- account -------------------------------------------------------------------------
    def test_connection(self):
        try:
            self.login()
            warehouses = self.list_warehouses()
        except (RemoteAuthError, RemoteRejected, TransientRemoteError) as exc:
            return ConnectionCheck(False, exc.message)
        names = ", ".join(w.name for w in warehouses)
        return ConnectionCheck(True, f"Connected to WineDirect account {self.account_number} ({names})", warehouses)

    def list_warehouses(self):
        rows = self._call("GET", c.WAREHOUSES_PATH, action="the warehouse list",
                          params={"accountNumber": self.account_number})
        return [Warehouse(r["warehouseCode"], r.get("warehouseName"), r.get("city"), r.get("stateCode"))
                for r in rows or []]

    # -- products ------------------------------------------------------------------------
    def get_product(self, sku):
        path = c.PRODUCT_PATH.format(supplier_id=quote(self.supplier_id, safe=""), sku=quote(sku, safe=""))
        try:
            payload = self._call("GET", path, action=f"the product lookup of {sku}")
        except RemoteRejected as exc:
            if exc.status == 404:
                return None
            raise
        return _product_from_header(payload["header"])

    def upsert_product(self, product):
        existing = self.get_product(product.sku)
        if existing == product:
            return ProductResult(product.sku, "unchanged")
        method = "POST" if existing is None else c.WINE_SKU_UPDATE_METHOD
        verb = "creation" if existing is None else "update"
        wine_direct_sku = self._call(method, c.WINE_SKU_PATH, action=f"the {verb} of product {product.sku}",
                                     json=self._product_body(product))
        return ProductResult(product.sku, "created" if existing is None else "updated", wine_direct_sku)

    def upsert_products(self, products):
        results = []
        for product in products:
            try:
                results.append(self.upsert_product(product))
            except RemoteRejected as exc:
                results.append(ProductResult(product.sku, "failed", error=exc.message))
        return results

    def _product_body(self, product):
        body = {
            "supplierId": self.supplier_id, "sku": product.sku, "brandName": product.brand,
            "fancifulName": product.name, "varietal": product.varietal, "appellation": product.appellation,
            "bottleSize": str(product.bottle_size_ml) if product.bottle_size_ml is not None else None,
            "caseQuantity": product.case_quantity, "srp": _money(product.retail_price),
            "alcoholType": product.alcohol_type, "alcoholPercentage": _money(product.alcohol_percent),
            "vintage": product.vintage, "regionOfOrigin": product.region_of_origin,
            "vineyardDesignation": product.vineyard_designation, "colaNumber": product.cola_number,
            "countryOfOrigin": "US",
        }
        return {key: value for key, value in body.items() if value is not None}

    # -- inventory -----------------------------------------------------------------------
    def get_inventory(self, warehouse_code=None, sku=None):
        """Sellable stock rows; WineDirect ignores warehouseCode when sku is given, so we filter."""
        params = {"accountNumber": self.account_number, "warehouseCode": warehouse_code, "sku": sku}
        rows = self._call("GET", c.SELLABLE_INVENTORY_PATH, action="the inventory read",
                          params={k: v for k, v in params.items() if v})
        levels = [InventoryLevel(
            warehouse_code=r["warehouseCode"], warehouse_name=r.get("warehouseName"), sku=r["sku"],
            sub_inventory=r.get("subInventoryCode"), on_hand=r.get("qtyOnHand") or 0,
            committed=r.get("qtyOnOrders") or 0, available=r.get("qtyAvailableToSell") or 0,
        ) for r in rows or []]
        return [level for level in levels if not warehouse_code or level.warehouse_code == warehouse_code]

    # -- orders --------------------------------------------------------------------------
    def submit_orders(self, orders, *, batch_number=None, check_existing=True):
        """Submit orders in batches. With ``check_existing`` (the default) every number is looked
        up first and the ones WineDirect already has are not sent again.

        A timeout on submission raises `RemoteTimeout`: the orders may or may not have been
        received, so call again (the check finds the received ones); never resubmit unchecked.
        Orders take time to become visible on the real API (up to about 15 minutes), so a
        retry should wait for that long before trusting "not found".
        """
        numbers = [order.order_number for order in orders]
        if len(set(numbers)) != len(numbers):
            raise ValueError("the same order number appears twice in one submission")
        already = {}
        if check_existing:
            for number in numbers:
                header = self.find_order(number)
                if header is not None:
                    already[number] = header
        pending = [order for order in orders if order.order_number not in already]
        result = SubmitResult([], already, [], batch_number)
        for start in range(0, len(pending), c.MAX_ORDERS_PER_SUBMIT):
            chunk = pending[start:start + c.MAX_ORDERS_PER_SUBMIT]
            body = {"accountNumber": self.account_number, "batchNumber": batch_number,
                    "orders": [_order_body(order) for order in chunk]}
            first, last = chunk[0].order_number, chunk[-1].order_number
            receipt = self._call("POST", c.SUBMIT_ORDERS_PATH, action=f"the submission of orders {first}..{last}",
                                 json={k: v for k, v in body.items() if v is not None}) or {}
            result.submitted.extend(order.order_number for order in chunk)
            result.notifications.extend(n.get("message") for n in receipt.get("notifications") or [])
            result.is_warning = result.is_warning or bool(receipt.get("isWarning"))
        return result

    def find_order(self, order_number):
        path = c.ORDER_PATH.format(order_number=quote(order_number, safe=""))
        try:
            row = self._call("GET", path, action=f"the lookup of order {order_number}")
        except RemoteRejected as exc:
            if exc.status == 404:
                return None
            raise
        return _header(row)

    def get_order_status(self, order_number, include_shipments=True):
        path = c.ORDER_DETAIL_PATH.format(account_number=quote(self.account_number, safe=""),
                                          order_number=quote(order_number, safe=""))
        try:
            detail = self._call("GET", path, action=f"the status read of order {order_number}")
        except RemoteRejected as exc:
            if exc.status == 404:
                raise RemoteRejected(
                    f"WineDirect has no order {order_number} (yet): a submitted order can take up to 15 minutes "
                    "to appear.", status=404, body=exc.body, code="not_found") from exc
            raise
        header, holds, messages = detail["header"], detail.get("holds") or [], detail.get("messages") or []
        status = OrderStatus(
            order_number=header["orderNumber"], wine_direct_order_number=header["wineDirectOrderNumber"],
            status_code=header["orderStatusCode"], status_name=header.get("orderStatusName"),
            state=_state_of(header["orderStatusCode"]), reason=_reason(header, holds, messages),
            is_cancellable=bool(header.get("isCancellable")),
            requested_ship_date=_parse_date(header.get("requestedShipDate")),
            holds=[h.get("holdName") for h in holds], messages=[m.get("message") for m in messages],
        )
        if include_shipments:
            status.shipments = self.list_shipments(order_number=order_number)
        return status

    def cancel_order(self, order_number, rename_order=False):
        """Cancel (a soft delete). ``rename_order`` frees the number for a later resubmission."""
        path = c.CANCEL_ORDER_PATH.format(account_number=quote(self.account_number, safe=""),
                                          order_number=quote(order_number, safe=""))
        payload = self._call("DELETE", path, action=f"the cancellation of order {order_number}",
                             params={"renameOrder": "true" if rename_order else "false"})
        return list(payload or [])

    # -- shipments -----------------------------------------------------------------------
    def list_shipments(self, order_number=None, start=None, end=None):
        """By order number, or by ship date window (``start``/``end`` datetimes), not both."""
        if bool(order_number) == bool(start):
            raise ValueError("give either an order number or a start time, not both")
        params = {"accountNumber": self.account_number}
        if order_number:
            params["orderNumber"] = order_number
        else:
            params["searchStartDate"] = _pacific(start)
            params["searchEndDate"] = _pacific(end or datetime.now(timezone.utc))
        rows = self._call("GET", c.SHIPMENTS_PATH, action="the shipment list", params=params)
        return [_shipment(row) for row in rows or []]

    def get_shipment(self, shipment_id):
        path = c.SHIPMENT_PATH.format(account_number=quote(self.account_number, safe=""),
                                      shipment_id=quote(str(shipment_id), safe=""))
        return _shipment(self._call("GET", path, action=f"the read of shipment {shipment_id}"))

    def list_shipment_updates(self, since, until=None, shipment_id=None):
        """Shipments with tracking events between ``since`` and ``until`` (default: now).

        The window is sent in Pacific time to the minute, so events from the minute of
        ``since`` can come back again: deduplicate on (shipment_id, event time, description).
        """
        params = {"accountNumber": self.account_number, "searchStartDate": _pacific(since),
                  "searchEndDate": _pacific(until or datetime.now(timezone.utc))}
        if shipment_id:
            params["shipmentId"] = shipment_id
        rows = self._call("GET", c.SHIPMENT_UPDATES_PATH, action="the shipment updates read", params=params)
        return [_shipment_update(row) for row in rows or []]
