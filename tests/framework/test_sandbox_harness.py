"""The sandboxes' fault switches: a hang loses the answer, and with `hang_does_work` the remote has
carried the call out first (the case that makes a client's retry a duplicate)."""

import pytest
import requests
from flask import Flask

from wms.sandbox.harness import SandboxServer


@pytest.fixture
def counter():
    app = Flask("counter")
    app.calls = 0

    @app.post("/count")
    def count():
        app.calls += 1
        return {"calls": app.calls}

    return app


@pytest.mark.parametrize("does_work, calls_done", [(False, 0), (True, 1)])
def test_a_hang_loses_the_answer_and_does_the_work_only_when_switched_on(counter, does_work, calls_done):
    with SandboxServer(counter, hang_seconds=1.0, hang_does_work=does_work) as server:
        server.faults.inject("hang")
        with pytest.raises(requests.Timeout):
            requests.post(f"{server.url}/count", timeout=0.3)
        assert counter.calls == calls_done
        assert requests.post(f"{server.url}/count", timeout=2).json() == {"calls": calls_done + 1}


def test_the_switch_is_also_set_over_http(counter):
    with SandboxServer(counter) as server:
        answer = requests.post(f"{server.url}/_sandbox/faults", json={"hang_does_work": True}, timeout=2).json()
        assert answer["hang_does_work"] is True and server.faults.hang_does_work is True
