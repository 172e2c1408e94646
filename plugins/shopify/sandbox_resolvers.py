"""GraphQL execution for the Shopify sandbox: views over the state and the root fields.

A view is a dict keyed by GraphQL field name; a value that is callable is called with
`(info, **arguments)` (connections, fields with arguments, lazy links). Root fields are plain
functions in `QUERY_FIELDS` / `MUTATION_FIELDS`, handed to graphql-core as the root value, so
the cached schema itself is never modified.
"""

import base64
import json
import re
import threading
import time

from graphql import (
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLUnionType,
    get_directive_values,
    get_named_type,
    parse,
    validate,
)
from graphql.execution.values import get_argument_values
from graphql.language import FieldNode

from . import proposals
from .sandbox_schema import CostCalculator, find_operation, validation_error_body
from .sandbox_state import (
    SET_NAMES,
    UNAVAILABLE_NAMES,
    BulkOperation,
    WebhookSubscription,
    gid,
    gid_kind,
    level_gid,
    money,
    now_iso,
    parse_gid,
)

ADJUST_NAMES = ("available", "incoming") + UNAVAILABLE_NAMES[1:]  # committed is Shopify-managed
MAX_INPUT_ARRAY = 250
URI_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://\S+$")


class Context:
    """What a resolver needs: the state, the shop, the caller and where the sandbox is served."""

    def __init__(self, sandbox, shop, token, api_version, base_url, bulk=False):
        self.sandbox = sandbox
        self.shop = shop
        self.token = token
        self.api_version = api_version
        self.base_url = base_url
        self.bulk = bulk


def resolve_field(source, info, **args):
    name = info.field_name
    if isinstance(source, dict):
        if name not in source:
            raise GraphQLError(f"{info.parent_type.name}.{name} is not faked by the Shopify sandbox",
                               extensions={"code": "SANDBOX_UNSUPPORTED_FIELD"})
        value = source[name]
        return value(info, **args) if callable(value) else value
    return getattr(source, name, None)


def user_error(field, message, code=None, typed=True):
    error = {"field": [str(part) for part in field] if field is not None else None, "message": message}
    if typed:
        error["code"] = code
    return error


# -- access scopes (shopify.dev access-scopes; write implies read) -------------------------------------
ROOT_SCOPES = {
    "locations": "read_locations", "location": "read_locations",
    "products": "read_products", "product": "read_products", "productVariants": "read_products",
    "productVariant": "read_products",
    "inventoryItems": "read_inventory", "inventoryItem": "read_inventory", "inventoryLevel": "read_inventory",
    "orders": "read_orders", "order": "read_orders",
    "fulfillmentOrder": "read_merchant_managed_fulfillment_orders", "return": "read_returns",
    "inventorySetQuantities": "write_inventory", "inventoryAdjustQuantities": "write_inventory",
    "inventoryActivate": "write_inventory",
    "fulfillmentCreate": "write_merchant_managed_fulfillment_orders",
    "returnRequest": "write_returns", "returnApproveRequest": "write_returns",
    "returnDeclineRequest": "write_returns", "returnClose": "write_returns",
    "orderClose": "write_orders",
}


def has_scope(token, scope):
    granted = set(token.scopes)
    return scope in granted or scope.replace("read_", "write_", 1) in granted


def require_scope(info, scope):
    if not has_scope(info.context.token, scope):
        required = f"`{scope}` access scope."
        raise GraphQLError(
            f"Access denied for {info.field_name} field. Required access: {required}",
            info.field_nodes, extensions={"code": "ACCESS_DENIED",
                                          "documentation": "https://shopify.dev/api/usage/access-scopes",
                                          "requiredAccess": required})


def scoped(name, resolver):
    scope = ROOT_SCOPES.get(name)

    def run(info, **args):
        if scope:
            require_scope(info, scope)
        return resolver(info, **args)
    return run


# -- connections and search syntax ------------------------------------------------------------------
def encode_cursor(record_id):
    return base64.b64encode(json.dumps({"last_id": record_id}).encode()).decode()


def decode_cursor(cursor):
    try:
        return json.loads(base64.b64decode(cursor))["last_id"]
    except (ValueError, KeyError, TypeError):
        raise GraphQLError("Invalid cursor for current pagination sort.", extensions={"code": "BAD_REQUEST"})


def connection(info, records, view, first=None, last=None, after=None, before=None, reverse=False, **_):
    """A Relay connection over `records` (objects with `.id`, already in sort order)."""
    if not info.context.bulk:
        if first is None and last is None:
            raise GraphQLError(proposals.FIRST_OR_LAST_REQUIRED, info.field_nodes)
        if (first or 0) > proposals.PAGE_SIZE_MAX or (last or 0) > proposals.PAGE_SIZE_MAX:
            raise GraphQLError(proposals.PAGE_SIZE_TOO_BIG, info.field_nodes)
    records = list(records)
    if reverse:
        records.reverse()
    start, end = 0, len(records)
    if after is not None:
        start = _position(records, decode_cursor(after)) + 1
    if before is not None:
        end = _position(records, decode_cursor(before))
    window = records[start:end]
    if info.context.bulk:
        page = window
    elif first is not None:
        page = window[:first]
    else:
        page = window[-last:] if last else []
    has_next = (start + len(page) < end) if first is not None or info.context.bulk else end < len(records)
    has_previous = start > 0 if first is not None else len(page) < len(window) or start > 0
    nodes = [view(record) for record in page]
    return {
        "nodes": nodes,
        "edges": [{"cursor": encode_cursor(r.id), "node": n} for r, n in zip(page, nodes)],
        "pageInfo": {"hasNextPage": has_next, "hasPreviousPage": has_previous,
                     "startCursor": encode_cursor(page[0].id) if page else None,
                     "endCursor": encode_cursor(page[-1].id) if page else None},
    }


def _position(records, record_id):
    for index, record in enumerate(records):
        if record.id == record_id:
            return index
    raise GraphQLError("Invalid cursor for current pagination sort.", extensions={"code": "BAD_REQUEST"})


_TERM = re.compile(r'(-)?(\w+):(>=|<=|>|<)?("[^"]*"|\'[^\']*\'|\S+)|(\S+)')


def parse_search(query):
    """Shopify search syntax, the subset the sandbox needs: OR groups of AND-ed `field:value` terms."""
    groups = []
    for group in re.split(r"\s+OR\s+", (query or "").strip()):
        terms = []
        for match in _TERM.finditer(group):
            negate, name, op, value, bare = match.groups()
            if bare is not None:
                if bare.upper() == "AND":
                    continue
                terms.append(("", "text", "=", bare.strip("\"'")))
            else:
                terms.append((negate or "", name, op or "=", value.strip("\"'")))
        if terms:
            groups.append(terms)
    return groups


def matches(groups, fields):
    """fields: name -> value or list of values of one record."""
    if not groups:
        return True
    return any(all(_term_matches(term, fields) for term in group) for group in groups)


def _term_matches(term, fields):
    negate, name, op, wanted = term
    if name not in fields:
        return True  # Shopify ignores unknown search fields (with a search warning)
    values = fields[name] if isinstance(fields[name], list) else [fields[name]]
    result = any(_compare(value, op, wanted) for value in values)
    return not result if negate else result


def _compare(value, op, wanted):
    if value is None:
        return False
    text = str(value)
    if op == "=":
        if wanted.endswith("*"):
            return text.lower().startswith(wanted[:-1].lower())
        return text.lower() == wanted.lower()
    if isinstance(value, (int, float)):
        try:
            other = float(wanted)
        except ValueError:
            return False
        value = float(value)
    else:
        value, other = _comparable_time(text), _comparable_time(wanted)
    return {">": value > other, ">=": value >= other, "<": value < other, "<=": value <= other}[op]


def _comparable_time(text):
    return text.replace("Z", "+00:00")


# -- views ----------------------------------------------------------------------------------------------
def money_bag(amount, currency):
    value = {"amount": money(amount), "currencyCode": currency}
    return {"shopMoney": dict(value), "presentmentMoney": dict(value)}


