"""A fake of the WineDirect Fulfillment (WD-FS) REST API, built from `shared/contracts/wine/REPORT.md`.

Every answer is the WD-FS envelope ``{"isSuccess": bool, "message": str|None, "payload": ...}``.
Paths, field names and messages come from `plugins/winedirect/contract.py` (which marks what is
verified and what is a [PROPOSAL]).

What it fakes (all need ``Authorization: Bearer <accessToken>`` except the token calls):

    POST   /api/v1/AccessToken                   {username, password} -> accessToken, refreshToken, expiresIn
    POST   /api/v1/AccessToken/Refresh           {refreshToken} -> a new pair (the old refresh token dies)
    GET    /api/v1/Warehouses?accountNumber=     the account's warehouses (GLW WDI PSO SMA SHW DAL)
    POST   /api/v1/Products/Skus/Wine            create a wine SKU (validated; a duplicate SKU is refused)
    PUT    /api/v1/Products/Skus/Wine            update one (same body)
    GET    /api/v1/Products/{supplierId}/{sku}   product detail {header, sellingInfos, ptoInfos, bomInventories}
    GET    /api/v1/Inventory/Sellable            per warehouse and subinventory: qtyOnHand, qtyOnOrders,
                                                 qtyAvailableToSell/ToPromise; ``sku`` ignores warehouseCode
    GET    /api/v1/Inventory/Owned               ?supplierId= and warehouseCode OR sku (both: 400)
    POST   /api/v1/Orders/SubmitOrders           batch; returns a queue receipt, orders appear later
    GET    /api/v1/Orders                        list (30-day default window, closed ones need includeClosed)
    GET    /api/v1/Orders/{orderNumber}          header row (our number or WineDirect's)
    GET    /api/v1/Orders/Detail/{acct}/{n}      {header, holds[], messages[]}
    DELETE /api/v1/Orders/{acct}/{n}?renameOrder refused once fulfilling or shipped
    GET    /api/v1/Shipments                     ?accountNumber= and a date range OR orderNumber
    GET    /api/v1/Shipments/{acct}/{shipmentId} one shipment with detail
    GET    /api/v1/Shipments/Updates             tracking events in a Pacific-time window

Order life: submitted orders are queued and become visible after ``visibility_delay`` seconds in
status PROCESSING. Processing (the control route, or automatically with ``auto_process``) then
applies WineDirect's rules: unknown SKU, unconfigured service level, missing ship-to fields or a
duplicate order number -> NEEDING_ACTION with a message; short stock in the pool (CLUB orders draw
from the CLUB subinventory) -> ON_HOLD with the hold "Insufficient Inventory"; otherwise accepted
(RELEASED, CLUB orders WAITING_TO_BE_RELEASED, a future requestedShipDate FUTURE_SHIP_DATE) with the
stock committed (qtyOnOrders). There is no duplicate protection: a second submission of the same
number creates a second order. Shipping moves committed stock out of on hand.

Control routes (no auth), under /_sandbox/winedirect/:

    GET  state                         counts, tokens, settings
    POST reset                         {config?} forget everything, start again with this config
    POST products                      seed a product directly (same body as the API)
    POST inventory                     {warehouseCode, sku, onHand, subInventoryCode?} set on-hand stock
    GET  inventory                     every stock row
    GET  orders[?orderNumber=]         every order record, duplicates included
    POST orders/process                apply the rules to every visible PROCESSING order
    POST orders/<n>/accept             force acceptance (commits stock even when short)
    POST orders/<n>/reject             {reason: "out_of_stock" | "invalid_address" | any text}
    POST orders/<n>/advance            {status?, signedForBy?, reason?} next shipment status, or the one given
    POST tokens/expire                 {refresh: bool} expire every access (and refresh) token now
    POST answer-delay                  {path, seconds, count, method?} answer late AFTER doing the work
                                       (a lost answer; the harness's "hang" never reaches the app)
    POST rate-limit                    {limit, window} or {} to switch the throttle off

``<n>`` is a WineDirect order number or our order number (then the earliest live record).
The same operations are Python methods on ``app.sandbox`` (a `WineDirectSandbox`).

Where it departs from the real API: everything marked [PROPOSAL] in contract.py (token calls,
warehouse/inventory/shipment paths, product update by PUT, order status codes, the batch limit,
error wording, the 429 throttle); acceptance is instant once triggered instead of taking up to
15 minutes; returned shipments do not restock; weather holds, BulkOrderUpdate, order PATCH,
transfers and invoices are not faked; no pagination (none is documented).
"""

import itertools
import math
import secrets
import threading
import time
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import Flask, jsonify, request

from . import contract as c

DEFAULT_CONFIG = {
    "username": "wd-api-user",
    "password": "wd-api-password",
    "account_number": "ACCT1001",
    "account_name": "Sandbox Cellars",
    "supplier_id": "SUP2001",
    "supplier_name": "Sandbox Cellars LLC",
    "token_ttl": 3600,
    "refresh_token_ttl": 86400,
    "visibility_delay": 0.0,
    "auto_process": False,
    "default_warehouse": "PSO",
    "account_warehouses": list(c.WAREHOUSES),
    "service_levels": list(c.SERVICE_LEVELS),
    "rate_limit": None,  # {"limit": n, "window": seconds}
}
SHIP_TO_REQUIRED = ("address1", "city", "stateOrProvince", "postalCode")
CARRIERS = {
    "UPS": ("UPS", "UPS", "https://www.ups.com/track?tracknum={}"),
    "FDX": ("FDX", "FedEx", "https://www.fedex.com/fedextrack/?trknbr={}"),
}


