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


def test_the_probe_passes_a_candidate_that_runs(monkeypatch) -> None:
    monkeypatch.setattr(verify, "CRASH_PROBE", "import sys, numpy as np; np.load(sys.argv[4])")
    named = {"x": np.zeros((2, 8, 1)), "past": np.ones((2, 8, 2))}
    assert verify.crash_signal("tflite", Path("m.tflite"), 1, named) is None
    assert verify.crash_signal("tflite", Path("m.tflite"), None, np.zeros((2, 8, 1))) is None
