from wms.extensions import db

from ._base import TimestampMixin


class Product(TimestampMixin, db.Model):
    id = db.Column(db.Integer, primary_key=True)
    sku = db.Column(db.String(64), unique=True, nullable=False)
    barcode = db.Column(db.String(64), unique=True)
    name = db.Column(db.String(255), nullable=False)
    brand = db.Column(db.String(120), nullable=False, default="")
    varietal = db.Column(db.String(120), nullable=False, default="")
    appellation = db.Column(db.String(120), nullable=False, default="")
    vintage = db.Column(db.Integer)
    bottle_size_ml = db.Column(db.Integer, nullable=False, default=750)
    case_quantity = db.Column(db.Integer, nullable=False, default=12)
    retail_price = db.Column(db.Numeric(12, 2), nullable=False, default=0)
    alcohol_pct = db.Column(db.Numeric(4, 1))
    weight_grams = db.Column(db.Integer)
    low_stock_threshold = db.Column(db.Integer, nullable=False, default=0)
    is_active = db.Column(db.Boolean, nullable=False, default=True)

    __table_args__ = (
        db.CheckConstraint("bottle_size_ml > 0", name="bottle_size_positive"),
        db.CheckConstraint("case_quantity > 0", name="case_quantity_positive"),
        db.CheckConstraint("retail_price >= 0", name="price_not_negative"),
    )

    def __repr__(self):
        return f"<Product {self.sku}>"