class SandboxError(Exception):
    """Answered as the WD-FS error envelope with this HTTP status."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def _utcnow():
    return datetime.now(timezone.utc)


def _iso(moment):
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _date_iso(day):
    return f"{day.isoformat()}T00:00:00Z" if day else None


def _parse_ship_date(value):
    """requestedShipDate: '2023-12-15' or '2023-11-07T05:31:56Z'."""
    text = str(value)
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _parse_day(value, default):
    if not value:
        return default
    day = _parse_ship_date(value)
    if day is None:
        raise SandboxError(c.VALIDATION_HTTP_STATUS, f"'{value}' is not a valid date")
    return day


def _parse_pacific(value, end_of_range):
    """A search window bound: 'YYYY-MM-DDTHH:mm' or 'YYYY-MM-DD', Pacific time, as UTC."""
    pacific = ZoneInfo(c.PACIFIC_TIMEZONE)
    for fmt, width in ((c.PACIFIC_DATETIME_FORMAT, timedelta(minutes=1)), (c.PACIFIC_DATE_FORMAT, timedelta(days=1))):
        try:
            local = datetime.strptime(value, fmt).replace(tzinfo=pacific)
        except (TypeError, ValueError):
            continue
        if end_of_range:
            local = local + width - timedelta(microseconds=1)
        return local.astimezone(timezone.utc)
    raise SandboxError(c.VALIDATION_HTTP_STATUS,
                       f"'{value}' is not a valid date; use YYYY-MM-DD or YYYY-MM-DDTHH:mm (Pacific time)")


def _is_whole(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text_error(body, name, required, min_len=1, max_len=None):
    value = body.get(name)
    if value in (None, ""):
        return f"{name} is required" if required else None
    if not isinstance(value, str):
        return f"{name} must be a string"
    if len(value) < min_len:
        return f"{name} must be at least {min_len} characters"
    if max_len and len(value) > max_len:
        return f"{name} must be at most {max_len} characters"
    return None


def validate_wine_sku(body):
    """The CreateWineRequest rules (REPORT 1.9). Returns a list of problems."""
    problems = [
        _text_error(body, "supplierId", True, 2),
        _text_error(body, "sku", True, 2),
        _text_error(body, "brandName", True, 1, 100),
        _text_error(body, "appellation", True, 1, 100),
        _text_error(body, "fancifulName", False, 1, 100),
        _text_error(body, "varietal", False, 1, 100),
        _text_error(body, "vineyardDesignation", False, 1, 150),
        _text_error(body, "colaNumber", False, 1, 25),
        _text_error(body, "vintage", False, 1, 25),
    ]
    case_quantity = body.get("caseQuantity")
    if case_quantity is None:
        problems.append("caseQuantity is required")
    elif not _is_whole(case_quantity) or case_quantity < 1:
        problems.append("caseQuantity must be a positive whole number")
    srp = body.get("srp")
    if srp is None:
        problems.append("srp is required")
    elif not _is_number(srp) or srp < 0:
        problems.append("srp must be a number of at least 0")
    if body.get("alcoholType") is None:
        problems.append("alcoholType is required")
    elif body["alcoholType"] not in c.ALCOHOL_TYPES:
        problems.append(f"alcoholType must be one of {', '.join(c.ALCOHOL_TYPES)}")
    alcohol = body.get("alcoholPercentage")
    if alcohol is None:
        problems.append("alcoholPercentage is required")
    elif not _is_number(alcohol) or not 0 < alcohol < 100:
        problems.append("alcoholPercentage must be a number between 0 and 100")
    bottle = body.get("bottleSize")
    if bottle in (None, ""):
        problems.append("bottleSize is required")
    elif not isinstance(bottle, str) or not bottle.isdigit():
        problems.append("bottleSize must be the bottle size in ml, as a string of digits")
    if body.get("countryOfOrigin") not in (None, "", "US"):
        problems.append("countryOfOrigin must be US")
    return [p for p in problems if p]


def validate_order(order, index, account_warehouses):
    where = f"orders[{index}]"
    if not isinstance(order, dict):
        return [f"{where} must be an object"]
    problems = []
    number = order.get("customerOrderId")
    if not isinstance(number, str) or not 1 <= len(number) <= 80:
        problems.append(f"{where}.customerOrderId is required (1-80 characters)")
    if order.get("orderType") not in c.ORDER_TYPES:
        problems.append(f"{where}.orderType must be one of {', '.join(c.ORDER_TYPES)}")
    warehouse = order.get("warehouseCode")
    if warehouse not in (None, "") and warehouse not in account_warehouses:
        problems.append(f"{where}.warehouseCode {warehouse} is not a warehouse of this account")
    if order.get("requestedShipDate") not in (None, "") and _parse_ship_date(order["requestedShipDate"]) is None:
        problems.append(f"{where}.requestedShipDate is not a valid date")
    if not isinstance(order.get("shipToAddress"), dict):
        problems.append(f"{where}.shipToAddress is required")
    lines = order.get("lineItems")
    if not isinstance(lines, list) or not lines:
        problems.append(f"{where}.lineItems must hold at least one line")
        return problems
    for n, line in enumerate(lines):
        if not isinstance(line, dict) or not isinstance(line.get("sku"), str) or not line["sku"]:
            problems.append(f"{where}.lineItems[{n}].sku is required")
        elif not _is_whole(line.get("quantity")) or line["quantity"] < 1:
            problems.append(f"{where}.lineItems[{n}].quantity must be a positive whole number")
    return problems


class WineDirectSandbox:
    """The fake's state and rules. Every public method is thread-safe."""

    def __init__(self, config=None):
        self.config = {**DEFAULT_CONFIG, **(config or {})}
        self.lock = threading.RLock()
        self.products = {}  # sku -> product header dict
        self.stock = {}  # (warehouseCode, sku, subInventoryCode) -> {"on_hand": int, "committed": int}
        self.orders = []  # every order record, in submission order (duplicates included)
        self.shipments = {}  # shipmentId -> shipment record
        self.access_tokens = {}  # token -> expiry (epoch seconds)
        self.refresh_tokens = {}
        self.answer_delays = []
        self.rate_limit = self.config["rate_limit"]
        self._recent_calls = []
        self._sequence = itertools.count(1)

    def reset(self, config=None):
        """Forget everything and start again with ``config`` (the app keeps serving this object)."""
        fresh = WineDirectSandbox(config)
        with self.lock:
            self.__dict__.update({name: value for name, value in fresh.__dict__.items() if name != "lock"})

    # -- tokens --------------------------------------------------------------------------
    def login(self, username, password):
        with self.lock:
            if not (secrets.compare_digest(str(username or ""), self.config["username"])
                    and secrets.compare_digest(str(password or ""), self.config["password"])):
                raise SandboxError(401, c.MESSAGE_BAD_LOGIN)
            return self._issue_tokens()

    def refresh(self, refresh_token):
        with self.lock:
            expiry = self.refresh_tokens.pop(str(refresh_token or ""), None)
            if expiry is None or expiry <= time.time():
                raise SandboxError(401, c.MESSAGE_BAD_REFRESH)
            return self._issue_tokens()

    def _issue_tokens(self):
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        now = time.time()
        self.access_tokens[access] = now + self.config["token_ttl"]
        self.refresh_tokens[refresh] = now + self.config["refresh_token_ttl"]
        return {
            c.ACCESS_TOKEN_FIELD: access,
            c.REFRESH_TOKEN_FIELD: refresh,
            c.EXPIRES_IN_FIELD: self.config["token_ttl"],
            c.EXPIRATION_FIELD: _iso(datetime.fromtimestamp(now + self.config["token_ttl"], timezone.utc)),
        }

    def check_token(self, authorization):
        scheme, _, token = (authorization or "").partition(" ")
        with self.lock:
            expiry = self.access_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expiry is None:
            raise SandboxError(401, c.MESSAGE_UNAUTHORIZED)
        if expiry <= time.time():
            raise SandboxError(401, c.MESSAGE_TOKEN_EXPIRED)

    def expire_tokens(self, refresh=False):
        with self.lock:
            past = time.time() - 1
            self.access_tokens = {token: past for token in self.access_tokens}
            if refresh:
                self.refresh_tokens = {token: past for token in self.refresh_tokens}

    # -- throttle and late answers -------------------------------------------------------
    def set_rate_limit(self, limit=None, window=None):
        with self.lock:
            self.rate_limit = {"limit": int(limit), "window": float(window)} if limit else None
            self._recent_calls = []

    def throttle_wait(self):
        """Seconds the caller must wait, or 0 when the call may proceed (and is counted)."""
        with self.lock:
            if not self.rate_limit:
                return 0
            now = time.time()
            window = self.rate_limit["window"]
            self._recent_calls = [t for t in self._recent_calls if t > now - window]
            if len(self._recent_calls) >= self.rate_limit["limit"]:
                return max(1, math.ceil(self._recent_calls[0] + window - now))
            self._recent_calls.append(now)
            return 0

    def add_answer_delay(self, path, seconds, count=1, method=None):
        with self.lock:
            self.answer_delays.append({"path": path, "seconds": float(seconds), "count": int(count),
                                       "method": method.upper() if method else None})

    def take_answer_delay(self, method, path):
        with self.lock:
            for delay in self.answer_delays:
                if path.startswith(delay["path"]) and delay["method"] in (None, method):
                    delay["count"] -= 1
                    if delay["count"] <= 0:
                        self.answer_delays.remove(delay)
                    return delay["seconds"]
        return 0

    # -- account checks ------------------------------------------------------------------
    def check_account(self, account_number):
        if not account_number:
            raise SandboxError(c.VALIDATION_HTTP_STATUS, "accountNumber is required")
        if account_number != self.config["account_number"]:
            raise SandboxError(c.VALIDATION_HTTP_STATUS,
                               c.MESSAGE_ACCOUNT_NOT_AVAILABLE.format(account_number=account_number))

    def check_supplier(self, supplier_id):
        if not supplier_id:
            raise SandboxError(c.VALIDATION_HTTP_STATUS, "supplierId is required")
        if supplier_id != self.config["supplier_id"]:
            raise SandboxError(c.VALIDATION_HTTP_STATUS,
                               c.MESSAGE_SUPPLIER_NOT_AVAILABLE.format(supplier_id=supplier_id))

    def warehouses(self):
        return [{"warehouseCode": code, **c.WAREHOUSES[code]} for code in self.config["account_warehouses"]]

    # -- products ------------------------------------------------------------------------
    def save_product(self, body, create):
        problems = validate_wine_sku(body)
        if problems:
            raise SandboxError(c.VALIDATION_HTTP_STATUS, "Validation failed: " + "; ".join(problems))
        self.check_supplier(body["supplierId"])
        with self.lock:
            existing = self.products.get(body["sku"])
            if create and existing:
                raise SandboxError(c.VALIDATION_HTTP_STATUS, c.MESSAGE_DUPLICATE_SKU.format(sku=body["sku"]))
            if not create and not existing:
                raise SandboxError(c.NOT_FOUND_HTTP_STATUS, c.MESSAGE_PRODUCT_NOT_FOUND.format(sku=body["sku"]))
            wine_direct_sku = existing["wineDirectSku"] if existing else f"WD{next(self._sequence):07d}"
            self.products[body["sku"]] = self._product_header(body, wine_direct_sku)
            return wine_direct_sku

    def _product_header(self, body, wine_direct_sku):
        description = " ".join(str(p) for p in (body.get("vintage"), body["brandName"], body.get("fancifulName"),
                                                body.get("varietal"), f"{body['bottleSize']}ml") if p)
        return {
            "supplierId": body["supplierId"], "wineDirectSku": wine_direct_sku, "sku": body["sku"],
            "upcCode": None, "description": description, "itemTypeCode": "WINE", "itemTypeName": "Wine",
            "brandName": body["brandName"], "fancifulName": body.get("fancifulName"),
            "appellation": body["appellation"], "varietal": body.get("varietal"), "vintage": body.get("vintage"),
            "alcoholTypeCode": body["alcoholType"], "alcoholPercentage": str(body["alcoholPercentage"]),
            "bottleSizeMl": body["bottleSize"], "unitsPerCase": str(body["caseQuantity"]),
            "vineyardDesignation": body.get("vineyardDesignation"), "ttbApprovalNumber": body.get("colaNumber"),
            "countryOfOriginCode": "US", "countryOfOriginName": "United States",
            "regionOfOrigin": body.get("regionOfOrigin"), "weight": None, "unitsOfMeasure": "EA",
            "isAvailableForSourcing": True, "retailPrice": body["srp"],
            "supplierName": self.config["supplier_name"], "deactivationStatus": "NotSet",
        }

    def product_detail(self, supplier_id, sku):
        self.check_supplier(supplier_id)
        with self.lock:
            header = self.products.get(sku)
            if header is None:
                raise SandboxError(c.NOT_FOUND_HTTP_STATUS, c.MESSAGE_PRODUCT_NOT_FOUND.format(sku=sku))
            selling = {"sellerAccountNumber": self.config["account_number"], "sellerName": self.config["account_name"],
                       "wineDirectSku": header["wineDirectSku"], "sku": sku, "description": header["description"],
                       "retailPrice": header["retailPrice"], "supplierName": header["supplierName"],
                       "supplierPayment": None}
            return {"isOwner": True, "itemTypeCode": "NotSet", "header": dict(header), "sellingInfos": [selling],
                    "ptoInfos": [], "bomInventories": []}

    # -- inventory -----------------------------------------------------------------------
    def seed_inventory(self, warehouse_code, sku, on_hand, sub_inventory=c.SUBINVENTORY_PRIMARY):
        if warehouse_code not in c.WAREHOUSES:
            raise SandboxError(400, f"Unknown warehouse {warehouse_code}")
        if not _is_whole(on_hand) or on_hand < 0:
            raise SandboxError(400, "onHand must be a whole number of at least 0")
        with self.lock:
            row = self.stock.setdefault((warehouse_code, sku, sub_inventory), {"on_hand": 0, "committed": 0})
            row["on_hand"] = on_hand

    def inventory_rows(self, warehouse_code=None, sku=None):
        with self.lock:
            rows = []
            for (warehouse, item, sub), level in sorted(self.stock.items()):
                if sku is not None:
                    if item != sku:  # documented quirk: a sku ignores every other filter
                        continue
                elif warehouse_code and warehouse != warehouse_code:
                    continue
                rows.append(self._inventory_row(warehouse, item, sub, level))
            return rows

    def _inventory_row(self, warehouse, sku, sub, level):
        product = self.products.get(sku, {})
        available = max(0, level["on_hand"] - level["committed"])
        return {"warehouseCode": warehouse, "warehouseName": c.WAREHOUSES[warehouse]["warehouseName"], "sku": sku,
                "wineDirectSku": product.get("wineDirectSku"), "description": product.get("description"),
                "subInventoryCode": sub, "qtyOnHand": level["on_hand"], "qtyOnOrders": level["committed"],
                "qtyAvailableToSell": available, "qtyAvailableToPromise": available}

    def _available(self, warehouse, sku, sub):
        level = self.stock.get((warehouse, sku, sub))
        return level["on_hand"] - level["committed"] if level else 0

    # -- orders: submission --------------------------------------------------------------
    def submit_orders(self, body):
        if not isinstance(body, dict):
            raise SandboxError(c.VALIDATION_HTTP_STATUS, "A request body is required")
        self.check_account(body.get("accountNumber"))
        orders = body.get("orders")
        if not isinstance(orders, list) or not orders:
            raise SandboxError(c.VALIDATION_HTTP_STATUS, "orders must hold at least one order")
        if len(orders) > c.MAX_ORDERS_PER_SUBMIT:
            raise SandboxError(c.VALIDATION_HTTP_STATUS,
                               f"A batch can hold at most {c.MAX_ORDERS_PER_SUBMIT} orders")
        batch = body.get("batchNumber") or _utcnow().strftime("%Y%m%d%H%M%S%f")
        if len(str(batch)) > 240:
            raise SandboxError(c.VALIDATION_HTTP_STATUS, "batchNumber must be at most 240 characters")
        problems = [p for i, order in enumerate(orders)
                    for p in validate_order(order, i, self.config["account_warehouses"])]
        if problems:
            raise SandboxError(c.VALIDATION_HTTP_STATUS, "Validation failed: " + "; ".join(problems))
        with self.lock:
            records = [self._new_order(order, str(batch)) for order in orders]
            self.orders.extend(records)
        notifications = [{"message": f"Order {r['orderNumber']} was queued in batch {batch}", "kind": "NotSet",
                          "sourceOfNotification": "SubmitOrders"} for r in records]
        return {"notifications": notifications, "isSuccess": True, "isWarning": False}

    def _new_order(self, order, batch):
        order_type = order["orderType"]
        sub_inventory = order.get("subInventoryCode") or (
            c.SUBINVENTORY_CLUB if order_type == "CLUB" else c.SUBINVENTORY_PRIMARY)
        now = _utcnow()
        return {
            "wineDirectOrderNumber": f"WD{next(self._sequence):08d}",
            "orderNumber": order["customerOrderId"],
            "submittedNumber": order["customerOrderId"],
            "batchNumber": batch,
            "orderTypeCode": order_type,
            "warehouseCode": order.get("warehouseCode") or self.config["default_warehouse"],
            "subInventoryCode": sub_inventory,
            "serviceLevel": order.get("shippingPriority"),
            "requestedShipDate": _parse_ship_date(order.get("requestedShipDate") or ""),
            "isOnSitePurchase": str(order.get("isOnSitePurchase")).lower() == "true",
            "shipTo": dict(order["shipToAddress"]),
            "notificationEmail": order.get("notificationEmail"),
            "giftMessage": order.get("giftMessage"),
            "shippingInstructions": order.get("shippingInstructions"),
            "packingSlipCode": order.get("packingSlipCode"),
            "lines": [{"lineNumber": str(line.get("lineNumber") or n + 1), "sku": line["sku"],
                       "quantity": line["quantity"], "unitPrice": line.get("unitPrice")}
                      for n, line in enumerate(order["lineItems"])],
            "receivedAt": now,
            "visibleAt": time.time() + float(self.config["visibility_delay"]),
            "statusCode": c.STATUS_PROCESSING,
            "holds": [],
            "messages": [self._message("INFO", f"Received in batch {batch}")],
            "committed": False,
            "shipmentIds": [],
        }

    @staticmethod
    def _message(kind, text):
        return {"messageType": kind, "messageTime": _iso(_utcnow()), "message": text}

    def _visible_orders(self):
        now = time.time()
        return [o for o in self.orders if o["visibleAt"] <= now]

    def auto_process_if_configured(self):
        if self.config["auto_process"]:
            self.process_orders()

    # -- orders: acceptance --------------------------------------------------------------
    def process_orders(self):
        """Apply WineDirect's rules to every visible PROCESSING order; returns the codes given."""
        with self.lock:
            results = {}
            for order in self._visible_orders():
                if order["statusCode"] == c.STATUS_PROCESSING:
                    self._evaluate(order)
                    results[order["wineDirectOrderNumber"]] = order["statusCode"]
            return results

    def _evaluate(self, order):
        reasons = self._needing_action_reasons(order)
        if reasons:
            self._needs_action(order, reasons)
        elif not self._has_stock(order):
            self._hold_for_stock(order)
        else:
            self._accept(order)

    def _needing_action_reasons(self, order):
        reasons = []
        earlier = [o for o in self.orders if o["orderNumber"] == order["orderNumber"]
                   and o["wineDirectOrderNumber"] < order["wineDirectOrderNumber"]]
        if earlier:
            reasons.append(c.MESSAGE_DUPLICATE_ORDER.format(order_number=order["orderNumber"]))
        for line in order["lines"]:
            if line["sku"] not in self.products:
                reasons.append(c.MESSAGE_ITEM_NOT_SET_UP.format(sku=line["sku"]))
        if order["serviceLevel"] not in self.config["service_levels"]:
            reasons.append(c.MESSAGE_PRIORITY_NOT_CONFIGURED.format(service_level=order["serviceLevel"]))
        ship_to = order["shipTo"]
        missing = [f for f in SHIP_TO_REQUIRED if not ship_to.get(f)]
        if not (ship_to.get("lastName") or ship_to.get("companyName")):
            missing.append("lastName or companyName")
        if missing:
            reasons.append(c.MESSAGE_SHIP_TO_MISSING.format(fields=", ".join(missing)))
        return reasons

    def _quantities(self, order):
        totals = {}
        for line in order["lines"]:
            totals[line["sku"]] = totals.get(line["sku"], 0) + line["quantity"]
        return totals

    def _has_stock(self, order):
        return all(self._available(order["warehouseCode"], sku, order["subInventoryCode"]) >= qty
                   for sku, qty in self._quantities(order).items())

    def _needs_action(self, order, reasons):
        order["statusCode"] = c.STATUS_NEEDING_ACTION
        order["messages"].extend(self._message("ERROR", reason) for reason in reasons)

    def _hold_for_stock(self, order):
        order["statusCode"] = c.STATUS_ON_HOLD
        order["holds"].append({
            "holdStatus": "ACTIVE", "holdName": c.HOLD_INSUFFICIENT_INVENTORY,
            "holdDescription": f"Not enough stock in the {order['subInventoryCode']} subinventory at "
                               f"{order['warehouseCode']}",
            "expirationDate": None, "creationDate": _iso(_utcnow()), "holdComment": None, "releaseDate": None,
            "releaseReason": None, "releaseComment": None, "isDirectlyReleasable": False,
        })

    def _accept(self, order):
        for sku, qty in self._quantities(order).items():
            level = self.stock.setdefault((order["warehouseCode"], sku, order["subInventoryCode"]),
                                          {"on_hand": 0, "committed": 0})
            level["committed"] += qty
        order["committed"] = True
        if order["requestedShipDate"] and order["requestedShipDate"] > _utcnow().date():
            order["statusCode"] = c.STATUS_FUTURE_SHIP_DATE
        elif order["orderTypeCode"] == "CLUB":
            order["statusCode"] = c.STATUS_WAITING_TO_BE_RELEASED
        else:
            order["statusCode"] = c.STATUS_RELEASED
        order["messages"].append(self._message("INFO", "Order accepted"))

    def _release_commitment(self, order):
        if not order["committed"]:
            return
        for sku, qty in self._quantities(order).items():
            level = self.stock[(order["warehouseCode"], sku, order["subInventoryCode"])]
            level["committed"] -= qty
        order["committed"] = False

    def find_record(self, number):
        """A WineDirect order number, or our number (the earliest record still holding it)."""
        with self.lock:
            visible = self._visible_orders()
            for order in visible:
                if order["wineDirectOrderNumber"] == number:
                    return order
            for order in visible:
                if order["orderNumber"] == number:
                    return order
        return None

    def _pending_record(self, number):
        with self.lock:
            matches = [o for o in self._visible_orders()
                       if number in (o["wineDirectOrderNumber"], o["orderNumber"])
                       and o["statusCode"] == c.STATUS_PROCESSING]
        if not matches:
            raise SandboxError(409, f"No pending (PROCESSING) order {number}")
        return matches[0]

    def accept_order(self, number):
        with self.lock:
            order = self._pending_record(number)
            self._accept(order)
            return order["statusCode"]

    def reject_order(self, number, reason):
        with self.lock:
            order = self._pending_record(number)
            if reason == "out_of_stock":
                self._hold_for_stock(order)
            elif reason == "invalid_address":
                self._needs_action(order, [c.MESSAGE_SHIP_TO_INVALID.format(
                    detail="the carrier could not validate this address")])
            else:
                self._needs_action(order, [str(reason)])
            return order["statusCode"]

    # -- orders: reads -------------------------------------------------------------------
    def order_header(self, number):
        with self.lock:
            order = self.find_record(number)
            if order is None:
                raise SandboxError(c.NOT_FOUND_HTTP_STATUS, c.MESSAGE_ORDER_NOT_FOUND.format(order_number=number))
            return self._header_row(order)

    def list_orders(self, args):
        self.check_account(args.get("accountNumber"))
        today = _utcnow().date()
        start = _parse_day(args.get("searchStartDate"), today - timedelta(days=30))
        end = _parse_day(args.get("searchEndDate"), today)
        include_closed = str(args.get("includeClosed", "")).lower() == "true"
        filters = {"batchNumber": "batchNumber", "orderTypeCode": "orderTypeCode", "warehouseCode": "warehouseCode",
                   c.ORDER_STATUS_FILTER_PARAM: "statusCode"}
        with self.lock:
            rows = []
            for order in self._visible_orders():
                if not start <= order["receivedAt"].date() <= end:
                    continue
                if order["statusCode"] in c.CLOSED_STATUSES and not include_closed:
                    continue
                if any(args.get(param) and order[key] != args[param] for param, key in filters.items()):
                    continue
                if args.get("sku") and args["sku"] not in {line["sku"] for line in order["lines"]}:
                    continue
                rows.append(self._header_row(order))
            return rows

    def order_detail(self, account_number, number):
        self.check_account(account_number)
        with self.lock:
            order = self.find_record(number)
            if order is None:
                raise SandboxError(c.NOT_FOUND_HTTP_STATUS, c.MESSAGE_ORDER_NOT_FOUND.format(order_number=number))
            return {"header": self._detail_header(order), "holds": [dict(h) for h in order["holds"]],
                    "messages": [dict(m) for m in order["messages"]]}

    def _order_shipments(self, order):
        return [self.shipments[sid] for sid in order["shipmentIds"]]

    def _header_row(self, order):
        shipments = self._order_shipments(order)
        ship_dates = [s["shipDate"] for s in shipments]
        warehouse = c.WAREHOUSES[order["warehouseCode"]]
        ship_to = order["shipTo"]
        return {
            "accountNumber": self.config["account_number"], "supplierName": self.config["supplier_name"],
            "warehouseName": warehouse["warehouseName"], "warehouseCode": order["warehouseCode"],
            "wineDirectOrderNumber": order["wineDirectOrderNumber"], "orderNumber": order["orderNumber"],
            "orderTypeName": c.ORDER_TYPES[order["orderTypeCode"]], "orderTypeCode": order["orderTypeCode"],
            "batchNumber": order["batchNumber"], "orderedDate": _iso(order["receivedAt"]),
            "requestedDate": _date_iso(order["requestedShipDate"]),
            "shipmentCount": len(shipments),
            "returnCount": sum(1 for s in shipments if s["deliveryStatusCode"] == "RETURNED"),
            "holdCount": len(order["holds"]),
            "firstShippedDate": _iso(min(ship_dates)) if ship_dates else None,
            "lastShippedDate": _iso(max(ship_dates)) if ship_dates else None,
            "statusCode": order["statusCode"], "statusName": c.ORDER_STATUS_NAMES[order["statusCode"]],
            "firstHoldName": order["holds"][0]["holdName"] if order["holds"] else None,
            "carrierName": shipments[0]["carrierName"] if shipments else None,
            "notificationEmail": order["notificationEmail"],
            "shipToFirstName": ship_to.get("firstName"), "shipToLastName": ship_to.get("lastName"),
            "shipToCity": ship_to.get("city"), "shipToStateCode": ship_to.get("stateOrProvince"),
            "shipToPostalCode": ship_to.get("postalCode"), "shipToCompanyName": ship_to.get("companyName"),
            "packagingTypeCode": "STD", "packagingTypeName": "Standard",
        }

    def _detail_header(self, order):
        shipments = self._order_shipments(order)
        status = order["statusCode"]
        return {
            "accountNumber": self.config["account_number"], "customerName": self.config["account_name"],
            "warehouseCode": order["warehouseCode"],
            "warehouseName": c.WAREHOUSES[order["warehouseCode"]]["warehouseName"],
            "wineDirectOrderNumber": order["wineDirectOrderNumber"], "orderNumber": order["orderNumber"],
            "receivedDate": _iso(order["receivedAt"]), "creationDate": _iso(order["receivedAt"]),
            "customerOrderDate": _iso(order["receivedAt"]),
            "requestedShipDate": _date_iso(order["requestedShipDate"]),
            "fulfillmentDate": _iso(shipments[0]["shipDate"]) if shipments else None,
            "shippedDate": _iso(shipments[0]["shipDate"]) if shipments else None,
            "batchNumber": order["batchNumber"], "orderTypeCode": order["orderTypeCode"],
            "orderTypeName": c.ORDER_TYPES[order["orderTypeCode"]],
            "requestedServiceLevel": order["serviceLevel"], "plannedServiceLevel": order["serviceLevel"],
            "orderStatusCode": status, "orderStatusName": c.ORDER_STATUS_NAMES[status],
            "collapsedStatus": c.ORDER_STATUS_NAMES[status],
            "notificationEmail": order["notificationEmail"], "notificationPhone": None,
            "giftMessage": order["giftMessage"], "shippingInstructions": order["shippingInstructions"],
            "complianceRoute": None, "fulfillmentRoute": None,
            "packingSlipCode": order["packingSlipCode"], "packingSlipName": None,
            "isOnsitePurchase": order["isOnSitePurchase"], "isLineHaul": False,
            "isEditable": status in c.CANCELLABLE_STATUSES, "isCancellable": status in c.CANCELLABLE_STATUSES,
            "isBackOrdered": False, "hasInventoryHold": any(
                h["holdName"] == c.HOLD_INSUFFICIENT_INVENTORY for h in order["holds"]),
            "slaStatusCode": None, "slaStatusName": None, "slaDate": None,
            "notificationTemplateCode": None, "notificationTemplateName": None,
            "packagingTypeCode": "STD", "packagingTypeName": "Standard", "vasOrderPersonalizations": [],
        }

    # -- orders: cancel ------------------------------------------------------------------
    def cancel_order(self, account_number, number, rename_order):
        self.check_account(account_number)
        with self.lock:
            order = self.find_record(number)
            if order is None:
                raise SandboxError(c.NOT_FOUND_HTTP_STATUS, c.MESSAGE_ORDER_NOT_FOUND.format(order_number=number))
            if order["statusCode"] not in c.CANCELLABLE_STATUSES:
                raise SandboxError(c.CANCEL_REFUSED_HTTP_STATUS, c.MESSAGE_CANCEL_REFUSED)
            self._release_commitment(order)
            order["statusCode"] = c.STATUS_CANCELLED
            messages = [f"Order {order['orderNumber']} was cancelled"]
            if rename_order:  # frees the number for a later resubmission
                order["orderNumber"] = f"{order['orderNumber']}-X{order['wineDirectOrderNumber']}"
                messages.append(f"Order number renamed to {order['orderNumber']}")
            order["messages"].extend(self._message("INFO", m) for m in messages)
            return messages

    # -- shipments -----------------------------------------------------------------------
    def advance_order(self, number, status=None, signed_for_by=None, reason=None):
        """Move an accepted order to its next shipment status (or to ``status``)."""
        with self.lock:
            order = self.find_record(number)
            if order is None:
                raise SandboxError(404, c.MESSAGE_ORDER_NOT_FOUND.format(order_number=number))
            current = order["statusCode"]
            target = status or self._next_status(current)
            self._check_transition(current, target)
            if target == c.STATUS_FULFILLING:
                order["statusCode"] = target
                return target
            if target == "SHIPPED":
                self._ship(order)
            shipment = self.shipments[order["shipmentIds"][-1]]
            self._set_delivery_status(shipment, target, order, signed_for_by, reason)
            order["statusCode"] = target
            return target

    @staticmethod
    def _next_status(current):
        if current in c.SHIPMENT_STATUS_CHAIN[:-1]:
            return c.SHIPMENT_STATUS_CHAIN[c.SHIPMENT_STATUS_CHAIN.index(current) + 1]
        if current == "EXCEPTION":
            return "RETURNED"
        return "SHIPPED"

    @staticmethod
    def _check_transition(current, target):
        accepted = (c.STATUS_RELEASED, c.STATUS_WAITING_TO_BE_RELEASED, c.STATUS_FUTURE_SHIP_DATE)
        in_transit = ("SHIPPED", "IN_TRANSIT", c.STATUS_OUT_FOR_DELIVERY, "EXCEPTION")
        allowed = {
            c.STATUS_FULFILLING: accepted,
            "SHIPPED": accepted + (c.STATUS_FULFILLING,),
            "IN_TRANSIT": ("SHIPPED", "EXCEPTION"),
            c.STATUS_OUT_FOR_DELIVERY: ("SHIPPED", "IN_TRANSIT", "EXCEPTION"),
            "DELIVERED": in_transit,
            "EXCEPTION": ("SHIPPED", "IN_TRANSIT", c.STATUS_OUT_FOR_DELIVERY),
            "RETURNED": in_transit,
        }
        if current not in allowed.get(target, ()):
            raise SandboxError(409, f"An order in status {current} cannot move to {target}")

    def _ship(self, order):
        for sku, qty in self._quantities(order).items():
            level = self.stock.setdefault((order["warehouseCode"], sku, order["subInventoryCode"]),
                                          {"on_hand": 0, "committed": 0})
            level["on_hand"] = max(0, level["on_hand"] - qty)
            level["committed"] = max(0, level["committed"] - qty)
        order["committed"] = False
        number = next(self._sequence)
        carrier_key = "FDX" if (order["serviceLevel"] or "").startswith("FE") else "UPS"
        carrier_code, carrier_name, url = CARRIERS[carrier_key]
        tracking = f"1ZWD{number:014d}" if carrier_key == "UPS" else f"7{number:011d}"
        shipment_id = f"{number:09d}"
        self.shipments[shipment_id] = {
            "shipmentId": shipment_id, "order": order, "carrierCode": carrier_code, "carrierName": carrier_name,
            "trackingNumber": tracking, "trackingNumberUrl": url.format(tracking), "deliveryStatusCode": None,
            "shipDate": _utcnow(), "deliveredDate": None, "returnDate": None, "returnReason": None,
            "signedForBy": None, "events": [],
        }
        order["shipmentIds"].append(shipment_id)

    def _set_delivery_status(self, shipment, status, order, signed_for_by, reason):
        now = _utcnow()
        shipment["deliveryStatusCode"] = status
        warehouse = c.WAREHOUSES[order["warehouseCode"]]
        city, state = warehouse["city"], warehouse["stateCode"]
        description = c.ORDER_STATUS_NAMES[status]
        if status in (c.STATUS_OUT_FOR_DELIVERY, "DELIVERED", "EXCEPTION"):
            city, state = order["shipTo"].get("city"), order["shipTo"].get("stateOrProvince")
        if status == "DELIVERED":
            shipment["deliveredDate"] = now
            ship_to = order["shipTo"]
            recipient = f"{ship_to.get('firstName') or ''} {ship_to.get('lastName') or ''}".strip()
            shipment["signedForBy"] = signed_for_by or recipient
            description = f"Delivered, signed for by {shipment['signedForBy']} (adult signature)"
        elif status == "EXCEPTION":
            description = f"Delivery exception: {reason or 'recipient not available for adult signature'}"
        elif status == "RETURNED":
            shipment["returnDate"] = now
            shipment["returnReason"] = reason or "Refused by recipient"
            description = f"Returned to the fulfillment center: {shipment['returnReason']}"
        shipment["events"].append({"containerId": shipment["shipmentId"], "eventTime": now, "city": city,
                                   "stateOrProvince": state, "description": description})

    def list_shipments(self, args):
        self.check_account(args.get("accountNumber"))
        has_range = bool(args.get("searchStartDate") or args.get("searchEndDate"))
        if has_range and args.get("orderNumber"):
            raise SandboxError(c.VALIDATION_HTTP_STATUS, c.MESSAGE_SHIPMENTS_FILTER_CONFLICT)
        if not has_range and not args.get("orderNumber"):
            raise SandboxError(c.VALIDATION_HTTP_STATUS, "Provide a date range or an orderNumber")
        with self.lock:
            if args.get("orderNumber"):
                order = self.find_record(args["orderNumber"])
                shipments = self._order_shipments(order) if order else []
            else:
                start = _parse_pacific(args.get("searchStartDate") or "", False)
                end = _parse_pacific(args.get("searchEndDate") or "", True)
                shipments = [s for s in self.shipments.values() if start <= s["shipDate"] <= end]
            return [self._shipment_row(s) for s in shipments]

    def shipment_detail(self, account_number, shipment_id):
        self.check_account(account_number)
        with self.lock:
            shipment = self.shipments.get(shipment_id)
            if shipment is None:
                raise SandboxError(c.NOT_FOUND_HTTP_STATUS,
                                   c.MESSAGE_SHIPMENT_NOT_FOUND.format(shipment_id=shipment_id))
            return self._shipment_detail(shipment)

    def _line_items(self, shipment):
        order = shipment["order"]
        returned = shipment["deliveryStatusCode"] == "RETURNED"
        return [{"shipmentId": shipment["shipmentId"], "lineNumber": line["lineNumber"], "componentNumber": 0,
                 "sku": line["sku"], "wineDirectSku": self.products.get(line["sku"], {}).get("wineDirectSku"),
                 "description": self.products.get(line["sku"], {}).get("description"),
                 "depletionDate": _iso(shipment["shipDate"]), "qtyShipped": line["quantity"],
                 "qtyOrdered": line["quantity"], "qtyReturned": line["quantity"] if returned else 0,
                 "qtyDamaged": 0, "qtyMissing": 0, "vasOrderPersonalizations": []} for line in order["lines"]]

    def _shipment_row(self, shipment):
        order = shipment["order"]
        ship_to = order["shipTo"]
        lines = self._line_items(shipment)
        status = shipment["deliveryStatusCode"]
        return {
            "accountNumber": self.config["account_number"], "shipmentId": shipment["shipmentId"],
            "warehouseName": c.WAREHOUSES[order["warehouseCode"]]["warehouseName"],
            "customerName": self.config["account_name"], "fulfillmentDate": _iso(shipment["shipDate"]),
            "orderNumber": order["orderNumber"], "wineDirectOrderNumber": order["wineDirectOrderNumber"],
            "orderTypeCode": order["orderTypeCode"], "carrierCode": shipment["carrierCode"],
            "carrierName": shipment["carrierName"], "trackingNumber": shipment["trackingNumber"],
            "trackingNumberUrl": shipment["trackingNumberUrl"], "isClaimable": status == "EXCEPTION",
            "packageWeight": None, "deliveryStatusCode": status, "deliveryStatusName": c.ORDER_STATUS_NAMES[status],
            "shipToFirstName": ship_to.get("firstName"), "shipToLastName": ship_to.get("lastName"),
            "shipToCompanyName": ship_to.get("companyName"), "shipToAddress1": ship_to.get("address1"),
            "shipToAddress2": ship_to.get("address2"), "shipToAddress3": ship_to.get("address3"),
            "shipToCity": ship_to.get("city"), "shipToState": ship_to.get("stateOrProvince"),
            "shipToPostalCode": ship_to.get("postalCode"), "notificationEmailAddress": order["notificationEmail"],
            "notificationPhoneNumber": None, "deliveryAddressTypeCode": "RES", "deliveryAddressTypeName": "Residential",
            "deliveredDate": _iso(shipment["deliveredDate"]), "hasClaim": False, "isRedirectable": False,
            "wineDirectSku": lines[0]["wineDirectSku"], "sku": lines[0]["sku"], "description": lines[0]["description"],
            "qtyShipped": lines[0]["qtyShipped"], "qtyOrdered": lines[0]["qtyOrdered"],
            "qtyReturned": lines[0]["qtyReturned"], "qtyDamaged": 0, "qtyMissing": 0,
            "vasOrderPersonalizations": [], "lineItems": lines,
        }

    def _shipment_detail(self, shipment):
        order = shipment["order"]
        ship_to = order["shipTo"]
        address = {"firstName": ship_to.get("firstName"), "middleName": ship_to.get("middleName"),
                   "lastName": ship_to.get("lastName"), "companyName": ship_to.get("companyName"),
                   "address1": ship_to.get("address1"), "address2": ship_to.get("address2"),
                   "address3": ship_to.get("address3"), "city": ship_to.get("city"),
                   "stateCode": ship_to.get("stateOrProvince"), "postalCode": ship_to.get("postalCode"),
                   "countryCode": ship_to.get("countryCode") or "US",
                   "deliveryStatusCode": shipment["deliveryStatusCode"],
                   "deliveryStatusName": c.ORDER_STATUS_NAMES[shipment["deliveryStatusCode"]],
                   "isResidentialAddress": not ship_to.get("companyName"),
                   "deliveryAddressTypeCode": "RES", "deliveryAddressTypeName": "Residential"}
        return {
            "shipmentId": shipment["shipmentId"], "carrierCode": shipment["carrierCode"],
            "carrierName": shipment["carrierName"], "carrierGroup": shipment["carrierName"],
            "trackingNumber": shipment["trackingNumber"], "trackingNumberUrl": shipment["trackingNumberUrl"],
            "packageWeight": None, "deliveryStatusCode": shipment["deliveryStatusCode"],
            "signedForBy": shipment["signedForBy"], "deliveryDate": _iso(shipment["deliveredDate"]),
            "shipDate": _iso(shipment["shipDate"]), "returnDate": _iso(shipment["returnDate"]),
            "returnReason": shipment["returnReason"], "shipTo": address, "deliverTo": dict(address),
            "vasOrderPersonalizations": [], "lineItems": self._line_items(shipment),
        }

    def shipment_updates(self, args):
        self.check_account(args.get("accountNumber"))
        for name in ("searchStartDate", "searchEndDate"):
            if not args.get(name):
                raise SandboxError(c.VALIDATION_HTTP_STATUS, f"{name} is required")
        start = _parse_pacific(args["searchStartDate"], False)
        end = _parse_pacific(args["searchEndDate"], True)
        with self.lock:
            updates = []
            for shipment in self.shipments.values():
                if args.get("shipmentId") and shipment["shipmentId"] != args["shipmentId"]:
                    continue
                events = [e for e in shipment["events"] if start <= e["eventTime"] <= end]
                if events:
                    updates.append(self._update_row(shipment, events))
            return updates

    def _update_row(self, shipment, events):
        order = shipment["order"]
        status = shipment["deliveryStatusCode"]
        header = {"containerId": shipment["shipmentId"], "orderNumber": order["orderNumber"],
                  "shipDate": _iso(shipment["shipDate"]), "carrierName": shipment["carrierName"],
                  "trackingNumber": shipment["trackingNumber"], "trackingNumberUrl": shipment["trackingNumberUrl"],
                  "statusCode": status, "statusDescription": c.ORDER_STATUS_NAMES[status]}
        lines = [{"containerId": shipment["shipmentId"], "lineNumber": int(line["lineNumber"]),
                  "sku": line["sku"], "quantity": line["quantity"]} for line in order["lines"]]
        return {"header": header, "lineItems": lines,
                "events": [{**e, "eventTime": _iso(e["eventTime"])} for e in events]}

    # -- control views -------------------------------------------------------------------
    def order_records(self, order_number=None):
        with self.lock:
            return [{"wineDirectOrderNumber": o["wineDirectOrderNumber"], "orderNumber": o["orderNumber"],
                     "submittedNumber": o["submittedNumber"], "statusCode": o["statusCode"],
                     "orderTypeCode": o["orderTypeCode"], "warehouseCode": o["warehouseCode"],
                     "subInventoryCode": o["subInventoryCode"], "batchNumber": o["batchNumber"],
                     "requestedShipDate": o["requestedShipDate"].isoformat() if o["requestedShipDate"] else None,
                     "visible": o["visibleAt"] <= time.time(), "lines": [dict(line) for line in o["lines"]],
                     "holds": [h["holdName"] for h in o["holds"]],
                     "messages": [m["message"] for m in o["messages"]], "shipmentIds": list(o["shipmentIds"])}
                    for o in self.orders if order_number in (None, o["submittedNumber"], o["orderNumber"])]

    def state(self):
        with self.lock:
            now = time.time()
            return {"products": len(self.products), "stockRows": len(self.stock), "orders": len(self.orders),
                    "shipments": len(self.shipments),
                    "liveAccessTokens": sum(1 for e in self.access_tokens.values() if e > now),
                    "rateLimit": self.rate_limit, "config": {k: v for k, v in self.config.items() if k != "password"}}


