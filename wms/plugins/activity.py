"""The activity log: one row per remote API call, written in its own short transaction so that it
survives the rollback of the work that made the call. Rows never hold a secret (RemoteHttp redacts)."""

import logging

from sqlalchemy import insert

from wms.core.models._base import utcnow
from wms.extensions import db

from .models import ActivityLog

log = logging.getLogger(__name__)


def record_call(record):
    try:
        with db.engine.begin() as connection:
            connection.execute(insert(ActivityLog).values(
                at=utcnow(), plugin=record.plugin, store_id=record.store_id, method=record.method,
                path=record.path[:1000], status=record.status, duration_ms=record.duration_ms,
                error=(record.error or None) and record.error[:1000]))
    except Exception:  # a lost log row must never fail the call it describes
        log.exception("activity log write failed for %s %s", record.method, record.path)
