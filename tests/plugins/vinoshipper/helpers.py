"""Order values the tests send."""

import datetime
from decimal import Decimal

from plugins.vinoshipper.client import Address, Customer, OrderLine, OrderRequest


def make_order(number="WMS-000123", *, state="CA", email="jane@example.com",
               birth=datetime.date(1987, 8, 6), lines=None, rate_code="03",
               ship_date=datetime.date(2031, 9, 15)):
    ship_to = Address(first_name="Jane", last_name="Doe", street1="1370 Railroad Ave",
                      city="St. Helena", postal_code="94574", state_code=state, phone="7075551212")
    return OrderRequest(
        order_number=number,
        customer=Customer(email=email, first_name="Jane", last_name="Doe", date_of_birth=birth,
                          address=ship_to),
        ship_to=ship_to,
        lines=tuple(lines or (OrderLine("CAB21-750", 6, Decimal("45.00")),)),
        rate_code=rate_code,
        shipping_price=Decimal("27.25"),
        ship_date=ship_date,
        taxes=Decimal("12.34"),
        gift_note="Happy birthday",
        meta_fields={"wmsOrderId": "123"},
    )


def place_order(number=None, *, state="CA", lines=(("CAB21-750", 6),), email="jane@example.com",
                birth=datetime.date(1987, 8, 6), source="manual", store_id=None, **details):
    """Create a WMS order through the orders service and commit it (so the hooks fire)."""
    from wms.core.services import orders
    from wms.extensions import db

    values = {"customer_name": "Jane Doe", "customer_email": email, "customer_phone": "7075551212",
              "customer_birth_date": birth, "ship_name": "Jane Doe", "ship_address1": "1370 Railroad Ave",
              "ship_city": "St. Helena", "ship_state": state, "ship_postal_code": "94574",
              "shipping_method": "Ground", "requested_ship_date": datetime.date(2031, 9, 15)}
    values.update(details)
    order = orders.create_order(orders.OrderInput(
        number=number, source=source, store_id=store_id,
        remote_id=(f"r-{number}" if store_id else None),
        lines=[orders.LineInput(sku=sku, quantity=qty, unit_price="45.00") for sku, qty in lines],
        details=values))
    db.session.commit()
    return order