# --- the WSGI app -------------------------------------------------------------------------
def _envelope(payload=None, message=None, success=True, status=200, headers=None):
    response = jsonify({"isSuccess": success, "message": message, "payload": payload})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _json_body():
    body = request.get_json(silent=True)
    if body is None:
        raise SandboxError(c.VALIDATION_HTTP_STATUS, "A non-empty JSON request body is required")
    return body


def create_app(config=None):
    """The sandbox as a Flask app; its state is ``app.sandbox``."""
    app = Flask(__name__)
    sandbox = WineDirectSandbox(config)
    app.sandbox = sandbox
    open_paths = (c.TOKEN_PATH, c.TOKEN_REFRESH_PATH)

    @app.errorhandler(SandboxError)
    def sandbox_error(exc):
        return _envelope(message=exc.message, success=False, status=exc.status)

    @app.errorhandler(404)
    def not_found(_exc):
        return _envelope(message=f"No resource matches {request.path}", success=False, status=404)

    @app.errorhandler(405)
    def bad_method(_exc):
        return _envelope(message=f"{request.method} is not allowed on {request.path}", success=False, status=405)

    @app.before_request
    def guard():
        if request.path.startswith("/_sandbox/"):
            return None
        wait = sandbox.throttle_wait()
        if wait:
            return _envelope(message=c.MESSAGE_RATE_LIMITED, success=False, status=429,
                             headers={"Retry-After": str(wait)})
        if request.path not in open_paths:
            sandbox.check_token(request.headers.get("Authorization"))
            sandbox.auto_process_if_configured()
        return None

    @app.after_request
    def late_answer(response):
        if not request.path.startswith("/_sandbox/"):
            seconds = sandbox.take_answer_delay(request.method, request.path)
            if seconds:
                time.sleep(seconds)  # the work is done; only the answer is late
        return response

    _api_routes(app, sandbox)
    _control_routes(app, sandbox)
    return app


