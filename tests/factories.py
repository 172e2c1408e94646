"""factory-boy factories for the core models. They flush into the app's session; tests commit."""

from decimal import Decimal

import factory
from factory.alchemy import SQLAlchemyModelFactory

from wms.core.models import Location, LocationUsage, Product, User, Warehouse
from wms.core.services import catalog
from wms.extensions import db


class _Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"


class UserFactory(_Base):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@winery.test")
    name = factory.Sequence(lambda n: f"User {n}")
    role = "operator"
    password_hash = factory.LazyFunction(lambda: "")

    @factory.post_generation
    def password(user, create, extracted, **kwargs):
        user.set_password(extracted or "correct horse battery")


class AdminFactory(UserFactory):
    role = "admin"


class ProductFactory(_Base):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"WINE-{n:04d}")
    barcode = factory.Sequence(lambda n: f"0850000{n:06d}")
    name = factory.Sequence(lambda n: f"Estate Cabernet {n}")
    brand = "Hillside Cellars"
    varietal = "Cabernet Sauvignon"
    appellation = "Napa Valley"
    vintage = 2021
    bottle_size_ml = 750
    case_quantity = 12
    retail_price = Decimal("42.00")
    alcohol_pct = Decimal("14.2")
    low_stock_threshold = 6


class WarehouseFactory(_Base):
    """A warehouse made by the catalog service: bins, an outbound location, an in-house process."""

    class Meta:
        model = Warehouse

    code = factory.Sequence(lambda n: f"WH{n}")
    name = factory.Sequence(lambda n: f"Cellar {n}")
    is_external = False
    allow_negative = False

    @classmethod
    def _create(cls, model_class, code, name, is_external=False, allow_negative=False, bins=("A-01", "A-02"),
                **kwargs):
        return catalog.create_warehouse(code, name, is_external=is_external, allow_negative=allow_negative,
                                        bins=bins)


class LocationFactory(_Base):
    class Meta:
        model = Location

    warehouse = factory.SubFactory(WarehouseFactory)
    code = factory.Sequence(lambda n: f"B-{n:02d}")
    name = factory.LazyAttribute(lambda o: o.code)
    usage = LocationUsage.INTERNAL.value


def bin_of(warehouse, code=None):
    """A bin of the warehouse (the first internal one, or the one with `code`)."""
    for location in warehouse.locations:
        if location.usage == LocationUsage.INTERNAL.value and (code is None or location.code == code):
            return location
    raise LookupError(code)
