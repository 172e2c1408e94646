"""Real worker processes (`flask wms worker`) for the tests that kill them: the environment that points a
worker at the test's database, Redis and plugins, and waiting for what the worker does."""

import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker_env(app, **extra):
    """What a worker needs to serve `app`'s database, Redis and plugins; `extra` overrides WMS_* settings."""
    config = app.config
    env = dict(os.environ,
               WMS_DATABASE_URL=config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=config["REDIS_URL"],
               WMS_PLUGINS=",".join(config["WMS_PLUGINS"]), WMS_ENCRYPTION_KEYS=config["WMS_ENCRYPTION_KEYS"],
               WMS_INSTANCE_PATH=config["WMS_INSTANCE_PATH"], WMS_SECRET_KEY="test-secret",
               WMS_AUTO_UPGRADE_DB="0", WMS_ALLOW_PRIVATE_REMOTES="1",
               WMS_PUSH_WINDOW_SECONDS=str(config["WMS_PUSH_WINDOW_SECONDS"]), WMS_SWEEP_SECONDS="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_worker(env, log_path):
    """A worker in its own process group (so a test can SIGKILL it with everything it started)."""
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "wms", "worker"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until(condition, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
