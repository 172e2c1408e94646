"""Sandbox: a fake of the Vinoshipper v3 server-to-server API (compliance + fulfillment).

Built from shared/contracts/wine/REPORT.md section 3; every detail the REPORT marks
PROPOSAL lives in `contract.py`.

What it fakes (all under /api/v3/p, HTTP Basic ``apiKey:apiSecret``, a ``vs-trace-id`` header on
every answer):

    GET  /api/v3/p/shippers/active                 the shippers of the account (credential check)
    POST /api/v3/p/orders                          create an order, with compliance checks
    POST /api/v3/p/orders/check-compliance         the same checks, nothing stored
    POST /api/v3/p/orders/estimate-shipping        rates for UPS 01, 02, 03, 12, 14
    GET  /api/v3/p/orders/{orderNumber}            read an order (404 when unknown)
    POST /api/v3/p/orders/{orderNumber}/cancel     void an order before it is sent to fulfillment

* Bad or missing credentials answer with the HTML login page (200 text/html), as the real API
  does; config ``bad_credentials`` = "redirect" gives a 302 to /login, "json_401" a JSON 401.
* Invalid bodies answer 400 ``{"error": {"status", "type", "errors": [{"description", "code",
  "field", "shortDescription"}]}}``: missing required fields, unknown products (products must be
  registered in Vinoshipper first), unknown rate codes, malformed dates.
* Compliance is checked against a configurable table: prohibited states, bottle limits per
  customer and state (in 750 ml equivalents, a magnum counts 2), age (date of birth under the
  minimum age, or a customer whose third-party age check is configured to fail), pickup. A
  non-compliant order is stored and answered 200 with ``isCompliant: false``, ``status`` PROBLEM
  (AGE_VERIFICATION_FAILED when age is the only problem) and one ``orderProblems`` entry per
  problem. Re-submitting the same order number corrects such an order.
* No idempotency: a second create with an accepted order's number stores a duplicate (config
  ``duplicates`` = "reject" answers 400 ORDER_NUMBER_EXISTS instead). GET answers the first one.
* Orders move OPEN -> LABELS_GENERATED -> SHIPPED (tracking numbers on
  ``shipping.packages[]``, ``shippedAt``) -> DELIVERED (``deliveredAt``) on demand. Cancel is
  refused (400) once labels are generated, and for an order already cancelled.
* Webhooks: ``{"identifier", "subject": "ORDER", "event", "href", "hrefV3"}`` POSTed to the
  configured URL on create, each status change, cancel and age approval, one at a time in the
  background. With a webhook secret configured they carry a signature header (a PROPOSAL: no
  public source says VS signs them).

Control routes (no auth), under /_sandbox/vinoshipper:

    GET|PUT  /compliance                  read or replace the compliance table
    PUT      /products                    replace the registered products (a list)
    GET      /orders[?orderNumber=N]      every stored order, duplicates included
    POST     /orders/<n>/advance          {"to"?: "LABELS_GENERATED"|"SHIPPED"|"DELIVERED",
                                           "trackingNumbers"?: [...]} (default: the next step)
    POST     /orders/<n>/void             {"reason"}: cancel it from the Vinoshipper side
    POST     /orders/<n>/approve-age      the customer uploaded an ID: the order is accepted
    GET      /cancellations               every cancel request body received
    PUT      /webhook                     {"url", "secret"?}: where webhooks go
    GET      /webhooks                    deliveries made: url, body, signature, status, error
    POST     /webhooks/flush              wait until queued webhooks are delivered
    POST     /webhooks/send               {"orderNumber", "event", "url"?}: deliver one now
    POST     /lose-create-responses       {"count"}: store the next creates, answer them 502
    POST     /reset                       back to the config: no orders, deliveries or switches

The same operations are Python methods on ``app.sandbox`` (a `VinoshipperSandbox`).

Where it departs from the real API: taxes are not computed (the submitted ``taxes`` is echoed);
rate limits are not enforced here (the harness injects 429s); bottle limits count every
non-cancelled order of the customer to that state, with no calendar period; only UPS rate codes
(plus PCKP and LOCAL) are known, whatever the carrier; the product feed, customers, profile and
access-point endpoints are not faked.
"""

import base64
import binascii
import collections
import copy
import datetime
import hashlib
import hmac
import itertools
import json
import math
import threading
import uuid

import requests
from flask import Flask, Response, jsonify, request

from . import contract as vs

DEFAULT_API_KEY = "2212.SANDBOX0000KEY"
DEFAULT_API_SECRET = "sandbox-secret-0000"
BOTTLE_ML = 750
BOTTLES_PER_PACKAGE = 12

# Seeded from Vinoshipper's own shipping-states modal (REPORT section 6.1).
DEFAULT_COMPLIANCE = {
    "minimum_age": 21,
    "pickup_allowed": False,
    "age_verification_failures": [],   # customer emails whose third-party age check fails
    "states": {
        "AR": {"prohibited": True},
        "DE": {"prohibited": True},
        "MS": {"prohibited": True},
        "OK": {"prohibited": True},
        "RI": {"prohibited": True},
        "AZ": {"bottle_limit": 72, "period": "year"},
        "CT": {"bottle_limit": 25, "period": "2 months"},
        "MO": {"bottle_limit": 24, "period": "month"},
        "NY": {"bottle_limit": 432, "period": "year"},
    },
}

