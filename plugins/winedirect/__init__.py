"""The winedirect integration."""
