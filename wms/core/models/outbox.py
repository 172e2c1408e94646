from wms.extensions import db

from ._base import utcnow


class OutboxMessage(db.Model):
    """Work that must reach another process, written in the same transaction as the change.

    The relay turns pending rows into jobs after commit; a periodic sweep picks up any it missed.
    """

    id = db.Column(db.Integer, primary_key=True)
    topic = db.Column(db.String(80), nullable=False, index=True)
    payload = db.Column(db.JSON, nullable=False, default=dict)
    dedupe_key = db.Column(db.String(200), unique=True)
    status = db.Column(db.String(20), nullable=False, default="pending", index=True)
    attempts = db.Column(db.Integer, nullable=False, default=0)
    last_error = db.Column(db.String(2000))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    available_at = db.Column(db.DateTime, nullable=False, default=utcnow, index=True)
    finished_at = db.Column(db.DateTime)

    __table_args__ = (
        db.CheckConstraint("status in ('pending', 'queued', 'done', 'failed', 'dead', 'skipped')",
                           name="status"),
    )
