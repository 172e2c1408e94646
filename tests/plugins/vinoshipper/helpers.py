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
