"""Demo data, so a first start has something to see: users, two warehouses, wines, stock, orders."""

from decimal import Decimal

from sqlalchemy import select

from wms.core.models import User
from wms.core.services import catalog, inventory, orders
from wms.extensions import db

WINES = [
    ("CAB-2021", "0850001000017", "Estate Cabernet Sauvignon 2021", "Cabernet Sauvignon", "Napa Valley", 2021, "68.00", "14.5"),
    ("CHD-2022", "0850001000024", "Carneros Chardonnay 2022", "Chardonnay", "Carneros", 2022, "38.00", "13.5"),
    ("PN-2022", "0850001000031", "Russian River Pinot Noir 2022", "Pinot Noir", "Russian River Valley", 2022, "52.00", "13.9"),
    ("SB-2023", "0850001000048", "Sauvignon Blanc 2023", "Sauvignon Blanc", "Napa Valley", 2023, "28.00", "13.2"),
    ("ZIN-2021", "0850001000055", "Old Vine Zinfandel 2021", "Zinfandel", "Lodi", 2021, "34.00", "15.1"),
    ("ROSE-2023", "0850001000062", "Rosé of Grenache 2023", "Grenache", "Paso Robles", 2023, "26.00", "12.8"),
    ("SYR-2020", "0850001000079", "Reserve Syrah 2020", "Syrah", "Santa Barbara County", 2020, "58.00", "14.8"),
    ("MER-2021", "0850001000086", "Merlot 2021", "Merlot", "Napa Valley", 2021, "44.00", "14.1"),
    ("BRUT-NV", "0850001000093", "Sparkling Brut NV", "Chardonnay / Pinot Noir", "Carneros", None, "48.00", "12.0"),
    ("PORT-2018", "0850001000109", "Estate Port 2018", "Zinfandel", "Napa Valley", 2018, "62.00", "19.5"),
]
STOCK = {"CAB-2021": 120, "CHD-2022": 96, "PN-2022": 60, "SB-2023": 144, "ZIN-2021": 48, "ROSE-2023": 72,
         "SYR-2020": 24, "MER-2021": 36, "BRUT-NV": 5, "PORT-2018": 12}


def seed(admin_email="admin@example.com", admin_password="winery-demo"):
    """Create the demo data once; returns False when users exist already."""
    if db.session.scalar(select(User).limit(1)) is not None:
        return False
    admin = User(email=admin_email, name="Demo Admin", role="admin")
    admin.set_password(admin_password)
    operator = User(email="operator@example.com", name="Demo Operator", role="operator")
    operator.set_password(admin_password)
    db.session.add_all([admin, operator])
    main = catalog.create_warehouse("NAPA", "Napa cellar", address="1 Vineyard Rd, Napa CA",
                                    bins=("A-01", "A-02", "A-03", "B-01", "B-02"))
    catalog.create_warehouse("TASTING", "Tasting room", address="12 Main St, Healdsburg CA", bins=("SHELF",))
    products = {}
    for sku, barcode, name, varietal, appellation, vintage, price, abv in WINES:
        products[sku] = catalog.create_product({
            "sku": sku, "barcode": barcode, "name": name, "brand": "Hillside Cellars", "varietal": varietal,
            "appellation": appellation, "vintage": vintage, "retail_price": price, "alcohol_pct": abv,
            "bottle_size_ml": 750, "case_quantity": 12, "low_stock_threshold": 12})
    bins = [loc for loc in main.locations if loc.usage == "internal"]
    for index, (sku, quantity) in enumerate(STOCK.items()):
        inventory.receive(products[sku], bins[index % len(bins)], quantity, user=admin, reference="PO-DEMO-1",
                          idempotency_key=f"demo:receive:{sku}")
    _demo_order("#D1001", "Avery Chen", "CA", [("CAB-2021", 2, "68.00"), ("CHD-2022", 1, "38.00")])
    _demo_order("#D1002", "Jordan Blake", "OR", [("PN-2022", 6, "52.00")])
    _demo_order("#D1003", "Sam Rivera", "NY", [("BRUT-NV", 8, "48.00")])   # more than in stock: on hold
    db.session.commit()
    return True


def _demo_order(number, name, state, lines):
    orders.create_order(orders.OrderInput(
        number=number, source="manual", idempotency_key=f"demo:{number}",
        lines=[orders.LineInput(sku=sku, quantity=q, unit_price=Decimal(p)) for sku, q, p in lines],
        details={"customer_name": name, "customer_email": f"{name.split()[0].lower()}@example.com",
                 "ship_name": name, "ship_address1": "100 Demo Street", "ship_city": "Springfield",
                 "ship_state": state, "ship_postal_code": "99999", "shipping_method": "Ground"}))
