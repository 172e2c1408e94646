"""The Admin GraphQL schema of the Shopify sandbox: loading, error shapes, query cost, bucket.

The schema is Shopify's own SDL dump (unstable, 2025-09) extended with the 2026 additions
(`admin_2026_extensions.graphql`), the 2026 user-error codes (published enum values of the
2026-01+ docs) and with `compareQuantity` / `ignoreCompareQuantity` removed (2026-04). It is
built once per process (about 3 s) and cached.
"""

import os
import re
import threading
import time
from pathlib import Path

from graphql import (
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLUnionType,
    build_schema,
    extend_schema,
    get_named_type,
    is_composite_type,
    parse,
)
from graphql.language import FieldNode, FragmentSpreadNode, InlineFragmentNode, OperationDefinitionNode
from graphql.utilities import value_from_ast_untyped

from . import proposals

SCHEMA_FILE = "admin_unstable_2025-09.graphql"
EXTENSIONS_FILE = "admin_2026_extensions.graphql"

# Enum values added by 2026-01 (shopify.dev/docs/api/admin-graphql/2026-01/enums/...UserErrorCode
# and latest = 2026-10 for IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED).
CODES_2026_SDL = """
extend enum InventorySetQuantitiesUserErrorCode {
  CHANGE_FROM_QUANTITY_STALE IDEMPOTENCY_CONCURRENT_REQUEST IDEMPOTENCY_KEY_PARAMETER_MISMATCH
  IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED
}
extend enum InventoryAdjustQuantitiesUserErrorCode {
  CHANGE_FROM_QUANTITY_STALE IDEMPOTENCY_CONCURRENT_REQUEST IDEMPOTENCY_KEY_PARAMETER_MISMATCH
  IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED SERVICE_UNAVAILABLE
}
"""
# Removed in 2026-04 (shopify.dev/changelog/finalizing-compare-and-swap-redesign-for-inventory-set-quantities).
REMOVED_2026_04 = {
    "InventoryQuantityInput": ("compareQuantity",),
    "InventorySetQuantitiesInput": ("ignoreCompareQuantity",),
}

_schema_lock = threading.Lock()
_schema_cache = {}


def contract_dir(configured=None):
    """Where the Shopify contract files are: config, env, else the copy shipped in `contract/`."""
    candidates = [configured, os.environ.get("WMS_SHOPIFY_CONTRACT_DIR"), Path(__file__).resolve().parent / "contract"]
    for candidate in candidates:
        if candidate and (Path(candidate) / SCHEMA_FILE).is_file():
            return Path(candidate)
    raise FileNotFoundError(
        f"Shopify schema {SCHEMA_FILE} not found; set WMS_SHOPIFY_CONTRACT_DIR to the contract folder")


def load_schema(directory=None):
    """The sandbox schema, built once per process per contract folder."""
    folder = contract_dir(directory)
    with _schema_lock:
        if folder not in _schema_cache:
            _schema_cache[folder] = _build(folder)
        return _schema_cache[folder]


def _build(folder):
    schema = build_schema((folder / SCHEMA_FILE).read_text(), assume_valid=True)
    schema = extend_schema(schema, parse((folder / EXTENSIONS_FILE).read_text()), assume_valid=True)
    schema = extend_schema(schema, parse(CODES_2026_SDL), assume_valid=True)
    for type_name, field_names in REMOVED_2026_04.items():
        fields = schema.type_map[type_name].fields
        for field_name in field_names:
            fields.pop(field_name, None)
    return schema


