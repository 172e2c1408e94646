"""From outbox rows to RQ jobs.

After a transaction that wrote outbox rows commits, `kick` asks (from a background thread, so the
commit never waits on Redis) for one `drain` job; a Redis gate keeps it to one at a time. `drain` handles stock.changed messages in bulk, in its own transaction,
and queues every other due message as its own RQ job. If Redis is down, nothing is lost: the rows
stay pending and the sweep drains them when Redis is back.
"""

import logging
import threading
import time
from datetime import timedelta, timezone

from flask import current_app
from sqlalchemy import event, or_, select, update
from sqlalchemy.orm import Session

from wms import outbox
from wms.core.models import OutboxMessage
from wms.core.models._base import utcnow
from wms.extensions import db

from .connection import get_queue, get_redis

log = logging.getLogger(__name__)
DRAIN_GATE = "wms:drain-gate"
BULK_TOPICS = ("stock.changed",)
KICK_INTERVAL = 0.2   # seconds between two kicks from one process; the drain gate lasts 2 s
BATCH = 500


@event.listens_for(Session, "after_commit")
def _after_commit(session):
    if session.info.pop(outbox.SESSION_FLAG, False):
        kick()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session):
    session.info.pop(outbox.SESSION_FLAG, None)


class _Kicker:
    """Asks Redis for a drain from a thread of this process, so a commit never waits on Redis (and a
    Redis outage never slows a request down). Kicks closer together than KICK_INTERVAL are merged."""

    def __init__(self):
        self._wanted = threading.Event()
        self._lock = threading.Lock()
        self._thread = None
        self._app = None

    def kick(self, app):
        self._app = app
        self._wanted.set()
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="wms-relay", daemon=True)
                    self._thread.start()

    def _run(self):
        while self._wanted.wait(timeout=60):
            self._wanted.clear()
            request_drain(self._app)
            time.sleep(KICK_INTERVAL)   # commits meanwhile are covered by the next kick


_kicker = _Kicker()


def kick():
    """Ask for a drain soon (from a background thread). Never raises and never blocks the caller."""
    app = current_app._get_current_object()
    if app.config.get("WMS_RELAY_ON_COMMIT", True) is False:
        return
    _kicker.kick(app)


def request_drain(app):
    """Queue one drain job unless one was asked for in the last two seconds. A Redis outage only delays
    the work: the rows stay pending and the sweep drains them when Redis is back."""
    try:
        if get_redis(app).set(DRAIN_GATE, 1, nx=True, px=2000):
            get_queue(app).enqueue("wms.jobs.tasks.drain", job_timeout=300, result_ttl=0, failure_ttl=86400)
    except Exception as exc:  # noqa: BLE001 - Redis down, misconfigured, ...
        log.warning("outbox relay could not reach Redis (%s); the sweep will pick the work up", exc)


def drain():
    """Process due bulk messages and queue the others. Returns how many messages it moved."""
    from . import stock_push
    try:
        get_redis().delete(DRAIN_GATE)   # changes committed from now on ask for another drain
    except Exception:  # noqa: BLE001
        pass
    moved = 0
    while True:
        bulk = _claim(BULK_TOPICS)
        if bulk:
            stock_push.stock_changed(bulk)
            _finish(bulk)
            db.session.commit()
        others = _claim_other()
        if others:
            _queue(others)
        moved += len(bulk) + len(others)
        if not bulk and not others:
            return moved


def _due():
    return [OutboxMessage.status == "pending", OutboxMessage.available_at <= utcnow()]


def _claim(topics):
    query = (select(OutboxMessage).where(*_due(), OutboxMessage.topic.in_(topics))
             .order_by(OutboxMessage.id).limit(BATCH).with_for_update(skip_locked=True))
    return db.session.scalars(query).all()


def _claim_other():
    """Every pending non-bulk message, due or not: delayed ones go to RQ's scheduler."""
    query = (select(OutboxMessage).where(OutboxMessage.status == "pending", OutboxMessage.topic.not_in(BULK_TOPICS))
             .order_by(OutboxMessage.id).limit(BATCH).with_for_update(skip_locked=True))
    messages = db.session.scalars(query).all()
    now = utcnow()
    for message in messages:
        message.status, message.queued_at = "queued", max(now, message.available_at)
    db.session.commit()
    return messages


def _finish(messages):
    now = utcnow()
    for message in messages:
        message.status, message.finished_at, message.attempts = "done", now, message.attempts + 1


def _queue(messages):
    """Put messages on the RQ queue. If Redis refuses, they go back to pending for the sweep."""
    try:
        queue, now = get_queue(), utcnow()
        options = {"job_timeout": current_app.config.get("WMS_JOB_TIMEOUT", 300), "result_ttl": 0,
                   "failure_ttl": 7 * 86400}
        for message in messages:
            job_id = f"outbox-{message.id}-{message.attempts}"
            if message.available_at > now:   # RQ's scheduler starts it when due
                queue.enqueue_at(message.available_at.replace(tzinfo=timezone.utc), "wms.jobs.tasks.run_message",
                                 message.id, job_id=job_id, **options)
            else:
                queue.enqueue("wms.jobs.tasks.run_message", message.id, job_id=job_id, **options)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not queue %d outbox message(s): %s", len(messages), exc)
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id.in_([m.id for m in messages]),
                                                        OutboxMessage.status == "queued")
                           .values(status="pending"))
        db.session.commit()


def requeue_stale(queued_after_seconds, running_after_seconds):
    """Messages whose job was lost (Redis flushed, worker killed mid-job) go back to pending."""
    now = utcnow()
    lost = db.session.execute(
        update(OutboxMessage)
        .where(or_((OutboxMessage.status == "queued")
                   & (OutboxMessage.queued_at < now - timedelta(seconds=queued_after_seconds)),
                   (OutboxMessage.status == "running")
                   & (OutboxMessage.started_at < now - timedelta(seconds=running_after_seconds))))
        .values(status="pending"))
    db.session.commit()
    return lost.rowcount
