"""The warehouse domain: models and the services that own every stock and order rule."""