DEFAULT_PRODUCTS = [
    {"id": 158960, "sku": "CAB21-750", "name": "Estate Cabernet Sauvignon", "vintage": 2021,
     "ml": 750, "abv": 14.5, "category": "Wine"},
    {"id": 158961, "sku": "CHARD22-750", "name": "Reserve Chardonnay", "vintage": 2022,
     "ml": 750, "abv": 13.2, "category": "Wine"},
    {"id": 158962, "sku": "CAB21-1500", "name": "Estate Cabernet Sauvignon Magnum", "vintage": 2021,
     "ml": 1500, "abv": 14.5, "category": "Wine"},
]

SHIPPER = {"id": 5514, "name": "Sandbox Fulfillment Center", "isFulfillmentCenter": True}
# Base price per rate code plus a price per bottle: enough to rank the rates sensibly.
RATE_PRICES = {"03": (15.0, 1.5), "12": (28.0, 2.0), "02": (38.0, 2.5), "01": (58.0, 3.0),
               "14": (88.0, 3.5)}

LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Log In | Vinoshipper</title></head>
<body><main><h1>Log in to Vinoshipper</h1>
<form method="post" action="/login"><label>Email <input name="email" type="email"></label>
<label>Password <input name="password" type="password"></label><button>Log In</button></form>
</main></body></html>
"""


class SandboxError(Exception):
    """A control operation the sandbox refuses (answered as JSON by the control routes)."""

    def __init__(self, message, status=409):
        super().__init__(message)
        self.message = message
        self.status = status


class ApiError(Exception):
    """An API answer in Vinoshipper's nested error shape."""

    def __init__(self, status, error_type, errors):
        super().__init__(errors[0]["description"] if errors else error_type)
        self.status = status
        self.error_type = error_type
        self.errors = errors

    def body(self):
        return {"error": {"status": self.status, "type": self.error_type, "errors": self.errors}}


def error_entry(code, description, field=None):
    return {"description": description, "code": code, "field": field, "shortDescription": None}


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def dotted(body, path):
    value = body
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def money(value):
    return 0.0 if value is None else float(value)


def is_money(value):
    """None (left out), or a non-negative amount as a number or a numeric string."""
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    try:
        return float(value) >= 0
    except (TypeError, ValueError):
        return False


