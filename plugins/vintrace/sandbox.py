"""A faithful fake of the Vintrace v6 API (winery ERP), for the sales-order push.

Every request to ``/<customerCode>/api/v6/...`` is checked against Vintrace's own OpenAPI
(`vintrace_v6_openapi.yaml`, loaded once per process with the corrections listed in
`contract.py`, block SPEC ERRATA) and refused with the v6 error body
``400 {"status": "Error", "message": ...}`` when it does not validate. Every answer is checked
too: one that does not validate is a sandbox bug; it is recorded in
``app.sandbox.spec_violations``, served as a 500, and the test fixture fails the test.

What it fakes (paths relative to ``/<customerCode>/api/v6``):

* auth: ``Authorization: Bearer <API token>``; anything else gets 401 with the v6 error body;
  a customer code other than the configured one gets 404;
* ``POST /sales-order``: create, or update when ``id`` is given. Enforces (REPORT 2.6, PROPOSAL):
  the customer exists (``customerName``/``customerId``), the price list exists
  (``salesPriceListName``/``salesPriceListId``), and every line matches a stock item exactly
  by name (``itemName`` = the stock item code, or ``itemId``), ``sku`` and ``unitPrice`` (the
  item's price in that price list). Any failure refuses the whole order, naming the item and
  the field; nothing is created. Answers ``{"status": "Success", "message": null,
  "salesOrder": {...}}``. It does NOT dedupe on ``externalTransactionId`` (nor, as far as is
  known, does Vintrace): callers look up before they create;
* ``GET /sales-order/{id}``, ``GET /sales-order?code=``, ``GET /sales-order/list`` with
  ``max, first, startsWith, status, customerName, externalTransactionId, startDate, endDate,
  invStartDate, invEndDate``;
* ``GET /party?name=`` (exact primeName; 404 when none), ``GET /stock/lookup?code=|id=``;
* ``GET /inventory`` (``max, first, stockType, ownerName`` and the PROPOSAL ``priceListName``
  that fills each row's ``price``);
* ``GET /search/list?type=priceList`` (PROPOSAL: v6 has no price-list endpoint), with
  ``startsWith``, ``exactMatch`` and ``first``; other types answer an empty list.

Control routes (no auth; also Python methods on ``app.sandbox``, a `VintraceSandbox`):

    POST   /_sandbox/vintrace/reset                 forget everything      reset()
    POST   /_sandbox/vintrace/seed                  {customers, priceLists, products}; an
                                                    empty body seeds the demo data  seed(data)
    POST   /_sandbox/vintrace/customers             {primeName, givenName, email, ...}
                                                                            add_customer(...)
    POST   /_sandbox/vintrace/price-lists           {name, countryCurrencyCode, taxPolicy}
                                                                            add_price_list(...)
    POST   /_sandbox/vintrace/products              {code, sku, description, unit, quantity,
                                                     prices: {priceListName: "24.99"}}
                                                                            add_product(...)
    PUT    /_sandbox/vintrace/prices                {code, priceList, price} set_price(...)
    GET    /_sandbox/vintrace/sales-orders          ?externalTransactionId= -> {count, salesOrders}
                                                                            sales_orders(...)
    GET    /_sandbox/vintrace/sales-orders/<id>                             sales_order(id)
    POST   /_sandbox/vintrace/drop-answers          {mode: "reset"|"hang", count, method,
                                                     pathSuffix}: let matching calls run and
                                                     commit, then drop the answer
                                                                drop_answer_after_commit(...)
    DELETE /_sandbox/vintrace/drop-answers          clear them, release hung answers
                                                                            clear_faults()
    GET    /_sandbox/vintrace/spec-violations       answers the sandbox refused to send

The harness (`wms.sandbox.harness`) adds 429/500/hang/reset faults before a call reaches here.

Where it departs from the real API:

* taxes are not computed: ``taxBreakdown`` is empty, ``taxAmount`` 0 and ``total`` equals
  ``subTotal`` (line totals apply ``adjustment`` in money, else ``discountPct``);
* stock is not depleted by sales orders, and ``ignoreStockError`` is only echoed;
* the wording of every error message and the 404s for unknown parties, stock items, sales
  orders and paths are ours (the spec documents no error for these operations);
* Basic auth (named by the old POS guide) is not accepted; rate limits are undocumented and
  not faked beyond the harness's 429 switch;
* the real server's default for a missing ``salesOrderStatus`` is unknown; the fake uses "New".
"""

import copy
import functools
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation

import yaml
from flask import Flask, jsonify, request
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_schema_validator import OAS30Validator
from werkzeug.exceptions import HTTPException

from . import contract as c

CONTROL_PREFIX = "/_sandbox/vintrace"
DEFAULT_CONFIG = {
    "customer_code": "vinx2demo",
    "api_keys": ["vintrace-sandbox-token"],
    "winery_name": "JX2 Winery",
    "hang_seconds": 15.0,
    "seed": None,  # "demo" seeds the demo data
}
FIRST_SALES_ORDER_ID = 1001  # ids and codes (VSO1, VSO2, ...) differ, as in the spec's examples


