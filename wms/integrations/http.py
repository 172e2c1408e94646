"""The one way a plugin's client reaches its remote API.

`RemoteHttp` wraps a `requests.Session` and adds what every integration needs:

* connect and read timeouts on every call, and a user agent that names the product;
* no redirects followed, and addresses on loopback, private or link-local networks refused
  unless the app runs in demo or test mode (``WMS_ALLOW_PRIVATE_REMOTES``): the host's name is
  checked before the call, and the address actually connected to is checked again before anything
  is sent, so a name that resolves differently the second time (DNS rebinding) gains nothing;
* transport failures and error statuses turned into the typed errors of `errors.py`;
* one `CallRecord` per call handed to a recorder (the activity log), with secrets redacted.

Clients build their own requests (paths, bodies, auth) and read their own answers; this
module only makes the call safe, bounded and visible.
"""

import ipaddress
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .errors import (
    RemoteAddressRefused,
    RemoteAuthError,
    RemoteRateLimited,
    RemoteRejected,
    RemoteTimeout,
    RemoteUnavailable,
)

USER_AGENT = "WineryWMS/1.0 (+warehouse integration)"
DEFAULT_TIMEOUT = (5, 30)
SENSITIVE_QUERY_KEYS = {
    "consumer_key", "consumer_secret", "access_token", "token", "code", "client_secret",
    "password", "api_key", "apikey", "secret", "hmac", "signature", "refresh_token",
}
REDACTED = "[redacted]"


@dataclass
class CallRecord:
    """One remote call, as the activity log stores it. Never holds a header or a body."""

    plugin: str
    store_id: int | None
    method: str
    path: str
    status: int | None
    duration_ms: float
    error: str | None = None
    extra: dict = field(default_factory=dict)


def redact_text(text, secrets):
    if not text:
        return text
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


