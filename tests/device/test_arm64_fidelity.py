"""Acceptance: every format x precision artifact forecasts on (emulated) arm64 what it forecasts here.

Each artifact is loaded here and in ONE emulated arm64 process with `Forecaster.load` (checksums + the golden
self-check of that CPU's ISA), then forecasts the same raw windows; the largest difference in normalized units
(|x86 - arm64| / scaler std) must be within the artifact's golden tolerance. Marked `acceptance`
(`pytest -m acceptance`); tests/device/test_arm64.py is the shorter check the default run keeps.
"""

from __future__ import annotations

import numpy as np
import pytest

from compiled_factory import compiled

pytestmark = pytest.mark.acceptance
FORMATS = ("onnx", "openvino", "tflite")


@pytest.mark.parametrize("student", ["dlinear", "itransformer"])
def test_every_artifact_forecasts_the_same_on_emulated_arm64(tmp_path_factory, tmp_path, student):
    from distilts.device import arm64
    from distilts.runtime import Forecaster

    dev = arm64.find_device(arm64.BACKENDS)
    if dev is None:
        pytest.skip("the emulated arm64 device is not built: scripts/arm64-device.sh build")
    arts = [compiled(tmp_path_factory, f, int8=p, student=student) for f in FORMATS for p in (False, True)]
    tasks, here = [], []
    for i, art in enumerate(arts):
        fc = Forecaster.load(art)
        x = np.random.default_rng(i).standard_normal((16, fc.lookback, len(fc.columns))).astype(np.float32)
        np.save(tmp_path / f"x{i}.npy", x)
        here.append((fc, fc.predict(x)))
        tasks.append({"id": str(art), "kind": "artifact", "dir": str(art), "x": str(tmp_path / f"x{i}.npy"),
                      "out": str(tmp_path / f"y{i}.npy")})
    res = arm64.run_tasks(dev, tasks, list(arm64.BACKENDS))
    for (fc, y86), t in zip(here, tasks, strict=True):
        r = res["tasks"][t["id"]]
        assert r["ok"], (t["id"], r.get("error"))
        diff = np.abs(np.load(t["out"]).astype(np.float64) - y86) / fc.manifest.scaler_std
        assert float(diff.max()) <= fc.manifest.atol / float(np.max(fc.manifest.scaler_std)) + 1e-6, t["id"]
