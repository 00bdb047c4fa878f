"""`distilts serve`: good and bad requests, and concurrency, against a server on a free loopback port."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import threading
from urllib.parse import urlparse

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from artifact_factory import artifact  # noqa: E402
from distilts.runtime import Forecaster  # noqa: E402
from distilts.serve.app import ServeOptions, create_app  # noqa: E402
from serve_server import running  # noqa: E402


class Client:
    """A keep-alive HTTP/1.1 connection (one per thread)."""

    def __init__(self, url: str) -> None:
        u = urlparse(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)

    def request(self, method: str, path: str, body: object = None, raw: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        self.conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        resp = self.conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")


@pytest.fixture(scope="module")
def fc(tmp_path_factory):
    return Forecaster.load(artifact(tmp_path_factory, "tflite"), threads=1)  # batch-1 and batch-4 files


@pytest.fixture(scope="module")
def server(fc):
    app = create_app(fc, ServeOptions(max_batch=8))
    with running(app) as url:
        yield url, app


def windows(fc, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return fc.manifest.golden_input[0] + rng.normal(0, 1, (n, fc.lookback, len(fc.columns))).astype(np.float32)


def test_health_and_model(server, fc):
    c = Client(server[0])
    assert c.request("GET", "/health") == (200, {"status": "ok", "self_check": "passed", "backend": "tflite",
                                                 "precision": "fp32"})
    status, m = c.request("GET", "/model")
    assert status == 200
    assert (m["backend"], m["precision"], m["lookback"], m["horizon"], m["columns"]) == \
        ("tflite", "fp32", fc.lookback, fc.horizon, fc.columns)
    assert m["verification"]["passed"] is True


def test_forecast_one_window_and_a_batch(server, fc):
    c = Client(server[0])
    x = windows(fc, 3)
    status, out = c.request("POST", "/forecast", {"window": x[0].tolist()})
    assert status == 200 and out["columns"] == fc.columns and "timestamps" not in out
    np.testing.assert_array_equal(np.asarray(out["forecast"], np.float32), fc.predict(x[0]))
    status, out = c.request("POST", "/forecast", {"windows": x.tolist(), "last_timestamp": "2024-01-01 23:00:00",
                                                  "step_seconds": 3600})
    assert status == 200
    np.testing.assert_array_equal(np.asarray(out["forecast"], np.float32), fc.predict(x))
    assert len(out["timestamps"]) == 3 and out["timestamps"][0][:2] == ["2024-01-02 00:00:00", "2024-01-02 01:00:00"]


def test_columns_in_another_order_are_reordered(server, fc):
    x = windows(fc, 1)[0]
    perm = list(reversed(range(len(fc.columns))))
    status, out = Client(server[0]).request("POST", "/forecast", {"window": x[:, perm].tolist(),
                                                                  "columns": [fc.columns[i] for i in perm]})
    assert status == 200
    np.testing.assert_array_equal(np.asarray(out["forecast"], np.float32), fc.predict(x))


@pytest.mark.parametrize("body, status, match", [
    ({"window": [[1.0, 2.0]]}, 422, r"has shape \[1, 2\]; this model needs \[24\]\[4\]"),
    ({"windows": []}, 422, "has shape"),
    ({"window": "x"}, 422, "has shape|rectangular"),
    ({"window": [[1.0] * 4] * 23 + [[1.0] * 3]}, 422, "ragged rows or non-numbers"),
    ({"window": [[1.0, 2.0, 3.0, "a"]] * 24}, 422, "non-numbers"),
    ({"windows": [[[1.0] * 4] * 24] * 9}, 413, "holds 9 windows; this server takes 1 to 8"),
    ({"window": [[1.0] * 4] * 24, "windows": []}, 422, "exactly one of"),
    ({"window": [[1.0] * 4] * 24, "columns": ["load", "temperature", "wind", "price"]}, 422,
     "unknown column.*wind.*missing column.*solar"),
    ({"window": [[1.0] * 4] * 24, "last_timestamp": "yesterday"}, 422, "not an ISO 8601"),
    ({"window": [[1.0] * 4] * 24, "extra": 1}, 422, "Unknown field"),
    ([1, 2], 422, "must be a JSON object"),
    ({"window": [[3.4e38] * 4] * 24}, 422, "forecast is not finite"),  # near float32 max: the forecast overflows
])
def test_bad_requests_get_4xx_naming_the_problem(server, body, status, match):
    got, out = Client(server[0]).request("POST", "/forecast", body)
    assert got == status, out
    assert set(out) == {"error"}
    assert re.search(match, out["error"]), out["error"]


def test_nan_invalid_json_and_oversized_body(server, fc):
    c = Client(server[0])
    raw = json.dumps({"window": [[1.0] * 4] * 24}).replace("1.0", "NaN", 1).encode()
    status, out = c.request("POST", "/forecast", raw=raw)
    assert status == 422 and "NaN/inf" in out["error"] and "step 0" in out["error"]
    status, out = c.request("POST", "/forecast", raw=b'{"window": [[1,')
    assert status == 400 and "not valid JSON" in out["error"]
    status, out = c.request("POST", "/forecast", raw=b"[" + b"1.0," * 40000 + b"1.0]")
    assert status == 413 and "limit" in out["error"]


def test_concurrent_requests_equal_serial(server, fc):
    url, app = server
    xs = windows(fc, 12, seed=1)
    want = fc.predict(xs)
    errors: list[str] = []

    def worker(k: int) -> None:
        c = Client(url)
        for i in range(10):
            j = (k + i) % len(xs)
            body = {"window": xs[j].tolist()} if i % 2 else {"windows": xs[j:j + 2].tolist()}
            status, out = c.request("POST", "/forecast", body)
            got = np.asarray(out.get("forecast"), np.float32) if status == 200 else None
            ref = want[j] if i % 2 else want[j:j + 2]
            if got is None or not np.array_equal(got, ref):
                errors.append(f"{status} {str(out)[:200]}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def test_serve_command_starts_answers_and_shuts_down_gracefully(fc):
    import signal
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "distilts", "serve", str(fc.manifest.directory), "--port",
                             str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, out = Client(f"http://127.0.0.1:{port}").request("GET", "/health")
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert status == 200
        status, out = Client(f"http://127.0.0.1:{port}").request(
            "POST", "/forecast", {"window": fc.manifest.golden_input[0].tolist()})
        assert status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        log, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, log
    assert "throughput mode" in log and '"POST /forecast HTTP/1.1" 200' in log  # default mode; access log


def test_serve_command_help_and_missing_artifact():
    out = subprocess.run([sys.executable, "-m", "distilts", "serve", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "POST /forecast" in out.stdout
    out = subprocess.run([sys.executable, "-m", "distilts", "serve", "/nonexistent/artifact"], capture_output=True,
                         text=True)
    assert out.returncode != 0 and "Artifact directory not found" in out.stderr


@pytest.mark.parametrize("body", [
    {"window": [[1.5, -2, 3e5, 0]] * 24},
    {"window": [[1.0, 2.0, 3.0, 4.0]] * 23 + [[1.0, 2.0, 3.0]]},  # ragged
    {"window": [[1.0, 2.0, 3.0, [4.0]]] + [[1.0] * 4] * 23},  # nested
    {"window": [[1.0, 2.0, 3.0, "4"]] * 24},
    {"window": [[1e39] * 4] * 24},  # beyond float32
    {"window": [1.0] * 24},
    {"window": [[1.0] * 4] * 24, "columns": ["load", "temperature", "solar", "price"]},
])
def test_fast_window_path_equals_the_general_path(fc, monkeypatch, body):
    """pysimdjson's path for {"window": ...} gives the same arrays and the same errors as orjson + numpy."""
    from distilts.serve import request

    raw = json.dumps(body).encode()

    def parse():
        try:
            r = request.parse_request(raw, fc, 8)
            return r.x, r.single
        except request.RequestError as exc:
            return exc.status, exc.message

    fast = parse()
    monkeypatch.setattr(request, "simdjson", None)
    general = parse()
    assert type(fast[0]) is type(general[0])
    if isinstance(fast[0], np.ndarray):
        np.testing.assert_array_equal(fast[0], general[0])
        assert fast[1] == general[1]
    else:
        assert fast == general
