from .plugin import plugin  # noqa: F401