# -- The spec: loaded once per process, with the documented errata ------------------------------

class SpecViolation(AssertionError):
    """The sandbox was about to send an answer that does not match the Vintrace spec."""


def corrected_spec(raw):
    """The spec with the corrections listed in `contract.py` (SPEC ERRATA), and no others."""
    spec = copy.deepcopy(raw)
    _nullable_formats_to_nullable(spec)
    schemas = spec["components"]["schemas"]
    for schema_name, prop, replacement, _example in c.SPEC_TYPE_ERRATA:
        if prop not in schemas[schema_name]["properties"]:
            raise KeyError(f"erratum for missing property {schema_name}.{prop}")
        schemas[schema_name]["properties"][prop] = dict(replacement)
    for schema_name, old, new in c.SPEC_RENAMED_PROPERTIES:
        properties = schemas[schema_name]["properties"]
        properties[new] = properties.pop(old)
    for path, method, name in c.SPEC_MISSING_PATH_PARAMETERS:
        operation = spec["paths"][path][method]
        operation.setdefault("parameters", []).append(
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
    spec["servers"] = copy.deepcopy(c.SPEC_SERVERS)
    return spec


def _nullable_formats_to_nullable(node):
    if isinstance(node, dict):
        if node.get("format") == "nullable":
            del node["format"]
            node["nullable"] = True
        for value in node.values():
            _nullable_formats_to_nullable(value)
    elif isinstance(node, list):
        for value in node:
            _nullable_formats_to_nullable(value)


@dataclass
class LoadedSpec:
    raw: dict
    corrected: dict
    openapi: OpenAPI
    error_validator: OAS30Validator


@functools.lru_cache(maxsize=4)
def load_spec(path=str(c.SPEC_PATH)):
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    corrected = corrected_spec(raw)
    path_key, method, status = c.SPEC_ERROR_SCHEMA_AT
    error_schema = corrected["paths"][path_key][method]["responses"][status]["content"][
        "application/json"]["schema"]
    return LoadedSpec(raw, corrected, OpenAPI.from_dict(corrected), OAS30Validator(error_schema))


def describe_validation_errors(errors):
    """One line an integrator can act on, from openapi-core's errors."""
    parts = []
    for error in errors:
        cause = error.__cause__
        schema_errors = getattr(cause, "schema_errors", None)
        if schema_errors:
            for schema_error in schema_errors:
                where = _json_path(schema_error.absolute_path)
                parts.append(f"{where}: {schema_error.message}" if where else schema_error.message)
        elif cause is not None and "Deserialize" in type(cause).__name__:
            parts.append("the request body is not valid JSON")
        else:
            parts.append(str(error))
    return "Invalid request: " + "; ".join(parts)


def _json_path(path):
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# -- State ------------------------------------------------------------------------------------------

class Rejected(Exception):
    """A request the fake refuses; becomes a v6 error body."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Party:
    id: int
    prime_name: str
    given_name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: dict = field(default_factory=dict)
    is_organization: bool = True

    def as_json(self):
        body = {"id": self.id, "primeName": self.prime_name, "phone": self.phone,
                "isOrganization": self.is_organization}
        if self.given_name is not None:
            body["givenName"] = self.given_name
        if self.email is not None:
            body["email"] = self.email
        if self.address:
            body["address"] = dict(self.address)
        return body


@dataclass
class PriceList:
    id: int
    name: str
    country_currency_code: str = "USD United States Dollar"
    tax_policy: str = "Tax Exclusive"


@dataclass
class StockItem:
    id: int
    code: str
    sku: str | None
    description: str
    unit: str = "x1"
    quantity: int = 0
    prices: dict = field(default_factory=dict)  # price list name -> Decimal

    @property
    def item_type(self):
        return "Single x1" if self.unit == "x1" else f"Case {self.unit}"


@dataclass
class _DropAnswer:
    mode: str
    remaining: int
    method: str
    path_suffix: str


def _money(value):
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not an amount: {value!r}") from exc
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return amount


def _number(amount):
    return float(amount) if amount is not None else None


def _now_ms():
    return int(time.time() * 1000)


def _date_text(epoch_ms):
    if epoch_ms is None:
        return ""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc).strftime("%d/%m/%Y")


class VintraceSandbox:
    """The fake's state and rules. Every public method is thread-safe."""

    def __init__(self, config=None):
        self.config = {**DEFAULT_CONFIG, **(config or {})}
        self.customer_code = self.config["customer_code"]
        self.api_keys = set(self.config["api_keys"])
        self.winery_name = self.config["winery_name"]
        self.hang_seconds = float(self.config["hang_seconds"])
        self.spec = load_spec(self.config.get("spec_path") or str(c.SPEC_PATH))
        self.spec_violations = []
        self._lock = threading.RLock()
        self._released = threading.Event()
        self._drops = []
        self.reset()
        if self.config["seed"] == "demo":
            self.seed(None)

    # -- seeding and control ----------------------------------------------------------------------
    def reset(self):
        with self._lock:
            self._parties = {}
            self._price_lists = {}
            self._items = {}
            self._orders = {}
            self._next_id = 1
            self._next_order_id = FIRST_SALES_ORDER_ID
            self._next_order_code = 1
            self._next_line_id = 1

    def _new_id(self):
        self._next_id += 1
        return self._next_id - 1

    def add_customer(self, prime_name, *, given_name=None, email=None, phone=None, address=None,
                     is_organization=True):
        if not isinstance(prime_name, str) or not prime_name.strip():
            raise ValueError("primeName is required")
        with self._lock:
            if any(p.prime_name == prime_name for p in self._parties.values()):
                raise ValueError(f"customer {prime_name!r} exists")
            party = Party(self._new_id(), prime_name, given_name, email, phone, dict(address or {}),
                          bool(is_organization))
            self._parties[party.id] = party
            return party.as_json()

    def add_price_list(self, name, *, country_currency_code="USD United States Dollar",
                       tax_policy="Tax Exclusive"):
        if not isinstance(name, str) or not name.strip():
            raise ValueError("name is required")
        with self._lock:
            if any(p.name == name for p in self._price_lists.values()):
                raise ValueError(f"price list {name!r} exists")
            price_list = PriceList(self._new_id(), name, country_currency_code, tax_policy)
            self._price_lists[price_list.id] = price_list
            return {"id": price_list.id, "name": name}

    def add_product(self, code, *, sku, description="", unit="x1", quantity=0, prices=None):
        if not isinstance(code, str) or not code.strip():
            raise ValueError("code is required")
        prices = {name: _money(price) for name, price in (prices or {}).items()}
        with self._lock:
            if self._item_by_code(code) is not None:
                raise ValueError(f"stock item {code!r} exists")
            for name in prices:
                self._price_list_named(name, required=True)
            item = StockItem(self._new_id(), code, sku, description, unit, int(quantity), prices)
            self._items[item.id] = item
            return {"id": item.id, "code": code}

    def set_price(self, code, price_list, price):
        """Change a stock item's price in one price list (``price=None`` removes it)."""
        with self._lock:
            item = self._item_by_code(code)
            if item is None:
                raise ValueError(f"no stock item {code!r}")
            self._price_list_named(price_list, required=True)
            if price is None:
                item.prices.pop(price_list, None)
            else:
                item.prices[price_list] = _money(price)

    def seed(self, data):
        """Add customers, price lists and products; ``None`` seeds the demo data."""
        data = DEMO_DATA if data is None else data
        for customer in data.get("customers", []):
            customer = dict(customer)
            self.add_customer(customer.pop("primeName", None), given_name=customer.get("givenName"),
                              email=customer.get("email"), phone=customer.get("phone"),
                              address=customer.get("address"),
                              is_organization=customer.get("isOrganization", True))
        for price_list in data.get("priceLists", []):
            self.add_price_list(price_list.get("name"),
                                country_currency_code=price_list.get("countryCurrencyCode",
                                                                     "USD United States Dollar"),
                                tax_policy=price_list.get("taxPolicy", "Tax Exclusive"))
        for product in data.get("products", []):
            self.add_product(product.get("code"), sku=product.get("sku"),
                             description=product.get("description", ""), unit=product.get("unit", "x1"),
                             quantity=product.get("quantity", 0), prices=product.get("prices"))
        return self.counts()

    def counts(self):
        with self._lock:
            return {"customers": len(self._parties), "priceLists": len(self._price_lists),
                    "products": len(self._items), "salesOrders": len(self._orders)}

    def sales_orders(self, external_transaction_id=None):
        with self._lock:
            orders = [o for _, o in sorted(self._orders.items())
                      if external_transaction_id is None
                      or o.get("externalTransactionId") == external_transaction_id]
            return copy.deepcopy(orders)

    def sales_order(self, order_id):
        with self._lock:
            order = self._orders.get(int(order_id))
            return copy.deepcopy(order) if order else None

    def drop_answer_after_commit(self, mode="reset", count=1, method="POST", path_suffix="/sales-order"):
        """The next ``count`` matching calls run (and commit) but their answer never arrives.

        "reset" drops the connection; "hang" holds the answer ``hang_seconds`` (past the client's
        timeout). Either way the caller cannot know the order was made.
        """
        if mode not in ("reset", "hang"):
            raise ValueError("mode must be 'reset' or 'hang'")
        with self._lock:
            self._drops.append(_DropAnswer(mode, int(count), method.upper(), path_suffix))

    def clear_faults(self):
        with self._lock:
            self._drops.clear()
        self._released.set()
        self._released = threading.Event()

    def take_drop(self, method, path):
        with self._lock:
            for drop in self._drops:
                if drop.method == method and path.endswith(drop.path_suffix):
                    drop.remaining -= 1
                    if drop.remaining <= 0:
                        self._drops.remove(drop)
                    return drop.mode
        return None

    def wait_released(self):
        self._released.wait(self.hang_seconds)

    def record_violation(self, violation):
        with self._lock:
            self.spec_violations.append(violation)

    def assert_no_spec_violations(self):
        if self.spec_violations:
            raise SpecViolation("the sandbox sent answers that violate the Vintrace spec: "
                                + " | ".join(self.spec_violations))

    # -- lookups (call with the lock held) ------------------------------------------------------------
    def _item_by_code(self, code):
        return next((i for i in self._items.values() if i.code == code), None)

    def _price_list_named(self, name, required=False):
        found = next((p for p in self._price_lists.values() if p.name == name), None)
        if found is None and required:
            raise ValueError(f"no price list {name!r}")
        return found

    # -- the API's behaviour ----------------------------------------------------------------------
    def party_by_name(self, name):
        with self._lock:
            party = next((p for p in self._parties.values() if p.prime_name == name), None)
            if party is None:
                raise Rejected(c.MSG_PARTY_NOT_FOUND.format(name=name), 404)
            return party.as_json()

    def stock_lookup(self, code=None, item_id=None):
        with self._lock:
            if item_id is not None:
                item = self._items.get(_int_param(item_id, "id"))
            elif code:
                item = self._item_by_code(code) or next(
                    (i for i in sorted(self._items.values(), key=lambda i: i.code)
                     if i.code.startswith(code)), None)
            else:
                raise Rejected("A code or id is required")
            if item is None:
                raise Rejected(c.MSG_STOCK_NOT_FOUND.format(key=code or item_id), 404)
            return self._stock_item_details(item)

    def _stock_item_details(self, item):
        return {
            "id": item.id, "code": item.code, "description": item.description,
            "itemType": item.item_type,
            "unit": {"description": item.item_type, "abbreviation": item.unit},
            "owner": {"id": 1, "name": self.winery_name, "summary": self.winery_name, "type": "Owner"},
            "sku": item.sku, "lotTracked": False, "levelTracked": True,
            "distributions": [{
                "id": item.id, "itemCode": item.code, "qty": item.quantity, "available": item.quantity,
                "areaName": "Warehouse", "areaId": 1, "buildingName": "Warehouse",
                "wineryName": self.winery_name, "bay": None, "lotCode": None,
                "bondName": self.winery_name, "bondNumber": "1234", "taxState": "Bonded",
            }],
        }

    def inventory(self, args):
        first, maximum = _page_params(args)
        with self._lock:
            price_list_name = args.get(c.INVENTORY_PRICE_LIST_PARAM)
            if price_list_name is not None and self._price_list_named(price_list_name) is None:
                raise Rejected(c.MSG_PRICE_LIST_NOT_FOUND.format(name=price_list_name))
            items = sorted(self._items.values(), key=lambda i: i.id)
            if args.get("stockType"):
                items = [i for i in items if i.item_type == args["stockType"]]
            if args.get("ownerName") and args["ownerName"] != self.winery_name:
                items = []
            rows = [self._inventory_row(i, price_list_name) for i in items[first:first + maximum]]
        return {"status": c.SUCCESS_STATUS, "message": None, "inventorySummaries": rows}

    def _inventory_row(self, item, price_list_name):
        price = item.prices.get(price_list_name) if price_list_name else None
        now = _now_ms()
        return {
            "date": now, "dateAsText": _date_text(now), "winery": self.winery_name,
            "quantity": item.quantity, "committed": 0, "onOrder": 0, "available": item.quantity,
            "unit": item.item_type, "type": item.item_type, "code": item.code, "name": item.code,
            "description": item.description, "location": "Warehouse / Warehouse",
            "stockCategory": "Bottled Wine", "price": _number(price),
            "priceAsText": f"${price:.2f}" if price is not None else None,
            "owner": self.winery_name, "sku": item.sku,
            "stockItemDetailsEndpoint": f"/{self.customer_code}/api/v/stock/lookup?id={item.id}",
        }

    def search(self, args):
        search_type = args["type"]
        first = _int_param(args.get("first", "0"), "first")
        starts_with = args.get("startsWith", "")
        exact = args.get("exactMatch", "false").lower() == "true"
        with self._lock:
            results = []
            if search_type == c.PRICE_LIST_SEARCH_TYPE:
                for price_list in sorted(self._price_lists.values(), key=lambda p: p.id):
                    matches = (price_list.name == starts_with if exact
                               else price_list.name.lower().startswith(starts_with.lower()))
                    if matches:
                        results.append({
                            "id": price_list.id, "name": price_list.name,
                            "type": c.PRICE_LIST_RESULT_TYPE, "summary": price_list.tax_policy,
                            "additionalDetails": {"countryCurrencyCode": price_list.country_currency_code,
                                                  "taxPolicy": price_list.tax_policy}})
        page = results[first:first + c.MAX_PAGE_SIZE]
        more = first + len(page) < len(results)
        base = f"/{self.customer_code}/api/v6/search/list?type={search_type}"
        return {
            "firstResult": first, "maxResult": c.MAX_PAGE_SIZE, "totalResultCount": len(results),
            "type": search_type,
            "nextURLPath": f"{base}&first={first + len(page)}" if more else None,
            "prevURLPath": f"{base}&first={max(first - c.MAX_PAGE_SIZE, 0)}" if first else None,
            "simpleSearchResults": page,
        }

    def list_sales_orders(self, args):
        first, maximum = _page_params(args)
        filters = _order_filters(args)
        with self._lock:
            orders = [o for _, o in sorted(self._orders.items()) if all(f(o) for f in filters)]
            page = copy.deepcopy(orders[first:first + maximum])
        return {"status": c.SUCCESS_STATUS, "message": None, "salesOrders": page}

    def get_sales_order(self, order_id=None, code=None):
        with self._lock:
            if order_id is not None:
                try:
                    order = self._orders.get(int(order_id))
                except ValueError:
                    order = None
            elif code:
                order = next((o for o in self._orders.values() if o["code"] == code), None)
            else:
                raise Rejected("A code is required")
            if order is None:
                raise Rejected(c.MSG_SALES_ORDER_NOT_FOUND.format(key=order_id or code), 404)
            return copy.deepcopy(order)

    def save_sales_order(self, body):
        """Create (or, with ``id``, update) a sales order; all-or-nothing."""
        with self._lock:
            existing = None
            if body.get("id") is not None:
                existing = self._orders.get(body["id"])
                if existing is None:
                    raise Rejected(c.MSG_SALES_ORDER_NOT_FOUND.format(key=body["id"]), 404)
            party = self._resolve_customer(body)
            price_list = self._resolve_price_list(body)
            lines = body.get("salesOrderItems") or []
            if not lines:
                raise Rejected(c.MSG_NO_ITEMS)
            resolved = self._resolve_lines(lines, price_list)
            if existing is None:
                order_id, code = self._next_order_id, f"VSO{self._next_order_code}"
                self._next_order_id += 1
                self._next_order_code += 1
            else:
                order_id, code = existing["id"], existing["code"]
            order = self._order_json(order_id, code, body, party, price_list, resolved)
            self._orders[order_id] = order
            return copy.deepcopy(order)

    def _resolve_customer(self, body):
        if body.get("customerId") is not None:
            party = self._parties.get(body["customerId"])
            if party is None:
                raise Rejected(c.MSG_CUSTOMER_NOT_FOUND.format(name=body["customerId"]))
            if body.get("customerName") not in (None, party.prime_name):
                raise Rejected(f"Customer id {party.id} is '{party.prime_name}', "
                               f"not '{body['customerName']}'")
            return party
        name = body.get("customerName")
        if not name:
            raise Rejected(c.MSG_CUSTOMER_REQUIRED)
        party = next((p for p in self._parties.values() if p.prime_name == name), None)
        if party is None:
            raise Rejected(c.MSG_CUSTOMER_NOT_FOUND.format(name=name))
        return party

    def _resolve_price_list(self, body):
        if body.get("salesPriceListId") is not None:
            price_list = self._price_lists.get(body["salesPriceListId"])
            if price_list is None:
                raise Rejected(c.MSG_PRICE_LIST_NOT_FOUND.format(name=body["salesPriceListId"]))
            return price_list
        name = body.get("salesPriceListName")
        if not name:
            raise Rejected(c.MSG_PRICE_LIST_REQUIRED)
        price_list = self._price_list_named(name)
        if price_list is None:
            raise Rejected(c.MSG_PRICE_LIST_NOT_FOUND.format(name=name))
        return price_list

    def _resolve_lines(self, lines, price_list):
        resolved, problems = [], []
        for line in lines:
            item, problem = self._match_line(line, price_list)
            if problem:
                problems.append(problem)
            else:
                resolved.append((line, item))
        if problems:
            raise Rejected("; ".join(problems))
        return resolved

    def _match_line(self, line, price_list):
        """The strict rule: name, sku and price must all equal the stock item's."""
        name, sku = line.get("itemName"), line.get("sku")
        label = name if name is not None else line.get("itemId")
        if line.get("itemId") is not None:
            item = self._items.get(line["itemId"])
        else:
            item = self._item_by_code(name) if name else None
        if item is None:
            same_sku = next((i for i in self._items.values() if sku and i.sku == sku), None)
            if same_sku is not None and line.get("itemId") is None:
                return None, c.MSG_ITEM_MISMATCH.format(
                    item=label, fields="name",
                    details=f"sku '{sku}' belongs to stock item '{same_sku.code}'")
            return None, c.MSG_ITEM_NOT_FOUND.format(item=label)
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or quantity <= 0:
            return None, c.MSG_QUANTITY.format(item=label)
        price = item.prices.get(price_list.name)
        if price is None:
            return None, c.MSG_ITEM_NO_PRICE.format(item=label, price_list=price_list.name)
        fields, details = [], []
        if name is not None and name != item.code:
            fields.append("name")
            details.append(f"itemName '{name}', stock item {item.id} is '{item.code}'")
        if sku != item.sku:
            fields.append("sku")
            details.append(f"sent sku {_quoted(sku)}, stock item has {_quoted(item.sku)}")
        unit_price = line.get("unitPrice")
        if unit_price is None or _money(unit_price) != price:
            fields.append("price")
            details.append(f"sent unitPrice {unit_price}, price list '{price_list.name}' has {price}")
        if fields:
            return None, c.MSG_ITEM_MISMATCH.format(item=label, fields="/".join(fields),
                                                    details="; ".join(details))
        return item, None

    def _order_json(self, order_id, code, body, party, price_list, resolved):
        items = [self._line_json(line, item) for line, item in resolved]
        sub_total = sum((_money(i["lineTotal"]) for i in items), Decimal("0"))
        order_date = body.get("orderDate") or _now_ms()
        order = {
            "id": order_id, "code": code,
            "invoiceDate": body.get("invoiceDate"), "invoiceDateAsText": _date_text(body.get("invoiceDate")),
            "customerId": party.id, "customerName": party.prime_name,
            "sendTo": body.get("sendTo") or {"name": party.prime_name, "phone": party.phone,
                                             **({"address": dict(party.address)} if party.address else {})},
            "salesType": body.get("salesType") or "Retail",
            "salesPriceListId": price_list.id, "salesPriceListName": price_list.name,
            "priceDetails": {"countryCurrencyCode": price_list.country_currency_code,
                             "taxPolicy": price_list.tax_policy},
            "salesOrderStatus": body.get("salesOrderStatus") or "New",
            "salesOrderItems": items,
            "description": body.get("description"), "reference": body.get("reference"),
            "orderDate": order_date, "orderDateAsText": _date_text(order_date),
            "wineryId": None, "wineryName": self.winery_name,
            "fulfillmentDate": None, "fulfillmentDateAsText": "",
            "salesRegionId": None, "salesRegionCode": None,
            "notes": body.get("notes") or "",
            "customerPickup": bool(body.get("customerPickup", False)),
            "disableAccountsSync": bool(body.get("disableAccountsSync", False)),
            "subTotal": _number(sub_total), "taxBreakdown": [], "total": _number(sub_total),
            "posSaleReference": body.get("posSaleReference"),
            "ignoreStockError": bool(body.get("ignoreStockError", False)),
        }
        if body.get("externalTransactionId") is not None:
            order["externalTransactionId"] = body["externalTransactionId"]
        if body.get(c.STORAGE_AREA_FIELD) is not None:
            order[c.STORAGE_AREA_FIELD] = body[c.STORAGE_AREA_FIELD]
        return order

    def _line_json(self, line, item):
        unit_price = _money(line["unitPrice"])
        gross = unit_price * line["quantity"]
        adjustment = line.get("adjustment")
        discount_pct = line.get("discountPct")
        if adjustment is not None:
            line_total = gross - _money(adjustment)
        elif discount_pct is not None:
            line_total = gross * (Decimal(100) - _money(discount_pct)) / Decimal(100)
        else:
            line_total = gross
        line_id = self._next_line_id
        self._next_line_id += 1
        result = {
            "id": line_id, "itemId": item.id, "itemName": item.code, "unitPrice": _number(unit_price),
            "quantity": line["quantity"], "unitOfMeasure": line.get("unitOfMeasure") or item.unit,
            "discountPct": discount_pct, "adjustment": adjustment, "taxAmount": 0,
            "lineTotal": _number(line_total.quantize(Decimal("0.01"))), "sku": item.sku,
        }
        for key in ("accountCode", "externalReference"):
            if line.get(key) is not None:
                result[key] = line[key]
        return result


def _quoted(value):
    return "none" if value is None else f"'{value}'"


def _int_param(value, name):
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise Rejected(f"'{name}' must be a whole number, not '{value}'") from None
    if number < 0:
        raise Rejected(f"'{name}' must not be negative")
    return number


def _page_params(args):
    first = _int_param(args.get("first", "0"), "first")
    maximum = _int_param(args.get("max", str(c.DEFAULT_PAGE_SIZE)), "max")
    return first, min(maximum, c.MAX_PAGE_SIZE)


def _order_filters(args):
    filters = []
    for param, key in (("externalTransactionId", "externalTransactionId"), ("status", "salesOrderStatus"),
                       ("customerName", "customerName")):
        if args.get(param) is not None:
            filters.append(lambda o, k=key, v=args[param]: o.get(k) == v)
    if args.get("startsWith"):
        filters.append(lambda o, v=args["startsWith"]: o["code"].startswith(v))
    for param, key, after in (("startDate", "orderDate", True), ("endDate", "orderDate", False),
                              ("invStartDate", "invoiceDate", True), ("invEndDate", "invoiceDate", False)):
        if args.get(param):
            day = _day_param(args[param], param)
            filters.append(lambda o, k=key, d=day, a=after: _on_side_of(o.get(k), d, a))
    return filters


def _day_param(value, name):
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Rejected(f"'{name}' must be a date in YYYY-MM-DD format, not '{value}'") from None


def _on_side_of(epoch_ms, day, after):
    if epoch_ms is None:
        return False
    order_day = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc).date()
    return order_day >= day if after else order_day <= day


