"""The DLinear covariate branch end to end (issue 28): `distilts distill --future-covariates ... --calendar` on a wide
CSV, `compile_student` to ONNX, and `Forecaster.predict` with raw covariates and timestamps == the PyTorch student."""

from __future__ import annotations

import json

import numpy as np
import torch
from click.testing import CliRunner

from covariate_factory import HORIZON, LOOKBACK, window, write_csv
from distilts.calendar import calendar_features
from distilts.cli import cli
from distilts.compile.pipeline import compile_student
from distilts.compile.wrapper import wrap_student
from distilts.runtime import Forecaster
from distilts.students import load_student_dir
from distilts.targets import resolve_job


def test_dlinear_with_known_future_covariates_compiles_and_forecasts(tmp_path):
    csv = write_csv(tmp_path / "data.csv")
    student = tmp_path / "dlinear"
    res = CliRunner().invoke(
        cli,
        [
            "distill",
            "--no-kd",
            "--beta",
            "0",
            "--student",
            "dlinear",
            "--data",
            str(csv),
            "--columns",
            "load",
            "--future-covariates",
            "temp",
            "--calendar",
            "--lookback",
            str(LOOKBACK),
            "--horizon",
            str(HORIZON),
            "--epochs",
            "1",
            "--stride",
            "4",
            "--quiet",
            "--out",
            str(student),
        ],
    )
    assert res.exit_code == 0, res.output
    [art] = compile_student(student, [resolve_job("onnx")], tmp_path / "art", verify_windows=16)
    man = json.loads((art.directory / "manifest.json").read_text())
    assert [i["name"] for i in man["covariates"]["inputs"]] == ["future"]
    assert man["verification"]["passed"] and man["verification"]["rel_mse"] < 1e-6
    fc = Forecaster.load(art.directory)
    assert fc.input_columns == {"x": ["load"], "future": ["temp"]}
    w = window(csv, 600)
    y = fc.predict(w["values"], future=w["future"], timestamps=w["timestamps"])
    model, config = load_student_dir(student)
    future = np.concatenate([w["future"], calendar_features(w["timestamps"], config["covariates"]["calendar"])], 1)
    with torch.no_grad():
        ref = wrap_student(model, config)(torch.tensor(w["values"][None]), future=torch.tensor(future[None]))
    np.testing.assert_allclose(y, ref.numpy()[0], atol=1e-3)
    # the covariate branch is in the graph: a warmer future changes the forecast
    assert not np.allclose(y, fc.predict(w["values"], future=w["future"] + 5, timestamps=w["timestamps"]))
