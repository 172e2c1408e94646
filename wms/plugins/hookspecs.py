"""The hooks plugins implement. Every hook has a section in docs/plugin_hooks.md (a test checks).

Hooks are broadcasts: the core asks every *active* plugin and combines the answers. Work aimed at one
store is not a hook but a method of that store's plugin (see `base.py`).
"""

import pluggy

hookspec = pluggy.HookspecMarker("wms")


@hookspec
def wms_blueprints():
    """Return a list of Flask blueprints to register. Routes of an inactive plugin answer 404;
    they need an admin unless marked with `wms.web.access.public` or `operator`."""


@hookspec
def wms_admin_menu(user):
    """Return a list of `MenuItem` for the admin menu, for the signed-in `user`."""


@hookspec
def wms_panels(page, obj, user):
    """Return a list of `Panel` (title and HTML) to show on a core page: `page` is "order",
    "product" or "dashboard"; `obj` is the order or product (None on the dashboard)."""


@hookspec
def wms_cli_commands():
    """Return a list of click commands to add under `flask wms`."""


@hookspec
def wms_scheduled_jobs():
    """Return a list of `ScheduledJob`: outbox topics the scheduler emits every `interval_seconds`."""


@hookspec
def wms_job_handlers():
    """Return a dict {outbox topic: function(payload)} of the background work this plugin does.
    A handler runs in a worker inside an app context, may run more than once for one message
    (it must be idempotent), and raises a TransientRemoteError to be retried with backoff."""


@hookspec
def wms_stock_changed(product_ids, warehouse_ids):
    """Stock of these products changed in these warehouses (after commit, in a worker)."""


@hookspec
def wms_order_created(order):
    """A new order was committed (from a store, the API or by hand). Runs in a worker."""


@hookspec
def wms_order_routed(order, shipping_process):
    """An order was assigned a shipping process (at creation or when re-routed). Runs in a worker."""


@hookspec
def wms_order_cancelled(order):
    """An order was cancelled in the WMS. Runs in a worker."""


@hookspec
def wms_shipment_status_changed(shipment, old, new):
    """A shipment was created (`old` is None) or changed status. Runs in a worker."""


@hookspec
def wms_store_saved(store, created):
    """A store was added (`created`) or its settings saved. Runs in a worker."""


@hookspec(firstresult=True)
def wms_available_to_sell(store, product, location, available):
    """Return the quantity to publish for `product` at the store `location` mapping, given the mapped
    warehouse's `available`; the first non-None answer wins. The core default is `max(available, 0)`."""