DEMO_DATA = {
    "customers": [
        {"primeName": "ABC Wine Company", "email": "orders@abcwine.example", "isOrganization": True,
         "address": {"street1": "1 Some Street", "city": "Napa", "state": "CA", "postalCode": "94558"}},
        {"primeName": "Smith", "givenName": "Adam", "email": "smith@example.com", "isOrganization": False},
        {"primeName": "Walk In", "isOrganization": False},
    ],
    "priceLists": [
        {"name": "Retail", "taxPolicy": "Tax Inclusive"},
        {"name": "Wholesale", "taxPolicy": "Tax Exclusive"},
    ],
    "products": [
        {"code": "21CHARD/750", "sku": "CHARD-21-750", "description": "2021 Estate Chardonnay 750ml",
         "quantity": 480, "prices": {"Retail": "32.00", "Wholesale": "19.50"}},
        {"code": "20PINOT/750", "sku": "PINOT-20-750", "description": "2020 Reserve Pinot Noir 750ml",
         "quantity": 240, "prices": {"Retail": "48.00", "Wholesale": "29.00"}},
        {"code": "20PINOT/12", "sku": "PINOT-20-CS12", "description": "2020 Reserve Pinot Noir case of 12",
         "unit": "x12", "quantity": 20, "prices": {"Wholesale": "330.00"}},
    ],
}


