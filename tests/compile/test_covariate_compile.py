"""Artifacts with covariate inputs (issue 28): named inputs x, past, future, static in ONNX, OpenVINO and
TFLite, fp32 and int8 (int8: test_covariate_compile_int8.py, to keep each file short), each verified against the
PyTorch student; the manifest's covariates block."""

from __future__ import annotations

import json

import numpy as np
import pytest

from covariate_factory import HORIZON, LOOKBACK, artifact, student_dir
from distilts.compile.pipeline import compile_student
from distilts.compile.verify import errors, within
from distilts.compile.wrapper import torch_predict, wrap_student
from distilts.errors import DataError
from distilts.runtime import Forecaster
from distilts.runtime.batching import run_padded
from distilts.students import load_student_dir
from distilts.targets import resolve_job

FP32 = [("onnx", False), ("openvino", False), ("tflite", False)]


@pytest.mark.parametrize("fmt,int8", FP32, ids=[f for f, _ in FP32])
def test_artifact_takes_named_inputs_and_matches_the_student(tmp_path_factory, fmt, int8):
    check_artifact(tmp_path_factory, fmt, int8)


def check_artifact(tmp_path_factory, fmt: str, int8: bool) -> None:
    """The manifest's covariates block and golden inputs, the int8 candidates, and the artifact's forecasts
    through the runtime against the PyTorch student on held-out windows."""
    d = artifact(tmp_path_factory, fmt, int8)
    man = json.loads((d / "manifest.json").read_text())
    assert man["version"] == 2
    cov = man["covariates"]
    assert [i["name"] for i in cov["inputs"]] == ["past", "future", "static"]
    assert cov["inputs"][1]["shape"][1:] == [LOOKBACK + HORIZON, 4]
    assert cov["inputs"][1]["columns"] == ["temp", "calendar:hour_of_day", "calendar:day_of_week", "calendar:month"]
    assert cov["stats"]["past"] == {"mean": [60.0], "std": [7.0]}
    assert list(man["golden"]["input"]) == ["x", "past", "future", "static"]
    assert man["verification"]["passed"] and man["verification"]["windows"] == 16
    if int8:
        cands = man["quantization"]["candidates"]
        assert len(cands) >= 3 and "full-int8" not in cands  # full-int8 folds one input's scaler: not offered
        finite = [m for m, e in cands.items() if np.isfinite(e["rel_mse"])]
        assert len(finite) >= 3, cands  # the calibrated candidates ran on the named inputs too
    # the artifact through the runtime == the PyTorch student (scaler and covariate stats folded in)
    model, config = load_student_dir(student_dir(tmp_path_factory))
    fc = Forecaster.load(d)
    from distilts.compile.data import load_compile_data

    inputs = load_compile_data(config, None).windows("test", 8)
    ref = torch_predict(wrap_student(model, config), inputs)
    sess = fc.sessions[fc.batch_sizes[0]]  # the windows' future block already holds the calendar columns
    got = np.concatenate([run_padded(sess, {k: v[i : i + 1] for k, v in inputs.items()}) for i in range(8)])
    # held to the compile stage's own contract (normalized by the scaler: int8 error depends on the CPU's kernels)
    errs = errors(got, ref, np.asarray(config["scaler"]["mean"]), np.asarray(config["scaler"]["std"]))
    assert within(errs, "int8" if int8 else "fp32"), errs


def test_univariate_manifest_unchanged(tmp_path_factory):
    """No covariates key -> version 1, one array as golden input, no covariates block (as before)."""
    from compiled_factory import compiled

    man = json.loads((compiled(tmp_path_factory, "onnx") / "manifest.json").read_text())
    assert man["version"] == 1 and "covariates" not in man
    assert isinstance(man["golden"]["input"], list)


@pytest.mark.parametrize("target", ["c", "tflm"])
def test_single_input_formats_refuse_in_one_line(tmp_path_factory, tmp_path, target):
    job = resolve_job(target, int8=target == "tflm")
    with pytest.raises(DataError) as e:
        compile_student(student_dir(tmp_path_factory), [job], tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "covariates" in msg and target in msg
    assert not any(tmp_path.iterdir())
