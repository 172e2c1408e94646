"""Browser tests of the core pages (fixtures: tests/browser_fixtures.py). CSRF is on here, so the
browser posts the real forms with their real tokens."""

import pytest


@pytest.fixture
def app_config(tmp_path):
    return {"WTF_CSRF_ENABLED": True}
