"""Vintrace v6 contract: the facts the sandbox and the client share.

Source: shared/contracts/wine/REPORT.md, section 2, and `vintrace_v6_openapi.yaml` (a copy
of the vendor's published v6 OpenAPI, kept next to this file as a reference data file). Sales
orders exist in v6 only. Everything marked PROPOSAL below is in no public source: it is our best
reading of the closest evidence. Correct it here and both the sandbox and the client follow.
Everything not so marked is VERIFIED in the REPORT or the spec.
"""

from pathlib import Path

SPEC_PATH = Path(__file__).with_name("vintrace_v6_openapi.yaml")

# -- Base URL ----------------------------------------------------------------------------------
# "https://<region>.vintrace.net/<CustomerCode>/api/" is each customer's base API URL; v6 paths
# hang below ".../api/v6". The admin may paste any of: the URL seen after login
# (".../vinx2/"), the base API URL (".../vinx2/api/") or the v6 base (".../vinx2/api/v6").
API_SUFFIX = "api/v6"

# -- Paths, relative to .../api/v6 (VERIFIED in the spec) ----------------------------------------
SALES_ORDER_PATH = "sales-order"                # POST create/update, GET ?code=
SALES_ORDER_BY_ID_PATH = "sales-order/{id}"
SALES_ORDER_LIST_PATH = "sales-order/list"      # ?max&first&externalTransactionId&customerName...
PARTY_BY_NAME_PATH = "party"                    # GET ?name= : one party
STOCK_LOOKUP_PATH = "stock/lookup"              # GET ?code= | ?id=
INVENTORY_PATH = "inventory"                    # GET ?max&first : rows carry code, sku, price
SEARCH_LIST_PATH = "search/list"                # GET ?type&startsWith&exactMatch&first

# Legacy list endpoints page with max/first; the sales-order and party lists say "Returns a
# list of the first 100", which we take as the page cap.
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 100

# -- Auth (VERIFIED: the SDK sends a bearer API token to v6 endpoints) --------------------------
# The v6 spec declares no security scheme and no 401; the error body is the one shape v6 gives.
ERROR_STATUS = "Error"
SUCCESS_STATUS = "Success"

# ==== PROPOSAL: everything in this block is ours, not Vintrace's ===============================
# v6 (and v7) publish no price-list endpoint. The v6 generic lookup `GET /search/list` takes a
# free-text `type`; we propose `type=priceList` (with `exactMatch=true`) returning
# SimpleSearchResults {id, name, type: "PriceList", summary: taxPolicy}.
PRICE_LIST_SEARCH_TYPE = "priceList"
PRICE_LIST_RESULT_TYPE = "PriceList"

# Nothing in v6 gives a stock item's price in a given price list. `GET /inventory` rows carry
# `price`; we propose an extra query parameter naming the price list whose price `price` holds
# (absent: the row's `price` is null).
INVENTORY_PRICE_LIST_PARAM = "priceListName"

# Storage area at order level: not in the v6 SalesOrder schema. Sent only when set; the fake
# echoes it back; a real server may ignore it.
STORAGE_AREA_FIELD = "storageAreaId"

# The strict matching rule and its error messages (REPORT 2.6). The whole order is refused, and
# nothing is created, when any line fails.
MSG_CUSTOMER_NOT_FOUND = "Customer '{name}' not found"
MSG_CUSTOMER_REQUIRED = "A customerName or customerId is required"
MSG_PRICE_LIST_NOT_FOUND = "Price list '{name}' not found"
MSG_PRICE_LIST_REQUIRED = "A salesPriceListName or salesPriceListId is required"
MSG_NO_ITEMS = "A sales order must have at least one item"
MSG_ITEM_NOT_FOUND = "Item '{item}' not found"
MSG_ITEM_MISMATCH = "Item '{item}' does not match: {fields} mismatch ({details})"
MSG_ITEM_NO_PRICE = "Item '{item}' has no price in price list '{price_list}'"
MSG_QUANTITY = "Item '{item}': quantity must be a whole number above 0"
MSG_SALES_ORDER_NOT_FOUND = "Sales order '{key}' not found"
MSG_PARTY_NOT_FOUND = "Party '{name}' not found"      # GET /party?name= with no match: 404
MSG_STOCK_NOT_FOUND = "Stock item '{key}' not found"   # GET /stock/lookup with no match: 404
MSG_UNAUTHORIZED = "Unauthorized: send a valid API token as 'Authorization: Bearer <token>'"
# ==== end of PROPOSAL block ======================================================================

