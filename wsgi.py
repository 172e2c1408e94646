"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

from wms import create_app

app = create_app()
