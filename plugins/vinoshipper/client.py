"""Client for the Vinoshipper v3 API: the only module that talks to Vinoshipper.

Operations (each one call or a short sequence of calls on `RemoteHttp`):

    test_connection()                   -> {"producer_id", "shippers"}; proves the key and secret
    send_order(order: OrderRequest)     -> SentOrder; looks the number up first, so a retry
                                           never creates a second order
    find_order(order_number)            -> the order dict, or None
    get_status(order_number)            -> OrderStatus (stage, tracking numbers, dates, problems)
    void_order(order_number, reason)    -> OrderStatus; voiding a cancelled order is a no-op
    check_compliance(order)             -> [Problem]; nothing is stored
    estimate_shipping(ship_to, lines)   -> [ShippingRate]
    read_webhook(raw_body, signature=, secret=) -> WebhookEvent (module function, no HTTP)

Errors: `RemoteAuthError` for bad credentials (Vinoshipper answers them with its HTML login
page); `VinoshipperRejected` (a `RemoteRejected`) with ``problems`` for validation errors and
compliance rejections, one admin-readable message per problem; `TransientRemoteError`s
(timeouts, resets, 429, 5xx) once the retries are spent. 429s are retried after Retry-After,
other transient errors only where repeating the call is safe.
"""

import base64
import datetime
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import quote

from wms.integrations.errors import (
    RemoteAuthError,
    RemoteRateLimited,
    RemoteRejected,
    RemoteUnavailable,
    TransientRemoteError,
)
from wms.integrations.http import DEFAULT_TIMEOUT, RemoteHttp

from . import contract as vs

BAD_CREDENTIALS_MESSAGE = (
    "Vinoshipper did not accept the API key and secret (it answered with its login page): bad API "
    "key or secret. Copy both parts of the key again from Account > Integrations > API Keys in "
    "Vinoshipper, and check that the Vinoshipper address is right."
)


# -- what the caller passes in -------------------------------------------------------------------
@dataclass(frozen=True)
class Address:
    first_name: str
    last_name: str
    street1: str
    city: str
    postal_code: str
    state_code: str
    street2: str | None = None
    business_name: str | None = None
    country: str = "US"
    phone: str | None = None


@dataclass(frozen=True)
class Customer:
    email: str
    first_name: str
    last_name: str
    date_of_birth: datetime.date | None = None
    address: Address | None = None
    phone: str | None = None


@dataclass(frozen=True)
class OrderLine:
    sku: str
    quantity: int
    price: Decimal


@dataclass(frozen=True)
class OrderRequest:
    order_number: str
    customer: Customer
    ship_to: Address
    lines: tuple[OrderLine, ...]
    rate_code: str
    shipping_price: Decimal = Decimal("0")
    ship_date: datetime.date | None = None    # hold the shipment until this day
    taxes: Decimal = Decimal("0")
    source_url: str | None = None
    gift_note: str | None = None
    producer_note: str | None = None
    meta_fields: dict = field(default_factory=dict)
    carrier: str = "UPS"
    paid: bool = True


# -- what the client returns ---------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    code: str | None
    message: str
    kind: str | None = None     # COMPLIANCE_VIOLATION, AGE_VERIFICATION, a field name, ...


@dataclass(frozen=True)
class SentOrder:
    order_number: str
    status: str
    order_status: str
    created: bool               # False: Vinoshipper already had it, nothing was sent again
    order: dict


@dataclass(frozen=True)
class OrderStatus:
    order_number: str
    status: str
    order_status: str
    stage: str                  # rejected, open, fulfilled, shipped, delivered, cancelled, ...
    tracking_numbers: list
    shipped_at: str | None
    delivered_at: str | None
    canceled_at: str | None
    cancel_reason: str | None
    problems: list
    order: dict


@dataclass(frozen=True)
class ShippingRate:
    carrier: str
    rate_code: str
    description: str
    price: Decimal


@dataclass(frozen=True)
class WebhookEvent:
    identifier: str
    subject: str
    event: str
    href: str | None


class VinoshipperRejected(RemoteRejected):
    """Vinoshipper refused the request; ``problems`` lists why, one message each.

    ``order`` is the stored order when the refusal is a compliance rejection (Vinoshipper keeps
    the order, and re-sending the same number with corrected data replaces it).
    """

    def __init__(self, message, *, problems, order=None, **kw):
        super().__init__(message, **kw)
        self.problems = problems
        self.order = order

    @property
    def messages(self):
        return [problem.message for problem in self.problems]

    @property
    def codes(self):
        return {problem.code for problem in self.problems}

    @property
    def id_scan_url(self):
        """Where the customer can upload an ID after a failed age check (None otherwise)."""
        return ((self.order or {}).get("ageVerification") or {}).get("idScanUrl")