def _api_routes(app, sandbox):
    @app.post(c.TOKEN_PATH)
    def access_token():
        body = _json_body()
        return _envelope(sandbox.login(body.get(c.LOGIN_USERNAME_FIELD), body.get(c.LOGIN_PASSWORD_FIELD)))

    @app.post(c.TOKEN_REFRESH_PATH)
    def refresh_token():
        return _envelope(sandbox.refresh(_json_body().get(c.REFRESH_TOKEN_FIELD)))

    @app.get(c.WAREHOUSES_PATH)
    def warehouses():
        sandbox.check_account(request.args.get("accountNumber"))
        return _envelope(sandbox.warehouses())

    @app.route(c.WINE_SKU_PATH, methods=["POST", c.WINE_SKU_UPDATE_METHOD])
    def wine_sku():
        return _envelope(sandbox.save_product(_json_body(), create=request.method == "POST"))

    @app.get(c.PRODUCT_PATH.format(supplier_id="<supplier_id>", sku="<path:sku>"))
    def product(supplier_id, sku):
        return _envelope(sandbox.product_detail(supplier_id, sku))

    @app.get(c.SELLABLE_INVENTORY_PATH)
    def sellable_inventory():
        sandbox.check_account(request.args.get("accountNumber"))
        return _envelope(sandbox.inventory_rows(request.args.get("warehouseCode"), request.args.get("sku")))

    @app.get(c.OWNED_INVENTORY_PATH)
    def owned_inventory():
        sandbox.check_supplier(request.args.get("supplierId"))
        if request.args.get("warehouseCode") and request.args.get("sku"):
            raise SandboxError(c.VALIDATION_HTTP_STATUS, c.MESSAGE_OWNED_FILTER_CONFLICT)
        rows = sandbox.inventory_rows(request.args.get("warehouseCode"), request.args.get("sku"))
        return _envelope(rows)

    @app.post(c.SUBMIT_ORDERS_PATH)
    def submit_orders():
        return _envelope(sandbox.submit_orders(_json_body()))

    @app.get(c.ORDERS_PATH)
    def list_orders():
        return _envelope(sandbox.list_orders(request.args))

    @app.get(c.ORDER_DETAIL_PATH.format(account_number="<account_number>", order_number="<order_number>"))
    def order_detail(account_number, order_number):
        return _envelope(sandbox.order_detail(account_number, order_number))

    @app.get(c.ORDER_PATH.format(order_number="<order_number>"))
    def order_header(order_number):
        return _envelope(sandbox.order_header(order_number))

    @app.delete(c.CANCEL_ORDER_PATH.format(account_number="<account_number>", order_number="<order_number>"))
    def cancel_order(account_number, order_number):
        rename = request.args.get("renameOrder", "false").lower() == "true"
        return _envelope(sandbox.cancel_order(account_number, order_number, rename))

    @app.get(c.SHIPMENT_UPDATES_PATH)
    def shipment_updates():
        return _envelope(sandbox.shipment_updates(request.args))

    @app.get(c.SHIPMENTS_PATH)
    def list_shipments():
        return _envelope(sandbox.list_shipments(request.args))

    @app.get(c.SHIPMENT_PATH.format(account_number="<account_number>", shipment_id="<shipment_id>"))
    def shipment(account_number, shipment_id):
        return _envelope(sandbox.shipment_detail(account_number, shipment_id))


