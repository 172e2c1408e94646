"""Store and partner addresses that point inside this machine or network are refused outside demo
and test modes, before any byte is sent; redirects are never followed."""

import pytest
from flask import Flask, redirect

from wms.integrations.errors import RemoteAddressRefused
from wms.integrations.http import RemoteHttp, check_remote_address
from wms.sandbox.harness import SandboxServer

INSIDE = [
    "http://127.0.0.1/", "https://localhost:8443/wp-json", "http://2130706433/", "http://0.0.0.0:5000/",
    "http://10.1.2.3/", "http://172.16.0.9/", "http://192.168.0.10/", "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://[fe80::1]/", "http://[fd00::5]/",
    "http://[::ffff:127.0.0.1]/", "http://224.0.0.1/",
]


@pytest.mark.parametrize("url", INSIDE)
def test_addresses_inside_the_network_are_refused(url):
    with pytest.raises(RemoteAddressRefused) as refused:
        check_remote_address(url, allow_private=False)
    assert "loopback, private or link-local" in refused.value.message


@pytest.mark.parametrize("url", ["https://93.184.215.14/", "https://[2606:4700::1111]/"])
def test_public_addresses_pass(url):
    check_remote_address(url, allow_private=False)


@pytest.mark.parametrize("url", ["ftp://shop.example.com/", "file:///etc/passwd", "https:///nohost"])
def test_other_schemes_are_refused(url):
    with pytest.raises(RemoteAddressRefused):
        check_remote_address(url, allow_private=False)


@pytest.fixture
def two_servers():
    """`outer` redirects every request to `inner`, which counts what reaches it."""
    inner_hits = []
    inner = Flask("inner")
    inner.add_url_rule("/<path:p>", "hit", lambda p: inner_hits.append(p) or "inner secret data")
    with SandboxServer(inner) as inner_server:
        outer = Flask("outer")
        outer.add_url_rule("/<path:p>", "go", lambda p: redirect(f"{inner_server.url}/{p}", 302))
        with SandboxServer(outer) as outer_server:
            yield outer_server, inner_server, inner_hits


def test_a_loopback_remote_is_refused_before_any_request_outside_test_mode(two_servers):
    _, inner, hits = two_servers
    http = RemoteHttp(inner.url, plugin="test", allow_private=False, recorder=lambda record: None)
    with pytest.raises(RemoteAddressRefused):
        http.get("/admin")
    assert hits == []


def test_redirects_are_not_followed(two_servers):
    outer, _, hits = two_servers
    http = RemoteHttp(outer.url, plugin="test", allow_private=True, recorder=lambda record: None)
    response = http.get("/metadata")
    assert response.status_code == 302 and "inner secret data" not in response.text
    assert hits == []


def test_a_name_that_resolves_inside_on_the_second_lookup_is_refused_before_any_byte(two_servers, monkeypatch):
    """DNS rebinding: the name is public when checked, loopback when connected to."""
    import socket
    _, inner, hits = two_servers
    port = int(inner.url.rsplit(":", 1)[1])
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def rebinding(host, *args, **kwargs):
        if host != "rebind.example":
            return real_getaddrinfo(host, *args, **kwargs)
        lookups.append(host)
        address = "93.184.215.14" if len(lookups) == 1 else "127.0.0.1"
        return real_getaddrinfo(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    http = RemoteHttp(f"http://rebind.example:{port}", plugin="test", allow_private=False,
                      recorder=lambda record: None)
    with pytest.raises(RemoteAddressRefused) as refused:
        http.get("/admin")
    assert "127.0.0.1" in refused.value.message and len(lookups) == 2
    assert hits == []
