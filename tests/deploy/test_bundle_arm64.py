"""Acceptance: an rpi4 bundle installed and served on the emulated arm64 device with no network at all.

1. `distilts bundle ARTIFACT --target rpi4 --out DIR` (here, with PyPI);
2. in a new network namespace (`unshare -n`: loopback only, so no index can be reached), `sh DIR/install.sh
   PREFIX` with the device's Debian bookworm arm64 python3.11 under qemu-aarch64;
3. in the same namespace, what the systemd unit runs, `distilts serve PREFIX/store`, under qemu; a client posts
   one window to /forecast and the answer is compared with this machine's `Forecaster.predict`.
About 4 minutes on 2 cores: marked `acceptance` (`pytest -m acceptance`; the default run deselects it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from compiled_factory import compiled

pytestmark = pytest.mark.acceptance

# runs inside the namespace: bring loopback up, start the server under qemu, ask it once, stop it
IN_NAMESPACE = textwrap.dedent("""
    import json, os, subprocess, sys, time, urllib.request
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    qemu, root, prefix, body, port = sys.argv[1:6]
    t0 = time.perf_counter()
    srv = subprocess.Popen([qemu, "-L", root, f"{prefix}/venv/bin/python", "-m", "distilts", "serve",
                            f"{prefix}/store", "--port", port, "--no-access-log"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = {}
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=5)
                break
            except OSError:
                if srv.poll() is not None or time.perf_counter() - t0 > 600:
                    raise SystemExit("server did not start")
                time.sleep(0.5)
        out["start_s"] = time.perf_counter() - t0
        req = urllib.request.Request(f"http://127.0.0.1:{port}/forecast", data=open(body, "rb").read(),
                                     headers={"Content-Type": "application/json"})
        t1 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=120) as r:
            out.update(status=r.status, version=r.headers["x-model-version"], answer=json.loads(r.read()))
        out["first_forecast_s"] = time.perf_counter() - t1
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2", timeout=30) as r:
            out["v2"] = json.loads(r.read())
        try:
            urllib.request.urlopen("https://pypi.org/simple/", timeout=5)
            out["index_reachable"] = True
        except OSError as exc:
            out["index_reachable"] = False
            out["index_error"] = str(exc)[:120]
    finally:
        srv.send_signal(2)
        out["server_log_tail"] = srv.communicate(timeout=120)[0][-600:]
    print("RESULT " + json.dumps(out))
""")


def test_an_rpi4_bundle_installs_and_serves_offline_on_emulated_arm64(tmp_path_factory, tmp_path):
    from distilts.device.arm64 import find_device
    from distilts.runtime import Forecaster

    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) for a network namespace")
    dev = find_device()
    if dev is None:
        pytest.skip("the emulated arm64 device is not built: scripts/arm64-device.sh build")
    art = compiled(tmp_path_factory, "tflite")
    bundle, prefix = tmp_path / "bundle-rpi4", tmp_path / "device-prefix"
    res = subprocess.run([sys.executable, "-m", "distilts", "bundle", str(art), "--target", "rpi4", "--out",
                          str(bundle)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path), "RUN": f"{dev.qemu} -L {dev.root}",
           "PYTHON": str(dev.root / "usr/bin/python3.11")}
    inst = subprocess.run(["unshare", "-n", "sh", str(bundle / "install.sh"), str(prefix)], capture_output=True,
                          text=True, env=env)
    assert inst.returncode == 0, inst.stdout[-2000:] + inst.stderr[-2000:]
    fc = Forecaster.load(art)
    x = np.random.default_rng(0).standard_normal((fc.lookback, len(fc.columns))).astype(np.float32)
    body = tmp_path / "window.json"
    body.write_text(json.dumps({"window": x.tolist()}))
    run = subprocess.run(["unshare", "-n", sys.executable, "-c", IN_NAMESPACE, str(dev.qemu), str(dev.root),
                          str(prefix), str(body), "8000"], capture_output=True, text=True)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line is not None, run.stdout[-2000:] + run.stderr[-2000:]
    served = json.loads(line[7:])
    assert served["status"] == 200 and served["index_reachable"] is False
    got = np.asarray(served["answer"]["forecast"], np.float32)
    np.testing.assert_allclose(got, fc.predict(x), atol=fc.manifest.atol, rtol=fc.manifest.rtol)
