"""The woocommerce integration."""