# -- error shapes (graphql-ruby's, which Shopify's API uses) ---------------------------------------
_UNKNOWN_INPUT_FIELD_LITERAL = re.compile(r"Expected value of type '(\w+)' not to include unknown field '(\w+)'")
_TRANSLATIONS = [
    (re.compile(r"Cannot query field '(\w+)' on type '(\w+)'"),
     lambda m: (f"Field '{m[1]}' doesn't exist on type '{m[2]}'",
                {"code": "undefinedField", "typeName": m[2], "fieldName": m[1]})),
    (re.compile(r"Unknown argument '(\w+)' on field '(\w+)\.(\w+)'"),
     lambda m: (f"Field '{m[3]}' doesn't accept argument '{m[1]}'",
                {"code": "argumentNotAccepted", "name": m[3], "typeName": "Field", "argumentName": m[1]})),
    (re.compile(r"Field '(\w+)' argument '(\w+)' of type '([^']+)' is required"),
     lambda m: (f"Field '{m[1]}' is missing required arguments: {m[2]}",
                {"code": "missingRequiredArguments", "className": "Field", "name": m[1],
                 "arguments": m[2]})),
    (re.compile(r"Unknown directive '@(\w+)'"),
     lambda m: (f"Directive @{m[1]} is not defined", {"code": "undefinedDirective", "directiveName": m[1]})),
    (re.compile(r"Unknown type '(\w+)'"),
     lambda m: (f"No such type {m[1]}, so it can't be a fragment condition",
                {"code": "undefinedType", "typeName": m[1]})),
    (re.compile(r"Field '(\w+)' of type '([^']+)' must have a selection of subfields"),
     lambda m: (f"Field must have selections (field '{m[1]}' returns {m[2].strip('[]!')} but has no "
                f"selections. Did you mean '{m[1]} {{ ... }}'?)",
                {"code": "selectionMismatch", "nodeName": f"field '{m[1]}'", "typeName": m[2]})),
    (re.compile(r"Field '(\w+)' must not have a selection since type '([^']+)' has no subfields"),
     lambda m: (f"Selections can't be made on scalars (field '{m[1]}' returns {m[2]} but has selections "
                f"[...])", {"code": "selectionMismatch", "nodeName": f"field '{m[1]}'", "typeName": m[2]})),
    (_UNKNOWN_INPUT_FIELD_LITERAL,
     lambda m: (f"InputObject '{m[1]}' doesn't accept argument '{m[2]}'",
                {"code": "argumentNotAccepted", "name": m[1], "typeName": "InputObject", "argumentName": m[2]})),
    (re.compile(r"Variable '\$(\w+)' is never used"),
     lambda m: (f"Variable ${m[1]} is declared but not used", {"code": "variableNotUsed", "variableName": m[1]})),
    (re.compile(r"Variable '\$(\w+)' is not defined"),
     lambda m: (f"Variable ${m[1]} is used but not declared", {"code": "variableNotDefined",
                                                                 "variableName": m[1]})),
]
_VARIABLE_PROBLEM = re.compile(r"Variable '\$(\w+)' has invalid value(?: at ([^:]+))?: (.*)$", re.S)
_UNKNOWN_INPUT_FIELD = re.compile(r"Expected value of type '(\w+)' not to include unknown field '(\w+)'")


def _locations(error):
    return [{"line": loc.line, "column": loc.column} for loc in (error.locations or [])]


def validation_error_body(error):
    """One graphql-core validation error in graphql-ruby's shape."""
    message = error.message
    for pattern, build in _TRANSLATIONS:
        match = pattern.search(message)
        if match:
            text, extensions = build(match)
            return {"message": text, "locations": _locations(error), "extensions": extensions}
    return {"message": message, "locations": _locations(error)}


def syntax_error_body(error):
    text = error.message.replace("Syntax Error: ", "")
    return {"message": f"syntax error, {text[0].lower() + text[1:] if text else text}",
            "locations": _locations(error)}


def variable_error_body(error, variable_types):
    match = _VARIABLE_PROBLEM.match(error.message)
    if not match:
        return {"message": error.message, "locations": _locations(error)}
    name, at, explanation = match.groups()
    path = []
    for part in re.findall(r"\w+|\[\d+\]", at or ""):
        path.append(int(part[1:-1]) if part.startswith("[") else part)
    unknown = _UNKNOWN_INPUT_FIELD.search(explanation)
    if unknown:
        path.append(unknown[2])
        explanation = f"Field is not defined on {unknown[1]}"
    where = ".".join(str(p) for p in path)
    type_text = variable_types.get(name, "")
    return {"message": f"Variable ${name} of type {type_text} was provided invalid value"
                       + (f" for {where}" if where else ""),
            "locations": _locations(error),
            "extensions": {"problems": [{"path": path, "explanation": explanation.rstrip(".")}]}}


def runtime_error_body(message, code, path=None, **extra):
    body = {"message": message, "extensions": {"code": code, **extra}}
    if path:
        body["path"] = list(path)
    return body