# ==== SPEC ERRATA: where the spec contradicts the vendor's own examples ========================
# The sandbox validates against the spec with these corrections, and only these. Each one is
# forced by an example in the same file (a test proves the examples fail without them and pass
# with them). `format: nullable` is corrected everywhere to `nullable: true`: the examples send
# null for every such field (message, invoiceDate, sendTo.phone, address.street2, ...).
# Each entry: (schema name, property, replacement property schema, the example that forces it).
SPEC_TYPE_ERRATA = [
    ("SalesOrder", "subTotal", {"type": "number"}, "subTotal: 503.5 (GET /sales-order/list)"),
    ("SalesOrder", "total", {"type": "number"}, "total: 714.4 (GET /sales-order/list)"),
    ("SalesOrder", "invoiceDate", {"type": "integer", "nullable": True},
     "invoiceDate: 14920800000 (POST /sales-order request)"),
    ("SalesOrderItem", "lineTotal", {"type": "number"}, "lineTotal: 190.85 (GET /sales-order/list)"),
    ("SalesOrderItem", "discountPct", {"type": "number", "nullable": True},
     "discountPct: 10 (POST /sales-order request)"),
    ("SalesOrderItem", "adjustment", {"type": "number", "nullable": True},
     "adjustment: 52.8 (GET /sales-order/list)"),
    ("SalesOrder", "salesPriceListId", {"type": "integer", "nullable": True},
     "salesPriceListId: null (GET /sales-order/list)"),
    ("SalesOrder", "wineryId", {"type": "integer", "nullable": True}, "wineryId: 1 (POST /sales-order answer)"),
    ("SalesOrder", "notes", {"type": "string", "nullable": True}, "notes: null (POST /sales-order answer)"),
    ("SalesOrder", "acctReference", {"type": "string", "nullable": True},
     "acctReference: null (GET /sales-order/list)"),
    ("SalesOrderItem", "taxRateId", {"type": "integer", "nullable": True},
     "taxRateId: null (POST /sales-order answer)"),
    ("InventorySummary", "price", {"type": "number", "nullable": True}, "price: 0.1 (GET /inventory)"),
    ("InventorySummary", "productState", {"type": "string", "nullable": True}, "productState: null (GET /inventory)"),
    ("InventorySummary", "beverageType", {"type": "string", "nullable": True}, "beverageType: null (GET /inventory)"),
    ("InventorySummary", "baseMaterial", {"type": "string", "nullable": True}, "baseMaterial: null (GET /inventory)"),
    ("InventorySummary", "quantity", {"type": "number"}, "quantity: 1.84 (GET /inventory)"),
    ("InventorySummary", "committed", {"type": "number"}, "committed: 0.22 (GET /inventory)"),
    ("InventorySummary", "available", {"type": "number"}, "available: 1.2 (GET /inventory)"),
]
# The create answer's schema calls the order `salesOrders`; its example (and the REPORT) say
# `salesOrder`. The fake answers `salesOrder`; the client reads either.
SPEC_RENAMED_PROPERTIES = [("SalesOrderUpdateResponse", "salesOrders", "salesOrder")]
# The spec declares `/products/{id}` without its `id` path parameter, so the spec check refuses
# the file; that (bulk wine) path is not faked, the parameter is added only to load the file.
SPEC_MISSING_PATH_PARAMETERS = [("/products/{id}", "get", "id")]
# The spec's two servers are examples; every customer has its own base URL.
SPEC_SERVERS = [{"url": "/{customerCode}/api/v6", "variables": {"customerCode": {"default": "vinx2"}}}]
# The only error body v6 documents (400 on POST /mrp/stock/{id}/notes): {status, message}.
SPEC_ERROR_SCHEMA_AT = ("/mrp/stock/{id}/notes", "post", "400")
# ==== end of SPEC ERRATA ==========================================================================
