"""Running one outbox message: claim it, call its handler, record the outcome, retry with backoff."""

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import update

from wms.core.models import OutboxMessage
from wms.core.models._base import utcnow
from wms.extensions import db
from wms.integrations.errors import PermanentRemoteError, RemoteRateLimited

from . import handlers
from .connection import get_queue

log = logging.getLogger(__name__)
DEFAULT_BACKOFF = (10, 30, 120, 600, 1800, 3600, 3600, 3600)


def run(message_id):
    if not _claim(message_id):
        return "not claimable"  # done already, or running in another worker
    message = db.session.get(OutboxMessage, message_id)
    handler = handlers.handler_for(message.topic)
    if handler is None:
        return _settle(message, "skipped", f"No active handler for {message.topic} (is its plugin active?).")
    try:
        handler(message.payload or {})
        db.session.commit()
    except PermanentRemoteError as exc:
        db.session.rollback()
        return _settle(message, "failed", exc.message)
    except Exception as exc:  # noqa: BLE001 - transient remote errors and bugs are retried with backoff
        db.session.rollback()
        log.warning("outbox message %s (%s) failed: %s", message_id, message.topic, exc)
        return _retry_later(message, exc)
    return _settle(message, "done", None)


def _claim(message_id):
    claimed = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status.in_(("queued", "pending")))
        .values(status="running", started_at=utcnow(), attempts=OutboxMessage.attempts + 1))
    db.session.commit()
    return claimed.rowcount == 1


def _settle(message, status, error):
    message = db.session.get(OutboxMessage, message.id, populate_existing=True)
    message.status, message.finished_at = status, utcnow()
    message.last_error = (error or None) and str(error)[:2000]
    db.session.commit()
    return status


def _retry_later(message, exc):
    message = db.session.get(OutboxMessage, message.id, populate_existing=True)
    backoff = current_app.config.get("WMS_RETRY_BACKOFF", DEFAULT_BACKOFF)
    message.last_error = f"{exc.__class__.__name__}: {exc}"[:2000]
    if message.attempts >= len(backoff) + 1:
        message.status, message.finished_at = "dead", utcnow()
        db.session.commit()
        return "dead"
    delay = backoff[min(message.attempts - 1, len(backoff) - 1)]
    if isinstance(exc, RemoteRateLimited) and exc.retry_after:
        delay = max(delay, exc.retry_after)
    message.status = "queued"
    message.available_at = message.queued_at = utcnow() + timedelta(seconds=delay)
    db.session.commit()
    try:
        get_queue().enqueue_in(timedelta(seconds=delay), "wms.jobs.tasks.run_message", message.id,
                               job_id=f"outbox-{message.id}-{message.attempts}", result_ttl=0,
                               job_timeout=current_app.config.get("WMS_JOB_TIMEOUT", 300))
    except Exception as error:  # noqa: BLE001 - the sweep will find it
        log.warning("could not schedule the retry of message %s: %s", message.id, error)
    return "retrying"


def retry(message):
    """A person's Retry on a failed, dead or skipped message: run it again from the first attempt."""
    message.status, message.attempts, message.last_error = "pending", 0, None
    message.available_at, message.finished_at = utcnow(), None
    from wms import outbox
    db.session.info[outbox.SESSION_FLAG] = True


def running_timeout():
    """Seconds after which a message still "running" counts as lost with its worker (and may run again)."""
    config = current_app.config
    return config.get("WMS_RUNNING_TIMEOUT", config.get("WMS_JOB_TIMEOUT", 300) + 60)