class Views:
    def __init__(self, ctx):
        self.ctx = ctx
        self.shop = ctx.shop

    def shop_view(self):
        shop = self.shop
        return {"__typename": "Shop", "id": gid("Shop", shop.id), "name": shop.name, "email": shop.email,
                "contactEmail": shop.email, "myshopifyDomain": shop.domain, "currencyCode": shop.currency,
                "ianaTimezone": "America/Los_Angeles", "timezoneAbbreviation": "PST",
                "createdAt": shop.created_at, "updatedAt": shop.created_at, "shopOwnerName": "Sandbox Owner",
                "enabledPresentmentCurrencies": [shop.currency], "weightUnit": "KILOGRAMS",
                "taxesIncluded": False, "checkoutApiSupported": True,
                "plan": {"displayName": "Basic", "publicDisplayName": "Basic", "partnerDevelopment": True,
                         "shopifyPlus": False},
                "primaryDomain": {"id": gid("Domain", shop.id), "host": shop.domain, "sslEnabled": True,
                                  "url": f"https://{shop.domain}"},
                "url": f"https://{shop.domain}"}

    def location(self, location):
        if location is None:
            return None
        address = location.address
        return {"__typename": "Location", "id": gid("Location", location.id),
                "legacyResourceId": str(location.id), "name": location.name, "isActive": location.is_active,
                "isPrimary": self.shop.primary_location is location,
                "fulfillsOnlineOrders": location.fulfills_online_orders, "shipsInventory": location.ships_inventory,
                "hasActiveInventory": True, "isFulfillmentService": False, "activatable": not location.is_active,
                "deactivatable": location.is_active, "deletable": False, "deactivatedAt": None,
                "addressVerified": True, "createdAt": location.created_at, "updatedAt": location.created_at,
                "address": {**{k: address.get(k) for k in ("address1", "address2", "city", "province",
                                                            "provinceCode", "country", "countryCode", "zip",
                                                            "phone", "latitude", "longitude")},
                            "formatted": [v for v in (address.get("address1"), address.get("city"),
                                                      address.get("country")) if v]},
                "inventoryLevel": lambda info, inventoryItemId: self.level(self.shop.levels.get(
                    (parse_gid(inventoryItemId, "InventoryItem"), location.id))),
                "inventoryLevels": lambda info, query=None, **page: connection(
                    info, [lv for lv in self.shop.levels.values() if lv.location_id == location.id],
                    self.level, **page)}

    def product(self, product):
        if product is None:
            return None
        variants = [self.shop.variants[v] for v in product.variant_ids]
        return {"__typename": "Product", "id": gid("Product", product.id), "legacyResourceId": str(product.id),
                "title": product.title, "handle": product.handle, "vendor": product.vendor,
                "productType": product.product_type, "status": product.status, "tags": list(product.tags),
                "createdAt": product.created_at, "updatedAt": product.updated_at,
                "hasOnlyDefaultVariant": len(variants) == 1 and variants[0].title == "Default Title",
                "totalInventory": lambda info: sum(self._available(v) for v in variants),
                "tracksInventory": True,
                "variantsCount": {"count": len(variants), "precision": "EXACT"},
                "variants": lambda info, **page: connection(info, variants, self.variant, **page)}

    def _available(self, variant):
        return sum(level.quantities["available"] for level in self.shop.levels_by_item.get(variant.inventory_item_id, []))

    def variant(self, variant):
        if variant is None:
            return None
        product = self.shop.products[variant.product_id]
        return {"__typename": "ProductVariant", "id": gid("ProductVariant", variant.id),
                "legacyResourceId": str(variant.id), "title": variant.title, "sku": variant.sku,
                "barcode": variant.barcode, "price": variant.price, "compareAtPrice": None,
                "position": variant.position, "taxable": True, "availableForSale": True,
                "inventoryPolicy": "DENY", "createdAt": variant.created_at, "updatedAt": variant.updated_at,
                "displayName": product.title if variant.title == "Default Title" else f"{product.title} - {variant.title}",
                "inventoryQuantity": lambda info: self._available(variant),
                "selectedOptions": [{"name": "Title", "value": variant.title}],
                "product": lambda info: self.product(product),
                "inventoryItem": lambda info: self.item(self.shop.items[variant.inventory_item_id])}

    def item(self, item):
        if item is None:
            return None
        return {"__typename": "InventoryItem", "id": gid("InventoryItem", item.id),
                "legacyResourceId": str(item.id), "sku": item.sku, "tracked": item.tracked,
                "requiresShipping": True, "createdAt": item.created_at, "updatedAt": item.updated_at,
                "duplicateSkuCount": lambda info: sum(1 for other in list(self.shop.items.values())
                                                      if item.sku and other.sku == item.sku and other is not item),
                "harmonizedSystemCode": None, "countryCodeOfOrigin": None, "unitCost": None,
                "variant": lambda info: self.variant(self.shop.variants[item.variant_id]),
                "inventoryLevel": lambda info, locationId: self.level(self.shop.levels.get(
                    (item.id, parse_gid(locationId, "Location")))),
                "inventoryLevels": lambda info, query=None, **page: connection(
                    info, self._levels_of(item, query), self.level, **page)}

    def _levels_of(self, item, query):
        groups = parse_search(query)
        return [level for level in self.shop.levels_by_item.get(item.id, [])
                if matches(groups, {"location_id": level.location_id, "updated_at": level.updated_at})]

    def level(self, level):
        if level is None:
            return None
        level_id = level_gid(level.item_id, level.location_id)
        return {"__typename": "InventoryLevel", "id": level_id, "canDeactivate": True,
                "deactivationAlert": None, "createdAt": level.created_at, "updatedAt": level.updated_at,
                "item": lambda info: self.item(self.shop.items[level.item_id]),
                "location": lambda info: self.location(self.shop.locations.get(level.location_id)),
                "quantities": lambda info, names: [
                    {"id": f"{level_id}&name={name}", "name": name, "quantity": level.quantities[name],
                     "updatedAt": level.updated_at} for name in names if name in level.quantities]}

    def order(self, order):
        if order is None:
            return None
        shop = self.shop
        lines = [shop.line_items[i] for i in order.line_item_ids]
        total = sum(float(line.price) * line.quantity for line in lines)
        return {"__typename": "Order", "id": gid("Order", order.id), "legacyResourceId": str(order.id),
                "name": order.name, "number": order.number - 1000, "email": order.email, "phone": None,
                "createdAt": order.created_at, "updatedAt": order.updated_at, "processedAt": order.created_at,
                "cancelledAt": order.cancelled_at, "cancelReason": order.cancel_reason.upper()
                if order.cancel_reason else None, "closed": order.closed_at is not None,
                "closedAt": order.closed_at, "confirmed": True, "test": order.test, "note": order.note,
                "tags": sorted(order.tags), "currencyCode": shop.currency,
                "presentmentCurrencyCode": shop.currency, "displayFinancialStatus": order.financial_status,
                "displayFulfillmentStatus": shop.order_fulfillment_status(order),
                "fullyPaid": order.financial_status == "PAID", "requiresShipping": True,
                "sourceName": "web", "subtotalLineItemsQuantity": sum(line.quantity for line in lines),
                "totalPriceSet": money_bag(total, shop.currency),
                "subtotalPriceSet": money_bag(total, shop.currency),
                "currentTotalPriceSet": money_bag(total, shop.currency),
                "shippingAddress": self._address(order.shipping_address, order.id),
                "customer": {"__typename": "Customer", "id": gid("Customer", order.customer["id"]),
                             "email": order.email, "firstName": order.customer["first_name"],
                             "lastName": order.customer["last_name"],
                             "displayName": f"{order.customer['first_name']} {order.customer['last_name']}"},
                "lineItems": lambda info, **page: connection(info, lines, self.line_item, **page),
                "fulfillmentOrders": lambda info, displayable=None, query=None, **page: connection(
                    info, [shop.fulfillment_orders[f] for f in order.fulfillment_order_ids],
                    self.fulfillment_order, **page),
                "fulfillments": lambda info, first=None, query=None: [
                    self.fulfillment(shop.fulfillments[f]) for f in order.fulfillment_ids][:first],
                "returns": lambda info, query=None, **page: connection(
                    info, self._returns_of(order, query), self.return_view, **page)}

    def _returns_of(self, order, query):
        groups = parse_search(query)
        return [r for r in (self.shop.returns[i] for i in order.return_ids)
                if matches(groups, {"status": r.status.lower()})]

    @staticmethod
    def _address(address, owner_id):
        if not address:
            return None
        return {"id": gid("MailingAddress", owner_id), "firstName": address.get("first_name"),
                "lastName": address.get("last_name"), "name": address.get("name"),
                "company": address.get("company"), "address1": address.get("address1"),
                "address2": address.get("address2"), "city": address.get("city"),
                "province": address.get("province"), "provinceCode": address.get("province_code"),
                "zip": address.get("zip"), "country": address.get("country"),
                "countryCodeV2": address.get("country_code"), "phone": address.get("phone"),
                "formatted": lambda info, **_: [v for v in (address.get("address1"), address.get("city"),
                                                            address.get("country")) if v]}

    def line_item(self, line):
        fulfilled = sum(fl.quantity for _, fl in self.shop.fulfillment_lines.values() if fl.line_item_id == line.id)
        variant = self.shop.variants.get(line.variant_id)
        currency = self.shop.currency
        return {"__typename": "LineItem", "id": gid("LineItem", line.id), "sku": line.sku, "title": line.title,
                "name": line.title if not line.variant_title else f"{line.title} - {line.variant_title}",
                "variantTitle": line.variant_title, "vendor": None, "quantity": line.quantity,
                "currentQuantity": line.quantity, "unfulfilledQuantity": line.quantity - fulfilled,
                "requiresShipping": True, "taxable": True, "isGiftCard": False,
                "originalUnitPriceSet": money_bag(line.price, currency),
                "discountedUnitPriceSet": money_bag(line.price, currency),
                "originalTotalSet": money_bag(float(line.price) * line.quantity, currency),
                "variant": lambda info: self.variant(variant),
                "product": lambda info: self.product(self.shop.products.get(variant.product_id) if variant else None)}

    def fulfillment_order(self, fo):
        shop = self.shop
        location = shop.locations.get(fo.location_id)
        order = shop.orders[fo.order_id]
        address = location.address if location else {}
        return {"__typename": "FulfillmentOrder", "id": gid("FulfillmentOrder", fo.id), "status": fo.status,
                "requestStatus": "UNSUBMITTED", "createdAt": fo.created_at, "updatedAt": fo.updated_at,
                "orderId": gid("Order", fo.order_id), "orderName": order.name,
                "orderProcessedAt": order.created_at, "fulfillAt": None, "fulfillBy": None,
                "supportedActions": [{"action": "CREATE_FULFILLMENT", "externalUrl": None}]
                if fo.status in ("OPEN", "IN_PROGRESS") else [],
                "fulfillmentHolds": [],
                "assignedLocation": {"name": location.name if location else "", "address1": address.get("address1"),
                                     "address2": address.get("address2"), "city": address.get("city"),
                                     "province": address.get("provinceCode"), "zip": address.get("zip"),
                                     "countryCode": address.get("countryCode") or "US", "phone": None,
                                     "location": self.location(location)},
                "destination": {"id": gid("FulfillmentOrderDestination", fo.id), "email": order.email,
                                **{key: order.shipping_address.get(src) for key, src in (
                                    ("firstName", "first_name"), ("lastName", "last_name"),
                                    ("address1", "address1"), ("address2", "address2"), ("city", "city"),
                                    ("province", "province"), ("zip", "zip"), ("countryCode", "country_code"),
                                    ("phone", "phone"), ("company", "company"))}},
                "order": lambda info: self.order(order),
                "lineItems": lambda info, **page: connection(info, fo.lines, self.fo_line, **page),
                "fulfillments": lambda info, **page: connection(
                    info, [shop.fulfillments[f] for f in fo.fulfillment_ids], self.fulfillment, **page)}

    def fo_line(self, fo_line):
        line = self.shop.line_items[fo_line.line_item_id]
        variant = self.shop.variants.get(line.variant_id)
        return {"__typename": "FulfillmentOrderLineItem", "id": gid("FulfillmentOrderLineItem", fo_line.id),
                "totalQuantity": fo_line.total_quantity, "remainingQuantity": fo_line.remaining_quantity,
                "sku": line.sku, "productTitle": line.title, "variantTitle": line.variant_title, "vendor": None,
                "requiresShipping": True, "warnings": [],
                "inventoryItemId": gid("InventoryItem", variant.inventory_item_id) if variant else None,
                "lineItem": lambda info: self.line_item(line), "variant": lambda info: self.variant(variant)}

    def fulfillment(self, fulfillment):
        shop = self.shop
        return {"__typename": "Fulfillment", "id": gid("Fulfillment", fulfillment.id),
                "legacyResourceId": str(fulfillment.id), "name": fulfillment.name, "status": fulfillment.status,
                "displayStatus": "FULFILLED", "createdAt": fulfillment.created_at,
                "updatedAt": fulfillment.updated_at, "deliveredAt": None, "inTransitAt": None,
                "estimatedDeliveryAt": None, "requiresShipping": True,
                "totalQuantity": sum(line.quantity for line in fulfillment.lines),
                "trackingInfo": lambda info, first=None: [dict(t) for t in fulfillment.tracking][:first],
                "location": lambda info: self.location(shop.locations.get(fulfillment.location_id)),
                "order": lambda info: self.order(shop.orders[fulfillment.order_id]),
                "fulfillmentLineItems": lambda info, **page: connection(
                    info, fulfillment.lines, self.fulfillment_line, **page),
                "fulfillmentOrders": lambda info, **page: connection(
                    info, [shop.fulfillment_orders[f] for f in fulfillment.fulfillment_order_ids],
                    self.fulfillment_order, **page)}

    def fulfillment_line(self, line):
        item = self.shop.line_items[line.line_item_id]
        currency = self.shop.currency
        return {"__typename": "FulfillmentLineItem", "id": gid("FulfillmentLineItem", line.id),
                "quantity": line.quantity, "lineItem": lambda info: self.line_item(item),
                "originalTotalSet": money_bag(float(item.price) * line.quantity, currency),
                "discountedTotalSet": money_bag(float(item.price) * line.quantity, currency)}

    def return_view(self, ret):
        if ret is None:
            return None
        shop = self.shop
        return {"__typename": "Return", "id": gid("Return", ret.id), "name": ret.name, "status": ret.status,
                "createdAt": ret.created_at, "closedAt": ret.closed_at,
                "requestApprovedAt": ret.request_approved_at,
                "totalQuantity": sum(line.quantity for line in ret.lines),
                "decline": {"reason": ret.decline_reason, "note": None} if ret.decline_reason else None,
                "order": lambda info: self.order(shop.orders[ret.order_id]),
                "returnLineItems": lambda info, processingStatus=None, **page: connection(
                    info, ret.lines, self.return_line, **page)}

    def return_line(self, line):
        fulfillment_line = self.shop.fulfillment_lines[line.fulfillment_line_item_id][1]
        return {"__typename": "ReturnLineItem", "id": gid("ReturnLineItem", line.id), "quantity": line.quantity,
                "returnReason": line.return_reason, "returnReasonNote": "", "customerNote": line.customer_note,
                "processedQuantity": 0, "unprocessedQuantity": line.quantity, "processableQuantity": line.quantity,
                "refundableQuantity": line.quantity, "refundedQuantity": 0,
                "fulfillmentLineItem": lambda info: self.fulfillment_line(fulfillment_line)}

    def subscription(self, sub):
        return {"__typename": "WebhookSubscription", "id": gid("WebhookSubscription", sub.id),
                "legacyResourceId": str(sub.id), "topic": sub.topic, "uri": sub.uri, "format": sub.format,
                "filter": sub.filter, "includeFields": list(sub.include_fields), "metafieldNamespaces": [],
                "metafields": [], "createdAt": sub.created_at, "updatedAt": sub.updated_at,
                "apiVersion": {"handle": sub.api_version, "displayName": sub.api_version, "supported": True}}

    def bulk_operation(self, op):
        if op is None:
            return None
        finished = op.status == "COMPLETED"
        url = f"{self.ctx.base_url}/_sandbox/shopify/bulk/{self.shop.domain}/{op.id}.jsonl"
        return {"__typename": "BulkOperation", "id": gid("BulkOperation", op.id), "status": op.status,
                "type": op.type, "query": op.query, "createdAt": op.created_at, "completedAt": op.completed_at,
                "objectCount": str(op.object_count), "rootObjectCount": str(op.root_object_count),
                "fileSize": str(len(op.result)) if finished and op.result else None,
                "url": url if finished and op.object_count else None, "partialDataUrl": None,
                "errorCode": op.error_code}

    def adjustment_group(self, group):
        if group is None:
            return None

        def changes(info, inventoryItemIds=None, locationIds=None, quantityNames=None):
            return [self._change(change) for change in group["changes"]
                    if (inventoryItemIds is None or gid("InventoryItem", change["item_id"]) in inventoryItemIds)
                    and (locationIds is None or gid("Location", change["location_id"]) in locationIds)
                    and (quantityNames is None or change["name"] in quantityNames)]
        return {"__typename": "InventoryAdjustmentGroup", "id": gid("InventoryAdjustmentGroup", group["id"]),
                "createdAt": group["createdAt"], "reason": group["reason"],
                "referenceDocumentUri": group["referenceDocumentUri"], "app": None, "staffMember": None,
                "changes": changes}

    def _change(self, change):
        return {"name": change["name"], "delta": change["delta"],
                "quantityAfterChange": change["quantityAfterChange"], "ledgerDocumentUri": change.get("ledger"),
                "item": lambda info: self.item(self.shop.items.get(change["item_id"])),
                "location": lambda info: self.location(self.shop.locations.get(change["location_id"]))}

    def node(self, value):
        kind, shop = gid_kind(value), self.shop
        if kind == "InventoryLevel":
            location_id = parse_gid(value, "InventoryLevel")
            item_match = re.search(r"inventory_item_id=(\d+)", value)
            return self.level(shop.levels.get((int(item_match[1]), location_id))) if item_match else None
        number = parse_gid(value, kind) if kind else None
        lookups = {
            "Location": (shop.locations, self.location), "Product": (shop.products, self.product),
            "ProductVariant": (shop.variants, self.variant), "InventoryItem": (shop.items, self.item),
            "Order": (shop.orders, self.order), "FulfillmentOrder": (shop.fulfillment_orders, self.fulfillment_order),
            "Fulfillment": (shop.fulfillments, self.fulfillment), "Return": (shop.returns, self.return_view),
            "WebhookSubscription": (shop.subscriptions, self.subscription),
            "BulkOperation": (shop.bulk_operations, self.bulk_operation),
        }
        if number is None or kind not in lookups:
            return None
        table, view = lookups[kind]
        record = table.get(number)
        return view(record) if record is not None else None


