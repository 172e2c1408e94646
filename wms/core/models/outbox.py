from wms.extensions import db

from ._base import utcnow


class OutboxMessage(db.Model):
    """Work that must reach another process, written in the same transaction as the change.

    pending -> queued (an RQ job carries its id) -> running -> done; a transient failure goes back
    to pending with a later available_at; `failed` (refused by the remote) and `dead` (out of retries)
    wait for a person's Retry. The relay turns pending rows into jobs after commit; the sweep picks up
    any it missed.
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
    queued_at = db.Column(db.DateTime)
    started_at = db.Column(db.DateTime)
    finished_at = db.Column(db.DateTime)

    __table_args__ = (
        db.CheckConstraint(
            "status in ('pending', 'queued', 'running', 'done', 'failed', 'dead', 'skipped')", name="status"),
    )

    @property
    def can_retry(self):
        return self.status in ("failed", "dead", "skipped")