def parse_date_of_birth(value):
    """The date in ``{"day", "month", "year"}``, or None; ValueError when malformed."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("dateOfBirth must be an object with day, month and year")
    parts = [value.get(key) for key in ("year", "month", "day")]
    if not all(isinstance(part, int) and not isinstance(part, bool) for part in parts):
        raise ValueError("dateOfBirth needs whole-number day, month and year")
    return datetime.date(*parts)


def age_on(birth, today):
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


class VinoshipperSandbox:
    """The fake's state and operations; the Flask app in `create_app` is a thin layer on it."""

    def __init__(self, config=None):
        config = config or {}
        self.api_key = config.get("api_key", DEFAULT_API_KEY)
        self.api_secret = config.get("api_secret", DEFAULT_API_SECRET)
        self.bad_credentials = config.get("bad_credentials", vs.BAD_CREDENTIALS_LOGIN_PAGE)
        self.duplicates = config.get("duplicates", vs.DUPLICATES_STORED)
        self.webhook_timeout = config.get("webhook_timeout", 2.0)
        self._lock = threading.RLock()
        self._initial_compliance = copy.deepcopy(config.get("compliance", DEFAULT_COMPLIANCE))
        self._initial_products = copy.deepcopy(config.get("products", DEFAULT_PRODUCTS))
        self._initial_webhook = (config.get("webhook_url"), config.get("webhook_secret"))
        self._outbox = collections.deque()
        self._outbox_ready = threading.Condition()
        self._worker = None
        self.reset()

    # -- state ----------------------------------------------------------------------------
    def reset(self):
        with self._lock:
            self.compliance = normalized_compliance(self._initial_compliance)
            self._products = [dict(p) for p in self._initial_products]
            self._orders = []
            self.cancel_requests = []
            self.deliveries = []
            self._lose_create_responses = 0
            self._numbers = itertools.count(100001)
            self._tracking = itertools.count(1)
            self.webhook_url, self.webhook_secret = self._initial_webhook

    @property
    def producer_id(self):
        return self.api_key.split(".", 1)[0]

    def credentials_ok(self, header):
        if not header or not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = f"{self.api_key}:{self.api_secret}"
        return hmac.compare_digest(decoded.encode(), expected.encode())

    def set_compliance(self, table):
        """Replace the compliance table; keys left out keep their defaults."""
        with self._lock:
            self.compliance = normalized_compliance(table)
            return copy.deepcopy(self.compliance)

    def set_products(self, products):
        if not isinstance(products, list) or not all(
                isinstance(p, dict) and {"id", "sku", "name", "ml"} <= set(p) for p in products):
            raise SandboxError("products is a list of objects with id, sku, name and ml", 400)
        with self._lock:
            self._products = [dict(p) for p in products]

    def orders(self, order_number=None):
        """Every stored order (duplicates included), oldest first."""
        with self._lock:
            return [shown(o) for o in self._orders
                    if order_number is None or o["orderNumber"] == order_number]

    def lose_create_responses(self, count=1):
        """The next ``count`` creates are stored but answered 502, as if the answer were lost."""
        with self._lock:
            self._lose_create_responses = int(count)

    def set_webhook(self, url, secret=None):
        with self._lock:
            self.webhook_url = url
            self.webhook_secret = secret

    def _find(self, order_number):
        for order in self._orders:
            if order["orderNumber"] == order_number:
                return order
        return None

    def _require(self, order_number):
        order = self._find(order_number)
        if order is None:
            raise ApiError(404, vs.ERROR_TYPE_NOT_FOUND, [error_entry(
                vs.ERROR_ORDER_NOT_FOUND, f"Order {order_number} was not found.", "orderNumber")])
        return order

    def _product(self, product_id, id_type):
        for product in self._products:
            key = product["sku"] if id_type == "SKU" else product["id"]
            if str(key) == str(product_id):
                return product
        return None

    # -- API operations ---------------------------------------------------------------------
    def get_order(self, order_number):
        with self._lock:
            return shown(self._require(order_number))

    def active_shippers(self):
        return [dict(SHIPPER)]

    def create_order(self, body, base_url):
        """Store an order; returns (order, answer_lost)."""
        with self._lock:
            self._check_order_body(body)
            number = body.get("orderNumber") or f"VS-{next(self._numbers)}"
            existing = self._find(number)
            correcting = existing is not None and existing["status"] in vs.RESUBMITTABLE_STATUSES
            if existing is not None and not correcting and self.duplicates == vs.DUPLICATES_REJECTED:
                raise ApiError(400, vs.ERROR_TYPE_VALIDATION, [error_entry(
                    vs.ERROR_ORDER_NUMBER_EXISTS,
                    f"An order with number {number} already exists; order numbers must be unique.",
                    "orderNumber")])
            order = self._build_order(body, number, base_url)
            problems = self._compliance_problems(body, order, ignore=existing if correcting else None)
            self._apply_problems(order, problems)
            if correcting:
                self._orders[self._orders.index(existing)] = order
            else:
                self._orders.append(order)
            lost = self._lose_create_responses > 0
            if lost:
                self._lose_create_responses -= 1
            self._enqueue_webhook(order, vs.EVENT_CREATED)
            return shown(order), lost

    def check_compliance(self, body, base_url):
        with self._lock:
            self._check_order_body(body)
            order = self._build_order(body, body.get("orderNumber") or "", base_url)
            problems = self._compliance_problems(body, order, ignore=None)
            return {"isCompliant": not problems, "orderProblems": problems}

    def estimate_shipping(self, body):
        with self._lock:
            self._check_order_body(body, paths=("shipToAddress.stateCode", "shipToAddress.postalCode",
                                                "productIdType", "products"))
            bottles = sum(self._bottles(line, body["productIdType"]) for line in body["products"])
        return [{"carrier": "UPS", "rateCode": code, "description": vs.UPS_RATE_CODES[code],
                 "price": round(base + per_bottle * bottles, 2)}
                for code, (base, per_bottle) in RATE_PRICES.items()]

    def cancel_order(self, order_number, body):
        reason = body.get(vs.CANCEL_REASON)
        errors = []
        if not isinstance(reason, str) or not reason.strip():
            errors.append(error_entry(vs.ERROR_REQUIRED, "A reason for cancelling is required.",
                                      vs.CANCEL_REASON))
        for flag in (vs.CANCEL_RESTORE_INVENTORY, vs.CANCEL_REFUND_TO_STORED_CREDIT):
            if flag in body and not isinstance(body[flag], bool):
                errors.append(error_entry(vs.ERROR_INVALID, f"{flag} must be true or false.", flag))
        if errors:
            raise ApiError(400, vs.ERROR_TYPE_VALIDATION, errors)
        with self._lock:
            order = self._require(order_number)
            self._cancel(order, reason.strip())
            self.cancel_requests.append({"orderNumber": order_number, **body})
            return shown(order)

    # -- control operations -------------------------------------------------------------------
    def advance(self, order_number, to=None, tracking_numbers=None):
        """Move an order along OPEN -> LABELS_GENERATED -> SHIPPED -> DELIVERED."""
        with self._lock:
            order = self._control_order(order_number)
            if order["status"] in vs.RESUBMITTABLE_STATUSES or order["orderStatus"] not in \
                    vs.FULFILLMENT_PROGRESSION:
                raise SandboxError(f"order {order_number} is {order['orderStatus']} "
                                   f"({order['status']}); only accepted open orders move on")
            steps = vs.FULFILLMENT_PROGRESSION
            current = steps.index(order["orderStatus"])
            target = current + 1 if to is None else (steps.index(to) if to in steps else -1)
            if target <= current:
                unknown_step = to is not None and to not in steps
                raise SandboxError(f"order {order_number} is {order['orderStatus']}; it cannot move "
                                   f"to {to or 'a next step'}", 400 if unknown_step else 409)
            for step in steps[current + 1:target + 1]:
                self._enter(order, step, tracking_numbers)
                self._enqueue_webhook(order, vs.EVENT_FOR_ORDER_STATUS[step])
            return shown(order)

    def void(self, order_number, reason="Cancelled in Vinoshipper"):
        """Cancel an order from the Vinoshipper dashboard; the same rules as the API apply."""
        with self._lock:
            order = self._control_order(order_number)
            try:
                self._cancel(order, reason)
            except ApiError as exc:
                raise SandboxError(exc.errors[0]["description"]) from exc
            return shown(order)

    def approve_age(self, order_number):
        """The customer uploaded an ID: age verification passes and the order is accepted."""
        with self._lock:
            order = self._control_order(order_number)
            if order["status"] != vs.STATUS_AGE_VERIFICATION_FAILED:
                raise SandboxError(f"order {order_number} is {order['status']}, not waiting for an ID")
            order["ageVerification"]["verified"] = True
            self._apply_problems(order, [p for p in order["orderProblems"]
                                         if p["type"] != vs.PROBLEM_TYPE_AGE])
            self._enqueue_webhook(order, vs.EVENT_APPROVED)
            return shown(order)

    def send_webhook(self, order_number, event, url=None):
        if event not in vs.WEBHOOK_ORDER_EVENTS:
            raise SandboxError(f"unknown event {event!r}; one of {vs.WEBHOOK_ORDER_EVENTS}", 400)
        with self._lock:
            self._enqueue_webhook(self._control_order(order_number), event, url)

    def _control_order(self, order_number):
        order = self._find(order_number)
        if order is None:
            raise SandboxError(f"no order {order_number}", 404)
        return order

    # -- validation ---------------------------------------------------------------------------
    def _check_order_body(self, body, paths=vs.REQUIRED_ORDER_FIELDS):
        errors = [error_entry(vs.ERROR_REQUIRED, f"{path} is required.", path)
                  for path in paths if dotted(body, path) in (None, "", [], {})]
        errors += self._value_errors(body)
        if errors:
            raise ApiError(400, vs.ERROR_TYPE_VALIDATION, errors)

    def _value_errors(self, body):
        errors = []
        if body.get("orderNumber") is not None and not isinstance(body["orderNumber"], str):
            errors.append(error_entry(vs.ERROR_INVALID, "orderNumber must be a string.", "orderNumber"))
        id_type = body.get("productIdType")
        if id_type is not None and id_type not in vs.PRODUCT_ID_TYPES:
            errors.append(error_entry(vs.ERROR_INVALID, "productIdType must be SKU or VS_ID.",
                                      "productIdType"))
        errors += self._line_errors(body.get("products") or [], id_type)
        state = dotted(body, "shipToAddress.stateCode")
        if state and not (isinstance(state, str) and len(state) == 2 and state.isalpha()):
            errors.append(error_entry(vs.ERROR_INVALID, f"{state!r} is not a US state code.",
                                      "shipToAddress.stateCode"))
        errors += self._rate_errors(body.get("shippingRate"))
        try:
            parse_date_of_birth(dotted(body, "customer.dateOfBirth"))
        except ValueError as exc:
            errors.append(error_entry(vs.ERROR_INVALID, f"{exc}.", "customer.dateOfBirth"))
        ship_date = dotted(body, "specialInstructions.shipDate")
        if ship_date is not None:
            try:
                datetime.datetime.strptime(ship_date, vs.SHIP_DATE_FORMAT)
            except (TypeError, ValueError):
                errors.append(error_entry(vs.ERROR_INVALID, f"shipDate {ship_date!r} is not a "
                                          "date as YYYY-MM-dd.", "specialInstructions.shipDate"))
        for flag in ("paid", "isPaid"):
            if flag in body and not isinstance(body[flag], bool):
                errors.append(error_entry(vs.ERROR_INVALID, f"{flag} must be true or false.", flag))
        return errors

    def _line_errors(self, lines, id_type):
        if not isinstance(lines, list):
            return [error_entry(vs.ERROR_INVALID, "products must be a list.", "products")]
        errors = []
        for index, line in enumerate(lines):
            field = f"products[{index}]"
            if not isinstance(line, dict):
                errors.append(error_entry(vs.ERROR_INVALID, f"{field} must be an object.", field))
                continue
            quantity = line.get("quantity")
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
                errors.append(error_entry(vs.ERROR_INVALID, f"{field}.quantity must be a whole "
                                          "number of at least 1.", f"{field}.quantity"))
            if not is_money(line.get("price")):
                errors.append(error_entry(vs.ERROR_INVALID, f"{field}.price must be a non-negative "
                                          "amount.", f"{field}.price"))
            if id_type in vs.PRODUCT_ID_TYPES and self._product(line.get("productId"), id_type) is None:
                errors.append(error_entry(
                    vs.ERROR_UNKNOWN_PRODUCT,
                    f"Product {line.get('productId')!r} ({id_type}) is not registered and approved "
                    "in Vinoshipper.", f"{field}.productId"))
        return errors

    @staticmethod
    def _rate_errors(rate):
        if not isinstance(rate, dict):
            return []
        errors = []
        carrier, code = rate.get("carrier"), rate.get("rateCode")
        if carrier and carrier not in vs.CARRIERS:
            errors.append(error_entry(vs.ERROR_INVALID, f"Carrier {carrier!r} is not one of "
                                      f"{', '.join(vs.CARRIERS)}.", "shippingRate.carrier"))
        known = (*vs.UPS_RATE_CODES, vs.PICKUP_RATE_CODE, vs.LOCAL_RATE_CODE)
        if code and code not in known:
            errors.append(error_entry(vs.ERROR_INVALID, f"Rate code {code!r} is not a known "
                                      "shipping rate.", "shippingRate.rateCode"))
        if not is_money(rate.get("price")):
            errors.append(error_entry(vs.ERROR_INVALID, "shippingRate.price must be a non-negative "
                                      "amount.", "shippingRate.price"))
        return errors

    # -- compliance ---------------------------------------------------------------------------
    def _bottles(self, line, id_type):
        product = self._product(line.get("productId"), id_type)
        return line["quantity"] * product["ml"] / BOTTLE_ML

    def _compliance_problems(self, body, order, ignore):
        table = self.compliance
        state = order["shipToAddress"]["stateCode"]
        rule = table["states"].get(state, {})
        problems = []
        if order["shipping"]["rateCode"] == vs.PICKUP_RATE_CODE and not table["pickup_allowed"]:
            problems.append(self._problem(vs.PROBLEM_PICKUP_NOT_ALLOWED, vs.PROBLEM_TYPE_COMPLIANCE,
                                          "This winery does not offer pickup through Vinoshipper."))
        if rule.get("prohibited"):
            problems.append(self._problem(vs.PROBLEM_STATE_NOT_ALLOWED, vs.PROBLEM_TYPE_COMPLIANCE,
                                          f"Direct shipping of wine to {state} is prohibited."))
        limit = rule.get("bottle_limit")
        if limit is not None:
            bottles = self._customer_bottles(body, order, state, ignore)
            if bottles > limit:
                problems.append(self._problem(
                    vs.PROBLEM_QUANTITY_LIMIT, vs.PROBLEM_TYPE_COMPLIANCE,
                    f"{state} allows {limit} bottles (750 ml equivalents) per customer per "
                    f"{rule.get('period', 'year')}; with this order {order['customer']['email']} "
                    f"would receive {bottles:g}."))
        problems += self._age_problems(order)
        return problems

    def _customer_bottles(self, body, order, state, ignore):
        """Bottles in this order plus the customer's other live orders to the same state."""
        bottles = sum(self._bottles(line, body["productIdType"]) for line in body["products"])
        email = order["customer"]["email"].lower()
        for other in self._orders:
            if (other is not ignore and other["isCompliant"]
                    and other["orderStatus"] != vs.ORDER_CANCELLED
                    and other["customer"]["email"].lower() == email
                    and other["shipToAddress"]["stateCode"] == state):
                bottles += sum(line["_bottles"] for line in other["products"])
        return bottles

    def _age_problems(self, order):
        minimum = self.compliance["minimum_age"]
        birth = parse_date_of_birth(order["customer"]["dateOfBirth"])
        email = order["customer"]["email"]
        if birth is not None and age_on(birth, datetime.date.today()) < minimum:
            return [self._problem(vs.PROBLEM_AGE_VERIFICATION, vs.PROBLEM_TYPE_AGE,
                                  f"The customer must be {minimum} or older; the date of birth given "
                                  f"is {birth.isoformat()}.")]
        if email.lower() in self.compliance["age_verification_failures"]:
            return [self._problem(vs.PROBLEM_AGE_VERIFICATION, vs.PROBLEM_TYPE_AGE,
                                  f"Age verification failed for {email}: no record shows the customer "
                                  f"is {minimum} or older. They can upload an ID at "
                                  f"{order['ageVerification']['idScanUrl']}.")]
        return []

    @staticmethod
    def _problem(code, problem_type, description):
        return {"code": code, "description": description, "type": problem_type}

    @staticmethod
    def _apply_problems(order, problems):
        order["orderProblems"] = problems
        order["isCompliant"] = not problems
        if any(p["type"] != vs.PROBLEM_TYPE_AGE for p in problems):
            order["status"], order["orderStatus"] = vs.STATUS_PROBLEM, vs.ORDER_PROBLEM
        elif problems:
            order["status"], order["orderStatus"] = vs.STATUS_AGE_VERIFICATION_FAILED, vs.ORDER_OPEN
        else:
            paid = order.pop("_paid", True)
            order["status"] = vs.STATUS_SUCCESS if paid else vs.STATUS_PENDING
            order["orderStatus"] = vs.ORDER_OPEN
            order["ageVerification"]["idScanUrl"] = None
            order["purchasedAt"] = order["purchasedAt"] or now_iso()

    # -- order documents ------------------------------------------------------------------------
    def _build_order(self, body, number, base_url):
        customer = body["customer"]
        ship_to = body["shipToAddress"]
        rate = body["shippingRate"]
        lines = [self._order_line(line, body["productIdType"]) for line in body["products"]]
        subtotal = sum(line["price"] * line["quantity"] for line in lines)
        instructions = body.get("specialInstructions") or {}
        shipping_price = money(rate.get("price"))
        taxes, fees, tip = money(body.get("taxes")), money(body.get("fees")), money(body.get("tip"))
        bottles = sum(line["_bottles"] for line in lines)
        return {
            "orderNumber": number,
            "sourceUrl": body.get("sourceUrl"),
            "status": vs.STATUS_PENDING,
            "orderStatus": vs.ORDER_OPEN,
            "cartType": "API",
            "customer": {
                "email": customer["email"], "firstName": customer["firstName"],
                "lastName": customer["lastName"], "address": customer.get("address"),
                "dateOfBirth": customer.get("dateOfBirth"), "phone": customer.get("phone"),
                "wholesale": False, "company": customer.get("company"), "id": None,
                "fullName": f"{customer['firstName']} {customer['lastName']}",
            },
            "shipToAddress": {
                "firstName": ship_to.get("firstName"), "lastName": ship_to["lastName"],
                "businessName": ship_to.get("businessName"),
                "fullName": " ".join(filter(None, (ship_to.get("firstName"), ship_to["lastName"]))),
                "street1": ship_to["street1"], "street2": ship_to.get("street2"),
                "city": ship_to["city"], "postalCode": ship_to["postalCode"],
                "stateCode": ship_to["stateCode"].upper(), "country": ship_to.get("country", "US"),
                "phone": ship_to.get("phone"), "upsAccessPointId": ship_to.get("upsAccessPointId"),
                "suspectedPOBox": "PO BOX" in ship_to["street1"].upper().replace(".", ""),
                "poBox": False,
            },
            "products": lines,
            "packs": [],
            "shipping": {
                "carrier": rate["carrier"], "rateCode": rate["rateCode"], "price": shipping_price,
                "shipper": dict(SHIPPER),
                "rateDescription": vs.UPS_RATE_CODES.get(rate["rateCode"], rate["rateCode"]),
                "packages": [self._package(rate["carrier"], None, per_box)
                             for per_box in self._split_bottles(bottles)],
                "taxes": None,
            },
            "extraFees": [], "extraFeesTotal": fees,
            "taxesTotal": taxes, "tipAmount": tip,
            "total": round(subtotal + shipping_price + taxes + fees + tip, 2),
            "specialInstructions": {
                "producerNote": instructions.get("producerNote"),
                "giftNote": instructions.get("giftNote"),
                "shipDate": instructions.get("shipDate"), "wineryNote": None,
            },
            "isCompliant": True,
            "orderProblems": [],
            "ageVerification": {"verified": False,
                                "idScanUrl": f"{base_url.rstrip('/')}/age-verification/{uuid.uuid4().hex}"},
            "purchasedAt": None, "canceledAt": None, "shippedAt": None, "deliveredAt": None,
            "cancelReason": None,
            "metaFields": body.get("metaFields") or {},
            "store": {"id": 2143, "name": "Default Store"},
            "_paid": body.get("paid", body.get("isPaid", False)),
            "_base_url": base_url.rstrip("/"),
        }

    def _order_line(self, line, id_type):
        product = self._product(line["productId"], id_type)
        return {
            "productId": product["id"], "productName": product["name"],
            "productVintage": product.get("vintage"), "sku": product["sku"], "upc": "",
            "category": product.get("category", "Wine"), "quantity": line["quantity"],
            "price": money(line.get("price")), "discount": 0,
            "alcoholPercentage": product.get("abv"), "packProductId": None,
            "_bottles": line["quantity"] * product["ml"] / BOTTLE_ML,
        }

    @staticmethod
    def _split_bottles(bottles):
        boxes = max(1, math.ceil(bottles / BOTTLES_PER_PACKAGE))
        return [min(BOTTLES_PER_PACKAGE, bottles - i * BOTTLES_PER_PACKAGE) for i in range(boxes)]

    @staticmethod
    def _package(carrier, tracking_number, bottles):
        return {"carrier": carrier if tracking_number else None, "trackingNumber": tracking_number,
                "box": {"weight": {"lbs": round(2 + 3 * bottles, 1)}, "containsAlcohol": True}}

    def _enter(self, order, step, tracking_numbers):
        order["orderStatus"] = step
        shipping = order["shipping"]
        if step == vs.ORDER_SHIPPED:
            packages = shipping["packages"]
            numbers = list(tracking_numbers or [self._tracking_number(shipping["rateCode"])
                                                for _ in packages])
            weights = [p["box"]["weight"]["lbs"] for p in packages]
            shipping["packages"] = [
                {"carrier": shipping["carrier"], "trackingNumber": number,
                 "box": {"weight": {"lbs": weights[min(i, len(weights) - 1)]}, "containsAlcohol": True}}
                for i, number in enumerate(numbers)]
            order["shippedAt"] = now_iso()
        elif step == vs.ORDER_DELIVERED:
            order["deliveredAt"] = now_iso()

    def _tracking_number(self, rate_code):
        """A UPS-shaped number: 1Z, six characters of shipper, two of service, eight of package."""
        service = rate_code if rate_code in vs.UPS_RATE_CODES else "03"
        return f"1Z{self.producer_id[:6].upper():0>6}{service}{next(self._tracking):08d}"

    def _cancel(self, order, reason):
        number = order["orderNumber"]
        if order["orderStatus"] == vs.ORDER_CANCELLED:
            raise ApiError(400, vs.ERROR_TYPE_CONFLICT, [error_entry(
                vs.ERROR_ALREADY_CANCELLED, f"Order {number} is already cancelled.", "orderNumber")])
        if order["orderStatus"] in vs.NOT_CANCELLABLE:
            raise ApiError(400, vs.ERROR_TYPE_CONFLICT, [error_entry(
                vs.ERROR_NOT_CANCELLABLE,
                f"Order {number} is {order['orderStatus']}: it has shipped or been sent to "
                "fulfillment and can not be canceled via the API.", "orderNumber")])
        order["orderStatus"] = vs.ORDER_CANCELLED
        order["canceledAt"] = now_iso()
        order["cancelReason"] = reason
        self._enqueue_webhook(order, vs.EVENT_CANCELLED)

    # -- webhooks -----------------------------------------------------------------------------
    def _enqueue_webhook(self, order, event, url=None):
        url = url or self.webhook_url
        if not url:
            return
        href = f"{order['_base_url']}{vs.ORDER_PATH.format(order_number=order['orderNumber'])}"
        payload = {"identifier": order["orderNumber"], "subject": vs.WEBHOOK_SUBJECT_ORDER,
                   "event": event, "href": href, "hrefV3": href}
        with self._outbox_ready:
            self._outbox.append((url, self.webhook_secret, payload))
            if self._worker is None:
                self._worker = threading.Thread(target=self._deliver_forever, daemon=True,
                                                name="vinoshipper-sandbox-webhooks")
                self._worker.start()
            self._outbox_ready.notify_all()

    def _deliver_forever(self):
        while True:
            with self._outbox_ready:
                while not self._outbox:
                    self._outbox_ready.wait()
                url, secret, payload = self._outbox[0]
            self._deliver(url, secret, payload)
            with self._outbox_ready:
                self._outbox.popleft()
                self._outbox_ready.notify_all()

    def _deliver(self, url, secret, payload):
        raw = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Vinoshipper-Webhooks (sandbox)"}
        signature = sign_webhook(raw, secret) if secret else None
        if signature:
            headers[vs.WEBHOOK_SIGNATURE_HEADER] = signature
        record = {"url": url, "body": payload, "signature": signature, "status": None, "error": None}
        try:
            record["status"] = requests.post(url, data=raw, headers=headers,
                                             timeout=self.webhook_timeout).status_code
        except requests.RequestException as exc:
            record["error"] = f"{exc.__class__.__name__}: {exc}"
        with self._lock:
            self.deliveries.append(record)

    def flush_webhooks(self, timeout=5.0):
        """Wait until every queued webhook was delivered; False if that took over ``timeout``."""
        with self._outbox_ready:
            return self._outbox_ready.wait_for(lambda: not self._outbox, timeout)


