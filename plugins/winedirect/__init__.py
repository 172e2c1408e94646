"""The WineDirect Fulfillment integration."""

from .plugin import plugin  # noqa: F401
