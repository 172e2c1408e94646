"""Vinoshipper API v3 contract: the facts the sandbox and the client share.

Source: shared/contracts/wine/REPORT.md, section 3. Everything below marked PROPOSAL is not
in any public source; it is our best reading of the closest evidence. Correct it here and both the
sandbox and the client follow. Everything not so marked is VERIFIED in the REPORT.
"""

# -- Paths (VERIFIED unless marked) -------------------------------------------------------------
PRODUCTION_BASE_URL = "https://vinoshipper.com"
ORDERS_PATH = "/api/v3/p/orders"
ORDER_PATH = "/api/v3/p/orders/{order_number}"
CANCEL_PATH = "/api/v3/p/orders/{order_number}/cancel"
CHECK_COMPLIANCE_PATH = "/api/v3/p/orders/check-compliance"
ESTIMATE_SHIPPING_PATH = "/api/v3/p/orders/estimate-shipping"
ACTIVE_SHIPPERS_PATH = "/api/v3/p/shippers/active"  # cheap authenticated read: the credential check
# PROPOSAL: its answer, a list of {"id", "name", "isFulfillmentCenter"} (the shape of an order's
# shipping.shipper).

# -- Headers ------------------------------------------------------------------------------------
TRACE_ID_HEADER = "vs-trace-id"
CLIENT_ID_HEADER = "VS-Client-ID"

# -- Bad credentials: VS answers with its HTML login page, not a 401 -----------------------------
# The REPORT gives "302 or 200 text/html". The sandbox can play any of these (config
# "bad_credentials"); the client treats all three as bad credentials.
BAD_CREDENTIALS_LOGIN_PAGE = "login_page"   # 200 text/html (default)
BAD_CREDENTIALS_REDIRECT = "redirect"       # 302 to LOGIN_PATH
BAD_CREDENTIALS_JSON_401 = "json_401"       # the documented 401 "Authentication failed"
LOGIN_PATH = "/login"                       # PROPOSAL: where the 302 points

# -- Create-order body (VERIFIED field names) ----------------------------------------------------
PRODUCT_ID_TYPES = ("SKU", "VS_ID")
CARRIERS = ("UPS", "FEDEX", "GLS", "SELF")
UPS_RATE_CODES = {
    "01": "UPS Next Day Air",
    "02": "UPS 2nd Day Air",
    "03": "UPS Ground",
    "12": "UPS 3 Day Select",
    "14": "UPS Next Day Air Early",
}
PICKUP_RATE_CODE = "PCKP"   # never sent by the WMS: pickup orders stay local
LOCAL_RATE_CODE = "LOCAL"
SHIP_DATE_FORMAT = "%Y-%m-%d"  # specialInstructions.shipDate, "YYYY-MM-dd"
# PROPOSAL: which fields a create answers 400 for when missing (dotted paths into the body).
REQUIRED_ORDER_FIELDS = (
    "customer.email", "customer.firstName", "customer.lastName",
    "shipToAddress.lastName", "shipToAddress.street1", "shipToAddress.city",
    "shipToAddress.postalCode", "shipToAddress.stateCode",
    "productIdType", "products", "shippingRate.carrier", "shippingRate.rateCode",
)

# -- Order statuses (VERIFIED enums) -------------------------------------------------------------
STATUS_PENDING = "PENDING"
STATUS_SUCCESS = "SUCCESS"
STATUS_AGE_VERIFICATION_FAILED = "AGE_VERIFICATION_FAILED"
STATUS_PROBLEM = "PROBLEM"

ORDER_OPEN = "OPEN"
ORDER_LABELS_GENERATED = "LABELS_GENERATED"
ORDER_SHIPPED = "SHIPPED"
ORDER_DELIVERED = "DELIVERED"
ORDER_CANCELLED = "CANCELLED"
ORDER_PROBLEM = "PROBLEM"
# The order a shipment moves through (the sandbox's "advance" follows it).
FULFILLMENT_PROGRESSION = (ORDER_OPEN, ORDER_LABELS_GENERATED, ORDER_SHIPPED, ORDER_DELIVERED)
# "If the order has shipped or been sent to fulfillment, it can not be canceled via the API."
NOT_CANCELLABLE = (ORDER_LABELS_GENERATED, ORDER_SHIPPED, ORDER_DELIVERED)
# "A rejected order can be corrected and then re-submitted"; which statuses count as rejected is a
# PROPOSAL: these, and re-submitting the same number replaces the rejected order.
RESUBMITTABLE_STATUSES = (STATUS_PROBLEM, STATUS_AGE_VERIFICATION_FAILED)

