"""The functions RQ runs. Each runs in its own app context, so its own database session."""

from flask import current_app


def _fresh_context():
    return current_app._get_current_object().app_context()


def drain():
    from .relay import drain as drain_outbox
    with _fresh_context():
        return drain_outbox()


def run_message(message_id):
    from .runner import run
    with _fresh_context():
        return run(message_id)