NODE_SCOPES = {"Location": "read_locations", "Product": "read_products", "ProductVariant": "read_products",
               "InventoryItem": "read_inventory", "InventoryLevel": "read_inventory", "Order": "read_orders",
               "FulfillmentOrder": "read_merchant_managed_fulfillment_orders", "Fulfillment": "read_orders",
               "Return": "read_returns"}


# -- root query fields ------------------------------------------------------------------------------------
def _views(info):
    return Views(info.context)


def _search_fields_variant(shop, variant):
    product = shop.products[variant.product_id]
    return {"sku": variant.sku, "barcode": variant.barcode, "product_id": variant.product_id,
            "id": variant.id, "title": variant.title, "updated_at": variant.updated_at,
            "text": [variant.sku, variant.barcode, product.title, variant.title]}


def q_variants(info, query=None, sortKey=None, savedSearchId=None, **page):
    shop = info.context.shop
    groups = parse_search(query)
    records = [v for v in list(shop.variants.values()) if matches(groups, _search_fields_variant(shop, v))]
    if sortKey == "SKU":
        records.sort(key=lambda v: v.sku or "")
    return connection(info, records, _views(info).variant, **page)


def q_products(info, query=None, sortKey=None, savedSearchId=None, **page):
    shop = info.context.shop
    groups = parse_search(query)

    def fields(product):
        variants = [shop.variants[v] for v in product.variant_ids]
        return {"title": product.title, "id": product.id, "status": product.status.lower(),
                "tag": product.tags, "vendor": product.vendor, "updated_at": product.updated_at,
                "created_at": product.created_at, "sku": [v.sku for v in variants],
                "barcode": [v.barcode for v in variants], "text": [product.title]}
    records = [p for p in list(shop.products.values()) if matches(groups, fields(p))]
    if sortKey == "TITLE":
        records.sort(key=lambda p: p.title)
    elif sortKey == "UPDATED_AT":
        records.sort(key=lambda p: (p.updated_at, p.id))
    return connection(info, records, _views(info).product, **page)


