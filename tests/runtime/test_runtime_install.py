"""Runtime-only installs: forecast and profile work without torch.

The normal test blocks `import torch` (and transformers, pandas) with a meta-path finder installed
through sitecustomize, so the block also holds in profile's worker subprocesses. The slow test
(DISTILTS_SLOW=1) builds a fresh venv per backend extra with pip and runs the commands in it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from artifact_factory import artifact

ROOT = Path(__file__).resolve().parents[2]
BLOCKER = textwrap.dedent("""
    import sys
    BLOCKED = ("torch", "transformers", "pandas", "distilts.compile")

    class _Block:
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, _Block())
""")


def _blocked_env(tmp_path: Path) -> dict:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT / "src")])}
    return env


@pytest.mark.parametrize("backend", ["onnx", "openvino", "tflite"])
def test_forecast_and_profile_without_torch(tmp_path, tmp_path_factory, backend):
    art = artifact(tmp_path_factory, backend)
    env = _blocked_env(tmp_path)
    check = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert check.returncode != 0 and "blocked" in check.stderr  # the blocker works
    out = tmp_path / "f.csv"
    res = subprocess.run([sys.executable, "-m", "distilts.cli", "forecast", str(art), "--out", str(out)],
                         env=env, capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert out.read_text().splitlines()[0] == "date,load,temperature,solar,price"
    if backend != "onnx":
        return
    res = subprocess.run([sys.executable, "-m", "distilts.cli", "profile", str(art), "--out", str(tmp_path / "p"),
                          "--windows", "8", "--iters", "10", "--budget", "0.2"],
                         env=env, capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rep = json.loads((tmp_path / "p" / "profile.json").read_text())
    assert rep["models"][0]["modules"] == ["onnxruntime"]


# --- slow: a real fresh venv per extra --------------------------------------------------------------
slow = pytest.mark.skipif(os.environ.get("DISTILTS_SLOW") != "1", reason="set DISTILTS_SLOW=1 (pip-installs 3 venvs)")


@slow
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnx", "openvino", "tflite"])
def test_fresh_runtime_venv(tmp_path, tmp_path_factory, backend):
    art = artifact(tmp_path_factory, backend)
    venv = tmp_path / f"rt-{backend}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", f"{ROOT}[{backend}]"], check=True, timeout=1200)
    listed = subprocess.run([str(py), "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True)
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert not names & {"torch", "transformers", "pandas", "matplotlib"}, names
    exe = venv / "bin" / "distilts"
    res = subprocess.run([str(exe), "forecast", str(art), "--out", str(tmp_path / "f.csv")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([str(exe), "profile", str(art), "--out", str(tmp_path / "p"), "--windows", "20",
                          "--budget", "1"], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "p" / "profile.json").exists() and (tmp_path / "p" / "profile.md").exists()
    assert not (tmp_path / "p" / "profile.png").exists()  # no matplotlib: the report says how to get it
    assert "distilts[plot]" in (tmp_path / "p" / "profile.md").read_text()
