#!/usr/bin/env python
"""An rpi4 bundle installed and served on the emulated arm64 device with no network at all.

1. `distilts bundle ARTIFACT --target rpi4 --out DIR` (here, with PyPI);
2. in a new network namespace (`unshare -n`: no interface but loopback, so no index can be reached),
   `sh DIR/install.sh PREFIX` with the device's Debian bookworm arm64 python3.11 under qemu-aarch64
   (RUN="qemu-aarch64 -L ROOT"): venv without pip, pip from the bundle's wheel, --no-index --find-links;
3. in the same namespace, what the systemd unit runs, `distilts serve PREFIX/store`, under qemu; a client
   posts one ETTh1 window to /forecast and the answer is compared with this machine's `Forecaster.predict`.

    scripts/arm64-device.sh build                      # once
    python benchmarks/bundle_arm64.py                  # ~4 min on 2 shared cores (emulated pip is slow)
    python benchmarks/bundle_arm64.py --artifact DIR --render benchmarks/results/bundle-arm64.json

Writes OUT/bundle-arm64.json and .md (OUT: benchmarks/runs/bundle).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import DISTILTS, ROOT, git_commit, machine_info, write_outputs  # noqa: E402
from serve import bench_args, build_artifacts, test_windows  # noqa: E402


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifact", default=None, help="artifact to bundle (default: DLinear ETTh1 TFLite fp32)")
    p.add_argument("--target", default="rpi4")
    args = bench_args(p, render, ROOT / "benchmarks" / "runs" / "bundle")
    if args is None:  # --render: printed
        return
    from distilts.device.arm64 import find_device
    from distilts.runtime import Forecaster

    dev = find_device()
    if dev is None:
        sys.exit("the emulated arm64 device is not built: scripts/arm64-device.sh build")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "bundle.log"
    art = args.artifact or build_artifacts(args, ROOT / "benchmarks" / "runs" / "serve", log)[2]  # tflite-fp32
    bundle, prefix = out / f"bundle-{args.target}", out / "device-prefix"
    shutil.rmtree(prefix, ignore_errors=True)
    t0 = time.perf_counter()
    res = subprocess.run([*DISTILTS, "bundle", art, "--target", args.target, "--out", bundle], capture_output=True,
                         text=True, cwd=ROOT)
    if res.returncode != 0:
        sys.exit(res.stderr)
    bundle_s = time.perf_counter() - t0
    info = json.loads((bundle / "bundle.json").read_text())
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(out), "RUN": f"{dev.qemu} -L {dev.root}",
           "PYTHON": str(dev.root / "usr/bin/python3.11")}
    t0 = time.perf_counter()
    inst = subprocess.run(["unshare", "-n", "sh", str(bundle / "install.sh"), str(prefix)], capture_output=True,
                          text=True, env=env)
    install_s = time.perf_counter() - t0
    if inst.returncode != 0:
        sys.exit(f"install failed: {inst.stdout[-2000:]} {inst.stderr[-2000:]}")
    fc = Forecaster.load(art)
    x = test_windows(args.data, fc.lookback, fc.horizon, 4)[-1]
    body = out / "window.json"
    body.write_text(json.dumps({"window": x.tolist()}))
    run = subprocess.run(["unshare", "-n", sys.executable, "-c", IN_NAMESPACE, str(dev.qemu), str(dev.root),
                          str(prefix), str(body), "8000"], capture_output=True, text=True)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"serving on the device failed: {run.stdout[-2000:]} {run.stderr[-2000:]}")
    served = json.loads(line[7:])
    got = np.asarray(served.pop("answer")["forecast"], np.float32)
    want = fc.predict(x)
    venv_bytes = sum(f.stat().st_size for f in (prefix / "venv").rglob("*") if f.is_file() and not f.is_symlink())
    payload = {"args": vars(args), "machine": machine_info(), "commit": git_commit(), "artifact": art,
               "device": dev.describe(), "bundle": {**info, "build_s": bundle_s}, "install_s": install_s,
               "install_log": inst.stdout[-400:], "installed_venv_bytes": venv_bytes, "served": served,
               "max_abs_diff_vs_x86": float(np.max(np.abs(got - want))), "atol": fc.manifest.atol,
               "close": bool(np.allclose(got, want, atol=fc.manifest.atol, rtol=fc.manifest.rtol))}
    md = render(payload)
    write_outputs(payload, md, out / "bundle-arm64.json", out / "bundle-arm64.md")
    print(md)


def render(p: dict) -> str:
    b, s = p["bundle"], p["served"]
    wheels = sorted(b["wheels"].items(), key=lambda kv: -kv[1])[:4]
    biggest = ", ".join("-".join(k.split("-")[:2]) + f" {v / 2**20:.1f} MiB" for k, v in wheels)
    return "\n".join([
        f"### An {b['target']} bundle on the emulated arm64 device, offline", "",
        f"`python benchmarks/bundle_arm64.py`, {p['machine']['date']}, commit {p.get('commit')}; {p['device']}.", "",
        f"- `distilts bundle {Path(p['artifact']).name} --target {b['target']}`: {len(b['wheels'])} wheels for "
        f"python {b['python_version']} ({biggest}, ...), "
        f"**{b['bytes'] / 2**20:.1f} MiB** in all with the artifact; built in {b['build_s']:.0f} s (pip cache warm).",
        f"- `sh install.sh` in a new network namespace (`unshare -n`: no interface but loopback, no route out), "
        f"emulated python: "
        f"{p['install_s']:.0f} s; the venv takes {p['installed_venv_bytes'] / 2**20:.0f} MiB.",
        f"- `distilts serve STORE` (the systemd unit's command) under emulation: up in {s['start_s']:.0f} s, first "
        f"forecast {s['first_forecast_s']:.2f} s, HTTP {s['status']}, version {s['version']}; max abs difference "
        f"to x86 `predict` {p['max_abs_diff_vs_x86']:.2g} (atol {p['atol']:.2g}: "
        f"{'within' if p['close'] else 'OUTSIDE'}); package index reachable from there: {s['index_reachable']}.", ""])


if __name__ == "__main__":
    main()