def q_inventory_items(info, query=None, **page):
    shop = info.context.shop
    groups = parse_search(query)
    records = [i for i in list(shop.items.values())
               if matches(groups, {"sku": i.sku, "id": i.id, "updated_at": i.updated_at, "created_at": i.created_at})]
    return connection(info, records, _views(info).item, **page)


def q_locations(info, includeInactive=False, includeLegacy=False, query=None, sortKey=None, **page):
    shop = info.context.shop
    groups = parse_search(query)
    records = [loc for loc in shop.locations.values() if (includeInactive or loc.is_active)
               and matches(groups, {"name": loc.name, "id": loc.id, "active": str(loc.is_active).lower()})]
    if sortKey == "NAME":
        records.sort(key=lambda loc: loc.name)
    return connection(info, records, _views(info).location, **page)


def q_orders(info, query=None, sortKey=None, savedSearchId=None, **page):
    shop = info.context.shop
    groups = parse_search(query)

    def fields(order):
        status = "cancelled" if order.cancelled_at else ("closed" if order.closed_at else "open")
        fulfillment = {"FULFILLED": "shipped", "PARTIALLY_FULFILLED": "partial"}.get(
            shop.order_fulfillment_status(order), "unshipped")
        return {"updated_at": order.updated_at, "created_at": order.created_at, "processed_at": order.created_at,
                "status": [status, "any"], "financial_status": order.financial_status.lower(),
                "fulfillment_status": [fulfillment, "unfulfilled" if fulfillment != "shipped" else "fulfilled"],
                "tag": order.tags, "id": order.id, "name": [order.name, order.name.lstrip("#")],
                "email": order.email, "test": str(order.test).lower(),
                "sku": [shop.line_items[i].sku for i in order.line_item_ids],
                "text": [order.name, order.email]}
    records = [o for o in list(shop.orders.values()) if matches(groups, fields(o))]
    sort_keys = {"UPDATED_AT": lambda o: (o.updated_at, o.id), "CREATED_AT": lambda o: (o.created_at, o.id),
                 "PROCESSED_AT": lambda o: (o.created_at, o.id), "ORDER_NUMBER": lambda o: o.number}
    if sortKey in sort_keys:
        records.sort(key=sort_keys[sortKey])
    return connection(info, records, _views(info).order, **page)


def q_webhook_subscriptions(info, topics=None, uri=None, callbackUrl=None, format=None, query=None,
                            sortKey=None, **page):
    shop = info.context.shop
    records = [s for s in shop.subscriptions.values() if (not topics or s.topic in topics)
               and (uri is None or s.uri == uri) and (callbackUrl is None or s.uri == callbackUrl)
               and (format is None or s.format == format)]
    return connection(info, records, _views(info).subscription, **page)


def q_current_bulk_operation(info, type="QUERY"):
    shop = info.context.shop
    ops = [op for op in shop.bulk_operations.values() if op.type == type]
    return _views(info).bulk_operation(ops[-1] if ops else None)


def q_node(info, id):
    kind = gid_kind(id)
    if kind in NODE_SCOPES:
        require_scope(info, NODE_SCOPES[kind])
    return _views(info).node(id)


def q_nodes(info, ids):
    if len(ids) > MAX_INPUT_ARRAY:
        raise input_too_large(len(ids))
    for kind in {gid_kind(i) for i in ids}:
        if kind in NODE_SCOPES:
            require_scope(info, NODE_SCOPES[kind])
    views = _views(info)
    return [views.node(i) for i in ids]


