"""`Forecaster.predict(window, future=, past=, static=, timestamps=)` on an artifact with covariate inputs:
raw values in, the calendar generated from the timestamps, and one-line errors naming the input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from covariate_factory import HORIZON, LOOKBACK, artifact, student_dir, window
from distilts.calendar import calendar_features
from distilts.compile.wrapper import wrap_student
from distilts.errors import DataError
from distilts.runtime import Forecaster
from distilts.students import load_student_dir


@pytest.fixture(scope="module")
def fc(tmp_path_factory):
    return Forecaster.load(artifact(tmp_path_factory, "onnx"))


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    return student_dir(tmp_path_factory).parent / "data.csv"


def test_predict_matches_the_student_on_raw_inputs(tmp_path_factory, fc, csv):
    w = window(csv, 600)
    y = fc.predict(**w)
    assert y.shape == (HORIZON, 1)
    model, config = load_student_dir(student_dir(tmp_path_factory))
    cal = calendar_features(w["timestamps"], config["covariates"]["calendar"])
    future = np.concatenate([w["future"], cal], axis=1)
    with torch.no_grad():
        ref = wrap_student(model, config)(
            torch.tensor(w["values"][None]),
            past=torch.tensor(w["past"][None]),
            future=torch.tensor(future[None]),
            static=torch.tensor(w["static"][None]),
        ).numpy()[0]
    np.testing.assert_allclose(y, ref, atol=1e-3)
    # a batch of two windows == each alone
    w2 = window(csv, 650)
    batch = {k: np.stack([w[k], w2[k]]) for k in w}
    yb = fc.predict(**batch)
    np.testing.assert_allclose(yb[1], fc.predict(**w2), atol=1e-5)
    assert fc.input_columns == {"x": ["load"], "past": ["hum"], "future": ["temp"], "static": ["site"]}


def test_the_covariates_change_the_forecast(fc, csv):
    w = window(csv, 600)
    warmer = dict(w, future=w["future"] + 5.0)
    assert not np.allclose(fc.predict(**w), fc.predict(**warmer))


def _error(fc, **kw) -> str:
    with pytest.raises(DataError) as e:
        fc.predict(**kw)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_bad_inputs_are_one_line_errors_naming_the_input(fc, csv):
    w = window(csv, 600)
    msg = _error(fc, **{k: v for k, v in w.items() if k != "future"})
    assert "'future' is missing" in msg and "temp" in msg and f"{LOOKBACK + HORIZON} x 1" in msg
    msg = _error(fc, **dict(w, future=w["future"][:LOOKBACK]))
    assert "'future' has shape (24, 1)" in msg and "lookback + horizon" in msg
    msg = _error(fc, **dict(w, past=np.zeros((LOOKBACK, 2))))
    assert "'past'" in msg and "hum" in msg
    bad = w["future"].copy()
    bad[27, 0] = np.nan
    msg = _error(fc, **dict(w, future=bad))
    assert "NaN" in msg and "'temp'" in msg and "step 27" in msg
    msg = _error(fc, **{k: v for k, v in w.items() if k != "timestamps"})
    assert "'timestamps' is missing" in msg and "calendar:hour_of_day" in msg
    msg = _error(fc, **dict(w, static=np.zeros(3)))
    assert "'static'" in msg and "site" in msg


def test_a_univariate_artifact_refuses_covariates(tmp_path_factory):
    from artifact_factory import artifact as uni_artifact

    fc = Forecaster.load(uni_artifact(tmp_path_factory, "onnx"))
    x = np.zeros((fc.lookback, len(fc.columns)), np.float32)
    msg = _error(fc, values=x, future=np.zeros((3, 1)))
    assert "takes no covariates" in msg and "future" in msg


def test_golden_self_check_and_version_cover_the_covariate_inputs(tmp_path_factory, tmp_path):
    import json
    import shutil

    from distilts.errors import ArtifactError

    src = artifact(tmp_path_factory, "onnx")
    art = shutil.copytree(src, tmp_path / "a")
    man = json.loads((art / "manifest.json").read_text())
    man["golden"]["input"]["future"][0][0][0] += 50.0  # a covariate golden value that no longer gives the output
    (art / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ArtifactError, match="golden"):
        Forecaster.load(art)
    man["version"] = 1  # a version 1 runtime's schema has no covariate inputs
    (art / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ArtifactError, match="needs manifest version 2"):
        Forecaster.load(art)


def test_profile_refuses_a_covariate_artifact_in_one_line(tmp_path_factory):
    from distilts.errors import DistiltsError
    from distilts.profile.profiler import profile_windows
    from distilts.runtime.manifest import read_manifest

    art = artifact(tmp_path_factory, "onnx")
    with pytest.raises(DistiltsError, match=r"also takes covariates \(past, future, static\)") as exc:
        profile_windows(read_manifest(art), {"path": None}, 10)
    assert "\n" not in str(exc.value)
