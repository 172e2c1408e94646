from wms.extensions import db

from ._base import TimestampMixin, utcnow

ORDER_STATUSES = ("open", "on_hold", "picking", "packed", "shipped", "cancelled")
SHIPMENT_STATUSES = ("shipped", "in_transit", "out_for_delivery", "delivered", "exception", "returned")


class Order(TimestampMixin, db.Model):
    id = db.Column(db.Integer, primary_key=True)
    number = db.Column(db.String(64), nullable=False, index=True)       # what people call it: "#1001"
    source = db.Column(db.String(64), nullable=False, default="manual")  # "manual", "api" or a plugin name
    store_id = db.Column(db.Integer, index=True)                          # the store it came from, if any
    remote_id = db.Column(db.String(120))                                 # its id in that store
    status = db.Column(db.String(20), nullable=False, default="open", index=True)
    hold_reason = db.Column(db.String(500))
    warehouse_id = db.Column(db.Integer, db.ForeignKey("warehouse.id"), index=True)
    shipping_process_id = db.Column(db.Integer, db.ForeignKey("shipping_process.id"))
    customer_name = db.Column(db.String(200), nullable=False, default="")
    customer_email = db.Column(db.String(255), nullable=False, default="")
    customer_phone = db.Column(db.String(50), nullable=False, default="")
    customer_birth_date = db.Column(db.Date)
    ship_name = db.Column(db.String(200), nullable=False, default="")
    ship_address1 = db.Column(db.String(255), nullable=False, default="")
    ship_address2 = db.Column(db.String(255), nullable=False, default="")
    ship_city = db.Column(db.String(120), nullable=False, default="")
    ship_state = db.Column(db.String(10), nullable=False, default="")
    ship_postal_code = db.Column(db.String(20), nullable=False, default="")
    ship_country = db.Column(db.String(2), nullable=False, default="US")
    shipping_method = db.Column(db.String(120), nullable=False, default="")
    requested_ship_date = db.Column(db.Date)
    is_club = db.Column(db.Boolean, nullable=False, default=False)
    is_pickup = db.Column(db.Boolean, nullable=False, default=False)
    channel = db.Column(db.String(30), nullable=False, default="web")   # web, pos, phone, club
    financial_status = db.Column(db.String(30), nullable=False, default="paid")
    note = db.Column(db.String(1000), nullable=False, default="")
    placed_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    idempotency_key = db.Column(db.String(200), unique=True)

    warehouse = db.relationship("Warehouse")
    shipping_process = db.relationship("ShippingProcess")
    lines = db.relationship("OrderLine", back_populates="order", order_by="OrderLine.id",
                            cascade="all, delete-orphan")
    shipments = db.relationship("Shipment", back_populates="order", order_by="Shipment.id")

    __table_args__ = (
        db.UniqueConstraint("store_id", "remote_id", name="uq_order_store_remote"),
        db.CheckConstraint(
            "status in ('open', 'on_hold', 'picking', 'packed', 'shipped', 'cancelled')", name="status"),
    )

    @property
    def is_closed(self):
        return self.status in ("shipped", "cancelled")

    @property
    def ship_to_text(self):
        parts = [self.ship_name, self.ship_address1, self.ship_address2,
                 f"{self.ship_city} {self.ship_state} {self.ship_postal_code}".strip(), self.ship_country]
        return ", ".join(p for p in parts if p)

    def __repr__(self):
        return f"<Order {self.number} {self.status}>"


