"""A registered plugin contributes a menu item, an order panel, a route and a hook implementation;
deactivating it removes all four at once, without a restart."""

from tests.conftest import login_as
from tests.factories import bin_of
from tests.framework import sample_plugin
from tests.framework.conftest import run_jobs
from wms.core.services import inventory, orders
from wms.extensions import db
from wms.plugins.manager import plugin_host


def new_order(number):
    order = orders.create_order(orders.OrderInput(number=number, lines=[orders.LineInput(sku="CAB-2021", quantity=1)]))
    db.session.commit()
    return order


def test_activation_switches_all_four_contributions(app, client, admin, warehouse, product):
    inventory.receive(product, bin_of(warehouse), 10)
    db.session.commit()
    login_as(client, admin)
    host = plugin_host()

    host.set_active("sampleshop", True)
    db.session.commit()
    order = new_order("#A1")
    run_jobs(app)
    assert order.id in sample_plugin.SEEN_ORDERS
    assert "Sample shop" in client.get("/").get_data(as_text=True)
    assert "Sample shop knows order #A1" in client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert client.get("/plugins/sampleshop/hello").status_code == 200

    host.set_active("sampleshop", False)
    db.session.commit()
    later = new_order("#A2")
    run_jobs(app)
    assert later.id not in sample_plugin.SEEN_ORDERS
    assert "Sample shop" not in client.get("/").get_data(as_text=True)
    assert "Sample shop knows order" not in client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert client.get("/plugins/sampleshop/hello").status_code == 404


def test_plugin_routes_need_an_admin(app, client, operator, active_plugin):
    login_as(client, operator)
    assert client.get("/plugins/sampleshop/hello").status_code == 403


def test_unknown_plugin_name_in_config_fails_loudly(tmp_path):
    import pytest

    from wms import create_app
    with pytest.raises(ModuleNotFoundError):
        create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.sqlite",
                    "WMS_INSTANCE_PATH": str(tmp_path), "WMS_PLUGINS": ["plugins.no_such_plugin"]})
