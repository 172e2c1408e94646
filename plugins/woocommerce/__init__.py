"""The WooCommerce integration."""
from .plugin import plugin  # noqa: F401
