"""The worker process: an RQ worker (with RQ's scheduler, for delayed messages and retries) plus the
sweep in a thread. Jobs run in this process (SimpleWorker), each in its own app context."""

import logging
import threading
import time

import redis
from rq import SimpleWorker

from .connection import get_queue, get_redis
from .sweep import run_sweep

log = logging.getLogger(__name__)
REDIS_RETRY_SECONDS = 2


def sweep_forever(app, stop, interval):
    while not stop.wait(interval):
        with app.app_context():
            try:
                run_sweep()
            except Exception:  # noqa: BLE001 - Redis or the database may be down for a while
                log.exception("sweep failed; trying again in %s s", interval)
                from wms.extensions import db
                db.session.rollback()


def run_worker(app, burst=False):
    stop = threading.Event()
    interval = app.config.get("WMS_SWEEP_SECONDS", 10)
    sweeper = threading.Thread(target=sweep_forever, args=(app, stop, interval), name="wms-sweep", daemon=True)
    with app.app_context():
        if not burst:
            run_sweep_once(app)
            sweeper.start()
        try:
            while not work_until_redis_fails(app, burst):
                log.warning("Redis is unreachable; the worker starts again in %s s (committed work waits "
                            "in the outbox)", REDIS_RETRY_SECONDS)
                time.sleep(REDIS_RETRY_SECONDS)
        finally:
            stop.set()


def work_until_redis_fails(app, burst):
    """Run the RQ worker; True when it stopped by itself, False when Redis went away under it."""
    try:
        worker = SimpleWorker([get_queue(app)], connection=get_redis(app),
                              worker_ttl=app.config.get("WMS_WORKER_TTL", 60),
                              maintenance_interval=app.config.get("WMS_MAINTENANCE_SECONDS", 30))
        worker.work(with_scheduler=True, burst=burst, logging_level=app.config.get("WMS_WORKER_LOG_LEVEL", "INFO"))
    except redis.exceptions.ConnectionError:
        if burst:
            raise
        return False
    return True


def run_sweep_once(app):
    with app.app_context():
        try:
            run_sweep()
        except Exception:  # noqa: BLE001
            log.exception("start-up sweep failed")
