"""The WineDirect Fulfillment (WD-FS) contract details that the sandbox and the client share.

Source: `shared/contracts/wine/REPORT.md`, section 1. Everything below the "[PROPOSAL]" banner is
NOT confirmed by any public WineDirect source; it is our best reconstruction. When the real
API's Swagger becomes available, correct this file and both the sandbox and the client follow.
"""

# --- [VERIFIED] paths (docs.winedirectfulfillment.com/api-reference) -------------------------
SUBMIT_ORDERS_PATH = "/api/v1/Orders/SubmitOrders"
ORDERS_PATH = "/api/v1/Orders"
ORDER_PATH = "/api/v1/Orders/{order_number}"
ORDER_DETAIL_PATH = "/api/v1/Orders/Detail/{account_number}/{order_number}"
CANCEL_ORDER_PATH = "/api/v1/Orders/{account_number}/{order_number}"  # DELETE, ?renameOrder=
WINE_SKU_PATH = "/api/v1/Products/Skus/Wine"  # POST creates
PRODUCT_PATH = "/api/v1/Products/{supplier_id}/{sku}"
SHIPMENT_UPDATES_PATH = "/api/v1/Shipments/Updates"

# [VERIFIED] code lists
WAREHOUSES = {
    "GLW": {"warehouseName": "Glenwillow", "city": "Glenwillow", "stateCode": "OH"},
    "WDI": {"warehouseName": "Green Island", "city": "American Canyon", "stateCode": "CA"},
    "PSO": {"warehouseName": "Paso Robles", "city": "Paso Robles", "stateCode": "CA"},
    "SMA": {"warehouseName": "Santa Maria", "city": "Santa Maria", "stateCode": "CA"},
    "SHW": {"warehouseName": "Willamette Valley", "city": "Dundee", "stateCode": "OR"},
    "DAL": {"warehouseName": "Dallas", "city": "Dallas", "stateCode": "TX"},
}
ORDER_TYPES = {
    "CLUB": "Club Order", "STND": "Daily Order", "SPCL": "Special Order", "VC": "Visitor Center",
    "DAILY": "Daily Order", "SPECIAL": "Special Order", "CORP": "Corp Order",
}
SERVICE_LEVELS = ("FEDGROUND", "FEX", "UPS2DAY", "UPSOVERNIGHT", "UP1", "UP2", "UPO", "UPSOVRNGHT",
                  "V55", "UPSGROUND", "WILLCALL")
ALCOHOL_TYPES = ("SPARKLING", "SPIRIT", "STILL")
SUBINVENTORY_PRIMARY = "PRIMARY"
SUBINVENTORY_CLUB = "CLUB"  # only CLUB orders draw from it
HOLD_INSUFFICIENT_INVENTORY = "Insufficient Inventory"
# Shipment delivery status codes documented as the GET /Orders status filter.
DELIVERY_STATUSES = {
    "SHIPPED": "Shipped", "IN_TRANSIT": "In Transit", "DELIVERED": "Delivered",
    "EXCEPTION": "Exception", "RETURNED": "Returned",
}

# =============================================================================================
# [PROPOSAL] everything below: not in any public source
# =============================================================================================

# Token endpoints and field names (REPORT 1.3).
TOKEN_PATH = "/api/v1/AccessToken"
TOKEN_REFRESH_PATH = "/api/v1/AccessToken/Refresh"
LOGIN_USERNAME_FIELD = "username"
LOGIN_PASSWORD_FIELD = "password"
REFRESH_TOKEN_FIELD = "refreshToken"
ACCESS_TOKEN_FIELD = "accessToken"
EXPIRES_IN_FIELD = "expiresIn"
EXPIRATION_FIELD = "expiration"
MESSAGE_BAD_LOGIN = "Invalid username or password"
MESSAGE_BAD_REFRESH = "Invalid or expired refresh token"
MESSAGE_UNAUTHORIZED = "Authorization has been denied for this request."
MESSAGE_TOKEN_EXPIRED = "The access token has expired"

# Paths the docs have pages for but whose exact path was not captured (REPORT 1.6, 1.9).
WAREHOUSES_PATH = "/api/v1/Warehouses"  # ?accountNumber=
SELLABLE_INVENTORY_PATH = "/api/v1/Inventory/Sellable"  # ?accountNumber=&warehouseCode=&sku=
OWNED_INVENTORY_PATH = "/api/v1/Inventory/Owned"  # ?supplierId=&(warehouseCode|sku)
SHIPMENTS_PATH = "/api/v1/Shipments"  # ?accountNumber=&(searchStartDate&searchEndDate|orderNumber)
SHIPMENT_PATH = "/api/v1/Shipments/{account_number}/{shipment_id}"
# No update endpoint is documented for wine SKUs: PUT on the create path with the same body.
WINE_SKU_UPDATE_METHOD = "PUT"
# The status filter of GET /api/v1/Orders is documented, its parameter name is not.
ORDER_STATUS_FILTER_PARAM = "statusCode"

# Batch size of SubmitOrders is undocumented; the client splits larger submissions.
MAX_ORDERS_PER_SUBMIT = 100