# -- calculated query cost (shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits) -------------
class CostCalculator:
    """Requested cost from the document; actual cost from the same walk over the answer's data.

    Scalars and enums cost 0, objects 1, a connection 2 + page size times the cost of one node,
    a mutation field 10 plus its payload selection.
    """

    def __init__(self, schema, document, variables, operation):
        self.schema = schema
        self.variables = variables or {}
        self.operation = operation
        self.fragments = {d.name.value: d for d in document.definitions
                          if d.kind == "fragment_definition"}

    def requested(self):
        return self._root_cost(data=None)

    def actual(self, data):
        return self._root_cost(data=data or {})

    def _root_cost(self, data):
        is_mutation = self.operation.operation.value == "mutation"
        root = self.schema.mutation_type if is_mutation else self.schema.query_type
        total = 0
        for field, field_def in self._fields(self.operation.selection_set, root):
            value = None if data is None else data.get(_key(field))
            cost = self._field_cost(field, field_def, value, data is not None)
            # a mutation costs 10 in place of the 1 of its payload object
            total += proposals.MUTATION_COST + max(0, cost - 1) if is_mutation else cost
        return total

    def _fields(self, selection_set, parent_type):
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if name.startswith("__"):
                    continue
                fields = getattr(parent_type, "fields", {})
                if name in fields:
                    yield selection, fields[name]
            elif isinstance(selection, InlineFragmentNode):
                target = parent_type
                if selection.type_condition:
                    target = self.schema.type_map.get(selection.type_condition.name.value, parent_type)
                yield from self._fields(selection.selection_set, target)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment:
                    target = self.schema.type_map.get(fragment.type_condition.name.value, parent_type)
                    yield from self._fields(fragment.selection_set, target)

    def _arg(self, field, name):
        for argument in field.arguments or ():
            if argument.name.value == name:
                return value_from_ast_untyped(argument.value, self.variables)
        return None

    def _field_cost(self, field, field_def, value, with_data):
        named = get_named_type(field_def.type)
        if not is_composite_type(named):
            return 0
        if with_data and value is None:
            return 0
        if named.name.endswith("Connection") and isinstance(named, GraphQLObjectType):
            if with_data:
                items = value.get("nodes") or value.get("edges") or []
                return 2 + sum(self._node_cost(field.selection_set, named, item) for item in items)
            size = self._arg(field, "first") or self._arg(field, "last") or 1
            return 2 + int(size) * self._node_cost(field.selection_set, named, None)
        if isinstance(value, list):
            return sum(1 + self._selection_cost(field.selection_set, named, item) for item in value)
        return 1 + self._selection_cost(field.selection_set, named, value if with_data else None)

    def _node_cost(self, selection_set, connection_type, item):
        """Cost of one node of a connection (edges/node and nodes both lead to it)."""
        cost = 0
        for field, field_def in self._fields(selection_set, connection_type):
            name = field.name.value
            if name == "edges":
                edge_type = get_named_type(field_def.type)
                for node_field, node_def in self._fields(field.selection_set, edge_type):
                    if node_field.name.value == "node":
                        node = item.get(_key(node_field)) if isinstance(item, dict) else None
                        cost += 1 + self._selection_cost(
                            node_field.selection_set, get_named_type(node_def.type), node)
            elif name == "nodes":
                cost += 1 + self._selection_cost(
                    field.selection_set, get_named_type(field_def.type), item)
        return cost

    def _selection_cost(self, selection_set, parent_type, value):
        if isinstance(parent_type, (GraphQLInterfaceType, GraphQLUnionType)) and isinstance(value, dict):
            parent_type = self.schema.type_map.get(value.get("__typename"), parent_type)
        total = 0
        for field, field_def in self._fields(selection_set, parent_type):
            child = value.get(_key(field)) if isinstance(value, dict) else None
            total += self._field_cost(field, field_def, child, value is not None)
        return total


def _key(field):
    return field.alias.value if field.alias else field.name.value


def find_operation(document, operation_name):
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        for operation in operations:
            if operation.name and operation.name.value == operation_name:
                return operation
        raise GraphQLError(f'No operation named "{operation_name}"')
    if len(operations) != 1:
        raise GraphQLError("An operation name is required")
    return operations[0]


# -- the leaky bucket ---------------------------------------------------------------------------------
class LeakyBucket:
    """Shopify's calculated-cost bucket: `maximum` points, refilled at `restore_rate` points/s."""

    def __init__(self, maximum=2000.0, restore_rate=100.0, clock=time.monotonic):
        self.maximum = float(maximum)
        self.restore_rate = float(restore_rate)
        self.clock = clock
        self._available = float(maximum)
        self._at = clock()
        self._lock = threading.Lock()
        self.throttled_count = 0

    def _refill(self):
        now = self.clock()
        self._available = min(self.maximum, self._available + (now - self._at) * self.restore_rate)
        self._at = now

    def take(self, cost):
        """Take `cost` points; False (and nothing taken) when not that many are available."""
        with self._lock:
            self._refill()
            if cost > self._available + 1e-6:  # float refill must not refuse an exact wait
                self.throttled_count += 1
                return False
            self._available -= cost
            return True

    def refund(self, points):
        with self._lock:
            self._refill()
            self._available = min(self.maximum, self._available + max(0.0, points))

    def set_available(self, points):
        with self._lock:
            self._refill()
            self._available = max(0.0, min(self.maximum, float(points)))

    def configure(self, maximum=None, restore_rate=None):
        with self._lock:
            self._refill()
            if maximum is not None:
                self.maximum = float(maximum)
                self._available = min(self._available, self.maximum)
            if restore_rate is not None:
                self.restore_rate = float(restore_rate)

    def status(self):
        with self._lock:
            self._refill()
            return {"maximumAvailable": self.maximum, "currentlyAvailable": int(self._available),
                    "restoreRate": self.restore_rate}
