"""compile/verify.py: a candidate that kills its runtime's process is refused, and compile lives on."""

from pathlib import Path

import numpy as np

from distilts.compile import verify

CONFIG = {"scaler": {"mean": [0.0], "std": [1.0]}}


def test_a_candidate_whose_runtime_aborts_is_refused_not_fatal(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(verify, "CRASH_PROBE", "import os; os.abort()")
    x, ref = np.zeros((3, 8, 1), np.float32), np.ones((3, 4, 1), np.float32)
    errs, pred = verify.measure("tflite", {tmp_path / "model.tflite": None}, x, ref, CONFIG)
    assert np.isnan(pred).all()
    assert not verify.within(errs, "int8")


def test_the_probe_gives_the_runtime_the_first_window_and_the_batch(monkeypatch) -> None:
    # the real probe, with run_file replaced by one that aborts unless it gets what measure() would run
    fake = (
        "import os\n"
        "def run_file(backend, path, batch, x):\n"
        "    rows = x if isinstance(x, dict) else {'x': x}\n"
        "    shapes = {k: v.shape for k, v in rows.items()}\n"
        "    want = {'x': (1, 8, 1), 'past': (1, 8, 2)} if isinstance(x, dict) else {'x': (1, 8, 1)}\n"
        "    want_batch = int(os.environ['WANT_BATCH'] or 0) or None\n"
        "    if (backend, path, batch, shapes) != ('tflite', 'm.tflite', want_batch, want) or rows['x'].any():\n"
        "        os.abort()\n"
    )
    probe = verify.CRASH_PROBE.replace("from distilts.runtime.batching import run_file", fake)
    assert probe != verify.CRASH_PROBE
    monkeypatch.setattr(verify, "CRASH_PROBE", probe)
    named = {"x": np.zeros((2, 8, 1)), "past": np.ones((2, 8, 2))}
    monkeypatch.setenv("WANT_BATCH", "1")
    assert verify.crash_signal("tflite", Path("m.tflite"), 1, named) is None
    monkeypatch.setenv("WANT_BATCH", "")
    assert verify.crash_signal("tflite", Path("m.tflite"), None, np.zeros((2, 8, 1))) is None
    assert verify.crash_signal("tflite", Path("m.tflite"), None, np.ones((2, 8, 1))) is not None  # the fake checks
