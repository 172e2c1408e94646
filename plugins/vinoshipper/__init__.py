"""The vinoshipper integration."""

from .plugin import plugin  # noqa: F401
