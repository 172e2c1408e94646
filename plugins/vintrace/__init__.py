"""The vintrace integration."""