def _by_id(kind, view_name, table_name):
    def resolve(info, id):
        number = parse_gid(id, kind)
        record = getattr(info.context.shop, table_name).get(number)
        return getattr(_views(info), view_name)(record) if record is not None else None
    return resolve


QUERY_FIELDS = {
    "shop": lambda info: _views(info).shop_view(),
    "locations": q_locations,
    "location": lambda info, id=None: _views(info).location(
        info.context.shop.locations.get(parse_gid(id, "Location")) if id else info.context.shop.primary_location),
    "products": q_products, "product": _by_id("Product", "product", "products"),
    "productVariants": q_variants, "productVariant": _by_id("ProductVariant", "variant", "variants"),
    "inventoryItems": q_inventory_items, "inventoryItem": _by_id("InventoryItem", "item", "items"),
    "inventoryLevel": lambda info, id: _views(info).node(id),
    "orders": q_orders, "order": _by_id("Order", "order", "orders"),
    "fulfillmentOrder": _by_id("FulfillmentOrder", "fulfillment_order", "fulfillment_orders"),
    "return": _by_id("Return", "return_view", "returns"),
    "webhookSubscriptions": q_webhook_subscriptions,
    "webhookSubscription": _by_id("WebhookSubscription", "subscription", "subscriptions"),
    "currentBulkOperation": q_current_bulk_operation,
    "node": q_node, "nodes": q_nodes,
}


# -- mutations: stock ----------------------------------------------------------------------------------------
def input_too_large(size):
    return GraphQLError(f"The input array size of {size} is greater than the maximum allowed of {MAX_INPUT_ARRAY}.",
                        extensions={"code": "MAX_INPUT_SIZE_EXCEEDED"})


def idempotency_key(info):
    directive = info.schema.get_directive("idempotent")
    values = get_directive_values(directive, info.field_nodes[0], info.variable_values)
    if values is None:
        raise GraphQLError(proposals.IDEMPOTENT_REQUIRED_ERROR["message"].format(field=info.field_name),
                           info.field_nodes, extensions={"code": proposals.IDEMPOTENT_REQUIRED_ERROR["code"]})
    if not values.get("key"):
        raise GraphQLError(proposals.IDEMPOTENT_EMPTY_KEY_ERROR["message"], info.field_nodes,
                           extensions={"code": proposals.IDEMPOTENT_EMPTY_KEY_ERROR["code"]})
    return values["key"]


def run_idempotent(info, args, perform, empty_payload):
    """Replay the first answer for a known key; refuse the key reused with other parameters."""
    key = idempotency_key(info)
    ctx = info.context
    store = ctx.shop.idempotency
    fingerprint = json.dumps([info.field_name, args], sort_keys=True, default=str)
    slot = (ctx.token.client_id, key)
    stored = store.get(slot)
    if stored and time.time() - stored[2] > proposals.IDEMPOTENCY_RETENTION_SECONDS:
        stored = None
    if stored:
        if stored[0] != fingerprint:
            return dict(empty_payload, userErrors=[user_error(
                None, "The same idempotency key cannot be used with different operation parameters.",
                "IDEMPOTENCY_KEY_PARAMETER_MISMATCH")])
        if stored[1]["userErrors"]:
            return dict(empty_payload, userErrors=[user_error(
                None, "A previous request with this idempotency key failed. Retry with a new idempotency key.",
                "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED")])
        return stored[1]
    payload = perform()
    store[slot] = (fingerprint, payload, time.time())
    return payload


def _require_change_from(rows, row_name, list_name):
    for index, row in enumerate(rows):
        if "changeFromQuantity" not in row:
            template = proposals.CHANGE_FROM_REQUIRED_ERROR
            raise GraphQLError(template["message"].format(row=row_name, path=f"input.{list_name}.{index}"),
                               extensions={"code": template["code"]})


def _common_input_errors(inp, names, name_code):
    errors = []
    if inp["name"] not in names:
        errors.append(user_error(["input", "name"], f"The quantity name must be one of: {', '.join(names)}.",
                                 name_code))
    if inp["reason"] not in proposals.INVENTORY_REASONS:
        errors.append(user_error(["input", "reason"], "The specified reason is invalid.", "INVALID_REASON"))
    uri = inp.get("referenceDocumentUri")
    if uri is not None and not URI_PATTERN.match(uri):
        errors.append(user_error(["input", "referenceDocumentUri"], "The specified reference document is invalid.",
                                 "INVALID_REFERENCE_DOCUMENT"))
    return errors


def _row_level(shop, row, path, errors):
    """The level a quantity row targets, or None with the userError appended."""
    item_id = parse_gid(row["inventoryItemId"], "InventoryItem")
    location_id = parse_gid(row["locationId"], "Location")
    if item_id not in shop.items:
        errors.append(user_error(path + ["inventoryItemId"], "The specified inventory item could not be found.",
                                 "INVALID_INVENTORY_ITEM"))
        return None
    if location_id not in shop.locations:
        errors.append(user_error(path + ["locationId"], "The specified location could not be found.",
                                 "INVALID_LOCATION"))
        return None
    level = shop.levels.get((item_id, location_id))
    if level is None:
        errors.append(user_error(path + ["locationId"], "The specified inventory item is not stocked at the location.",
                                 "ITEM_NOT_STOCKED_AT_LOCATION"))
        return None
    if not shop.items[item_id].tracked:
        errors.append(user_error(path + ["inventoryItemId"],
                                 "The specified inventory item is not allowed to be adjusted via API.",
                                 "NON_MUTABLE_INVENTORY_ITEM"))
        return None
    return level


def _stale(level, name, row, path, errors):
    expected = row.get("changeFromQuantity")
    if expected is not None and level.quantities[name] != expected:
        errors.append(user_error(path + ["changeFromQuantity"],
                                 "The changeFromQuantity argument no longer matches the persisted quantity.",
                                 "CHANGE_FROM_QUANTITY_STALE"))


def _record_changes(shop, level, name, delta, changes, ledger=None):
    before = dict(level.quantities)
    shop.change_quantity(level, name, delta)
    for changed in sorted(k for k in level.quantities if level.quantities[k] != before[k]):
        changes.append({"name": changed, "delta": level.quantities[changed] - before[changed],
                        "quantityAfterChange": level.quantities[changed], "item_id": level.item_id,
                        "location_id": level.location_id, "ledger": ledger if changed == name else None})


def m_inventory_set_quantities(info, input):
    rows = input["quantities"]
    if len(rows) > MAX_INPUT_ARRAY:
        raise input_too_large(len(rows))
    _require_change_from(rows, "quantity", "quantities")
    empty = {"inventoryAdjustmentGroup": None}

    def perform():
        shop = info.context.shop
        errors = _common_input_errors(input, SET_NAMES, "INVALID_NAME")
        targets, seen = [], set()
        for index, row in enumerate(rows):
            path = ["input", "quantities", str(index)]
            level = _row_level(shop, row, path, errors)
            if level is None:
                continue
            if (level.item_id, level.location_id) in seen:
                errors.append(user_error(path + ["locationId"],
                                         "The combination of inventoryItemId and locationId must be unique.",
                                         "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR"))
                continue
            seen.add((level.item_id, level.location_id))
            if row["quantity"] < 0:
                errors.append(user_error(path + ["quantity"], "The quantity can't be negative.",
                                         "INVALID_QUANTITY_NEGATIVE"))
            elif row["quantity"] > 1_000_000_000:
                errors.append(user_error(path + ["quantity"], "The total quantity can't be higher than 1,000,000,000.",
                                         "INVALID_QUANTITY_TOO_HIGH"))
            if input["name"] in SET_NAMES:
                _stale(level, input["name"], row, path, errors)
            targets.append((level, row))
        if errors:
            return dict(empty, userErrors=errors)
        changes = []
        for level, row in targets:
            delta = row["quantity"] - level.quantities[input["name"]]
            if delta:
                _record_changes(shop, level, input["name"], delta, changes)
                shop.emit_inventory_update(level)
        group = shop.new_adjustment_group(input["reason"], input.get("referenceDocumentUri"), changes)
        return {"inventoryAdjustmentGroup": _views(info).adjustment_group(group) if changes else None,
                "userErrors": []}
    return run_idempotent(info, {"input": input}, perform, empty)


