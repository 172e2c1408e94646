"""Bad credentials (the HTML login page) and transport faults: 429, 5xx, hangs, resets."""

import pytest
import requests

from plugins.vinoshipper import contract as vs
from plugins.vinoshipper.sandbox import DEFAULT_API_KEY, DEFAULT_API_SECRET
from wms.integrations.errors import RemoteAuthError, RemoteRateLimited, RemoteTimeout, RemoteUnavailable

from .conftest import HANG_SECONDS
from .helpers import make_order


def test_bad_credentials_get_the_html_login_page(server):
    answer = requests.get(f"{server.url}{vs.ACTIVE_SHIPPERS_PATH}", auth=("2212.X", "wrong"), timeout=5)

    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "Log in to Vinoshipper" in answer.text


@pytest.mark.parametrize("mode, status", [(vs.BAD_CREDENTIALS_LOGIN_PAGE, 200),
                                          (vs.BAD_CREDENTIALS_REDIRECT, 302),
                                          (vs.BAD_CREDENTIALS_JSON_401, 401)])
def test_client_reports_bad_api_key_or_secret(start_sandbox, make_client, mode, status):
    server = start_sandbox({"bad_credentials": mode})
    client = make_client(server, secret="not-the-secret")

    with pytest.raises(RemoteAuthError) as caught:
        client.test_connection()

    assert "bad API key or secret" in caught.value.message
    assert caught.value.status == status
    assert [c["status"] for c in server.faults.calls] == [status]


def test_a_bad_key_never_creates_an_order(make_client, sandbox):
    client = make_client(key="2212.WRONG")

    with pytest.raises(RemoteAuthError):
        client.send_order(make_order())

    assert sandbox.orders() == []


def test_call_records_never_hold_the_credentials(client, records):
    client.send_order(make_order())

    assert [(r.method, r.path, r.status) for r in records] == [
        ("GET", "/api/v3/p/orders/WMS-000123", 404), ("POST", "/api/v3/p/orders", 200)]
    text = repr(records)
    assert DEFAULT_API_SECRET not in text and DEFAULT_API_KEY not in text


def test_429_is_retried_after_retry_after(client, server, sleeps):
    server.faults.inject("429", count=2, path=vs.ACTIVE_SHIPPERS_PATH)

    assert client.test_connection()["shippers"]
    assert sleeps == [1.0, 1.0]      # the harness answers Retry-After: 1


def test_429_until_attempts_run_out(client, server):
    server.faults.inject("429", count=3)

    with pytest.raises(RemoteRateLimited) as caught:
        client.test_connection()

    assert caught.value.retry_after == 1.0
    assert len(server.faults.calls) == 3


def test_a_long_retry_after_is_not_slept_through(make_client, server, sleeps):
    client = make_client(max_wait_seconds=0.5)
    server.faults.inject("429", count=1)

    with pytest.raises(RemoteRateLimited):
        client.test_connection()

    assert sleeps == []


def test_5xx_on_a_read_is_retried(client, server, sleeps):
    client.send_order(make_order())
    server.faults.inject("500", count=2, path="/api/v3/p/orders/WMS-000123")

    assert client.get_status("WMS-000123").stage == "open"
    assert sleeps == [1.0, 2.0]


def test_persistent_5xx_ends_in_a_transient_error(client, server):
    server.faults.inject("500", count=10)

    with pytest.raises(RemoteUnavailable) as caught:
        client.get_status("WMS-000123")

    assert caught.value.transient and caught.value.status == 500
    assert len(server.faults.calls) == 3


def test_5xx_during_send_still_creates_exactly_one_order(client, server, sandbox):
    server.faults.inject("500", count=1, path=vs.ORDERS_PATH)

    assert client.send_order(make_order()).created is True
    assert len(sandbox.orders()) == 1


def test_a_hang_times_out(make_client, server):
    client = make_client(timeout=(1, HANG_SECONDS / 4), max_attempts=1)
    server.faults.inject("hang", count=1)

    with pytest.raises(RemoteTimeout):
        client.test_connection()


def test_a_reset_connection_is_transient(make_client, server):
    client = make_client(max_attempts=1)
    server.faults.inject("reset", count=1)

    with pytest.raises(RemoteUnavailable):
        client.test_connection()
