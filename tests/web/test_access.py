"""Walk the URL map: every endpoint but the public ones needs a login, every admin endpoint refuses an
operator, every state-changing form route refuses a request without a CSRF token, and `next` only
redirects to this site."""

import pytest

from tests.conftest import login_as
from wms.web.access import rule_for

PUBLIC = {"auth.login", "static", "webhooks.receive"}


@pytest.fixture
def app_config():
    return {"WMS_PLUGINS": ["tests.framework.sample_plugin"], "WTF_CSRF_ENABLED": True}


@pytest.fixture
def no_csrf(app):
    app.config["WTF_CSRF_ENABLED"] = False   # for tests that look at something else


def routes(app):
    for rule in app.url_map.iter_rules():
        args = {name: 1 if rule._converters[name].__class__.__name__ == "IntegerConverter" else "x"
                for name in rule.arguments}
        with app.test_request_context():
            from flask import url_for
            url = url_for(rule.endpoint, **args)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, url


def test_public_endpoints_are_exactly_the_expected_ones(app):
    public = {endpoint for endpoint, _, _ in routes(app) if rule_for(app, endpoint) == "public"}
    assert public == PUBLIC


def test_every_other_endpoint_needs_a_login(app, client):
    for endpoint, method, url in routes(app):
        rule = rule_for(app, endpoint)
        if rule in ("public",):
            continue
        response = client.open(url, method=method)
        if rule == "token":
            assert response.status_code == 401, (endpoint, method)
        elif method != "GET" and response.status_code == 400:   # refused earlier still: no CSRF token
            assert "Form expired" in response.get_data(as_text=True), (endpoint, method)
        else:
            assert response.status_code == 302 and "/login" in response.headers["Location"], (endpoint, method)


def test_admin_endpoints_refuse_an_operator(app, client, operator, no_csrf):
    from wms.plugins.manager import plugin_host
    from wms.extensions import db
    plugin_host().set_active("sampleshop", True)
    db.session.commit()
    login_as(client, operator)
    admin_endpoints = [(e, m, u) for e, m, u in routes(app) if rule_for(app, e) == "admin"]
    assert any(e.startswith("admin.") for e, _, _ in admin_endpoints)
    assert any(e.startswith("integrations.") for e, _, _ in admin_endpoints)
    assert "sampleshop.hello" in {e for e, _, _ in admin_endpoints}
    for endpoint, method, url in admin_endpoints:
        assert client.open(url, method=method).status_code == 403, (endpoint, method)


def test_state_changing_routes_refuse_a_request_without_csrf_token(app, client, admin):
    login_as(client, admin)
    for endpoint, method, url in routes(app):
        if method in ("GET",) or rule_for(app, endpoint) in ("public", "token"):
            continue
        response = client.open(url, method=method, data={})
        assert response.status_code == 400, (endpoint, method, response.status_code)
        assert "Form expired" in response.get_data(as_text=True), endpoint


@pytest.mark.parametrize("target,expected", [
    ("/orders/", "/orders/"), ("//evil.example/x", "/"), ("https://evil.example/", "/"),
    ("/\\evil.example", "/"), ("javascript:alert(1)", "/"), ("", "/")])
def test_login_next_only_goes_to_relative_paths(app, client, admin, no_csrf, target, expected):
    response = client.post(f"/login?next={target}", data={"email": admin.email, "password": "correct horse battery"})
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_login_is_rate_limited(app, client, admin, no_csrf):
    for _ in range(5):
        assert client.post("/login", data={"email": admin.email, "password": "wrong"}).status_code == 200
    response = client.post("/login", data={"email": admin.email, "password": "correct horse battery"})
    assert response.status_code == 429 and "Too many failed sign-ins" in response.get_data(as_text=True)


def test_security_headers(app, client, admin):
    login_as(client, admin)
    headers = client.get("/").headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "base-uri 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Strict-Transport-Security" not in headers
    assert "Strict-Transport-Security" in client.get("/", base_url="https://localhost").headers
