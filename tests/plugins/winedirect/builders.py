"""Values the WineDirect tests submit."""

from decimal import Decimal

from plugins.winedirect.client import Address, OrderLine, OrderSubmission, WineProduct


def wine(sku="CAB21-750", **changes):
    values = {
        "sku": sku, "brand": "Sandbox Cellars", "name": "Reserve", "varietal": "Cabernet Sauvignon",
        "appellation": "Paso Robles", "bottle_size_ml": 750, "case_quantity": 12,
        "retail_price": Decimal("45.00"), "alcohol_percent": Decimal("14.5"), "vintage": "2021",
    }
    values.update(changes)
    return WineProduct(**values)


def address(**changes):
    values = {"first_name": "Ada", "last_name": "Lovelace", "address1": "1 Vine St", "city": "Napa",
              "state": "CA", "postal_code": "94558"}
    values.update(changes)
    return Address(**values)


def order(number, sku="CAB21-750", quantity=6, **changes):
    values = {"order_number": number, "ship_to": address(), "lines": [OrderLine(sku, quantity, Decimal("45.00"))]}
    values.update(changes)
    return OrderSubmission(**values)