def m_inventory_adjust_quantities(info, input):
    rows = input["changes"]
    if len(rows) > MAX_INPUT_ARRAY:
        raise input_too_large(len(rows))
    _require_change_from(rows, "change", "changes")
    empty = {"inventoryAdjustmentGroup": None}

    def perform():
        shop = info.context.shop
        name = input["name"]
        errors = _common_input_errors(input, ADJUST_NAMES, "INVALID_QUANTITY_NAME")
        targets = []
        ledgers = {row.get("ledgerDocumentUri") for row in rows}
        if len(ledgers) > 1:
            errors.append(user_error(["input", "changes"], "All changes must have the same ledger document URI.",
                                     "MAX_ONE_LEDGER_DOCUMENT"))
        for index, row in enumerate(rows):
            path = ["input", "changes", str(index)]
            ledger = row.get("ledgerDocumentUri")
            if name == "available" and ledger:
                errors.append(user_error(path + ["ledgerDocumentUri"],
                                         "A ledger document URI is not allowed when adjusting available.",
                                         "INVALID_AVAILABLE_DOCUMENT"))
            elif name != "available" and not ledger:
                errors.append(user_error(path + ["ledgerDocumentUri"],
                                         "A ledger document URI is required except when adjusting available.",
                                         "INVALID_QUANTITY_DOCUMENT"))
            elif ledger and ledger.startswith("gid://shopify/"):
                errors.append(user_error(path + ["ledgerDocumentUri"],
                                         "Internal (gid://shopify/) ledger documents are not allowed.",
                                         "INTERNAL_LEDGER_DOCUMENT"))
            level = _row_level(shop, row, path, errors)
            if level is None:
                continue
            if name in level.quantities:
                _stale(level, name, row, path, errors)
                if level.quantities[name] + row["delta"] < -2_000_000_000:
                    errors.append(user_error(path + ["delta"], "The quantity can't be lower than -2,000,000,000.",
                                             "INVALID_QUANTITY_TOO_LOW"))
            targets.append((level, row))
        if errors:
            return dict(empty, userErrors=errors)
        changes = []
        for level, row in targets:
            if row["delta"]:
                _record_changes(shop, level, name, row["delta"], changes, row.get("ledgerDocumentUri"))
                shop.emit_inventory_update(level)
        group = shop.new_adjustment_group(input["reason"], input.get("referenceDocumentUri"), changes)
        return {"inventoryAdjustmentGroup": _views(info).adjustment_group(group), "userErrors": []}
    return run_idempotent(info, {"input": input}, perform, empty)


def m_inventory_activate(info, inventoryItemId, locationId, available=None, onHand=None,
                         stockAtLegacyLocation=False):
    shop = info.context.shop
    item_id, location_id = parse_gid(inventoryItemId, "InventoryItem"), parse_gid(locationId, "Location")
    if item_id not in shop.items:
        return {"inventoryLevel": None, "userErrors": [user_error(["inventoryItemId"], "Inventory item not found.",
                                                                  typed=False)]}
    if location_id not in shop.locations:
        return {"inventoryLevel": None, "userErrors": [user_error(["locationId"], "Location not found.",
                                                                  typed=False)]}
    level = shop.activate(item_id, location_id, available or onHand or 0)
    return {"inventoryLevel": _views(info).level(level), "userErrors": []}


# -- mutations: fulfillment, returns, tags ---------------------------------------------------------------------
def m_fulfillment_create(info, fulfillment, message=None):
    shop = info.context.shop
    groups = fulfillment["lineItemsByFulfillmentOrder"]
    errors, picked = [], []
    for index, group in enumerate(groups):
        path = ["fulfillment", "lineItemsByFulfillmentOrder", str(index)]
        fo = shop.fulfillment_orders.get(parse_gid(group["fulfillmentOrderId"], "FulfillmentOrder"))
        if fo is None:
            errors.append(user_error(path + ["fulfillmentOrderId"], "Fulfillment order does not exist.", typed=False))
            continue
        if fo.status not in ("OPEN", "IN_PROGRESS"):
            errors.append(user_error(path + ["fulfillmentOrderId"],
                                     f"Fulfillment order {gid('FulfillmentOrder', fo.id)} has an unfulfillable "
                                     f"status= {fo.status.lower()}.", typed=False))
            continue
        picks = _picks(fo, group.get("fulfillmentOrderLineItems"), path, errors)
        picked.append((fo, picks))
    if not groups:
        errors.append(user_error(["fulfillment", "lineItemsByFulfillmentOrder"],
                                 "Line items by fulfillment order must not be empty.", typed=False))
    if picked and len({fo.order_id for fo, _ in picked}) > 1:
        errors.append(user_error(["fulfillment"], "All fulfillment orders must belong to the same order.", typed=False))
    if picked and len({fo.location_id for fo, _ in picked}) > 1:
        errors.append(user_error(["fulfillment"], "All fulfillment orders must be assigned to the same location.",
                                 typed=False))
    if not errors and not any(quantity for _, picks in picked for _, quantity in picks):
        errors.append(user_error(["fulfillment"], "Nothing is left to fulfill on these fulfillment orders.", typed=False))
    if errors:
        return {"fulfillment": None, "userErrors": errors}
    created = shop.fulfill(picked, _tracking(fulfillment.get("trackingInfo")), bool(fulfillment.get("notifyCustomer")))
    _emit_fulfillment_webhooks(info.context, created)
    return {"fulfillment": _views(info).fulfillment(created), "userErrors": []}


def _picks(fo, requested, path, errors):
    if requested is None:
        return [(line, line.remaining_quantity) for line in fo.lines if line.remaining_quantity]
    by_id = {gid("FulfillmentOrderLineItem", line.id): line for line in fo.lines}
    picks = []
    for index, item in enumerate(requested):
        line = by_id.get(item["id"])
        where = path + ["fulfillmentOrderLineItems", str(index)]
        if line is None:
            errors.append(user_error(where + ["id"], "Fulfillment order line item does not exist.", typed=False))
        elif not 0 < item["quantity"] <= line.remaining_quantity:
            errors.append(user_error(where + ["quantity"], "Invalid fulfillment order line item quantity requested.",
                                     typed=False))
        else:
            picks.append((line, item["quantity"]))
    return picks


def _tracking(info):
    if not info:
        return []
    numbers = list(info.get("numbers") or ([info["number"]] if info.get("number") else []))
    urls = list(info.get("urls") or ([info["url"]] if info.get("url") else []))
    count = max(len(numbers), len(urls), 1)
    return [{"company": info.get("company"), "number": numbers[i] if i < len(numbers) else None,
             "url": urls[i] if i < len(urls) else None} for i in range(count)]


def _emit_fulfillment_webhooks(ctx, fulfillment):
    shop, payloads = ctx.shop, ctx.sandbox.payloads
    order = shop.orders[fulfillment.order_id]
    shop.sandbox.webhooks.emit(shop, "fulfillments/create", payloads.fulfillment(shop, fulfillment))
    status = shop.order_fulfillment_status(order)
    topic = "orders/fulfilled" if status == "FULFILLED" else "orders/partially_fulfilled"
    shop.sandbox.webhooks.emit(shop, topic, payloads.order(shop, order, "orders/fulfilled"))
    shop.sandbox.webhooks.emit(shop, "orders/updated", payloads.order(shop, order, "orders/updated"))


def _return_payload(info, ret, errors=()):
    return {"return": _views(info).return_view(ret) if not errors else None, "userErrors": list(errors)}


def m_return_request(info, input):
    shop = info.context.shop
    order = shop.orders.get(parse_gid(input["orderId"], "Order"))
    if order is None:
        return _return_payload(info, None, [user_error(["input", "orderId"], "Order does not exist.", "NOT_FOUND")])
    lines, errors = [], []
    for index, row in enumerate(input["returnLineItems"]):
        fl_id = parse_gid(row["fulfillmentLineItemId"], "FulfillmentLineItem")
        path = ["input", "returnLineItems", str(index)]
        entry = shop.fulfillment_lines.get(fl_id)
        if entry is None or shop.fulfillments[entry[0]].order_id != order.id:
            errors.append(user_error(path + ["fulfillmentLineItemId"], "Fulfillment line item does not exist.",
                                     "NOT_FOUND"))
        elif not 0 < row["quantity"] <= shop.returnable_quantity(fl_id):
            errors.append(user_error(path + ["quantity"], "Quantity is not available for return.", "INVALID"))
        else:
            lines.append((fl_id, row["quantity"], row["returnReason"], row.get("customerNote")))
    if errors:
        return _return_payload(info, None, errors)
    ret = shop.request_return(order, lines)
    shop.sandbox.webhooks.emit(shop, "returns/request", info.context.sandbox.payloads.return_request(shop, ret))
    return _return_payload(info, ret)


