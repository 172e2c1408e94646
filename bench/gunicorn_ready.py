"""gunicorn settings file for the benches (`-c bench/gunicorn_ready.py`): each worker leaves a file in
$WMS_BENCH_READY_DIR once it has loaded the app. The port opens before the workers have imported the
app, so a bench that starts its load on the open port measures worker start-up as request latency."""

import os


def post_worker_init(worker):
    open(os.path.join(os.environ["WMS_BENCH_READY_DIR"], str(worker.pid)), "w").close()
