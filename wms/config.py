"""Configuration: defaults, overridden by environment variables, overridden by create_app(config)."""

import os

# Dotted paths of the plugin modules shipped with the product; each exposes `plugin`.
BUILTIN_PLUGINS = ["plugins.winedirect", "plugins.vintrace", "plugins.vinoshipper", "plugins.shopify", "plugins.woocommerce"]


def _bool(value):
    return str(value).lower() in ("1", "true", "yes", "on")


NUMERIC_SETTINGS = ("WMS_SWEEP_SECONDS", "WMS_RUNNING_TIMEOUT", "WMS_QUEUED_TIMEOUT", "WMS_JOB_TIMEOUT",
                    "WMS_PUSH_GRACE_SECONDS", "WMS_WORKER_TTL", "WMS_MAINTENANCE_SECONDS")


def _numbers(env):
    return {key: float(env[key]) if "." in env[key] else int(env[key]) for key in NUMERIC_SETTINGS if env.get(key)}


def _backoff(env):
    """WMS_RETRY_BACKOFF="2,5,10": the seconds before each retry of a failed job (the default schedule
    waits up to an hour)."""
    value = env.get("WMS_RETRY_BACKOFF")
    return {"WMS_RETRY_BACKOFF": tuple(float(part) for part in value.split(","))} if value else {}


def from_environment(instance_path):
    """Settings read from WMS_* variables (and REDIS_URL), with working defaults for a laptop."""
    env = os.environ
    return {
        **_numbers(env),
        **_backoff(env),
        "SECRET_KEY": env.get("WMS_SECRET_KEY"),
        "SQLALCHEMY_DATABASE_URI": env.get("WMS_DATABASE_URL")
        or "sqlite:///" + os.path.join(instance_path, "wms.sqlite"),
        "REDIS_URL": env.get("REDIS_URL") or None,
        "WMS_ENCRYPTION_KEYS": env.get("WMS_ENCRYPTION_KEYS", ""),
        "WMS_DEMO": _bool(env.get("WMS_DEMO", "0")),
        "WMS_ALLOW_PRIVATE_REMOTES": _bool(env.get("WMS_ALLOW_PRIVATE_REMOTES", "0")),
        "WMS_PUSH_WINDOW_SECONDS": float(env.get("WMS_PUSH_WINDOW_SECONDS", "30")),
        "WMS_AUTO_UPGRADE_DB": _bool(env.get("WMS_AUTO_UPGRADE_DB", "1")),
        "WMS_LOAD_ENTRYPOINTS": _bool(env.get("WMS_LOAD_ENTRYPOINTS", "1")),
        "SESSION_COOKIE_SECURE": _bool(env.get("WMS_SECURE_COOKIES", "0")),
        "WMS_PUBLIC_URL": env.get("WMS_PUBLIC_URL", "http://127.0.0.1:5000"),
        "WMS_PLUGINS": [p.strip() for p in env["WMS_PLUGINS"].split(",") if p.strip()]
        if env.get("WMS_PLUGINS") is not None else None,
    }


DEFAULTS = {
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "MAX_CONTENT_LENGTH": 5 * 1024 * 1024,       # CSV imports; JSON API bodies have their own limit
    "WMS_API_MAX_BODY": 1024 * 1024,
    "WMS_API_MAX_BATCH": 1000,
    "WMS_PLUGINS": BUILTIN_PLUGINS,
    "WMS_LOGIN_ATTEMPTS": 5,                     # per username and per address, per window
    "WMS_LOGIN_WINDOW_SECONDS": 300,
    "WTF_CSRF_TIME_LIMIT": None,                 # tokens live as long as the session
}
