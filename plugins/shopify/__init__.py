"""The Shopify integration."""

from .plugin import plugin  # noqa: F401