# -- HTTP ------------------------------------------------------------------------------------------

def _error(message, status):
    response = jsonify({"status": c.ERROR_STATUS, "message": message})
    response.status_code = status
    return response


class _AnswerDropper:
    """WSGI middleware: lets a matching call run to the end, then withholds its answer."""

    def __init__(self, wsgi_app, sandbox):
        self.wsgi_app = wsgi_app
        self.sandbox = sandbox

    def __call__(self, environ, start_response):
        mode = self.sandbox.take_drop(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""))
        if mode is None:
            return self.wsgi_app(environ, start_response)
        answer = {}

        def keep(status, headers, exc_info=None):
            answer["status"], answer["headers"] = status, headers
            return lambda data: None

        body = b"".join(self.wsgi_app(environ, keep))  # the order is committed here
        if mode == "hang":
            self.sandbox.wait_released()
            start_response(answer["status"], answer["headers"])
            return [body]
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)
        raise ConnectionResetError("sandbox fault: answer dropped after commit")


def create_app(config=None):
    """The fake Vintrace as a Flask app; its state is ``app.sandbox``."""
    app = Flask(__name__)
    app.json.sort_keys = False
    sandbox = VintraceSandbox(config)
    app.sandbox = sandbox
    app.wsgi_app = _AnswerDropper(app.wsgi_app, sandbox)
    api_prefix = "/<customer_code>/api/v6"

    def is_api_call():
        parts = request.path.split("/")
        return len(parts) > 3 and parts[2:4] == ["api", "v6"]

    @app.before_request
    def check_call():
        if not is_api_call():
            return None
        if request.path.split("/")[1] != sandbox.customer_code:
            return _error(f"Unknown customer '{request.path.split('/')[1]}'", 404)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in sandbox.api_keys:
            return _error(c.MSG_UNAUTHORIZED, 401)
        if request.routing_exception is not None:
            return None  # 404/405 below, in the v6 shape
        errors = list(sandbox.spec.openapi.iter_request_errors(WerkzeugOpenAPIRequest(request)))
        if errors:
            return _error(describe_validation_errors(errors), 400)
        return None

    @app.after_request
    def check_answer(response):
        if not is_api_call():
            return response
        problem = _response_problem(sandbox.spec, response)
        if problem is None:
            return response
        violation = f"{request.method} {request.path} -> {response.status_code}: {problem}"
        sandbox.record_violation(violation)
        app.logger.error("Vintrace sandbox answer violates the spec: %s", violation)
        return _error(f"Sandbox bug: the answer violates the Vintrace spec ({problem})", 500)

    @app.errorhandler(Rejected)
    def rejected(exc):
        return _error(exc.message, exc.status)

    @app.errorhandler(HTTPException)
    def http_error(exc):
        if not is_api_call():
            return jsonify({"error": exc.description}), exc.code
        return _error(f"{exc.name}: {request.method} {request.path}", exc.code)

    @app.get(f"{api_prefix}/sales-order/list")
    def sales_order_list(customer_code):
        return jsonify(sandbox.list_sales_orders(request.args))

    @app.get(f"{api_prefix}/sales-order/<order_id>")
    def sales_order_by_id(customer_code, order_id):
        return jsonify(sandbox.get_sales_order(order_id=order_id))

    @app.get(f"{api_prefix}/sales-order")
    def sales_order_by_code(customer_code):
        return jsonify(sandbox.get_sales_order(code=request.args.get("code")))

    @app.post(f"{api_prefix}/sales-order")
    def sales_order_save(customer_code):
        body = request.get_json(silent=True) or {}
        order = sandbox.save_sales_order(body)
        return jsonify({"status": c.SUCCESS_STATUS, "message": None, "salesOrder": order})

    @app.get(f"{api_prefix}/party")
    def party_by_name(customer_code):
        return jsonify(sandbox.party_by_name(request.args.get("name", "")))

    @app.get(f"{api_prefix}/stock/lookup")
    def stock_lookup(customer_code):
        return jsonify(sandbox.stock_lookup(code=request.args.get("code"), item_id=request.args.get("id")))

    @app.get(f"{api_prefix}/inventory")
    def inventory(customer_code):
        return jsonify(sandbox.inventory(request.args))

    @app.get(f"{api_prefix}/search/list")
    def search_list(customer_code):
        return jsonify(sandbox.search(request.args))

    _control_routes(app, sandbox)
    return app