class InvalidWebhook(ValueError):
    """A webhook body that is not signed as configured, or not a Vinoshipper event."""


STAGES = {
    vs.ORDER_OPEN: "open",
    vs.ORDER_LABELS_GENERATED: "fulfilled",
    vs.ORDER_SHIPPED: "shipped",
    vs.ORDER_DELIVERED: "delivered",
    vs.ORDER_CANCELLED: "cancelled",
}


class VinoshipperClient:
    """One Vinoshipper producer account, reached with its API key and secret."""

    def __init__(self, api_key, api_secret, *, base_url=vs.PRODUCTION_BASE_URL, store_id=None,
                 timeout=DEFAULT_TIMEOUT, recorder=None, allow_private=None, max_attempts=3,
                 backoff_seconds=1.0, max_wait_seconds=30.0, client_id="winery-wms", sleep=time.sleep):
        self.api_key = api_key
        basic_token = base64.b64encode(f"{api_key}:{api_secret}".encode()).decode()
        self.http = RemoteHttp(
            base_url, plugin="vinoshipper", store_id=store_id, auth=(api_key, api_secret),
            headers={"Accept": "application/json", vs.CLIENT_ID_HEADER: client_id},
            timeout=timeout, secrets=(api_key, api_secret, basic_token), recorder=recorder,
            allow_private=allow_private)
        self.max_attempts = max(1, max_attempts)
        self.backoff_seconds = backoff_seconds
        self.max_wait_seconds = max_wait_seconds
        self._sleep = sleep

    # -- operations ---------------------------------------------------------------------------
    def test_connection(self):
        shippers = self._request("GET", vs.ACTIVE_SHIPPERS_PATH)
        if not isinstance(shippers, list):
            raise RemoteRejected("Vinoshipper answered the connection test with something other than "
                                 "a list of shippers; check the Vinoshipper address.")
        return {"producer_id": self.api_key.split(".", 1)[0],
                "shippers": [shipper.get("name") for shipper in shippers]}

    def find_order(self, order_number):
        try:
            return self._request("GET", order_path(order_number))
        except VinoshipperRejected as exc:
            if exc.status == 404:
                return None
            raise

    def get_status(self, order_number):
        order = self.find_order(order_number)
        if order is None:
            raise VinoshipperRejected(f"Vinoshipper has no order {order_number}.", status=404,
                                      problems=[Problem(vs.ERROR_ORDER_NOT_FOUND,
                                                        f"Vinoshipper has no order {order_number}.")])
        return order_status(order)

    def send_order(self, order):
        """Create the order unless Vinoshipper already has it (a lookup comes first, every try).

        An order Vinoshipper holds as rejected (PROBLEM, AGE_VERIFICATION_FAILED) is sent again,
        which corrects it; any other order found is returned as it is (``created`` False), even a
        cancelled one. Raises `VinoshipperRejected` with the problems when the order is refused.
        """
        body = order_body(order)
        last_error = None
        for attempt in range(self.max_attempts):
            if attempt:
                self._sleep(self._backoff(attempt))
            existing = self.find_order(order.order_number)
            if existing is not None and existing.get("status") not in vs.RESUBMITTABLE_STATUSES:
                return sent_order(existing, created=False)
            try:
                created = self._request("POST", vs.ORDERS_PATH, json=body, retry=False)
            except VinoshipperRejected as exc:
                if vs.ERROR_ORDER_NUMBER_EXISTS not in exc.codes:
                    raise
                last_error = exc    # created by a call whose answer we lost: look it up again
            except TransientRemoteError as exc:
                last_error = exc    # it may or may not exist now: look it up again
            else:
                raise_if_not_accepted(created)
                return sent_order(created, created=True)
        raise last_error

    def void_order(self, order_number, reason, *, restore_inventory=False,
                   refund_to_stored_credit=False):
        body = {vs.CANCEL_REASON: reason, vs.CANCEL_RESTORE_INVENTORY: restore_inventory,
                vs.CANCEL_REFUND_TO_STORED_CREDIT: refund_to_stored_credit}
        path = vs.CANCEL_PATH.format(order_number=quote_number(order_number))
        try:
            return order_status(self._request("POST", path, json=body))
        except VinoshipperRejected as exc:
            if exc.status == 404:
                raise
            current = self.find_order(order_number)
            if current is not None and current.get("orderStatus") == vs.ORDER_CANCELLED:
                return order_status(current)    # voided already (by us or in Vinoshipper)
            raise VinoshipperRejected(f"Vinoshipper would not void order {order_number}: "
                                      f"{'; '.join(exc.messages)}", problems=exc.problems,
                                      status=exc.status, body=exc.body) from exc

    def check_compliance(self, order):
        answer = self._request("POST", vs.CHECK_COMPLIANCE_PATH, json=order_body(order))
        return problems_of(answer)

    def estimate_shipping(self, ship_to, lines):
        body = {"shipToAddress": address_body(ship_to), "productIdType": "SKU",
                "products": [line_body(line) for line in lines]}
        rates = self._request("POST", vs.ESTIMATE_SHIPPING_PATH, json=body)
        return [ShippingRate(rate["carrier"], rate["rateCode"], rate.get("description", ""),
                             Decimal(str(rate["price"]))) for rate in rates]

    # -- transport ------------------------------------------------------------------------------
    def _request(self, method, path, *, json=None, retry=True):
        """One API call, retried on 429 (always) and other transient errors (when ``retry``)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.http.request(method, path, json=json)
            except RemoteRateLimited as exc:
                wait = self._backoff(attempt) if exc.retry_after is None else exc.retry_after
                if attempt == self.max_attempts or wait > self.max_wait_seconds:
                    raise
                self._sleep(wait)
            except TransientRemoteError:
                if not retry or attempt == self.max_attempts:
                    raise
                self._sleep(self._backoff(attempt))
            except RemoteAuthError as exc:
                raise auth_error(exc.status) from exc
            except RemoteRejected as exc:
                raise rejected_error(exc) from exc
            else:
                return parse_answer(response)

    def _backoff(self, attempt):
        return min(self.max_wait_seconds, self.backoff_seconds * 2 ** (attempt - 1))


# -- answers -------------------------------------------------------------------------------------
def parse_answer(response):
    """The JSON of a 2xx answer; the login page or a redirect to it means bad credentials."""
    content_type = response.headers.get("Content-Type", "")
    location = response.headers.get("Location", "")
    if "text/html" in content_type or (300 <= response.status_code < 400 and "login" in location):
        raise auth_error(response.status_code)
    if 300 <= response.status_code < 400:
        raise RemoteRejected(f"Vinoshipper redirected the call to {location}; check the Vinoshipper "
                             "address.", status=response.status_code)
    try:
        return response.json()
    except ValueError as exc:
        raise RemoteUnavailable("Vinoshipper answered with something that is not JSON.",
                                status=response.status_code, body=response.text[:2000]) from exc


def auth_error(status):
    if status == 403:
        return RemoteAuthError("Vinoshipper accepted the API key but refused the call: the key lacks "
                               "the permission for it. Check the key's permissions in Vinoshipper.",
                               status=status)
    return RemoteAuthError(BAD_CREDENTIALS_MESSAGE, status=status)


def rejected_error(exc):
    """A RemoteRejected from RemoteHttp, re-raised with Vinoshipper's own error descriptions."""
    try:
        error = json.loads(exc.body or "")["error"]
        problems = [Problem(e.get("code"), e.get("description") or e.get("code") or "refused",
                            e.get("field")) for e in error.get("errors") or []]
    except (ValueError, KeyError, TypeError, AttributeError):
        problems = []
    if not problems:
        problems = [Problem(None, f"Vinoshipper refused the request ({exc.status}).")]
    return VinoshipperRejected("Vinoshipper refused the request: " + "; ".join(
        p.message for p in problems), problems=problems, status=exc.status, body=exc.body)


