"""Run a plugin's sandbox (a WSGI app faking a remote API) on a loopback port.

Used by the tests, the benchmarks and the demo. Every sandbox gets the same fault switches,
through Python (`server.faults.inject("429", count=3)`) or over HTTP, so another process can
set them too::

    POST   /_sandbox/faults   {"kind": "429"|"500"|"hang"|"reset", "count": 3, "path": "/graphql"}
    POST   /_sandbox/faults   {"rate": 0.2, "kinds": ["429", "500", "hang", "reset"], "seed": 7}
    POST   /_sandbox/faults   {"hang_does_work": true}
    DELETE /_sandbox/faults   clears them
    GET    /_sandbox/calls    {"count": N, "calls": [{"method", "path", "status", "at"}, ...]}
    DELETE /_sandbox/calls    clears the call log

"hang" sleeps ``hang_seconds`` (past any client timeout) before answering 504; with
``hang_does_work`` on, the call is carried out first and only its answer is lost (the remote did the
work, the client timed out). "reset" drops the connection with no answer.
"""

import json
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass

from werkzeug.serving import make_server

CONTROL_PREFIX = "/_sandbox/"
FAULT_KINDS = ("429", "500", "hang", "reset")


@dataclass
class _Fault:
    kind: str
    remaining: int
    path: str | None = None


class FaultInjector:
    """WSGI middleware: answers some calls with a fault instead of passing them on."""

    def __init__(self, app, hang_seconds=15.0, hang_does_work=False):
        self.app = app
        self.hang_seconds = hang_seconds
        self.hang_does_work = hang_does_work
        self._lock = threading.Lock()
        self._queued: list[_Fault] = []
        self._rate = 0.0
        self._rate_kinds = FAULT_KINDS
        self._random = random.Random(0)
        self._released = threading.Event()
        self.calls: list[dict] = []
        self.faults_served = {kind: 0 for kind in FAULT_KINDS}

    # -- switches -------------------------------------------------------------------------
    def inject(self, kind, count=1, path=None):
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {FAULT_KINDS}")
        with self._lock:
            self._queued.append(_Fault(kind, int(count), path))

    def set_rate(self, rate, kinds=FAULT_KINDS, seed=None):
        for kind in kinds:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._rate = float(rate)
            self._rate_kinds = tuple(kinds)
            if seed is not None:
                self._random = random.Random(seed)

    def clear(self):
        with self._lock:
            self._queued.clear()
            self._rate = 0.0
        self._released.set()
        self._released = threading.Event()

    def clear_calls(self):
        with self._lock:
            self.calls.clear()

    def _next_fault(self, path):
        with self._lock:
            for fault in self._queued:
                if fault.path is None or path.startswith(fault.path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._queued.remove(fault)
                    return fault.kind
            if self._rate and self._random.random() < self._rate:
                return self._random.choice(self._rate_kinds)
        return None

    # -- WSGI -----------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, start_response)
        kind = self._next_fault(path)
        status_holder = {}

        def recording_start_response(status, headers, exc_info=None):
            status_holder["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info)

        call = {"method": environ.get("REQUEST_METHOD"), "path": path, "status": None, "fault": kind,
                "at": time.time()}
        with self._lock:
            self.calls.append(call)
        if kind is not None:
            self.faults_served[kind] += 1
            call["status"] = {"429": 429, "500": 500, "hang": 504}.get(kind)
            return self._serve_fault(kind, environ, start_response)
        result = self.app(environ, recording_start_response)
        call["status"] = status_holder.get("status")
        return result

    def _serve_fault(self, kind, environ, start_response):
        if kind == "429":
            return _json(start_response, "429 Too Many Requests",
                         {"errors": "Too many requests (sandbox fault)"}, [("Retry-After", "1")])
        if kind == "500":
            return _json(start_response, "500 Internal Server Error", {"errors": "Internal error (sandbox fault)"})
        if kind == "hang":
            if self.hang_does_work:
                self._run_and_drop_answer(environ)
            self._released.wait(self.hang_seconds)
            return _json(start_response, "504 Gateway Timeout", {"errors": "Timed out (sandbox fault)"})
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)  # the client sees the connection drop with no answer
        raise ConnectionResetError("sandbox fault: connection reset")

    def _run_and_drop_answer(self, environ):
        result = self.app(environ, lambda status, headers, exc_info=None: (lambda data: None))
        try:
            for _ in result:
                pass
        finally:
            if hasattr(result, "close"):
                result.close()

    def _control(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        path = environ.get("PATH_INFO")
        if path == "/_sandbox/faults":
            if method == "POST":
                body = _read_json(environ)
                try:
                    if "hang_does_work" in body:
                        self.hang_does_work = bool(body["hang_does_work"])
                    elif "rate" in body:
                        self.set_rate(body["rate"], body.get("kinds", FAULT_KINDS), body.get("seed"))
                    else:
                        self.inject(body["kind"], body.get("count", 1), body.get("path"))
                except (KeyError, ValueError) as exc:
                    return _json(start_response, "400 Bad Request", {"error": str(exc)})
            elif method == "DELETE":
                self.clear()
            with self._lock:
                queued = [f.__dict__ for f in self._queued]
            return _json(start_response, "200 OK", {"queued": queued, "rate": self._rate,
                                                    "hang_does_work": self.hang_does_work,
                                                    "served": self.faults_served})
        if path == "/_sandbox/calls":
            if method == "DELETE":
                self.clear_calls()
            with self._lock:
                calls = list(self.calls)
            return _json(start_response, "200 OK", {"count": len(calls), "calls": calls})
        return self.app(environ, start_response)  # a sandbox's own control routes


def _read_json(environ):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        return {}


def _json(start_response, status, payload, extra_headers=()):
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            *extra_headers])
    return [body]


class SandboxServer:
    """A sandbox WSGI app served on 127.0.0.1 in a background thread.

    ``ssl_context`` is an `ssl.SSLContext` (or a (cert, key) pair) for HTTPS sandboxes.
    """

    def __init__(self, app, host="127.0.0.1", port=0, ssl_context=None, hang_seconds=15.0, hang_does_work=False):
        self.faults = FaultInjector(app, hang_seconds=hang_seconds, hang_does_work=hang_does_work)
        self.app = app
        self._server = make_server(host, port, self.faults, threaded=True, ssl_context=ssl_context)
        self.host = host
        self.port = self._server.server_port
        self.scheme = "https" if ssl_context else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"sandbox-{self.port}",
                                        daemon=True)

    @property
    def url(self):
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.faults.clear()  # releases hung requests
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
