"""Settings read from the environment, which is all a worker process is started with."""

from wms.config import from_environment


def test_the_job_retry_backoff_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("WMS_RETRY_BACKOFF", "1,2.5,30")
    assert from_environment(str(tmp_path))["WMS_RETRY_BACKOFF"] == (1.0, 2.5, 30.0)
    monkeypatch.delenv("WMS_RETRY_BACKOFF")
    assert "WMS_RETRY_BACKOFF" not in from_environment(str(tmp_path))
