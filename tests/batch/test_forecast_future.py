"""`distilts forecast ART --data HISTORY --future FILE` (issue 28): long-format history with covariate columns
and the known-future covariates over the horizon give what `Forecaster.predict` gives; bad future files end
in one line naming the column and the first missing timestamp."""

from __future__ import annotations

import csv as csvlib

import numpy as np
import pytest
from click.testing import CliRunner

from covariate_factory import HORIZON, artifact, long_files, student_dir, window
from distilts.cli import cli
from distilts.runtime import Forecaster


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    return artifact(tmp_path_factory, "onnx")


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    return student_dir(tmp_path_factory).parent / "data.csv"


def _run(*args):
    return CliRunner().invoke(cli, ["forecast", *map(str, args)])


def test_forecast_future_equals_predict(art, wide, tmp_path):
    hist, fut = long_files(wide, tmp_path)
    out = tmp_path / "fc.csv"
    res = _run(art, "--data", hist, "--future", fut, "--out", out)
    assert res.exit_code == 0, res.output
    rows = list(csvlib.DictReader(out.open()))
    assert len(rows) == 2 * HORIZON and list(rows[0]) == ["unique_id", "ds", "forecast"]
    fc = Forecaster.load(art)
    for sid, end in (("S0", 600), ("S1", 650)):
        got = np.array([float(r["forecast"]) for r in rows if r["unique_id"] == sid])
        want = fc.predict(**window(wide, end))[:, 0]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    first = next(r for r in rows if r["unique_id"] == "S0")
    w = window(wide, 600)
    assert first["ds"] == str(w["timestamps"][-HORIZON]).replace("T", " ")


def _edit(path, fn):
    lines = path.read_text().splitlines()
    path.write_text("\n".join(fn(lines)) + "\n")


def _fails(art, hist, fut, tmp_path) -> str:
    res = _run(art, "--data", hist, "--future", fut, "--out", tmp_path / "bad.csv")
    assert res.exit_code != 0 and not (tmp_path / "bad.csv").exists()
    msg = res.output.strip().splitlines()
    assert len(msg) == 1, res.output
    return msg[0]


def test_bad_future_files_end_in_one_line(art, wide, tmp_path):
    hist, fut = long_files(wide, tmp_path)
    good = fut.read_text()
    # a known-future column missing from the future file
    _edit(fut, lambda ls: [",".join(line.split(",")[:2]) for line in ls])
    msg = _fails(art, hist, fut, tmp_path)
    assert "'temp'" in msg and "future.csv" in msg
    # the future does not cover the horizon: the first missing timestamp is named
    fut.write_text(good)
    _edit(fut, lambda ls: ls[:4])  # header + 3 of S0's 6 steps
    msg = _fails(art, hist, fut, tmp_path)
    w = window(wide, 600)
    assert "'temp'" in msg and str(w["timestamps"][-HORIZON + 3]).replace("T", " ") in msg and "'S0'" in msg
    # NaN in a covariate
    fut.write_text(good)
    _edit(fut, lambda ls: [ls[0], ls[1].rsplit(",", 1)[0] + ",", *ls[2:]])
    msg = _fails(art, hist, fut, tmp_path)
    assert "'temp'" in msg and "missing" in msg and str(w["timestamps"][-HORIZON]).replace("T", " ") in msg
    # a static value that varies within a series
    fut.write_text(good)
    _edit(hist, lambda ls: [*ls[:10], ls[10].rsplit(",", 1)[0] + ",8", *ls[11:]])
    msg = _fails(art, hist, fut, tmp_path)
    assert "'site'" in msg and "varies" in msg


def test_options_not_available_with_covariates_are_refused(art, wide, tmp_path):
    hist, fut = long_files(wide, tmp_path)
    res = _run(art, "--data", hist, "--future", fut, "--out", tmp_path / "o.csv", "--cutoff", "-3")
    assert res.exit_code != 0 and "--cutoff" in res.output and len(res.output.strip().splitlines()) == 1
