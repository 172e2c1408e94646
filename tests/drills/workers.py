"""Real worker processes for the fault drills: start a pool, SIGKILL one at random and start a new
one in its place, and wait for the outbox to settle."""

import os
import random
import signal
import subprocess
import threading
import time

from sqlalchemy import func, select

from tests.worker_processes import start_worker, worker_env
from wms.core.models import OutboxMessage
from wms.extensions import db
from wms.plugins.models import Store

class WorkerPool:
    """`size` worker processes (`flask wms worker`), each in its own process group."""

    def __init__(self, app, size, log_path, **env):
        self.env = worker_env(app, WMS_RUNNING_TIMEOUT=20, WMS_QUEUED_TIMEOUT=5, WMS_JOB_TIMEOUT=15,
                              WMS_WORKER_LOG_LEVEL="WARNING", **env)
        self.size = size
        self.log_path = log_path
        self.processes = []
        self.kills = 0
        self.lock = threading.Lock()

    def start_one(self):
        return start_worker(self.env, self.log_path)

    def start(self):
        self.processes = [self.start_one() for _ in range(self.size)]
        return self

    def kill_one(self, rng):
        """SIGKILL a random worker (whatever it is doing) and start another in its place."""
        with self.lock:
            index = rng.randrange(len(self.processes))
            victim = self.processes[index]
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait(timeout=10)
            self.processes[index] = self.start_one()
            self.kills += 1

    def stop(self):
        with self.lock:
            for process in self.processes:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process in self.processes:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)

    def log_tail(self, size=3000):
        with open(self.log_path, "rb") as fh:
            return fh.read()[-size:].decode(errors="replace")


class Killer(threading.Thread):
    """Kills `times` workers at random moments within `seconds`."""

    def __init__(self, pool, times, seconds, seed=20):
        super().__init__(daemon=True)
        self.pool, self.rng = pool, random.Random(seed)
        self.moments = sorted(self.rng.uniform(0, seconds) for _ in range(times))
        self.stop_event = threading.Event()

    def run(self):
        started = time.monotonic()
        for moment in self.moments:
            if self.stop_event.wait(max(0.0, started + moment - time.monotonic())):
                return
            self.pool.kill_one(self.rng)


def unsettled():
    """Outbox messages still to run and stores with an open push window."""
    db.session.expire_all()
    work = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.status.in_(("pending", "queued", "running"))))
    windows = db.session.scalar(select(func.count()).select_from(Store).where(Store.push_due_at.is_not(None)))
    db.session.commit()
    return work + windows


def wait_until_settled(timeout, pool=None, quiet_seconds=3.0):
    """Until no work is left for `quiet_seconds` in a row (a retry may be scheduled a moment later)."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        if unsettled() == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= quiet_seconds:
                return
        else:
            quiet_since = None
        time.sleep(0.5)
    tail = pool.log_tail() if pool else ""
    raise AssertionError(f"the outbox did not settle in {timeout} s ({unsettled()} left)\n{tail}")


def outbox_counts():
    rows = db.session.execute(select(OutboxMessage.topic, OutboxMessage.status, func.count(),
                                     func.sum(OutboxMessage.attempts))
                              .group_by(OutboxMessage.topic, OutboxMessage.status)).all()
    return {(topic, status): (count, attempts or 0) for topic, status, count, attempts in rows}