# Order status codes before shipment (names from the portal's status list, codes ours).
STATUS_PROCESSING = "PROCESSING"  # received from the queue, not yet checked
STATUS_NEEDING_ACTION = "NEEDING_ACTION"
STATUS_ON_HOLD = "ON_HOLD"
STATUS_FUTURE_SHIP_DATE = "FUTURE_SHIP_DATE"
STATUS_WAITING_TO_BE_RELEASED = "WAITING_TO_BE_RELEASED"  # CLUB orders wait for a manual release
STATUS_RELEASED = "RELEASED"
STATUS_FULFILLING = "FULFILLING"
STATUS_CANCELLED = "CANCELLED"
STATUS_OUT_FOR_DELIVERY = "OUT_FOR_DELIVERY"  # not in the documented delivery status list
ORDER_STATUS_NAMES = {
    STATUS_PROCESSING: "Processing",
    STATUS_NEEDING_ACTION: "Needing Action",
    STATUS_ON_HOLD: "On Hold",
    STATUS_FUTURE_SHIP_DATE: "Future Requested Ship Date",
    STATUS_WAITING_TO_BE_RELEASED: "Waiting to Be Released",
    STATUS_RELEASED: "Released",
    STATUS_FULFILLING: "Fulfilling",
    STATUS_CANCELLED: "Cancelled",
    STATUS_OUT_FOR_DELIVERY: "Out for Delivery",
    **DELIVERY_STATUSES,
}
CANCELLABLE_STATUSES = (STATUS_PROCESSING, STATUS_NEEDING_ACTION, STATUS_ON_HOLD, STATUS_FUTURE_SHIP_DATE,
                        STATUS_WAITING_TO_BE_RELEASED, STATUS_RELEASED)
SHIPMENT_STATUS_CHAIN = ("SHIPPED", "IN_TRANSIT", STATUS_OUT_FOR_DELIVERY, "DELIVERED")
CLOSED_STATUSES = (STATUS_CANCELLED, "DELIVERED", "RETURNED")

# Needing Action reasons (wording after documentation.winedirect.com FAQ "Best Practices").
MESSAGE_ITEM_NOT_SET_UP = "Ordered Item {sku} is not set up"
MESSAGE_PRIORITY_NOT_CONFIGURED = "Requested Priority {service_level} is not configured"
MESSAGE_DUPLICATE_ORDER = "Duplicate Order: order number {order_number} was already received"
MESSAGE_SHIP_TO_MISSING = "Ship-to Address is missing: {fields}"
MESSAGE_SHIP_TO_INVALID = "Ship-to Address is invalid: {detail}"

# Error envelopes: HTTP statuses and messages.
VALIDATION_HTTP_STATUS = 400
NOT_FOUND_HTTP_STATUS = 404
CANCEL_REFUSED_HTTP_STATUS = 200  # the report allows 200 or 400; 200 with isSuccess:false chosen
MESSAGE_CANCEL_REFUSED = "Order cannot be cancelled in its current status"
MESSAGE_ORDER_NOT_FOUND = "Order {order_number} was not found"
MESSAGE_PRODUCT_NOT_FOUND = "Product {sku} was not found"
MESSAGE_SHIPMENT_NOT_FOUND = "Shipment {shipment_id} was not found"
MESSAGE_DUPLICATE_SKU = "SKU {sku} already exists"
MESSAGE_ACCOUNT_NOT_AVAILABLE = "Account number {account_number} is not available to this login"
MESSAGE_SUPPLIER_NOT_AVAILABLE = "Supplier {supplier_id} is not available to this login"
MESSAGE_OWNED_FILTER_CONFLICT = "Provide either warehouseCode or sku, not both"
MESSAGE_SHIPMENTS_FILTER_CONFLICT = "Provide either a date range or an orderNumber, not both"
MESSAGE_RATE_LIMITED = "Rate limit exceeded"

# Shipment update windows are Pacific time (REPORT 1.6: "PST"), minute precision.
PACIFIC_TIMEZONE = "America/Los_Angeles"
PACIFIC_DATETIME_FORMAT = "%Y-%m-%dT%H:%M"
PACIFIC_DATE_FORMAT = "%Y-%m-%d"

# How the client reads the status codes: our order state for each code.
ORDER_STATES = {
    STATUS_PROCESSING: "pending",
    STATUS_NEEDING_ACTION: "needing_action",
    STATUS_ON_HOLD: "on_hold",
    STATUS_FUTURE_SHIP_DATE: "accepted",
    STATUS_WAITING_TO_BE_RELEASED: "accepted",
    STATUS_RELEASED: "accepted",
    STATUS_FULFILLING: "fulfilling",
    STATUS_CANCELLED: "cancelled",
    "SHIPPED": "shipped",
    "IN_TRANSIT": "in_transit",
    STATUS_OUT_FOR_DELIVERY: "out_for_delivery",
    "DELIVERED": "delivered",
    "EXCEPTION": "exception",
    "RETURNED": "returned",
}

# Where the plugin points by default and where "View in WineDirect" links go. The real API host is
# not published (the docs show https://api.example.com); the portal paths are our guess.
DEFAULT_API_URL = "https://api.winedirectfulfillment.com"
PORTAL_URL = "https://portal.winedirectfulfillment.com"
PORTAL_ORDER_PATH = "/orders/{wine_direct_order_number}"
PORTAL_PRODUCT_PATH = "/products/{sku}"
