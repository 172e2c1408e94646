"""The worker process: an RQ worker (with RQ's scheduler, for delayed messages and retries) plus the
sweep in a thread. Jobs run in this process (SimpleWorker), each in its own app context."""

import logging
import threading

from rq import SimpleWorker

from .connection import get_queue, get_redis
from .sweep import run_sweep

log = logging.getLogger(__name__)


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
        worker = SimpleWorker([get_queue(app)], connection=get_redis(app),
                              worker_ttl=app.config.get("WMS_WORKER_TTL", 60),
                              maintenance_interval=app.config.get("WMS_MAINTENANCE_SECONDS", 30))
        try:
            worker.work(with_scheduler=True, burst=burst,
                        logging_level=app.config.get("WMS_WORKER_LOG_LEVEL", "INFO"))
        finally:
            stop.set()


def run_sweep_once(app):
    with app.app_context():
        try:
            run_sweep()
        except Exception:  # noqa: BLE001
            log.exception("start-up sweep failed")
