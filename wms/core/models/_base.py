from datetime import datetime, timezone

from wms.extensions import db


def utcnow():
    """Naive UTC: both SQLite and PostgreSQL store it the same way."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class TimestampMixin:
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)