def redact_url_path(url):
    """Path plus query, with the values of credential-like parameters replaced."""
    parts = urlsplit(url)
    query = [
        (k, REDACTED if k.lower() in SENSITIVE_QUERY_KEYS else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    path = parts.path or "/"
    return f"{path}?{urlencode(query)}" if query else path


def is_private_host(host):
    """True when the host is, or resolves to, loopback, private, link-local or reserved space."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        return False  # unresolvable: the call itself will fail with a clear error
    return any(is_private_address(address) for address in addresses)


def is_private_address(address):
    ip = ipaddress.ip_address(address.split("%")[0])
    ip = getattr(ip, "ipv4_mapped", None) or ip
    # not is_global also covers shared (carrier-grade NAT) and documentation ranges
    return not ip.is_global or ip.is_multicast


def _refuse_private_peer(sock, host):
    peer = sock.getpeername()[0]
    if is_private_address(peer):
        sock.close()
        raise RemoteAddressRefused(f"{host} connected to {peer}, a loopback, private or link-local address; "
                                   "remote stores must be on the public internet.")


class _PublicHTTPConnection(HTTPConnection):
    def _new_conn(self):
        sock = super()._new_conn()
        _refuse_private_peer(sock, self.host)
        return sock


class _PublicHTTPSConnection(HTTPSConnection):
    def _new_conn(self):
        sock = super()._new_conn()
        _refuse_private_peer(sock, self.host)
        return sock


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class PublicOnlyAdapter(HTTPAdapter):
    """Checks the address each new connection reached, before a byte is sent."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PublicHTTPPool, "https": _PublicHTTPSPool}


def check_remote_address(url, allow_private):
    """Raise RemoteAddressRefused for a URL that points inside this machine or network."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteAddressRefused(f"Not a web address: {url!r}")
    if not allow_private and is_private_host(parts.hostname):
        raise RemoteAddressRefused(
            f"{parts.hostname} is a loopback, private or link-local address; remote stores must be "
            "on the public internet (such addresses are accepted only in demo and test modes)."
        )


def _default_recorder():
    try:
        from flask import current_app
        return current_app.extensions.get("wms.record_call")
    except RuntimeError:  # outside an app context
        return None


def _default_allow_private():
    try:
        from flask import current_app
        return bool(current_app.config.get("WMS_ALLOW_PRIVATE_REMOTES"))
    except RuntimeError:
        return False


class RemoteHttp:
    """A session to one remote API. ``secrets`` are strings never to appear in a log row."""

    def __init__(self, base_url, *, plugin, store_id=None, auth=None, headers=None,
                 timeout=DEFAULT_TIMEOUT, verify=True, secrets=(), recorder=None,
                 allow_private=None, raise_for_status=True):
        self.base_url = base_url.rstrip("/") + "/"
        self.plugin = plugin
        self.store_id = store_id
        self.timeout = timeout
        self.verify = verify
        self.secrets = [s for s in secrets if s]
        self.recorder = recorder if recorder is not None else _default_recorder()
        self.allow_private = _default_allow_private() if allow_private is None else allow_private
        self.raise_for_status = raise_for_status
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        if headers:
            self.session.headers.update(headers)
        if auth is not None:
            self.session.auth = auth
        if not self.allow_private:
            for prefix in ("http://", "https://"):
                self.session.mount(prefix, PublicOnlyAdapter())

    def url_for(self, path):
        if path.startswith(("http://", "https://")):
            return path
        return urljoin(self.base_url, path.lstrip("/"))

    def request(self, method, path, *, timeout=None, raise_for_status=None, **kwargs):
        """Send one request and return the `requests.Response`.

        Raises a `TransientRemoteError` for timeouts, resets, 429 and 5xx, `RemoteAuthError`
        for 401/403 and `RemoteRejected` for other 4xx (unless ``raise_for_status=False``).
        """
        url = self.url_for(path)
        check_remote_address(url, self.allow_private)
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("verify", self.verify)
        started = time.perf_counter()
        status, error = None, None
        try:
            try:
                response = self.session.request(method, url, timeout=timeout or self.timeout, **kwargs)
            except requests.Timeout as exc:
                error = f"timed out after {self._timeout_text(timeout)}"
                raise RemoteTimeout(f"{self.plugin}: {method} {self._shown(url)} {error}") from exc
            except requests.exceptions.SSLError as exc:
                error = f"TLS error: {exc}"
                raise RemoteUnavailable(
                    f"{self.plugin}: the TLS certificate of {urlsplit(url).hostname} could not be verified "
                    f"({redact_text(str(exc), self.secrets)})", code="tls_error") from exc
            except requests.ConnectionError as exc:
                error = f"connection failed: {exc.__class__.__name__}"
                raise RemoteUnavailable(
                    f"{self.plugin}: could not reach {urlsplit(url).hostname} "
                    f"({redact_text(str(exc), self.secrets)})") from exc
            status = response.status_code
            should_raise = self.raise_for_status if raise_for_status is None else raise_for_status
            if should_raise and status >= 400:
                error = self._error_for(response, url)
                raise error
            return response
        except Exception as exc:
            if error is None or not isinstance(error, str):
                error = str(exc)
            raise
        finally:
            self._record(method, url, status, started, error)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def _timeout_text(self, timeout):
        t = timeout or self.timeout
        return f"{t[1] if isinstance(t, tuple) else t} s"

    def _shown(self, url):
        """The URL's path and query as logs and messages may show it: no credential, even in the path."""
        return redact_text(redact_url_path(url), self.secrets)

    def _error_for(self, response, url):
        where = f"{response.request.method} {self._shown(url)}"
        body = response.text[:2000]
        status = response.status_code
        if status == 429:
            retry_after = response.headers.get("Retry-After")
            try:
                retry_after = float(retry_after) if retry_after else None
            except ValueError:
                retry_after = None
            return RemoteRateLimited(f"{self.plugin}: rate limited on {where}", status=status,
                                     body=body, retry_after=retry_after)
        if status >= 500:
            return RemoteUnavailable(f"{self.plugin}: {where} answered {status}", status=status, body=body)
        if status in (401, 403):
            return RemoteAuthError(f"{self.plugin}: credentials refused on {where} ({status})",
                                   status=status, body=body)
        return RemoteRejected(f"{self.plugin}: {where} answered {status}", status=status, body=body)

    def _record(self, method, url, status, started, error):
        if self.recorder is None:
            return
        record = CallRecord(
            plugin=self.plugin,
            store_id=self.store_id,
            method=method,
            path=self._shown(url),
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            error=redact_text(str(error), self.secrets)[:1000] if error else None,
        )
        try:
            self.recorder(record)
        except Exception:  # the log must never break the call it describes
            import logging
            logging.getLogger(__name__).exception("could not record a remote call")


def strip_query(url):
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
