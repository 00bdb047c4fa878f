"""The C artifact of a folded DLinear: generated, compiled natively (ctypes) and for aarch64/armhf (qemu-user)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from distilts.mcu import c_artifact, cgen, ctoolchain
from distilts.students.dlinear import DLinear

L, H, D = 24, 6, 3
CONFIG = {"scaler": {"mean": [1.0, -2.0, 30.0], "std": [0.5, 2.0, 8.0]}}


def _cross_ready() -> bool:
    return all(shutil.which(c.compiler) for c in ctoolchain.CROSS.values())


def _windows(n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    mean, std = (np.asarray(CONFIG["scaler"][k]) for k in ("mean", "std"))
    z = np.random.default_rng(1).normal(size=(n, L, D)).cumsum(1) * 0.3
    return (z * std + mean).astype(np.float32), mean, std


@pytest.mark.parametrize("individual,revin", [(False, False), (True, True)])
def test_c_matches_student_natively_and_emulated(tmp_path, individual, revin):
    if not _cross_ready() and os.environ.get("CI") != "true":
        pytest.skip("cross compilers not installed (scripts/setup.sh installs them)")
    torch.manual_seed(0)
    student = DLinear(L, H, D, moving_avg=5, individual=individual, revin=revin).eval()
    x, mean, std = _windows()
    with torch.no_grad():
        ref = student(torch.tensor((x - mean) / std, dtype=torch.float32)).numpy() * std + mean
    model = c_artifact.linear_model(student, CONFIG)
    for precision in ("fp32", "int8"):
        src = tmp_path / precision
        src.mkdir()
        files = c_artifact.write_sources(model, precision, src, "t")
        assert "forecast(const float *window, float *out)" in (src / "model.h").read_text()
        checks = c_artifact.verify(src, src, model, x, ref, CONFIG, precision)
        assert set(checks) == {"x86_64", "aarch64", "armhf"} and files[0] == "model.c"
        limit = 1e-5 if precision == "fp32" else 2e-2
        assert all(c["max_abs_err"] < limit for c in checks.values()), checks
        assert checks["armhf"]["emulated"] and "qemu-arm" in checks["armhf"]["how"]


def test_int8_source_holds_int8_weights_and_is_smaller():
    torch.manual_seed(0)
    model = c_artifact.linear_model(DLinear(L, H, D, moving_avg=5).eval(), CONFIG)
    src8 = cgen.source(model, "int8", "t")
    assert "static const int8_t WEIGHT_Q" in src8 and "static const float WEIGHT[" not in src8
    assert c_artifact.flash_bytes(model, "int8") < c_artifact.flash_bytes(model, "fp32") / 2


def test_non_linear_student_is_refused():
    from distilts.students.itransformer import ITransformer

    with pytest.raises(c_artifact.NotFoldable, match="ITransformer"):
        c_artifact.linear_model(ITransformer(L, H, D, d_model=8, n_heads=2, e_layers=1, d_ff=8), CONFIG)


def test_compile_c_target_end_to_end(tmp_path_factory):
    """`distilts compile --target c`: sources + manifest; the Python runtime refuses it with the reason."""
    if not _cross_ready() and os.environ.get("CI") != "true":
        pytest.skip("cross compilers not installed (scripts/setup.sh installs them)")
    from compiled_factory import compiled

    from distilts.errors import ArtifactError
    from distilts.runtime import Forecaster
    from distilts.runtime.manifest import read_manifest

    art = compiled(tmp_path_factory, "c")
    assert sorted(p.name for p in art.iterdir()) == ["main.c", "manifest.json", "model.c", "model.h"]
    with pytest.raises(ArtifactError, match="C source artifact"):
        read_manifest(art)
    import json

    man = json.loads((art / "manifest.json").read_text())
    assert set(man["architectures"]) == {"x86_64", "aarch64", "armhf"} and man["verification"]["rel_mse"] < 1e-6
    from distilts.mcu import metal

    if metal.unavailable() is None or os.environ.get("CI") == "true":  # bare metal: emulated Cortex-M4/M7/M55
        for board in ("cortex-m4f", "cortex-m7"):
            e = man["bare_metal"]["boards"][board]
            assert e["bit_identical_to_host"] and e["flash_bytes"] > 0 and e["ram_bytes"] > 0
            assert e["instructions_per_forecast"] > 0 and e["latency_estimate"]["estimate"] is True
    else:
        assert "skipped" in man["bare_metal"]
    with pytest.raises(ArtifactError):
        Forecaster.load(art)
