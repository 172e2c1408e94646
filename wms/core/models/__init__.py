"""The warehouse domain's tables. Import models from here."""

from .catalog import Product
from .orders import Order, OrderLine, Reservation, Shipment, ShipmentLine
from .outbox import OutboxMessage
from .stock import LocationLevel, StockMovement, WarehouseLevel
from .users import ApiToken, LoginFailure, User
from .warehouses import Location, LocationUsage, ShippingProcess, Warehouse

__all__ = [
    "ApiToken", "Location", "LoginFailure", "LocationLevel", "LocationUsage", "Order", "OrderLine", "OutboxMessage",
    "Product", "Reservation", "Shipment", "ShipmentLine", "ShippingProcess", "StockMovement", "User",
    "Warehouse", "WarehouseLevel",
]
