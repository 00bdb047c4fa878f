"""Fixtures shared by the benchmarks, built once and cached: data files, trained students, compiled
artifacts, a running server (asv's `setup_cache`, across runs).

Each fixture is a directory under benchmarks/.cache/<kind>/<key>, built by the distilts command line
(the path a user takes) into a temporary directory and renamed into place when complete, so a killed
build is redone and a finished one is reused. The key is a hash of the fixture's parameters.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("DISTILTS_BENCH_CACHE", ROOT / "benchmarks" / ".cache"))
SHARED = Path(os.environ.get("DISTILTS_SHARED", ROOT.parent / "shared"))
DATA = {"etth1": "data/ETTh1.csv", "m4-hourly": "data/m4", "epf": "data/epf"}
DISTILTS = [sys.executable, "-m", "distilts"]


class FixtureError(RuntimeError):
    """A fixture that cannot be built here (missing data, failed command): the message says what to do."""


def run_cli(args: list[str], log: Callable[[str], None] = print, env: dict[str, str] | None = None) -> str:
    """Run `distilts ARGS`; stdout, or FixtureError with the stderr tail."""
    cmd = [*DISTILTS, *map(str, args)]
    log("$ distilts " + " ".join(map(str, args)))
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if res.returncode != 0:
        tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-12:])
        raise FixtureError(f"`distilts {' '.join(map(str, args))}` failed ({res.returncode}):\n{tail}")
    return res.stdout


class Fixtures:
    """The cache of built fixtures (one per benchmark run; the directories outlive it)."""

    def __init__(self, root: Path = CACHE, log: Callable[[str], None] = print) -> None:
        self.root, self.log = Path(root), log

    def data(self, name: str) -> Path:
        """A dataset of ../shared (etth1, m4-hourly, epf); FixtureError when it is not there."""
        path = SHARED / DATA[name]
        if not path.exists():
            raise FixtureError(f"{name} is expected at {path} (../shared beside the repository; DISTILTS_SHARED to "
                               "point elsewhere)")
        return path

    def cached(self, kind: str, params: dict[str, Any], build: Callable[[Path], None]) -> Path:
        """The directory of fixture `kind` with `params`, built by `build(tmp_dir)` the first time."""
        key = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]
        final = self.root / kind / key
        if (final / "fixture.json").exists():
            return final
        tmp = final.with_name(f".{key}.{os.getpid()}.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.log(f"building fixture {kind} {params}")
        t0 = time.perf_counter()
        try:
            build(tmp)
            (tmp / "fixture.json").write_text(json.dumps({"kind": kind, "params": params, "build_s":
                                                          round(time.perf_counter() - t0, 1)}, default=str))
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def student(self, student: str = "dlinear", *, data: str = "etth1", lookback: int = 512, horizon: int = 96,
                epochs: int = 1, extra: tuple[str, ...] = ()) -> Path:
        """A student trained on ground truth only (`--no-kd --beta 0`): its cost, not its accuracy, is measured."""
        params = {"student": student, "data": data, "lookback": lookback, "horizon": horizon, "epochs": epochs,
                  "extra": list(extra)}

        def build(tmp: Path) -> None:
            run_cli(["distill", "--student", student, "--data", self.data(data), "--lookback", lookback,
                     "--horizon", horizon, "--epochs", epochs, "--no-kd", "--beta", "0", "--device", "cpu",
                     "--quiet", *extra, "--out", tmp / "student"], self.log)

        return self.cached("student", params, build) / "student"

    def artifact(self, student_dir: Path, target: str, *, int8: bool = False, extra: tuple[str, ...] = ()) -> Path:
        """`distilts compile STUDENT --target TARGET [--int8]`: the artifact directory."""
        params = {"student": str(student_dir), "target": target, "int8": int8, "extra": list(extra)}

        def build(tmp: Path) -> None:
            run_cli(["compile", student_dir, "--target", target, *(["--int8"] if int8 else []), *extra,
                     "--out", tmp / "artifacts"], self.log)

        out = self.cached("artifact", params, build) / "artifacts"
        [art] = [p for p in out.iterdir() if (p / "manifest.json").exists()]
        return art

    @contextlib.contextmanager
    def server(self, artifact: Path, *, extra: tuple[str, ...] = (), startup_s: float = 120.0) -> Iterator[str]:
        """`distilts serve ARTIFACT` on a free port for the block; yields its base URL."""
        port = free_port()
        proc = subprocess.Popen([*DISTILTS, "serve", str(artifact), "--port", str(port), "--no-access-log", *extra],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, proc, startup_s)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float) -> None:
    """Poll GET /health until 200; FixtureError with the server's stderr if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise FixtureError(f"the server exited ({proc.returncode}): {(proc.stderr.read() if proc.stderr else '')[-800:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise FixtureError(f"the server at {url} was not healthy after {timeout_s:.0f} s")
