"""The plugin framework: hook markers, base classes, the plugin host.

A plugin module exposes `plugin`, an instance of a `MarketplacePlugin` or `FulfillmentPlugin`
subclass, and marks its hook implementations with `@hookimpl`.
"""

import pluggy

hookimpl = pluggy.HookimplMarker("wms")

from .base import (  # noqa: E402
    FulfillmentPlugin, MarketplacePlugin, MenuItem, Panel, PushResult, ScheduledJob, Setting, StockPushItem,
    WMSPlugin,
)

__all__ = ["FulfillmentPlugin", "MarketplacePlugin", "MenuItem", "Panel", "PushResult", "ScheduledJob",
           "Setting", "StockPushItem", "WMSPlugin", "hookimpl"]
