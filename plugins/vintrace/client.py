"""The only code that talks to a Vintrace customer's v6 API (one-way Sales Order push).

Operations (`VintraceClient`):

* ``test_connection()``: one cheap authenticated read; raises if the URL or token is wrong.
* ``find_customer(name)``: the party whose primeName is exactly ``name``, or None.
* ``find_price_list(name)``: the price list named exactly ``name``, or None (PROPOSAL endpoint).
* ``get_product_by_sku(sku, price_list_name)`` / ``find_products_by_sku(skus, price_list_name)``:
  stock items by SKU, with their price in that price list (one paged scan of ``/inventory``).
* ``find_sales_order(external_transaction_id)``: the (oldest) sales order carrying our id.
* ``get_sales_order(order_id)``.
* ``create_sales_order(...)``: POST one sales order; not retried on timeouts or resets (the
  order may exist): call ``ensure_sales_order(...)``, which looks up by
  ``externalTransactionId`` before it creates, to retry safely.

Errors: `RemoteAuthError` (token refused), `RemoteRejected` (Vintrace refused the request; the
message names the customer, price list, item and field as Vintrace did), transient errors from
`wms.integrations.errors` for timeouts, resets, 5xx and 429 (a 429 is retried here first,
honouring Retry-After, when the wait is short).
"""

import json
import time
from dataclasses import dataclass
from datetime import date, datetime, time as dtime, timezone
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit, urlunsplit

from wms.integrations.errors import (
    RemoteAuthError,
    RemoteError,
    RemoteRateLimited,
    RemoteRejected,
    RemoteUnavailable,
)
from wms.integrations.http import DEFAULT_TIMEOUT, RemoteHttp

from . import contract as c

PLUGIN = "vintrace"
DEFAULT_RETRY_AFTER = 1.0


@dataclass(frozen=True)
class Customer:
    id: int
    name: str
    given_name: str | None = None
    email: str | None = None
    is_organization: bool | None = None


@dataclass(frozen=True)
class PriceList:
    id: int
    name: str
    tax_policy: str | None = None


@dataclass(frozen=True)
class Product:
    """A stock item. ``name`` is its code: what a sales order line calls ``itemName``."""

    code: str
    sku: str | None
    description: str | None
    unit: str | None
    available: Decimal | None
    price: Decimal | None      # in ``price_list``; None when it has no price there
    price_list: str | None

    @property
    def name(self):
        return self.code


@dataclass(frozen=True)
class OrderLine:
    name: str                  # the stock item code
    sku: str
    unit_price: Decimal
    quantity: int
    unit_of_measure: str | None = None


@dataclass(frozen=True)
class SalesOrder:
    id: int
    code: str | None
    external_transaction_id: str | None
    customer_name: str | None
    price_list_name: str | None
    status: str | None
    total: Decimal | None
    lines: tuple
    raw: dict