def _control_routes(app, sandbox):
    prefix = "/_sandbox/winedirect"

    @app.get(f"{prefix}/state")
    def control_state():
        return jsonify(sandbox.state())

    @app.post(f"{prefix}/reset")
    def control_reset():
        sandbox.reset((request.get_json(silent=True) or {}).get("config"))
        return jsonify(sandbox.state())

    @app.post(f"{prefix}/products")
    def control_product():
        body = {"supplierId": sandbox.config["supplier_id"], **_json_body()}
        return jsonify({"wineDirectSku": sandbox.save_product(body, create=body.get("sku") not in sandbox.products)})

    @app.post(f"{prefix}/inventory")
    def control_seed_inventory():
        body = _json_body()
        sandbox.seed_inventory(body.get("warehouseCode"), body.get("sku"), body.get("onHand"),
                               body.get("subInventoryCode") or c.SUBINVENTORY_PRIMARY)
        return jsonify({"rows": sandbox.inventory_rows(sku=body.get("sku"))})

    @app.get(f"{prefix}/inventory")
    def control_inventory():
        return jsonify({"rows": sandbox.inventory_rows()})

    @app.get(f"{prefix}/orders")
    def control_orders():
        return jsonify({"orders": sandbox.order_records(request.args.get("orderNumber"))})

    @app.post(f"{prefix}/orders/process")
    def control_process():
        return jsonify({"processed": sandbox.process_orders()})

    @app.post(f"{prefix}/orders/<number>/accept")
    def control_accept(number):
        return jsonify({"statusCode": sandbox.accept_order(number)})

    @app.post(f"{prefix}/orders/<number>/reject")
    def control_reject(number):
        return jsonify({"statusCode": sandbox.reject_order(number, _json_body().get("reason") or "out_of_stock")})

    @app.post(f"{prefix}/orders/<number>/advance")
    def control_advance(number):
        body = request.get_json(silent=True) or {}
        status = sandbox.advance_order(number, body.get("status"), body.get("signedForBy"), body.get("reason"))
        return jsonify({"statusCode": status})

    @app.post(f"{prefix}/tokens/expire")
    def control_expire_tokens():
        body = request.get_json(silent=True) or {}
        sandbox.expire_tokens(refresh=bool(body.get("refresh")))
        return jsonify(sandbox.state())

    @app.post(f"{prefix}/answer-delay")
    def control_answer_delay():
        body = _json_body()
        sandbox.add_answer_delay(body["path"], body.get("seconds", 1), body.get("count", 1), body.get("method"))
        return jsonify({"answerDelays": sandbox.answer_delays})

    @app.post(f"{prefix}/rate-limit")
    def control_rate_limit():
        body = request.get_json(silent=True) or {}
        sandbox.set_rate_limit(body.get("limit"), body.get("window"))
        return jsonify({"rateLimit": sandbox.rate_limit})
