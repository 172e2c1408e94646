"""The vinoshipper integration."""