def v6_base_url(url):
    """``https://host/<CustomerCode>/api/v6/`` from any of the URLs an admin may paste."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    for suffix in ("/api/v6", "/api"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return urlunsplit((parts.scheme, parts.netloc, f"{path}/{c.API_SUFFIX}/", "", ""))


class VintraceClient:
    def __init__(self, base_url, api_key, *, store_id=None, timeout=DEFAULT_TIMEOUT, recorder=None,
                 allow_private=None, rate_limit_retries=2, max_retry_wait=10.0, page_size=c.DEFAULT_PAGE_SIZE,
                 sleep=time.sleep):
        if not api_key:
            raise ValueError("a Vintrace API token is required")
        self.base_url = v6_base_url(base_url)
        self.rate_limit_retries = rate_limit_retries
        self.max_retry_wait = max_retry_wait
        self.page_size = page_size
        self._sleep = sleep
        self.http = RemoteHttp(
            self.base_url, plugin=PLUGIN, store_id=store_id, timeout=timeout, recorder=recorder,
            allow_private=allow_private, secrets=[api_key],
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
        )

    # -- operations ---------------------------------------------------------------------------------
    def test_connection(self):
        """True, or raises: RemoteAuthError (token), RemoteRejected (URL), transient errors."""
        self._get(c.SALES_ORDER_LIST_PATH, {"max": "1", "first": "0"}, what="the connection test")
        return True

    def find_customer(self, name):
        body = self._get(c.PARTY_BY_NAME_PATH, {"name": name}, what=f"customer '{name}'",
                         none_on_404=True)
        if not body or body.get("primeName") != name or body.get("id") is None:
            return None
        return Customer(id=body["id"], name=body["primeName"], given_name=body.get("givenName"),
                        email=body.get("email"), is_organization=body.get("isOrganization"))

    def find_price_list(self, name):
        params = {"type": c.PRICE_LIST_SEARCH_TYPE, "startsWith": name, "exactMatch": "true"}
        first = 0
        while True:
            body = self._get(c.SEARCH_LIST_PATH, {**params, "first": str(first)},
                             what=f"price list '{name}'")
            results = body.get("simpleSearchResults") or []
            for result in results:
                if result.get("name") == name and result.get("id") is not None:
                    return PriceList(id=result["id"], name=result["name"], tax_policy=result.get("summary"))
            if not results or not body.get("nextURLPath"):
                return None
            first += len(results)

    def get_product_by_sku(self, sku, price_list_name):
        """The stock item with exactly this SKU, priced in ``price_list_name``, or None."""
        return self.find_products_by_sku([sku], price_list_name).get(sku)

    def find_products_by_sku(self, skus, price_list_name):
        """{sku: Product} for the SKUs found, in one scan of the inventory."""
        wanted = set(skus)
        found = {}
        params = {c.INVENTORY_PRICE_LIST_PARAM: price_list_name}
        for row in self._pages(c.INVENTORY_PATH, params, "inventorySummaries", what="the stock items"):
            sku = row.get("sku")
            if sku not in wanted:
                continue
            product = _product(row, price_list_name)
            if sku in found and found[sku].code != product.code:
                raise RemoteRejected(
                    f"Vintrace has more than one stock item with SKU '{sku}' ({found[sku].code}, "
                    f"{product.code}); give each stock item its own SKU in Vintrace.")
            found.setdefault(sku, product)
        return found

    def find_sales_order(self, external_transaction_id):
        """The oldest sales order whose externalTransactionId is exactly this one, or None."""
        params = {"externalTransactionId": external_transaction_id}
        matches = [o for o in self._pages(c.SALES_ORDER_LIST_PATH, params, "salesOrders",
                                          what=f"sales order '{external_transaction_id}'")
                   if o.get("externalTransactionId") == external_transaction_id]
        if not matches:
            return None
        return _sales_order(min(matches, key=lambda o: o.get("id") or 0))

    def get_sales_order(self, order_id):
        body = self._get(c.SALES_ORDER_BY_ID_PATH.format(id=order_id), None,
                         what=f"sales order {order_id}", none_on_404=True)
        return _sales_order(body) if body else None

    def create_sales_order(self, *, customer_name, price_list_name, lines, external_transaction_id,
                           order_date=None, sales_type=None, status=None, reference=None, notes=None,
                           storage_area_id=None):
        """POST one sales order and return it as Vintrace saved it.

        A timeout or reset leaves it unknown whether the order exists: retry with
        `ensure_sales_order`, never by calling this again.
        """
        body = sales_order_body(customer_name=customer_name, price_list_name=price_list_name, lines=lines,
                                external_transaction_id=external_transaction_id, order_date=order_date,
                                sales_type=sales_type, status=status, reference=reference, notes=notes,
                                storage_area_id=storage_area_id)
        answer = self._call("POST", c.SALES_ORDER_PATH, json=body,
                            what=f"sales order '{external_transaction_id}'")
        order = answer.get("salesOrder") or answer.get("salesOrders")
        if not isinstance(order, dict) or order.get("id") is None:
            raise RemoteUnavailable(
                f"Vintrace accepted sales order '{external_transaction_id}' but its answer holds no "
                "sales order; look it up by externalTransactionId before sending it again.",
                body=str(answer)[:2000])
        return _sales_order(order)

    def ensure_sales_order(self, **order):
        """(sales order, created): looks up ``external_transaction_id`` first, creates if absent."""
        existing = self.find_sales_order(order["external_transaction_id"])
        if existing is not None:
            return existing, False
        return self.create_sales_order(**order), True

    # -- plumbing -------------------------------------------------------------------------------------
    def _pages(self, path, params, key, *, what):
        first = 0
        while True:
            body = self._get(path, {**params, "max": str(self.page_size), "first": str(first)}, what=what)
            rows = body.get(key) or []
            yield from rows
            # A server that caps the page says so in maxResult (spec, "Pagination").
            page_size = min(self.page_size, body.get("maxResult") or self.page_size)
            if not rows or len(rows) < page_size:
                return
            first += len(rows)

    def _get(self, path, params, *, what, none_on_404=False):
        try:
            return self._call("GET", path, params=params, what=what)
        except RemoteRejected as exc:
            if none_on_404 and exc.status == 404:
                return None
            raise

    def _call(self, method, path, *, what, **kwargs):
        for attempt in range(self.rate_limit_retries + 1):
            try:
                response = self.http.request(method, path, **kwargs)
                break
            except RemoteRateLimited as exc:
                wait = exc.retry_after if exc.retry_after is not None else DEFAULT_RETRY_AFTER
                if attempt == self.rate_limit_retries or wait > self.max_retry_wait:
                    raise RemoteRateLimited(f"Vintrace is rate limiting calls ({what}); retry after {wait:g} s",
                                            retry_after=wait, status=exc.status, body=exc.body) from exc
                self._sleep(wait)
            except RemoteError as exc:
                explained = _explained(exc, what, self.base_url)
                if explained is exc:
                    raise
                raise explained from exc
        body = _json_body(response, what, self.base_url)
        if isinstance(body, dict) and body.get("status") == c.ERROR_STATUS:
            raise RemoteRejected(f"Vintrace refused {what}: {body.get('message')}", status=response.status_code,
                                 body=response.text[:2000])
        return body


def sales_order_body(*, customer_name, price_list_name, lines, external_transaction_id, order_date=None,
                     sales_type=None, status=None, reference=None, notes=None, storage_area_id=None):
    """The ``POST /sales-order`` body (SalesOrder schema); optional fields only when set."""
    if not lines:
        raise ValueError("a sales order needs at least one line")
    body = {
        "customerName": customer_name,
        "salesPriceListName": price_list_name,
        "externalTransactionId": str(external_transaction_id),
        "salesOrderItems": [_line_body(line) for line in lines],
    }
    optional = {"orderDate": _epoch_ms(order_date) if order_date is not None else None,
                "salesType": sales_type, "salesOrderStatus": status, "reference": reference, "notes": notes,
                c.STORAGE_AREA_FIELD: storage_area_id}
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def _line_body(line):
    if not isinstance(line.quantity, int) or line.quantity <= 0:
        raise ValueError(f"line {line.name}: quantity must be a whole number above 0")
    body = {"itemName": line.name, "sku": line.sku, "unitPrice": float(Decimal(str(line.unit_price))),
            "quantity": line.quantity}
    if line.unit_of_measure:
        body["unitOfMeasure"] = line.unit_of_measure
    return body


def _epoch_ms(value):
    if isinstance(value, int):
        return value
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, dtime(), tzinfo=timezone.utc)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp() * 1000)


def _decimal(value):
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _product(row, price_list_name):
    return Product(code=row.get("code") or row.get("name"), sku=row.get("sku"), description=row.get("description"),
                   unit=row.get("unit"), available=_decimal(row.get("available")),
                   price=_decimal(row.get("price")), price_list=price_list_name)


def _sales_order(order):
    lines = tuple(
        OrderLine(name=item.get("itemName"), sku=item.get("sku"), unit_price=_decimal(item.get("unitPrice")),
                  quantity=item.get("quantity"), unit_of_measure=item.get("unitOfMeasure"))
        for item in order.get("salesOrderItems") or [])
    return SalesOrder(id=order["id"], code=order.get("code"),
                      external_transaction_id=order.get("externalTransactionId"),
                      customer_name=order.get("customerName"), price_list_name=order.get("salesPriceListName"),
                      status=order.get("salesOrderStatus"), total=_decimal(order.get("total")), lines=lines,
                      raw=order)


def _json_body(response, what, base_url):
    try:
        return response.json()
    except ValueError:
        raise RemoteRejected(
            f"Vintrace answered {what} with something that is not JSON ({response.status_code}, "
            f"{response.headers.get('Content-Type', 'no content type')}); check the base URL {base_url}",
            status=response.status_code, body=response.text[:2000]) from None


def _server_message(exc):
    try:
        body = json.loads(exc.body or "")
    except ValueError:
        return None
    return body.get("message") if isinstance(body, dict) else None


def _explained(exc, what, base_url):
    """The same error, with a message a winery admin can act on."""
    message = _server_message(exc)
    if isinstance(exc, RemoteAuthError):
        return RemoteAuthError(
            f"Vintrace refused the API token ({exc.status}{': ' + message if message else ''}). Create an API "
            "token for the integration user in Vintrace and enter it in this store's settings.",
            status=exc.status, body=exc.body)
    if isinstance(exc, RemoteRejected) and exc.status == 404 and what == "the connection test":
        return RemoteRejected(
            f"Vintrace has no API at {base_url} ({message or 'not found'}). The URL should look like "
            "https://<region>.vintrace.net/<CustomerCode>/ (the address shown after logging in).",
            status=exc.status, body=exc.body)
    if isinstance(exc, RemoteRejected):
        return RemoteRejected(f"Vintrace refused {what}: {message or exc.message}", status=exc.status,
                              body=exc.body, code=exc.code)
    return exc
