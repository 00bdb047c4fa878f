"""Backpressure: beyond the workers and --max-queue an immediate 503 with Retry-After; a request whose deadline
passes while it waits gets 503 without reaching the model; both counted in /stats and /metrics."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("fastapi")

from artifact_factory import artifact  # noqa: E402
from distilts.runtime import Forecaster  # noqa: E402
from distilts.serve.app import ServeOptions, create_app  # noqa: E402
from serve_server import running  # noqa: E402

SLOW_S = 0.4


class SlowForecaster(Forecaster):
    """A real forecaster whose calls take SLOW_S longer (a model at capacity)."""

    def predict(self, values):
        time.sleep(SLOW_S)
        return super().predict(values)


def post(url: str, body: bytes, headers: dict | None = None) -> tuple[int, dict, dict]:
    req = urllib.request.Request(f"{url}/forecast", data=body, headers={"Content-Type": "application/json",
                                                                         **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


def test_queue_full_and_deadline_get_503_with_retry_after(tmp_path_factory):
    fc = SlowForecaster.load(artifact(tmp_path_factory, "onnx"), threads=1)
    app = create_app(fc, ServeOptions(workers=1, max_queue=2, deadline_s=8, inline_s=0))
    body = json.dumps({"window": fc.manifest.golden_input[0].tolist()}).encode()
    with running(app) as url:
        results: list = []

        def call() -> None:
            t = time.perf_counter()
            status, headers, out = post(url, body)
            results.append((status, time.perf_counter() - t, headers, out))

        threads = [threading.Thread(target=call) for _ in range(8)]
        for t in threads:
            t.start()
            time.sleep(0.02)
        for t in threads:
            t.join()
        codes = sorted(r[0] for r in results)
        assert codes == [200] * 3 + [503] * 5, codes  # 1 running + 2 waiting; the rest refused at once
        for status, seconds, headers, out in results:
            if status == 503:
                assert seconds < SLOW_S and int(headers["retry-after"]) >= 1 and "--max-queue" in out["error"]
        # a deadline shorter than the wait: refused without running the model
        slow = threading.Thread(target=call)
        slow.start()
        time.sleep(0.05)
        status, headers, out = post(url, body, {"X-Deadline-Ms": "50"})
        slow.join()
        assert status == 503 and "deadline" in out["error"] and "retry-after" in {k.lower() for k in headers}
        with urllib.request.urlopen(f"{url}/stats", timeout=30) as r:
            stats = json.loads(r.read())
        assert stats["rejected"] == {"queue_full": 5, "deadline": 1} and stats["requests"] == 4
        with urllib.request.urlopen(f"{url}/metrics", timeout=30) as r:
            metrics = r.read().decode()
        assert 'distilts_rejected_total{reason="queue_full"} 5.0' in metrics
        assert 'distilts_rejected_total{reason="deadline"} 1.0' in metrics
        assert 'distilts_requests_total{endpoint="forecast",status="503"} 6.0' in metrics
        assert "distilts_queue_depth 0.0" in metrics