def _return_transition(info, return_id, allowed, to_status, topic, message):
    shop = info.context.shop
    ret = shop.returns.get(parse_gid(return_id, "Return"))
    if ret is None:
        return None, _return_payload(info, None, [user_error(["id"], "Return does not exist.", "NOT_FOUND")])
    if ret.status not in allowed:
        return None, _return_payload(info, None, [user_error(["id"], message, "INVALID_STATE")])
    ret.status = to_status
    shop.touch_order(shop.orders[ret.order_id])
    shop.sandbox.webhooks.emit(shop, topic, info.context.sandbox.payloads.return_request(shop, ret))
    return ret, None


def m_return_approve(info, input):
    ret, refused = _return_transition(info, input["id"], ("REQUESTED",), "OPEN", "returns/approve",
                                      "Return is not approvable. Only returns with status REQUESTED can be approved.")
    if refused:
        return refused
    ret.request_approved_at = now_iso()
    return _return_payload(info, ret)


def m_return_decline(info, input):
    ret, refused = _return_transition(info, input["id"], ("REQUESTED",), "DECLINED", "returns/decline",
                                      "Return is not declinable. Only returns with status REQUESTED can be declined.")
    if refused:
        return refused
    ret.decline_reason = input["declineReason"]
    return _return_payload(info, ret)


def m_return_close(info, id):
    ret, refused = _return_transition(info, id, ("OPEN",), "CLOSED", "returns/close",
                                      "Return is not closable. Only returns with status OPEN can be closed.")
    if refused:
        return refused
    ret.closed_at = now_iso()
    return _return_payload(info, ret)


def m_tags_add(info, id, tags):
    shop, views = info.context.shop, _views(info)
    kind = gid_kind(id)
    targets = {"Order": (shop.orders, views.order, "write_orders"),
               "Product": (shop.products, views.product, "write_products")}
    if kind not in targets:
        return {"node": None, "userErrors": [user_error(["id"], "Invalid id for tagging.", typed=False)]}
    table, view, scope = targets[kind]
    require_scope(info, scope)
    record = table.get(parse_gid(id, kind))
    if record is None:
        return {"node": None, "userErrors": [user_error(["id"], f"{kind} does not exist.", typed=False)]}
    cleaned = [tag.strip() for tag in tags if tag.strip()]
    too_long = [tag for tag in cleaned if len(tag) > 255]
    if too_long:
        return {"node": None, "userErrors": [user_error(["tags"], "Tags cannot be longer than 255 characters.",
                                                        typed=False)]}
    for tag in cleaned:
        if tag.lower() not in {t.lower() for t in record.tags}:
            record.tags.append(tag)
    record.updated_at = now_iso()
    if kind == "Order":
        shop.sandbox.webhooks.emit(shop, "orders/updated", info.context.sandbox.payloads.order(
            shop, record, "orders/updated"))
    return {"node": view(record), "userErrors": []}



def _taggable(info, id):
    """(record, view, None) of an Order or Product gid, or (None, None, userErrors)."""
    shop, views = info.context.shop, _views(info)
    kind = gid_kind(id)
    targets = {"Order": (shop.orders, views.order, "write_orders"),
               "Product": (shop.products, views.product, "write_products")}
    if kind not in targets:
        return None, None, [user_error(["id"], "Invalid id for tagging.", typed=False)]
    table, view, scope = targets[kind]
    require_scope(info, scope)
    record = table.get(parse_gid(id, kind))
    if record is None:
        return None, None, [user_error(["id"], f"{kind} does not exist.", typed=False)]
    return record, view, None


def m_tags_remove(info, id, tags):
    record, view, errors = _taggable(info, id)
    if errors:
        return {"node": None, "userErrors": errors}
    unwanted = {tag.strip().lower() for tag in tags if tag.strip()}
    record.tags[:] = [tag for tag in record.tags if tag.lower() not in unwanted]
    record.updated_at = now_iso()
    shop = info.context.shop
    if gid_kind(id) == "Order":
        shop.sandbox.webhooks.emit(shop, "orders/updated", info.context.sandbox.payloads.order(
            shop, record, "orders/updated"))
    return {"node": view(record), "userErrors": []}


def m_order_close(info, input):
    shop = info.context.shop
    order = shop.orders.get(parse_gid(input["id"], "Order"))
    if order is None:
        return {"order": None, "userErrors": [user_error(["id"], "Order does not exist", typed=False)]}
    if order.closed_at is None:
        order.closed_at = now_iso()
        shop.touch_order(order)
        shop.sandbox.webhooks.emit(shop, "orders/updated", info.context.sandbox.payloads.order(
            shop, order, "orders/updated"))
    return {"order": _views(info).order(order), "userErrors": []}

# -- mutations: webhooks and bulk operations ---------------------------------------------------------------------
def m_webhook_subscription_create(info, topic, webhookSubscription):
    ctx = info.context
    shop = ctx.shop
    uri = webhookSubscription.get("uri") or webhookSubscription.get("callbackUrl")
    field = ["webhookSubscription", "uri" if webhookSubscription.get("uri") else "callbackUrl"]
    if not uri:
        return {"webhookSubscription": None, "userErrors": [user_error(field, "Address can't be blank", typed=False)]}
    allowed = ("https://", "pubsub://", "arn:aws:events:") + (("http://",) if ctx.sandbox.config.get(
        "allow_http_webhooks", True) else ())
    if not uri.startswith(allowed):
        return {"webhookSubscription": None, "userErrors": [user_error(
            field, f"Address protocol {uri.split(':')[0]}:// is not supported", typed=False)]}
    if any(s.topic == topic and s.uri == uri for s in shop.subscriptions.values()):
        return {"webhookSubscription": None, "userErrors": [user_error(
            field, "Address for this topic has already been taken", typed=False)]}
    sub = WebhookSubscription(id=ctx.sandbox.next_id(), topic=topic, uri=uri, api_version=ctx.api_version,
                              format=webhookSubscription.get("format") or "JSON",
                              filter=webhookSubscription.get("filter"),
                              include_fields=webhookSubscription.get("includeFields") or [])
    shop.subscriptions[sub.id] = sub
    return {"webhookSubscription": _views(info).subscription(sub), "userErrors": []}


def m_webhook_subscription_delete(info, id):
    shop = info.context.shop
    sub = shop.subscriptions.pop(parse_gid(id, "WebhookSubscription"), None)
    if sub is None:
        return {"deletedWebhookSubscriptionId": None,
                "userErrors": [user_error(["id"], "Webhook subscription does not exist", typed=False)]}
    return {"deletedWebhookSubscriptionId": id, "userErrors": []}


def m_bulk_operation_run_query(info, query, groupObjects=False):
    ctx = info.context
    shop = ctx.shop
    running = [op for op in shop.bulk_operations.values() if op.type == "QUERY" and op.status in ("CREATED", "RUNNING")]
    if running:
        return {"bulkOperation": None, "userErrors": [user_error(
            None, f"A bulk query operation for this app and shop is already in progress: "
                  f"{gid('BulkOperation', running[0].id)}.", "OPERATION_IN_PROGRESS")]}
    problem = bulk_query_problem(info.schema, query)
    if problem:
        return {"bulkOperation": None, "userErrors": [user_error(["query"], problem, "INVALID")]}
    op = BulkOperation(id=ctx.sandbox.next_id(), query=query)
    shop.bulk_operations[op.id] = op
    bulk_ctx = Context(ctx.sandbox, shop, ctx.token, ctx.api_version, ctx.base_url, bulk=True)
    threading.Thread(target=run_bulk_operation, args=(info.schema, bulk_ctx, op), daemon=True,
                     name=f"shopify-bulk-{op.id}").start()
    return {"bulkOperation": _views(info).bulk_operation(op), "userErrors": []}


