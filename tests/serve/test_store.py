"""Model updates: `distilts deploy` into a store (atomic switch, self-check, rollback) and a live server that
reloads the store's current version, names it in a header, and refuses a version that fails its check."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi")

from artifact_factory import artifact, copy_artifact  # noqa: E402
from distilts.cli import cli  # noqa: E402
from distilts.deploy.store import Store  # noqa: E402
from distilts.runtime import Forecaster  # noqa: E402
from distilts.serve.app import create_app  # noqa: E402
from distilts.serve.models import ModelHolder  # noqa: E402
from serve_server import running  # noqa: E402


def deploy(*args: str):
    return CliRunner().invoke(cli, ["deploy", *map(str, args)])


def corrupt(src: Path, dst: Path) -> Path:
    """A copy whose golden forecast no longer matches what the model computes (a bad build)."""
    art = copy_artifact(src, dst)
    man = json.loads((art / "manifest.json").read_text())
    out = np.asarray(man["golden"]["output"])
    out.flat[0] += 10 * max(man["scaler"]["std"])
    man["golden"]["output"] = out.tolist()
    (art / "manifest.json").write_text(json.dumps(man))
    return art


@pytest.fixture(scope="module")
def arts(tmp_path_factory):
    return artifact(tmp_path_factory, "onnx"), artifact(tmp_path_factory, "tflite")


def test_deploy_switch_refuse_and_rollback(arts, tmp_path):
    a, b = arts
    store = tmp_path / "store"
    r = deploy(a, "--to", store)
    assert r.exit_code == 0, r.output
    s = Store(store)
    va = s.current()
    assert (store / "current").is_symlink() and os.readlink(store / "current") == f"versions/{va}"
    assert (store / "versions" / va / "manifest.json").is_file()
    assert deploy(b, "--to", store).exit_code == 0
    vb = s.current()
    assert vb != va and s.versions() == sorted([va, vb])
    r = deploy(corrupt(a, tmp_path / "bad"), "--to", store)
    assert r.exit_code != 0 and "Refusing to serve" in r.output
    assert s.current() == vb and s.versions() == sorted([va, vb])  # nothing written, the old one stays
    assert not [p for p in (store / "versions").iterdir() if p.name.startswith(".")]
    assert deploy(a, "--to", store).output.startswith("deployed " + va)  # same content: the same version
    r = deploy("--rollback", "--to", store)
    assert r.exit_code == 0 and s.current() == vb, r.output
    assert deploy("--rollback", "--to", store).exit_code == 0 and s.current() == va
    r = deploy("--rollback", "--to", store)
    assert r.exit_code != 0 and "no earlier version" in r.output and s.current() == va


def forecast(url: str, x: np.ndarray) -> tuple[str, np.ndarray]:
    req = urllib.request.Request(f"{url}/forecast", data=json.dumps({"window": x.tolist()}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.headers["x-model-version"], np.asarray(json.loads(r.read())["forecast"], np.float32)


def wait_for(url: str, x: np.ndarray, version: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while forecast(url, x)[0] != version:
        assert time.monotonic() < deadline, f"the server did not switch to {version}"
        time.sleep(0.1)


def test_live_server_reloads_names_the_version_and_refuses_a_bad_one(arts, tmp_path):
    a, b = arts
    s = Store(tmp_path / "store")
    va = s.deploy(a)
    fa, fb = Forecaster.load(a, threads=1), Forecaster.load(b, threads=1)
    x = fa.manifest.golden_input[0] + 0.5
    app = create_app(ModelHolder(s.root, threads=1))
    with running(app) as url:
        v, y = forecast(url, x)
        assert v == va and np.array_equal(y, fa.predict(x))
        vb = s.deploy(b)
        wait_for(url, x, vb)
        v, y = forecast(url, x)
        assert np.array_equal(y, fb.predict(x))  # consistent with the version the header names
        # a bad version made current behind deploy's back: refused, the old one keeps serving
        bad = s.add(corrupt(a, tmp_path / "bad"), check=False)
        s.switch(bad)
        deadline = time.monotonic() + 20
        while bad not in app.state.holder.refused:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert forecast(url, x)[0] == vb
        with urllib.request.urlopen(f"{url}/stats", timeout=30) as r:
            stats = json.loads(r.read())
        assert stats["version"] == vb and "Refusing to serve" in stats["refused"][bad]
        with urllib.request.urlopen(f"{url}/metrics", timeout=30) as r:
            metrics = r.read().decode()
        assert f'distilts_model_version_info{{version="{vb}"}} 1.0' in metrics
        assert 'distilts_reloads_total{result="refused"} 1.0' in metrics
        s.switch(va)  # e.g. `distilts deploy --rollback`
        wait_for(url, x, va)


def test_serve_command_reloads_on_sighup(arts, tmp_path):
    """`distilts serve STORE`: SIGHUP retries the version refused last (and reloads a changed current)."""
    a, _ = arts
    s = Store(tmp_path / "store")
    va = s.deploy(a)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "distilts", "serve", str(s.root), "--port", str(port),
                             "--no-access-log"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"

    def stats() -> dict:
        with urllib.request.urlopen(f"{url}/stats", timeout=30) as r:
            return json.loads(r.read())

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert stats()["version"] == va
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        bad = s.add(corrupt(a, tmp_path / "bad"), check=False)
        s.switch(bad)
        deadline = time.monotonic() + 20
        while stats()["reloads"]["refused"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGHUP)
        while stats()["reloads"]["refused"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert stats()["version"] == va
    finally:
        proc.send_signal(signal.SIGINT)
        log, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, log
    assert f"refused version {bad}, still serving {va}" in log


class SlowForecaster(Forecaster):
    """A real forecaster whose calls take a second (a request still in flight during a deploy)."""

    def predict(self, values):
        time.sleep(1.0)
        return super().predict(values)


def test_a_request_in_flight_finishes_on_the_version_it_started_with(arts, tmp_path):
    import threading

    from distilts.serve.app import ServeOptions

    a, b = arts
    s = Store(tmp_path / "store")
    va = s.deploy(a)
    holder = ModelHolder(s.root, threads=1)
    holder.current.fc.__class__ = SlowForecaster  # version A answers slowly
    fa, fb = Forecaster.load(a, threads=1), Forecaster.load(b, threads=1)
    x = fa.manifest.golden_input[0] - 0.25
    with running(create_app(holder, ServeOptions(inline_s=0, workers=2))) as url:
        got: dict = {}
        t = threading.Thread(target=lambda: got.update(old=forecast(url, x)))
        t.start()
        time.sleep(0.3)  # A is computing
        vb = s.deploy(b)
        wait_for(url, x, vb)  # new requests are answered by B meanwhile
        t.join()
        assert got["old"][0] == va and np.array_equal(got["old"][1], fa.predict(x))
        v, y = forecast(url, x)
        assert v == vb and np.array_equal(y, fb.predict(x))
