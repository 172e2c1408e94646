"""The periodic sweep: whatever Redis or a killed worker lost, the database still knows.

Each pass (every WMS_SWEEP_SECONDS, from a thread of every worker process):
* messages queued or running for too long go back to pending (their job was lost);
* due messages are drained;
* stores with unpushed changes and no live window get a window;
* periodic plugin jobs (`wms_scheduled_jobs`) are emitted when their interval has passed.
"""

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import exists, select

from wms import outbox
from wms.core.models import OutboxMessage
from wms.core.models._base import utcnow
from wms.extensions import db
from wms.plugins.manager import plugin_host
from wms.plugins.models import ScheduledRun, StockPushState, Store

from . import relay, runner, stock_push

log = logging.getLogger(__name__)


def run_sweep():
    relay.requeue_stale(queued_after_seconds=current_app.config.get("WMS_QUEUED_TIMEOUT", 120),
                        running_after_seconds=runner.running_timeout())
    reopened = reopen_lost_windows()
    scheduled = emit_scheduled_jobs()
    db.session.commit()
    moved = relay.drain()
    return {"reopened_windows": reopened, "scheduled": scheduled, "moved": moved}


def reopen_lost_windows():
    """Stores with unpushed changes whose window is missing or long overdue get a new one."""
    grace = current_app.config.get("WMS_PUSH_GRACE_SECONDS", 60)
    now = utcnow()
    dirty = exists().where(StockPushState.store_id == Store.id,
                           StockPushState.change_seq > StockPushState.pushed_seq)
    stores = db.session.scalars(select(Store).where(dirty)).all()
    live = db.session.scalars(select(OutboxMessage.payload).where(
        OutboxMessage.topic == "stock.push", OutboxMessage.status.in_(("pending", "queued", "running")))).all()
    live_ids = {p.get("store_id") for p in live if isinstance(p, dict)}
    reopened = 0
    for store in stores:
        overdue = store.push_due_at is not None and store.push_due_at < now - timedelta(seconds=grace)
        if store.id in live_ids and not overdue:
            continue
        if store.push_due_at is None or overdue:
            store.push_due_at = None
            db.session.flush()
            reopened += stock_push.open_window(store, seconds=0)
    return reopened


def emit_scheduled_jobs():
    now = utcnow()
    emitted = 0
    for jobs in plugin_host().hooks.wms_scheduled_jobs():
        for job in jobs or []:
            run = db.session.get(ScheduledRun, job.name)
            if run is None:
                run = ScheduledRun(name=job.name)
                db.session.add(run)
            if run.last_run_at is None or run.last_run_at + timedelta(seconds=job.interval_seconds) <= now:
                slot = int(now.timestamp()) // max(job.interval_seconds, 1)
                outbox.emit(job.topic, dict(job.payload), dedupe_key=f"schedule:{job.name}:{slot}")
                run.last_run_at = now
                emitted += 1
    return emitted