# -- Compliance rejection (PROPOSAL, the REPORT's recommendation) ---------------------------------
# A non-compliant create answers 200 with isCompliant false, status PROBLEM (or
# AGE_VERIFICATION_FAILED when age is the only problem) and orderProblems[] filled, one entry per
# problem: {"code", "description", "type"}.
PROBLEM_TYPE_COMPLIANCE = "COMPLIANCE_VIOLATION"   # seen in a real integrator's notes
PROBLEM_TYPE_AGE = "AGE_VERIFICATION"
PROBLEM_STATE_NOT_ALLOWED = "STATE_NOT_ALLOWED"
PROBLEM_QUANTITY_LIMIT = "QUANTITY_LIMIT_EXCEEDED"
PROBLEM_AGE_VERIFICATION = "AGE_VERIFICATION_FAILED"
PROBLEM_PICKUP_NOT_ALLOWED = "PICKUP_NOT_ALLOWED"

# -- Error body (VERIFIED shape; PROPOSAL type and code values) -----------------------------------
# {"error": {"status": 400, "type": "...", "errors": [{"description", "code", "field",
#  "shortDescription"}]}}
ERROR_TYPE_VALIDATION = "VALIDATION_ERROR"
ERROR_TYPE_NOT_FOUND = "NOT_FOUND"
ERROR_TYPE_AUTH = "AUTHENTICATION_FAILED"
ERROR_TYPE_CONFLICT = "INVALID_STATE"
ERROR_REQUIRED = "REQUIRED"
ERROR_INVALID = "INVALID_VALUE"
ERROR_UNKNOWN_PRODUCT = "PRODUCT_NOT_FOUND"
ERROR_ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
ERROR_ORDER_NUMBER_EXISTS = "ORDER_NUMBER_EXISTS"
ERROR_ALREADY_CANCELLED = "ORDER_ALREADY_CANCELLED"
ERROR_NOT_CANCELLABLE = "ORDER_NOT_CANCELLABLE"

# -- Duplicate order numbers (PROPOSAL) ---------------------------------------------------------
# The docs say an order number "must be globally unique" but not what a second create with the
# same number does, and there is no idempotency key. The sandbox therefore stores a duplicate by
# default (config "duplicates": "reject" answers 400 ORDER_NUMBER_EXISTS instead), so the client
# must look the number up before it creates.
DUPLICATES_STORED = "store"
DUPLICATES_REJECTED = "reject"

# -- Cancel body (VERIFIED "reason"; PROPOSAL boolean names) ---------------------------------------
CANCEL_REASON = "reason"
CANCEL_RESTORE_INVENTORY = "restoreInventory"
CANCEL_REFUND_TO_STORED_CREDIT = "refundToStoredCredit"

# -- Webhooks (VERIFIED body and events; PROPOSAL event per status change, and the signature) ---
WEBHOOK_SUBJECT_ORDER = "ORDER"
WEBHOOK_FIELDS = ("identifier", "subject", "event", "href", "hrefV3")
WEBHOOK_ORDER_EVENTS = ("APPROVED", "CREATED", "UPDATED", "CANCELLED", "CARD_DECLINED",
                        "TRACKING_NUMBER_ADDED", "SHIPMENT_STATUS_UPDATED")
EVENT_CREATED = "CREATED"
EVENT_APPROVED = "APPROVED"
EVENT_CANCELLED = "CANCELLED"
EVENT_FOR_ORDER_STATUS = {
    ORDER_LABELS_GENERATED: "UPDATED",
    ORDER_SHIPPED: "TRACKING_NUMBER_ADDED",
    ORDER_DELIVERED: "SHIPMENT_STATUS_UPDATED",
}
# No public source says VS signs webhooks (one integrator puts a shared secret in the registered
# URL instead, as VS's webhook form takes only a URL). PROPOSAL: when a secret is configured, the
# body is signed as base64(HMAC-SHA256(secret, raw body)) in this header.
WEBHOOK_SIGNATURE_HEADER = "X-Vinoshipper-Hmac-Sha256"

# -- Estimate shipping response (PROPOSAL shape) ---------------------------------------------------
# [{"carrier": "UPS", "rateCode": "03", "description": "UPS Ground", "price": 27.25}, ...]