def problems_of(order):
    return [Problem(p.get("code"), p.get("description") or p.get("code") or "compliance problem",
                    p.get("type")) for p in order.get("orderProblems") or []]


def raise_if_not_accepted(order):
    if order.get("status") not in vs.RESUBMITTABLE_STATUSES and order.get("isCompliant") is not False:
        return
    problems = problems_of(order) or [Problem(order.get("status"), "Vinoshipper did not accept the "
                                              f"order (status {order.get('status')}).")]
    raise VinoshipperRejected(
        f"Vinoshipper rejected order {order.get('orderNumber')}: " + "; ".join(
            p.message for p in problems), problems=problems, order=order, status=200)


def sent_order(order, *, created):
    return SentOrder(order["orderNumber"], order.get("status"), order.get("orderStatus"), created,
                     order)


def order_status(order):
    status, lifecycle = order.get("status"), order.get("orderStatus")
    if status in vs.RESUBMITTABLE_STATUSES:
        stage = "rejected"
    else:
        stage = STAGES.get(lifecycle, str(lifecycle).lower())
    packages = (order.get("shipping") or {}).get("packages") or []
    return OrderStatus(
        order_number=order["orderNumber"], status=status, order_status=lifecycle, stage=stage,
        tracking_numbers=[p["trackingNumber"] for p in packages if p.get("trackingNumber")],
        shipped_at=order.get("shippedAt"), delivered_at=order.get("deliveredAt"),
        canceled_at=order.get("canceledAt"), cancel_reason=order.get("cancelReason"),
        problems=problems_of(order), order=order)