def bulk_query_problem(schema, query):
    """Why Shopify would refuse this bulk query, or None (shopify.dev BulkOperationRunQueryPayload)."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return f"Invalid bulk query: {exc.message}"
    errors = validate(schema, document)
    if errors:
        return "Invalid bulk query: " + "; ".join(validation_error_body(e)["message"] for e in errors)
    operation = find_operation(document, None)
    if operation.operation.value != "query":
        return "Invalid bulk query: bulk queries must be query operations"
    walker = CostCalculator(schema, document, {}, operation)
    connections = list(_connection_depths(walker, operation.selection_set, schema.query_type, 0))
    if not connections:
        return "Bulk queries must contain at least one connection."
    if len(connections) > 5:
        return "Bulk queries cannot contain more than 5 connections."
    if max(connections) > 2:
        return "Bulk queries cannot contain connections with a nesting depth greater than 2."
    return None


def _connection_depths(walker, selection_set, parent_type, depth):

    for field, field_def in walker._fields(selection_set, parent_type):
        named = get_named_type(field_def.type)
        is_connection = named.name.endswith("Connection")
        if is_connection:
            yield depth + 1
        if field.selection_set:
            yield from _connection_depths(walker, field.selection_set, named, depth + (1 if is_connection else 0))


def run_bulk_operation(schema, ctx, op):
    """Execute a bulk query over the whole catalog and store its JSONL (runs in a thread)."""
    op.status = "RUNNING"
    time.sleep(float(ctx.sandbox.config.get("bulk_operation_seconds", 0)))  # a shop whose exports take a while
    try:
        document = parse(op.query)
        operation = find_operation(document, None)
        walker = CostCalculator(schema, document, {}, operation)
        data = BulkExecutor(schema, walker, ctx).run(operation)
        lines, roots = [], 0
        for field, field_def in walker._fields(operation.selection_set, schema.query_type):
            roots += _flatten_connection(walker, field, field_def, data.get(_alias(field)), None, lines)
        op.result = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()
        op.object_count, op.root_object_count = len(lines), roots
        op.status = "COMPLETED"
    except GraphQLError as exc:
        denied = (exc.extensions or {}).get("code") == "ACCESS_DENIED"
        op.status, op.error_code = "FAILED", "ACCESS_DENIED" if denied else "INTERNAL_SERVER_ERROR"
    except Exception:  # Shopify reports a failed bulk operation, never a stack trace
        op.status, op.error_code = "FAILED", "INTERNAL_SERVER_ERROR"
    op.completed_at = now_iso()
    ctx.sandbox.webhooks.emit(ctx.shop, "bulk_operations/finish", {
        "admin_graphql_api_id": gid("BulkOperation", op.id), "completed_at": op.completed_at,
        "created_at": op.created_at, "error_code": op.error_code.lower() if op.error_code else None,
        "status": op.status.lower(), "type": "query"})


class BulkInfo:
    """The part of graphql-core's ResolveInfo that the resolvers use."""

    __slots__ = ("context", "field_name", "field_nodes", "parent_type", "schema", "variable_values")

    def __init__(self, context, field_name, field_node, parent_type, schema):
        self.context, self.field_name, self.field_nodes = context, field_name, [field_node]
        self.parent_type, self.schema, self.variable_values = parent_type, schema, {}


class BulkExecutor:
    """A lean executor for validated bulk queries (graphql-core is ~10x slower on 50,000 nodes).

    The views already hold serialized scalars, so completing a value is walking the selection.
    """

    def __init__(self, schema, walker, ctx):
        self.schema, self.walker, self.ctx = schema, walker, ctx
        self._plans = {}

    def run(self, operation):
        return self._object(QUERY_ROOT, operation.selection_set, self.schema.query_type)

    def _plan(self, selection_set, parent_type):
        """Per selection and type: (alias, info, arguments, field, type), worked out once."""
        key = (id(selection_set), parent_type.name)
        if key not in self._plans:
            fields = [(_alias(field), BulkInfo(self.ctx, field.name.value, field, parent_type, self.schema),
                       get_argument_values(field_def, field, {}), field, get_named_type(field_def.type))
                      for field, field_def in self.walker._fields(selection_set, parent_type)]
            wants_typename = any(isinstance(sel, FieldNode) and sel.name.value == "__typename"
                                 for sel in selection_set.selections)
            self._plans[key] = (fields, wants_typename)
        return self._plans[key]

    def _object(self, source, selection_set, parent_type):
        if isinstance(parent_type, (GraphQLInterfaceType, GraphQLUnionType)):
            parent_type = self.schema.type_map[source["__typename"]]
        fields, wants_typename = self._plan(selection_set, parent_type)
        result = {}
        for alias, info, args, field, named in fields:
            result[alias] = self._complete(resolve_field(source, info, **args), field, named)
        if wants_typename and "__typename" in source:
            result["__typename"] = source["__typename"]
        return result

    def _complete(self, value, field, named):
        if value is None:
            return None
        if isinstance(value, list):
            return [self._complete(item, field, named) for item in value]
        if field.selection_set is None:
            return value
        return self._object(value, field.selection_set, named)


def _alias(field):
    return field.alias.value if field.alias else field.name.value


def _flatten_connection(walker, field, field_def, value, parent_id, lines):
    """Append one JSONL line per node of a connection (children after it, with __parentId)."""

    if not value:
        return 0
    connection_type = get_named_type(field_def.type)
    node_field, node_type, nodes = None, None, []
    for sub, sub_def in walker._fields(field.selection_set, connection_type):
        if sub.name.value == "nodes":
            node_field, node_type, nodes = sub, get_named_type(sub_def.type), value.get(_alias(sub)) or []
        elif sub.name.value == "edges":
            edge_type = get_named_type(sub_def.type)
            for inner, inner_def in walker._fields(sub.selection_set, edge_type):
                if inner.name.value == "node":
                    node_field, node_type = inner, get_named_type(inner_def.type)
                    nodes = [edge[_alias(inner)] for edge in value.get(_alias(sub)) or []]
    for node in nodes:
        line, children = _split_node(walker, node_field.selection_set, node_type, node)
        if parent_id is not None:
            line["__parentId"] = parent_id
        lines.append(line)
        for child_field, child_def, child_value in children:
            _flatten_connection(walker, child_field, child_def, child_value, node.get("id", parent_id), lines)
    return len(nodes)


def _split_node(walker, selection_set, node_type, node):
    """The node without its connection fields, and those connections (to become child lines)."""

    line, children = {}, []
    for field, field_def in walker._fields(selection_set, node_type):
        key = _alias(field)
        named = get_named_type(field_def.type)
        if named.name.endswith("Connection"):
            children.append((field, field_def, node.get(key)))
        elif field.selection_set and isinstance(node.get(key), dict):
            inner, inner_children = _split_node(walker, field.selection_set, named, node[key])
            line[key] = inner
            children.extend(inner_children)
        else:
            line[key] = node.get(key)
    if "__typename" in node:
        line["__typename"] = node["__typename"]
    return line, children


MUTATION_FIELDS = {
    "inventorySetQuantities": m_inventory_set_quantities,
    "inventoryAdjustQuantities": m_inventory_adjust_quantities,
    "inventoryActivate": m_inventory_activate,
    "fulfillmentCreate": m_fulfillment_create,
    "returnRequest": m_return_request, "returnApproveRequest": m_return_approve,
    "returnDeclineRequest": m_return_decline, "returnClose": m_return_close,
    "tagsAdd": m_tags_add, "tagsRemove": m_tags_remove,
    "orderClose": m_order_close,
    "webhookSubscriptionCreate": m_webhook_subscription_create,
    "webhookSubscriptionDelete": m_webhook_subscription_delete,
    "bulkOperationRunQuery": m_bulk_operation_run_query,
}

QUERY_ROOT = {name: scoped(name, fn) for name, fn in QUERY_FIELDS.items()}
MUTATION_ROOT = {name: scoped(name, fn) for name, fn in MUTATION_FIELDS.items()}
