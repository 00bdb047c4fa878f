"""The C artifact of a quantile DLinear: the non-crossing head in C matches the student; the C online
calibration step gives the same offsets as distilts.runtime.calibration."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from distilts.mcu import c_artifact, ctoolchain, quantile_c
from distilts.runtime.calibration import OnlineCalibrator
from distilts.students.dlinear import DLinear

L, H, D = 24, 6, 3
LEVELS = (0.1, 0.25, 0.5, 0.75, 0.9)
CONFIG = {"scaler": {"mean": [1.0, -2.0, 30.0], "std": [0.5, 2.0, 8.0]}}


@pytest.fixture(scope="module")
def case():
    torch.manual_seed(0)
    student = DLinear(L, H, D, moving_avg=5, quantiles=LEVELS, quantile_rank=3).eval()
    with torch.no_grad():
        student.quantile_head.gaps.weight.normal_(0, 0.3)  # gaps that depend on the window, some |.| flips
        student.quantile_head.gaps.bias.normal_(0, 0.3)
    mean, std = (np.asarray(CONFIG["scaler"][k]) for k in ("mean", "std"))
    z = np.random.default_rng(1).normal(size=(8, L, D)).cumsum(1) * 0.3
    with torch.no_grad():
        ref = student(torch.tensor(z, dtype=torch.float32)).numpy().astype(np.float64)  # [B, H, D, Q]
    ref = ref.transpose(0, 2, 1, 3) * std[:, None, None] + mean[:, None, None]  # artifact layout [B, D, H, Q]
    return student, (z * std + mean).astype(np.float32), ref


def test_quantile_c_matches_the_student(case, tmp_path):
    student, x, ref = case
    model = c_artifact.linear_model(student, CONFIG)
    assert isinstance(model, quantile_c.QuantileModel) and model.output_shape == (D, H, len(LEVELS))
    np.testing.assert_allclose(model.predict(x), ref, rtol=1e-5, atol=1e-4)  # the float64 reference of the C code
    cross = all(shutil.which(c.compiler) for c in ctoolchain.CROSS.values()) or os.environ.get("CI") == "true"
    for precision in ("fp32", "int8"):
        src = tmp_path / precision
        src.mkdir()
        c_artifact.write_sources(model, precision, src, "t")
        assert "distilts_calibrate_update" in (src / "model.h").read_text()
        if cross:
            checks = c_artifact.verify(src, src, model, x, ref, CONFIG, precision)
            assert set(checks) == {"x86_64", "aarch64", "armhf"}
        else:
            lib = ctoolchain.build_shared(src, src / "lib.so")
            y = ctoolchain.run_shared(lib, x, model.out_steps).reshape(len(x), *model.output_shape)
            from distilts.compile import verify as ver

            checks = {"x86_64": ver.errors(y, ref, *(np.asarray(CONFIG["scaler"][k]) for k in ("mean", "std")))}
        limit = 1e-4 if precision == "fp32" else 5e-2
        assert all(c["max_abs_err"] < limit and c["crossings"] == 0 for c in checks.values()), checks


def test_c_calibration_step_equals_the_python_one(case, tmp_path):
    student, x, _ = case
    model = c_artifact.linear_model(student, CONFIG)
    c_artifact.write_sources(model, "fp32", tmp_path, "t")
    lib = ctoolchain.build_shared(tmp_path, tmp_path / "lib.so")
    rng = np.random.default_rng(2)
    n = 60
    forecasts = rng.normal(size=(n, *model.output_shape)).astype(np.float32) * 2  # [n, D, H, Q] raw
    forecasts.sort(axis=-1)
    observed = (rng.normal(size=(n, H, D)) * 3 + 1).astype(np.float32)
    observed[rng.random(observed.shape) < 0.2] = np.nan  # not observed yet: skipped by both
    off_c, last_c = quantile_c.run_calibration(lib, model, forecasts, observed)
    cal = OnlineCalibrator(LEVELS, H, CONFIG["scaler"]["std"])
    for f, y in zip(forecasts, observed, strict=True):
        cal.update(f.transpose(1, 0, 2), y)  # Python works on [H, D, Q]
    assert np.abs(off_c).max() > 0.1  # the offsets moved
    np.testing.assert_array_equal(off_c, cal.offsets.transpose(1, 0, 2))
    np.testing.assert_array_equal(last_c, cal.apply(forecasts[-1].transpose(1, 0, 2)).transpose(1, 0, 2))


def test_tflite_micro_main_carries_the_same_calibration_step(tmp_path):
    """main.cc of a quantile TFLite Micro / Ethos-U artifact: its calibration block, built as C, equals Python."""
    from distilts.mcu import tflm

    pv = {"scale": [0.1] * D, "zero_point": [0.0] * D}
    io = {"input": {"shape": [1, L, D], "dtype": "int8", "per_variate": pv},
          "output": {"shape": [1, D, H, len(LEVELS)], "dtype": "int8", "per_variate": pv},
          "scaler": CONFIG["scaler"]}
    main = tflm.example(["AddFullyConnected"], io, 1024, LEVELS)
    assert "out: kVariates x kHorizon x kLevels" in main
    block = main[main.index("// Online interval calibration"):]
    (tmp_path / "model.c").write_text("#include <stdint.h>\n" + block)  # build_shared compiles model.c
    lib = ctoolchain.build_shared(tmp_path, tmp_path / "lib.so")
    rng = np.random.default_rng(3)
    shape = (D, H, len(LEVELS))
    forecasts = np.sort(rng.normal(size=(40, *shape)).astype(np.float32), axis=-1)
    observed = rng.normal(size=(40, H, D)).astype(np.float32) * 2
    model = type("M", (), {"output_shape": shape})()  # run_calibration needs only the state's shape
    off_c, _ = quantile_c.run_calibration(lib, model, forecasts, observed)
    cal = OnlineCalibrator(LEVELS, H, CONFIG["scaler"]["std"])
    for f, y in zip(forecasts, observed, strict=True):
        cal.update(f.transpose(1, 0, 2), y)
    np.testing.assert_array_equal(off_c, cal.offsets.transpose(1, 0, 2))


def test_calibrated_widening_reaches_the_c_head_and_the_int8_form(tmp_path):
    """The intervals' split-conformal widening (added to the gaps after |.|) is in the C code and in the ReLU head
    full-int8 kernels take, so every artifact forecasts the calibrated levels."""
    from distilts.mcu.quantile_int8 import int8_form

    torch.manual_seed(0)
    student = DLinear(L, H, D, moving_avg=5, quantiles=LEVELS, quantile_rank=3).eval()
    z = torch.tensor(np.random.default_rng(2).normal(size=(4, L, D)).cumsum(1) * 0.3, dtype=torch.float32)
    with torch.no_grad():
        plain = student(z).numpy()
        student.quantile_head.set_widening(np.linspace(0.0, 0.5, H * (len(LEVELS) - 1)))
        wide = student(z).numpy()
        relu = int8_form(student)(z).numpy().transpose(0, 2, 1, 3)
    assert np.all(wide[..., 0] <= plain[..., 0]) and np.all(wide[..., -1] >= plain[..., -1])
    np.testing.assert_allclose(wide[..., 2], plain[..., 2])  # the median is untouched
    np.testing.assert_allclose(relu, wide, rtol=1e-5, atol=1e-5)
    model = c_artifact.linear_model(student, CONFIG)
    mean, std = (np.asarray(CONFIG["scaler"][k]) for k in ("mean", "std"))
    ref = wide.astype(np.float64).transpose(0, 2, 1, 3) * std[:, None, None] + mean[:, None, None]
    x = (z.numpy() * std + mean).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), ref, rtol=1e-5, atol=1e-4)
    c_artifact.write_sources(model, "fp32", tmp_path, "t")
    assert "GAP_WIDEN" in (tmp_path / "model.c").read_text()
    lib = ctoolchain.build_shared(tmp_path, tmp_path / "lib.so")
    y = ctoolchain.run_shared(lib, x, model.out_steps).reshape(len(x), *model.output_shape)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-3)