def _response_problem(spec, response):
    """Why this answer does not match the spec, or None."""
    if response.status_code < 400:
        errors = list(spec.openapi.iter_response_errors(WerkzeugOpenAPIRequest(request),
                                                        WerkzeugOpenAPIResponse(response)))
        return describe_validation_errors(errors).removeprefix("Invalid request: ") if errors else None
    try:
        body = json.loads(response.get_data())
    except ValueError:
        return "the error body is not JSON"
    problems = [e.message for e in spec.error_validator.iter_errors(body)]
    if body.get("status") != c.ERROR_STATUS or not isinstance(body.get("message"), str):
        problems.append("an error body needs status 'Error' and a message")
    return "; ".join(problems) or None


def _control_routes(app, sandbox):
    def control_error(message):
        return jsonify({"error": message}), 400

    def body():
        return request.get_json(silent=True) or {}

    @app.post(f"{CONTROL_PREFIX}/reset")
    def control_reset():
        sandbox.reset()
        return jsonify(sandbox.counts())

    @app.post(f"{CONTROL_PREFIX}/seed")
    def control_seed():
        try:
            return jsonify(sandbox.seed(body() or None))
        except (ValueError, TypeError) as exc:
            return control_error(str(exc))

    @app.post(f"{CONTROL_PREFIX}/customers")
    def control_customer():
        data = body()
        try:
            party = sandbox.add_customer(data.get("primeName"), given_name=data.get("givenName"),
                                         email=data.get("email"), phone=data.get("phone"),
                                         address=data.get("address"),
                                         is_organization=data.get("isOrganization", True))
        except ValueError as exc:
            return control_error(str(exc))
        return jsonify(party), 201

    @app.post(f"{CONTROL_PREFIX}/price-lists")
    def control_price_list():
        data = body()
        try:
            created = sandbox.add_price_list(
                data.get("name"),
                country_currency_code=data.get("countryCurrencyCode", "USD United States Dollar"),
                tax_policy=data.get("taxPolicy", "Tax Exclusive"))
        except ValueError as exc:
            return control_error(str(exc))
        return jsonify(created), 201

    @app.post(f"{CONTROL_PREFIX}/products")
    def control_product():
        data = body()
        try:
            created = sandbox.add_product(data.get("code"), sku=data.get("sku"),
                                          description=data.get("description", ""),
                                          unit=data.get("unit", "x1"), quantity=data.get("quantity", 0),
                                          prices=data.get("prices"))
        except (ValueError, TypeError) as exc:
            return control_error(str(exc))
        return jsonify(created), 201

    @app.put(f"{CONTROL_PREFIX}/prices")
    def control_price():
        data = body()
        try:
            sandbox.set_price(data.get("code"), data.get("priceList"), data.get("price"))
        except ValueError as exc:
            return control_error(str(exc))
        return jsonify({"code": data["code"], "priceList": data["priceList"], "price": data.get("price")})

    @app.get(f"{CONTROL_PREFIX}/sales-orders")
    def control_sales_orders():
        orders = sandbox.sales_orders(request.args.get("externalTransactionId"))
        return jsonify({"count": len(orders), "salesOrders": orders})

    @app.get(f"{CONTROL_PREFIX}/sales-orders/<int:order_id>")
    def control_sales_order(order_id):
        order = sandbox.sales_order(order_id)
        return (jsonify(order), 200) if order else (jsonify({"error": "no such sales order"}), 404)

    @app.post(f"{CONTROL_PREFIX}/drop-answers")
    def control_drop():
        data = body()
        try:
            sandbox.drop_answer_after_commit(data.get("mode", "reset"), data.get("count", 1),
                                             data.get("method", "POST"), data.get("pathSuffix", "/sales-order"))
        except (ValueError, TypeError) as exc:
            return control_error(str(exc))
        return jsonify({"armed": True})

    @app.delete(f"{CONTROL_PREFIX}/drop-answers")
    def control_clear_drops():
        sandbox.clear_faults()
        return jsonify({"armed": False})

    @app.get(f"{CONTROL_PREFIX}/spec-violations")
    def control_violations():
        return jsonify({"count": len(sandbox.spec_violations), "violations": list(sandbox.spec_violations)})
