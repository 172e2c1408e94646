"""The core's own hook implementations: defaults that plugins may override."""

from . import hookimpl


@hookimpl(trylast=True)
def wms_available_to_sell(store, product, location, available):
    """Publish what is available in the mapped warehouse, never less than zero."""
    return max(available, 0)
