"""Start gunicorn for a bench and wait until every worker can answer."""

import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READY_SETTINGS = os.path.join(ROOT, "bench", "gunicorn_ready.py")


def start_gunicorn(port, env, workers=2, options=(), timeout=60):
    """gunicorn serving wsgi:app on 127.0.0.1:`port` with `workers` processes, returned once all of
    them have loaded the app."""
    ready_dir = tempfile.mkdtemp(prefix="wms-bench-ready-")
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", READY_SETTINGS, "-w", str(workers),
                               *options, "-b", f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"],
                              env=dict(env, WMS_BENCH_READY_DIR=ready_dir), cwd=ROOT)
    deadline = time.monotonic() + timeout
    while len(os.listdir(ready_dir)) < workers:
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"gunicorn did not start {workers} workers (exit code {server.poll()})")
        time.sleep(0.1)
    return server


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