def sign_webhook(raw_body, secret):
    digest = hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def shown(order):
    """A copy of the order as the API shows it: without the sandbox's own bookkeeping fields."""
    order = copy.deepcopy(order)
    visible = {key: value for key, value in order.items() if not key.startswith("_")}
    visible["products"] = [{k: v for k, v in line.items() if not k.startswith("_")}
                           for line in order["products"]]
    return visible


def normalized_compliance(table):
    if not isinstance(table, dict) or not isinstance(table.get("states", {}), dict):
        raise SandboxError("the compliance table is an object with a 'states' object", 400)
    merged = copy.deepcopy(DEFAULT_COMPLIANCE)
    merged.update(copy.deepcopy(table))
    merged["states"] = {code.upper(): rule for code, rule in merged["states"].items()}
    merged["age_verification_failures"] = [
        email.lower() for email in merged["age_verification_failures"]]
    return merged


# -- the WSGI app ---------------------------------------------------------------------------------
def create_app(config=None):
    sandbox = VinoshipperSandbox(config)
    app = Flask(__name__)
    app.sandbox = sandbox
    _add_api_routes(app, sandbox)
    _add_control_routes(app, sandbox)
    return app


def _json_body():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, vs.ERROR_TYPE_VALIDATION, [error_entry(
            vs.ERROR_INVALID, "The request body must be a JSON object.")])
    return body