class OrderLine(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    order_id = db.Column(db.Integer, db.ForeignKey("order.id"), nullable=False, index=True)
    product_id = db.Column(db.Integer, db.ForeignKey("product.id"), index=True)  # None: SKU unknown here
    sku = db.Column(db.String(64), nullable=False, default="")
    name = db.Column(db.String(255), nullable=False, default="")
    quantity = db.Column(db.Integer, nullable=False)
    unit_price = db.Column(db.Numeric(12, 2), nullable=False, default=0)
    quantity_picked = db.Column(db.Integer, nullable=False, default=0)
    quantity_shipped = db.Column(db.Integer, nullable=False, default=0)
    remote_line_id = db.Column(db.String(120))

    order = db.relationship("Order", back_populates="lines")
    product = db.relationship("Product")
    reservations = db.relationship("Reservation", back_populates="order_line", order_by="Reservation.id")

    __table_args__ = (
        db.CheckConstraint("quantity > 0", name="quantity_positive"),
        db.CheckConstraint("quantity_picked >= 0 AND quantity_picked <= quantity", name="picked_range"),
        db.CheckConstraint("quantity_shipped >= 0 AND quantity_shipped <= quantity_picked",
                           name="shipped_range"),
    )

    @property
    def quantity_reserved(self):
        return sum(r.quantity for r in self.reservations if r.status == "active")

    @property
    def quantity_to_pick(self):
        return self.quantity - self.quantity_picked

    @property
    def quantity_to_ship(self):
        return self.quantity_picked - self.quantity_shipped


class Reservation(db.Model):
    """Stock committed to an order line in one warehouse until it ships or the order is cancelled."""

    id = db.Column(db.Integer, primary_key=True)
    order_line_id = db.Column(db.Integer, db.ForeignKey("order_line.id"), nullable=False, index=True)
    product_id = db.Column(db.Integer, db.ForeignKey("product.id"), nullable=False)
    warehouse_id = db.Column(db.Integer, db.ForeignKey("warehouse.id"), nullable=False)
    quantity = db.Column(db.Integer, nullable=False)      # still committed (drops as units ship)
    status = db.Column(db.String(20), nullable=False, default="active", index=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    order_line = db.relationship("OrderLine", back_populates="reservations")

    __table_args__ = (
        db.CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        db.CheckConstraint("status in ('active', 'consumed', 'released')", name="status"),
        db.Index("ix_reservation_product_warehouse", "product_id", "warehouse_id", "status"),
    )


class Shipment(TimestampMixin, db.Model):
    id = db.Column(db.Integer, primary_key=True)
    order_id = db.Column(db.Integer, db.ForeignKey("order.id"), nullable=False, index=True)
    warehouse_id = db.Column(db.Integer, db.ForeignKey("warehouse.id"), nullable=False)
    carrier = db.Column(db.String(80), nullable=False, default="")
    service = db.Column(db.String(80), nullable=False, default="")
    tracking_number = db.Column(db.String(120), nullable=False, default="")
    tracking_url = db.Column(db.String(500), nullable=False, default="")
    status = db.Column(db.String(20), nullable=False, default="shipped")
    source = db.Column(db.String(64), nullable=False, default="wms")   # "wms" or the fulfillment plugin
    remote_reference = db.Column(db.String(120))
    shipped_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    delivered_at = db.Column(db.DateTime)
    estimated_delivery = db.Column(db.Date)

    order = db.relationship("Order", back_populates="shipments")
    warehouse = db.relationship("Warehouse")
    lines = db.relationship("ShipmentLine", back_populates="shipment", cascade="all, delete-orphan")

    __table_args__ = (
        db.CheckConstraint(
            "status in ('shipped', 'in_transit', 'out_for_delivery', 'delivered', 'exception', 'returned')",
            name="status"),
    )


class ShipmentLine(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    shipment_id = db.Column(db.Integer, db.ForeignKey("shipment.id"), nullable=False, index=True)
    order_line_id = db.Column(db.Integer, db.ForeignKey("order_line.id"), nullable=False)
    quantity = db.Column(db.Integer, nullable=False)

    shipment = db.relationship("Shipment", back_populates="lines")
    order_line = db.relationship("OrderLine")

    __table_args__ = (db.CheckConstraint("quantity > 0", name="quantity_positive"),)
