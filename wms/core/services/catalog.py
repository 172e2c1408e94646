"""Products, warehouses, locations and shipping processes: creation, editing, CSV import and export."""

import csv
import io
import re
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select

from wms.extensions import db

from ..errors import NotFound, ServiceError
from ..models import Location, LocationUsage, Product, ShippingProcess, Warehouse

SKU_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,63}$")
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,31}$")
PRODUCT_FIELDS = ("sku", "barcode", "name", "brand", "varietal", "appellation", "vintage", "bottle_size_ml",
                  "case_quantity", "retail_price", "alcohol_pct", "weight_grams", "low_stock_threshold")
CSV_COLUMNS = PRODUCT_FIELDS


class FieldErrors(ServiceError):
    """Several fields were wrong at once; `errors` maps each field to its message."""

    def __init__(self, errors):
        first = next(iter(errors))
        super().__init__("invalid_fields", "; ".join(f"{k}: {v}" for k, v in errors.items()), field=first)
        self.errors = errors

    def as_dict(self):
        return {**super().as_dict(), "errors": self.errors}


def _text(value):
    return ("" if value is None else str(value)).strip()


def _int(value, field, errors, minimum=None, maximum=None, required=False):
    text = _text(value)
    if not text:
        if required:
            errors[field] = "Required."
        return None
    try:
        number = int(text)
    except ValueError:
        errors[field] = f"{text!r} is not a whole number."
        return None
    if minimum is not None and number < minimum:
        errors[field] = f"Must be at least {minimum}."
    elif maximum is not None and number > maximum:
        errors[field] = f"Must be at most {maximum}."
    return number


def _decimal(value, field, errors, places, maximum):
    text = _text(value).lstrip("$")
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        errors[field] = f"{text!r} is not a number."
        return None
    if not number.is_finite() or number < 0 or number > maximum:
        errors[field] = f"Must be between 0 and {maximum}."
        return None
    return number.quantize(Decimal(places))


def clean_product(data, product=None):
    """Validate product fields; returns a dict of clean values or raises FieldErrors."""
    errors, clean = {}, {}
    sku = _text(data.get("sku", product.sku if product else ""))
    if not SKU_PATTERN.match(sku):
        errors["sku"] = "Required: letters, digits and . _ - / only, at most 64 characters."
    clean["sku"] = sku
    clean["name"] = _text(data.get("name", product.name if product else ""))
    if not clean["name"]:
        errors["name"] = "Required."
    barcode = _text(data.get("barcode", product.barcode if product else ""))
    if barcode and not re.fullmatch(r"[0-9A-Za-z\-]{4,64}", barcode):
        errors["barcode"] = "Letters, digits and - only, 4 to 64 characters."
    clean["barcode"] = barcode or None
    for key in ("brand", "varietal", "appellation"):
        clean[key] = _text(data.get(key, getattr(product, key) if product else ""))[:120]
    for key, lo, hi, default in (("vintage", 1800, 2100, None), ("bottle_size_ml", 50, 30000, 750),
                                 ("case_quantity", 1, 1000, 12), ("weight_grams", 1, 100000, None),
                                 ("low_stock_threshold", 0, 1000000, 0)):
        raw = data.get(key, getattr(product, key) if product else None)
        value = _int(raw, key, errors, lo, hi)
        clean[key] = default if value is None else value
    price = _decimal(data.get("retail_price", product.retail_price if product else None), "retail_price",
                     errors, "0.01", Decimal("1000000"))
    clean["retail_price"] = price if price is not None else Decimal("0.00")
    clean["alcohol_pct"] = _decimal(data.get("alcohol_pct", product.alcohol_pct if product else None),
                                    "alcohol_pct", errors, "0.1", Decimal("100"))
    if not errors:
        _check_unique(clean, product, errors)
    if errors:
        raise FieldErrors(errors)
    return clean


def _check_unique(clean, product, errors):
    own_id = product.id if product else None
    same_sku = db.session.scalar(select(Product.id).where(func.lower(Product.sku) == clean["sku"].lower()))
    if same_sku is not None and same_sku != own_id:
        errors["sku"] = f"SKU {clean['sku']} is already used by another product."
    if clean["barcode"]:
        same_barcode = db.session.scalar(select(Product.id).where(Product.barcode == clean["barcode"]))
        if same_barcode is not None and same_barcode != own_id:
            errors["barcode"] = f"Barcode {clean['barcode']} is already used by another product."


def create_product(data):
    product = Product(**clean_product(data))
    db.session.add(product)
    db.session.flush()
    return product


def update_product(product, data):
    for key, value in clean_product(data, product).items():
        setattr(product, key, value)
    db.session.flush()
    return product


def find_product(code):
    """A product by SKU or barcode, as a scanner or a person types it."""
    code = _text(code)
    if not code:
        return None
    return (db.session.scalar(select(Product).where(Product.barcode == code))
            or db.session.scalar(select(Product).where(Product.sku == code))
            or db.session.scalar(select(Product).where(func.lower(Product.sku) == code.lower())))


FORMULA_STARTS = ("=", "+", "-", "@")