def _refuse_credentials(sandbox):
    if sandbox.bad_credentials == vs.BAD_CREDENTIALS_JSON_401:
        return ApiError(401, vs.ERROR_TYPE_AUTH, [error_entry(
            vs.ERROR_TYPE_AUTH, "Authentication failed")]).body(), 401
    if sandbox.bad_credentials == vs.BAD_CREDENTIALS_REDIRECT:
        return Response(LOGIN_PAGE, 302, {"Location": f"{vs.LOGIN_PATH}?redirect={request.path}"},
                        content_type="text/html; charset=utf-8")
    return Response(LOGIN_PAGE, 200, content_type="text/html; charset=utf-8")


def _add_api_routes(app, sandbox):
    @app.before_request
    def authenticate():
        if request.path.startswith("/api/") and not sandbox.credentials_ok(
                request.headers.get("Authorization")):
            return _refuse_credentials(sandbox)
        return None

    @app.after_request
    def trace_id(response):
        if request.path.startswith("/api/"):
            response.headers[vs.TRACE_ID_HEADER] = uuid.uuid4().hex
        return response

    @app.errorhandler(ApiError)
    def api_error(exc):
        return exc.body(), exc.status

    @app.errorhandler(404)
    def not_found(exc):
        return ApiError(404, vs.ERROR_TYPE_NOT_FOUND, [error_entry(
            vs.ERROR_TYPE_NOT_FOUND, f"No resource at {request.path}.")]).body(), 404

    @app.errorhandler(405)
    def wrong_method(exc):
        return ApiError(405, "METHOD_NOT_ALLOWED", [error_entry(
            "METHOD_NOT_ALLOWED", f"{request.method} is not allowed on {request.path}.")]).body(), 405

    @app.get(vs.ACTIVE_SHIPPERS_PATH)
    def active_shippers():
        return jsonify(sandbox.active_shippers())

    @app.post(vs.ORDERS_PATH)
    def create_order():
        order, lost = sandbox.create_order(_json_body(), request.host_url)
        if lost:
            return {"error": {"status": 502, "type": "BAD_GATEWAY", "errors": []}}, 502
        return order

    @app.post(vs.CHECK_COMPLIANCE_PATH)
    def check_compliance():
        return sandbox.check_compliance(_json_body(), request.host_url)

    @app.post(vs.ESTIMATE_SHIPPING_PATH)
    def estimate_shipping():
        return jsonify(sandbox.estimate_shipping(_json_body()))

    @app.get(vs.ORDER_PATH.replace("{order_number}", "<order_number>"))
    def get_order(order_number):
        return sandbox.get_order(order_number)

    @app.post(vs.CANCEL_PATH.replace("{order_number}", "<order_number>"))
    def cancel_order(order_number):
        return sandbox.cancel_order(order_number, _json_body())


