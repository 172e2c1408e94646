"""The transactional outbox: record work for other processes in the same transaction as the change.

`emit` only adds a row to the session. After the transaction commits, the relay (wms.jobs) turns
pending rows into jobs; a periodic sweep picks up any row the relay missed, so a Redis outage or a
crash between commit and enqueue only delays work, never loses it.
"""

import json
from datetime import timedelta

from sqlalchemy import select, text

from wms.core.models import OutboxMessage
from wms.core.models._base import utcnow
from wms.extensions import db

SESSION_FLAG = "wms_outbox_written"
# A fixed statement, prepared once: emit runs inside every stock posting.
_INSERT = text(
    "INSERT INTO outbox_message (topic, payload, dedupe_key, status, attempts, created_at, available_at) "
    "VALUES (:topic, :payload, :dedupe_key, 'pending', 0, :created_at, :available_at) RETURNING id")


def emit(topic, payload, *, dedupe_key=None, delay_seconds=0):
    """Queue `topic` with a JSON-able payload; returns the message id. With a dedupe_key, a second
    emit returns the first message's id and adds nothing."""
    if dedupe_key is not None:
        existing = db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key))
        if existing is not None:
            return existing
    now = utcnow()
    message_id = db.session.connection().execute(_INSERT, {
        "topic": topic, "payload": json.dumps(payload), "dedupe_key": dedupe_key, "created_at": now,
        "available_at": now + timedelta(seconds=delay_seconds)}).scalar_one()
    db.session.info[SESSION_FLAG] = True
    return message_id
