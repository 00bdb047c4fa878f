"""Heavy-tailed data on a microcontroller: spikes beyond the calibration range clip int8 activations; int16
activations (16x8) over a wider range bring the forecast back within tolerance, and beyond that compile
refuses in one line with the measured figures and the precision that passes."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch

if os.environ.get("CI") != "true":
    pytest.importorskip("tflite_micro")

from distilts.mcu import build as mcu
from distilts.mcu import precision
from distilts.students.dlinear import DLinear

L, H = 24, 6
CONFIG = {"lookback": L, "horizon": H, "columns": ["y"], "scaler": {"mean": [0.0], "std": [1.0]}}


def _case(spike: float):
    """A DLinear that forecasts the last value (a spike there reaches every step), calibrated on Gaussian
    windows, verified on windows whose last value is a spike of `spike` standard deviations."""
    student = DLinear(L, H, 1, moving_avg=5).eval()
    with torch.no_grad():
        for lin in (student.seasonal, student.trend):
            lin.weight.zero_()
            lin.weight[:, -1] = 1.0  # y_h = (x - MA)[L-1] + MA[L-1] = x[L-1]
            lin.bias.zero_()
    rng = np.random.default_rng(0)
    calib = rng.normal(size=(64, L, 1)).astype(np.float32)
    x = rng.normal(size=(8, L, 1)).astype(np.float32)
    x[::2, -1, 0] = spike
    with torch.no_grad():
        ref = student(torch.tensor(x)).numpy().astype(np.float64)
    return student, calib, x, ref


def test_spikes_beyond_the_int8_range_compile_with_int16_activations(tmp_path):
    student, calib, x, ref = _case(8.0)
    rec = mcu.build(student, CONFIG, calib, x, ref, tmp_path, mcu.Budget("cortex-m4f", 192 << 10, 1 << 20))
    assert rec["activations"] == "int16x8" and rec["io"]["input"]["dtype"] == "int16"
    assert rec["verification"]["max_abs_err"] < 0.05
    assert rec["int8_activations_errors"]["max_abs_err"] > 4  # int8 activations clip the spike
    assert "int16_t* in = interpreter->input(0)->data.i16" in (tmp_path / "main.cc").read_text()


def test_ordinary_data_keeps_int8_activations(tmp_path):
    student, calib, x, ref = _case(2.0)
    rec = mcu.build(student, CONFIG, calib, x, ref, tmp_path)
    assert rec["activations"] == "int8" and rec["io"]["input"]["dtype"] == "int8"


def test_spikes_beyond_every_integer_range_are_refused_with_figures(tmp_path):
    student, calib, x, ref = _case(60.0)
    with pytest.raises(precision.PrecisionRefused) as exc:
        mcu.build(student, CONFIG, calib, x, ref, tmp_path)
    msg = str(exc.value)
    assert "\n" not in msg and "int8 activations max abs" in msg and "int16 activations (16x8, 4x calibration" in msg
    assert "would pass: compile for `--target c`" in msg
    figures = [float(v) for v in re.findall(r"activations(?: \(16x8, 4x calibration range\))? max abs ([\d.]+)", msg)]
    assert len(figures) == 2 and figures[0] > 40 and figures[1] > 1  # the clipped spike, measured both ways
    assert not (tmp_path / "model_data.cc").exists()
