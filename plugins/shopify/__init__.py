"""The shopify integration."""
