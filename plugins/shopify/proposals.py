"""[PROPOSAL] Details of the Shopify contract that the research could not pin down.

Everything here is used by the sandbox (and, where noted, the client) but is not quoted from
Shopify's own docs or libraries. Correct it here when the real answer is known; nothing else
in the plugin repeats these values. Facts that ARE sourced live next to the code that uses them
(see shared/contracts/shopify/REPORT.md).
"""

# API versions the sandbox serves, all with the 2026-04 runtime rules. Real Shopify serves about
# four stable versions at a time and falls forward from retired ones; the sandbox answers 404.
SUPPORTED_API_VERSIONS = ("2026-04", "2026-07", "2026-10", "2027-01", "unstable")

# Runtime errors of 2026-04+ whose exact wording and code Shopify does not publish (the changelog
# only says "will result in an error at runtime"). Answered as top-level GraphQL errors.
IDEMPOTENT_REQUIRED_ERROR = {
    "message": "The @idempotent directive is required for the {field} mutation.",
    "code": "BAD_REQUEST",
}
IDEMPOTENT_EMPTY_KEY_ERROR = {
    "message": "The @idempotent directive requires a non-empty key.",
    "code": "BAD_REQUEST",
}
CHANGE_FROM_REQUIRED_ERROR = {
    "message": "changeFromQuantity is required on every {row} as of 2026-04; pass null to skip "
               "the compare-and-swap check (missing at {path}).",
    "code": "BAD_REQUEST",
}

# How long Shopify keeps an idempotency key (a third-party note says 24 hours).
IDEMPOTENCY_RETENTION_SECONDS = 24 * 3600

# Inventory reasons accepted by inventorySetQuantities / inventoryAdjustQuantities. Shopify links
# a "possible reasons" page; this list is the one reproduced by an API-compatible clone.
INVENTORY_REASONS = frozenset({
    "correction", "cycle_count_available", "damaged", "movement_canceled", "movement_created",
    "movement_received", "movement_updated", "other", "promotion", "quality_control", "received",
    "reservation_created", "reservation_deleted", "reservation_updated", "restock",
    "safety_stock", "shrinkage",
})

# Page-size errors of connections (wording as commonly reported; not verified).
FIRST_OR_LAST_REQUIRED = "you must provide one of first or last"
PAGE_SIZE_MAX = 250
PAGE_SIZE_TOO_BIG = "The maximum page size is 250."

# Maximum cost of a single query (third-party guides; "verify" in the REPORT).
MAX_SINGLE_QUERY_COST = 1000

# Webhook redelivery: Shopify retries 8 times over 4 hours with exponential backoff. The sandbox
# compresses the schedule (first retry after this many seconds, doubling) so tests stay fast.
WEBHOOK_RETRIES = 8
WEBHOOK_FIRST_RETRY_SECONDS = 0.05

# 2026-04+ static cost of a mutation field (Shopify's cost table says "mutation: 10").
MUTATION_COST = 10

# Message of the 403 answered to a non-expiring token when the shop demands expiring tokens.
NON_EXPIRING_TOKEN_REFUSED = ("Non-expiring access tokens are no longer accepted for the Admin API. "
                              "Use an expiring offline access token.")