def _add_control_routes(app, sandbox):
    prefix = "/_sandbox/vinoshipper"

    @app.errorhandler(SandboxError)
    def control_error(exc):
        return {"error": exc.message}, exc.status

    def control_body():
        body = request.get_json(silent=True)
        if body is None:
            raise SandboxError("send a JSON body", 400)
        return body

    @app.get(f"{prefix}/compliance")
    def read_compliance():
        return sandbox.compliance

    @app.put(f"{prefix}/compliance")
    def put_compliance():
        return sandbox.set_compliance(control_body())

    @app.put(f"{prefix}/products")
    def put_products():
        sandbox.set_products(control_body())
        return {"count": len(sandbox._products)}

    @app.get(f"{prefix}/orders")
    def list_orders():
        orders = sandbox.orders(request.args.get("orderNumber"))
        return {"count": len(orders), "orders": orders}

    @app.post(f"{prefix}/orders/<order_number>/advance")
    def advance(order_number):
        body = request.get_json(silent=True) or {}
        return sandbox.advance(order_number, body.get("to"), body.get("trackingNumbers"))

    @app.post(f"{prefix}/orders/<order_number>/void")
    def void(order_number):
        body = request.get_json(silent=True) or {}
        return sandbox.void(order_number, body.get("reason", "Cancelled in Vinoshipper"))

    @app.post(f"{prefix}/orders/<order_number>/approve-age")
    def approve_age(order_number):
        return sandbox.approve_age(order_number)

    @app.get(f"{prefix}/cancellations")
    def cancellations():
        return {"cancellations": sandbox.cancel_requests}

    @app.put(f"{prefix}/webhook")
    def put_webhook():
        body = control_body()
        sandbox.set_webhook(body.get("url"), body.get("secret"))
        return {"url": sandbox.webhook_url, "signed": bool(sandbox.webhook_secret)}

    @app.get(f"{prefix}/webhooks")
    def deliveries():
        return {"deliveries": sandbox.deliveries}

    @app.post(f"{prefix}/webhooks/flush")
    def flush():
        body = request.get_json(silent=True) or {}
        return {"flushed": sandbox.flush_webhooks(float(body.get("timeout", 5.0)))}

    @app.post(f"{prefix}/webhooks/send")
    def send():
        body = control_body()
        sandbox.send_webhook(body.get("orderNumber"), body.get("event"), body.get("url"))
        return {"queued": True}

    @app.post(f"{prefix}/lose-create-responses")
    def lose():
        sandbox.lose_create_responses(control_body().get("count", 1))
        return {"count": sandbox._lose_create_responses}

    @app.post(f"{prefix}/reset")
    def reset():
        sandbox.reset()
        return {"reset": True}