def _csv_cell(value):
    """Text that a spreadsheet would run as a formula is written with a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _from_csv_cell(value):
    if isinstance(value, str) and value.startswith("'") and value[1:2] in FORMULA_STARTS:
        return value[1:]
    return value


def export_products_csv():
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for product in db.session.scalars(select(Product).order_by(Product.sku)):
        writer.writerow([_csv_cell(getattr(product, c)) for c in CSV_COLUMNS])
    return out.getvalue()


def import_products_csv(text):
    """Create or update products by SKU. All rows or none: returns (created, updated), or raises
    ServiceError with `row_errors` [(row number, message)]; the caller then rolls back."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "sku" not in [f.strip() for f in reader.fieldnames]:
        raise ServiceError("bad_csv", "The first row must name the columns, including sku.", field="file")
    unknown = [f for f in reader.fieldnames if f and f.strip() not in CSV_COLUMNS]
    if unknown:
        raise ServiceError("bad_csv", f"Unknown column(s): {', '.join(unknown)}. Expected: "
                           f"{', '.join(CSV_COLUMNS)}.", field="file")
    row_errors, created, updated, seen = [], 0, 0, set()
    for number, row in enumerate(reader, start=2):
        row = {k.strip(): _from_csv_cell(v) for k, v in row.items() if k}
        sku = _text(row.get("sku")).lower()
        if sku in seen:
            row_errors.append((number, f"SKU {row.get('sku')} appears twice in the file."))
            continue
        seen.add(sku)
        existing = db.session.scalar(select(Product).where(func.lower(Product.sku) == sku)) if sku else None
        try:
            if existing is None:
                create_product(row)
                created += 1
            else:
                update_product(existing, {k: v for k, v in row.items() if v is not None})
                updated += 1
        except ServiceError as exc:
            row_errors.append((number, exc.message))
    if row_errors:  # the caller rolls back, so the rows that were fine are not written either
        error = ServiceError("bad_csv_rows", f"{len(row_errors)} row(s) have errors; nothing was imported.",
                             field="file")
        error.row_errors = row_errors
        raise error
    return created, updated


# -- warehouses ----------------------------------------------------------------------------------

def create_warehouse(code, name, *, is_external=False, allow_negative=False, address="", bins=("STOCK",)):
    """A warehouse with its outbound location, the given bins, and an in-house shipping process
    (external warehouses get their processes from the fulfillment plugin)."""
    code = _text(code).upper()
    if not CODE_PATTERN.match(code):
        raise ServiceError("invalid_code", "Code: letters, digits and . _ - only, at most 32 characters.",
                           field="code")
    if db.session.scalar(select(Warehouse).where(Warehouse.code == code)):
        raise ServiceError("duplicate_code", f"A warehouse with code {code} exists.", field="code")
    if not _text(name):
        raise ServiceError("name_required", "Name is required.", field="name")
    warehouse = Warehouse(code=code, name=_text(name), is_external=is_external, allow_negative=allow_negative,
                          address=_text(address))
    db.session.add(warehouse)
    warehouse.locations.append(Location(code="OUTBOUND", name="Outbound / packing",
                                        usage=LocationUsage.OUTBOUND.value))
    for bin_code in bins:
        warehouse.locations.append(Location(code=bin_code, name=bin_code, usage=LocationUsage.INTERNAL.value))
    if not is_external:
        warehouse.shipping_processes.append(ShippingProcess(name="In-house shipping", handler="in_house"))
    db.session.flush()
    return warehouse


def create_location(warehouse, code, name="", barcode=None):
    if warehouse is None:
        raise NotFound("unknown_warehouse", "Unknown warehouse.", field="warehouse")
    code = _text(code).upper()
    if not CODE_PATTERN.match(code):
        raise ServiceError("invalid_code", "Code: letters, digits and . _ - only, at most 32 characters.",
                           field="code")
    if any(loc.code == code for loc in warehouse.locations):
        raise ServiceError("duplicate_code", f"{warehouse.code} already has a location {code}.", field="code")
    barcode = _text(barcode) or None
    if barcode and db.session.scalar(select(Location).where(Location.barcode == barcode)):
        raise ServiceError("duplicate_barcode", f"Barcode {barcode} is already used by a location.",
                           field="barcode")
    location = Location(warehouse=warehouse, code=code, name=_text(name) or code, barcode=barcode,
                        usage=LocationUsage.INTERNAL.value)
    db.session.add(location)
    db.session.flush()
    return location


def create_shipping_process(warehouse, name, handler="in_house"):
    if warehouse is None:
        raise NotFound("unknown_warehouse", "Unknown warehouse.", field="warehouse")
    name = _text(name)
    if not name:
        raise ServiceError("name_required", "Name is required.", field="name")
    if any(p.name == name for p in warehouse.shipping_processes):
        raise ServiceError("duplicate_name", f"{warehouse.code} already has a process named {name}.", field="name")
    process = ShippingProcess(warehouse=warehouse, name=name, handler=_text(handler) or "in_house")
    db.session.add(process)
    db.session.flush()
    return process


def find_location(code, warehouse=None):
    """A tracked location by barcode, by 'WAREHOUSE/CODE', or by code within a warehouse."""
    code = _text(code)
    if not code:
        return None
    by_barcode = db.session.scalar(select(Location).where(Location.barcode == code))
    if by_barcode is not None:
        return by_barcode
    if "/" in code:
        wh_code, loc_code = code.split("/", 1)
        return db.session.scalar(select(Location).join(Warehouse).where(
            Warehouse.code == wh_code.upper(), Location.code == loc_code.upper()))
    query = select(Location).where(Location.code == code.upper(), Location.warehouse_id.is_not(None))
    if warehouse is not None:
        query = query.where(Location.warehouse_id == warehouse.id)
    matches = db.session.scalars(query.limit(2)).all()
    return matches[0] if len(matches) == 1 else None
