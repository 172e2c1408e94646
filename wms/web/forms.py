"""Turning service errors into what a form page shows next to each field."""

from flask import render_template

from wms.extensions import db


def errors_from(exc):
    """{field: message} for a ServiceError; errors without a field go under '_form'."""
    many = getattr(exc, "errors", None)
    if many:
        return dict(many)
    return {exc.field or "_form": exc.message}


def refuse(template, exc, status=400, **context):
    """Roll back whatever the failed service call wrote and show the form again with its errors."""
    db.session.rollback()
    return render_template(template, errors=errors_from(exc), form=context.pop("form", {}), **context), status


def int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
