import enum

from wms.extensions import db

from ._base import TimestampMixin


class LocationUsage(str, enum.Enum):
    """Where stock can be. Only internal and outbound locations hold counted stock."""

    INTERNAL = "internal"      # a bin on a shelf
    OUTBOUND = "outbound"      # the packing area: picked, not yet shipped
    SUPPLIER = "supplier"      # virtual: where receipts come from
    CUSTOMER = "customer"      # virtual: where shipments go
    ADJUSTMENT = "adjustment"  # virtual: counts, breakage, samples
    PARTNER = "partner"        # virtual: a 3PL's reported inventory, for sync movements

    @property
    def is_tracked(self):
        return self in (LocationUsage.INTERNAL, LocationUsage.OUTBOUND)


TRACKED_USAGES = (LocationUsage.INTERNAL.value, LocationUsage.OUTBOUND.value)


class Warehouse(TimestampMixin, db.Model):
    id = db.Column(db.Integer, primary_key=True)
    code = db.Column(db.String(32), unique=True, nullable=False)
    name = db.Column(db.String(120), nullable=False)
    is_external = db.Column(db.Boolean, nullable=False, default=False)
    allow_negative = db.Column(db.Boolean, nullable=False, default=False)
    is_active = db.Column(db.Boolean, nullable=False, default=True)
    address = db.Column(db.String(255), nullable=False, default="")

    locations = db.relationship("Location", back_populates="warehouse", order_by="Location.code")
    shipping_processes = db.relationship("ShippingProcess", back_populates="warehouse",
                                         order_by="ShippingProcess.name")

    def location(self, usage):
        return next((loc for loc in self.locations if loc.usage == usage.value), None)

    def __repr__(self):
        return f"<Warehouse {self.code}>"


class Location(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    warehouse_id = db.Column(db.Integer, db.ForeignKey("warehouse.id"), index=True)
    code = db.Column(db.String(64), nullable=False)
    name = db.Column(db.String(120), nullable=False, default="")
    usage = db.Column(db.String(20), nullable=False, default=LocationUsage.INTERNAL.value)
    barcode = db.Column(db.String(64), unique=True)
    is_active = db.Column(db.Boolean, nullable=False, default=True)

    warehouse = db.relationship("Warehouse", back_populates="locations")

    __table_args__ = (
        db.UniqueConstraint("warehouse_id", "code", name="uq_location_warehouse_code"),
        db.CheckConstraint(
            "usage in ('internal', 'outbound', 'supplier', 'customer', 'adjustment', 'partner')",
            name="usage"),
    )

    @property
    def is_tracked(self):
        return LocationUsage(self.usage).is_tracked

    @property
    def label(self):
        return f"{self.warehouse.code}/{self.code}" if self.warehouse else self.code

    def __repr__(self):
        return f"<Location {self.label}>"


class ShippingProcess(TimestampMixin, db.Model):
    """How orders routed to a warehouse leave it: in-house pick/pack/ship, or a fulfillment plugin."""

    id = db.Column(db.Integer, primary_key=True)
    warehouse_id = db.Column(db.Integer, db.ForeignKey("warehouse.id"), nullable=False, index=True)
    name = db.Column(db.String(120), nullable=False)
    handler = db.Column(db.String(64), nullable=False, default="in_house")  # "in_house" or a plugin name
    is_active = db.Column(db.Boolean, nullable=False, default=True)

    warehouse = db.relationship("Warehouse", back_populates="shipping_processes")

    __table_args__ = (db.UniqueConstraint("warehouse_id", "name", name="uq_shipping_process_name"),)

    @property
    def is_in_house(self):
        return self.handler == "in_house"

    def __repr__(self):
        return f"<ShippingProcess {self.name} ({self.handler})>"
