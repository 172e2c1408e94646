from sqlalchemy import event

from wms.extensions import db

from ._base import utcnow

MOVEMENT_KINDS = ("receipt", "pick", "adjustment", "transfer", "ship", "return", "reversal", "sync")


class StockMovement(db.Model):
    """One row of the append-only ledger. Corrections are new rows (reversals), never edits."""

    id = db.Column(db.Integer, primary_key=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow, index=True)
    kind = db.Column(db.String(20), nullable=False, index=True)
    product_id = db.Column(db.Integer, db.ForeignKey("product.id"), nullable=False, index=True)
    from_location_id = db.Column(db.Integer, db.ForeignKey("location.id"), nullable=False)
    to_location_id = db.Column(db.Integer, db.ForeignKey("location.id"), nullable=False)
    quantity = db.Column(db.Integer, nullable=False)
    reason = db.Column(db.String(255))
    note = db.Column(db.String(500))
    reference = db.Column(db.String(120), index=True)
    order_line_id = db.Column(db.Integer, db.ForeignKey("order_line.id"), index=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"))
    idempotency_key = db.Column(db.String(200), unique=True)
    reverses_id = db.Column(db.Integer, db.ForeignKey("stock_movement.id"), unique=True)

    product = db.relationship("Product")
    from_location = db.relationship("Location", foreign_keys=[from_location_id])
    to_location = db.relationship("Location", foreign_keys=[to_location_id])
    user = db.relationship("User")
    reverses = db.relationship("StockMovement", remote_side=[id], foreign_keys=[reverses_id])

    __table_args__ = (
        db.CheckConstraint("quantity > 0", name="quantity_positive"),
        db.CheckConstraint("from_location_id <> to_location_id", name="moves_somewhere"),
        db.CheckConstraint("kind <> 'adjustment' OR (reason IS NOT NULL AND reason <> '')",
                           name="adjustment_has_reason"),
        db.CheckConstraint(
            "kind in ('receipt', 'pick', 'adjustment', 'transfer', 'ship', 'return', 'reversal', 'sync')",
            name="kind"),
    )

    def __repr__(self):
        return f"<StockMovement {self.id} {self.kind} {self.quantity}>"


@event.listens_for(StockMovement, "before_update")
def _refuse_update(mapper, connection, target):
    raise ValueError("Stock movements are append-only; post a reversal instead of editing one.")


@event.listens_for(StockMovement, "before_delete")
def _refuse_delete(mapper, connection, target):
    raise ValueError("Stock movements are append-only; post a reversal instead of deleting one.")


class LocationLevel(db.Model):
    """Cache: units on hand per product and tracked location (rebuilt from the ledger on demand)."""

    product_id = db.Column(db.Integer, db.ForeignKey("product.id"), primary_key=True)
    location_id = db.Column(db.Integer, db.ForeignKey("location.id"), primary_key=True, index=True)
    warehouse_id = db.Column(db.Integer, db.ForeignKey("warehouse.id"), nullable=False, index=True)
    on_hand = db.Column(db.Integer, nullable=False, default=0)

    product = db.relationship("Product")
    location = db.relationship("Location")


class WarehouseLevel(db.Model):
    """Cache: on hand and committed per product and warehouse; available = on hand - committed."""

    product_id = db.Column(db.Integer, db.ForeignKey("product.id"), primary_key=True)
    warehouse_id = db.Column(db.Integer, db.ForeignKey("warehouse.id"), primary_key=True, index=True)
    on_hand = db.Column(db.Integer, nullable=False, default=0)
    committed = db.Column(db.Integer, nullable=False, default=0)

    product = db.relationship("Product")
    warehouse = db.relationship("Warehouse")

    @property
    def available(self):
        return self.on_hand - self.committed