# -- request bodies ------------------------------------------------------------------------------
def quote_number(order_number):
    return quote(str(order_number), safe="")


def order_path(order_number):
    return vs.ORDER_PATH.format(order_number=quote_number(order_number))


def address_body(address):
    body = {"firstName": address.first_name, "lastName": address.last_name,
            "businessName": address.business_name, "street1": address.street1,
            "street2": address.street2, "city": address.city, "postalCode": address.postal_code,
            "stateCode": address.state_code.upper(), "country": address.country}
    if address.phone:
        body["phone"] = {"number": address.phone, "country": 1}
    return body


def line_body(line):
    if line.quantity < 1:
        raise ValueError(f"{line.sku}: a line needs a quantity of at least 1")
    return {"productId": line.sku, "quantity": line.quantity, "price": float(line.price)}


def order_body(order):
    if order.rate_code == vs.PICKUP_RATE_CODE:
        raise ValueError("pickup orders are not sent to Vinoshipper")
    if order.carrier == "UPS" and order.rate_code not in vs.UPS_RATE_CODES:
        raise ValueError(f"unknown UPS rate code {order.rate_code!r}; one of "
                         f"{', '.join(vs.UPS_RATE_CODES)}")
    customer = order.customer
    customer_body = {"email": customer.email, "firstName": customer.first_name,
                     "lastName": customer.last_name, "dateOfBirth": None, "phone": customer.phone}
    if customer.date_of_birth is not None:
        birth = customer.date_of_birth
        customer_body["dateOfBirth"] = {"day": birth.day, "month": birth.month, "year": birth.year}
    if customer.address is not None:
        customer_body["address"] = address_body(customer.address)
    return {
        "orderNumber": order.order_number,
        "sourceUrl": order.source_url,
        "customer": customer_body,
        "shipToAddress": address_body(order.ship_to),
        "productIdType": "SKU",
        "products": [line_body(line) for line in order.lines],
        "shippingRate": {"carrier": order.carrier, "rateCode": order.rate_code,
                         "price": f"{Decimal(order.shipping_price):.2f}"},
        "taxes": float(order.taxes),
        "metaFields": dict(order.meta_fields),
        "specialInstructions": {
            "producerNote": order.producer_note, "giftNote": order.gift_note,
            "shipDate": order.ship_date.strftime(vs.SHIP_DATE_FORMAT) if order.ship_date else None,
        },
        "paid": order.paid,
    }


# -- webhooks ------------------------------------------------------------------------------------
def read_webhook(raw_body, *, signature=None, secret=None):
    """Check and parse a webhook body (the raw bytes, before any JSON parsing).

    With a ``secret``, the ``signature`` header value must match (see contract: the scheme is a
    PROPOSAL, as no public source says Vinoshipper signs webhooks). Raises `InvalidWebhook`.
    """
    if isinstance(raw_body, str):
        raw_body = raw_body.encode()
    if secret:
        expected = base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest())
        if not signature or not hmac.compare_digest(expected, signature.encode()):
            raise InvalidWebhook("the webhook signature does not match the configured secret")
    try:
        payload = json.loads(raw_body)
    except ValueError as exc:
        raise InvalidWebhook("the webhook body is not JSON") from exc
    if not isinstance(payload, dict) or not all(payload.get(k) for k in ("identifier", "subject",
                                                                         "event")):
        raise InvalidWebhook("the webhook body lacks identifier, subject or event")
    return WebhookEvent(str(payload["identifier"]), payload["subject"], payload["event"],
                        payload.get("hrefV3") or payload.get("href"))
