"""One data specification: a path, a DataFrame, a dict or None all become the same DataSpec, and every
function that reads data takes it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from distilts.data import DataSpec, load_dataset
from distilts.errors import DataError


def _frame(n: int = 400) -> pd.DataFrame:
    t = np.arange(n)
    return pd.DataFrame({"date": pd.date_range("2024-01-01", periods=n, freq="h"),
                         "a": np.sin(2 * np.pi * t / 24), "b": np.cos(2 * np.pi * t / 24) + 0.01 * t})


def test_every_form_becomes_one_spec(tmp_path):
    assert DataSpec.of(None) == DataSpec()
    assert DataSpec.of(tmp_path / "x.csv") == DataSpec(path=str(tmp_path / "x.csv"))
    spec = DataSpec.of({"path": "x.csv", "columns": ["a"], "split": "ratio", "fill": None})
    assert spec == DataSpec(path="x.csv", columns=("a",), split="ratio")
    assert DataSpec.of(spec) is spec
    assert spec.args()["columns"] == ["a"] and spec.args()["path"] == "x.csv"
    with pytest.raises(DataError, match="unknown data option.*'colums'"):
        DataSpec.of({"colums": ["a"]})
    with pytest.raises(DataError, match="cannot read data from a list"):
        DataSpec.of([1, 2, 3])


def test_a_dataframe_reads_as_its_csv_would(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILTS_CACHE_DIR", str(tmp_path / "cache"))
    frame = _frame()
    spec = DataSpec.of(frame)
    assert spec.path is not None and DataSpec.of(frame).path == spec.path  # written once, named by content
    frame.to_csv(tmp_path / "f.csv", index=False)
    a, b = spec.load(), load_dataset(tmp_path / "f.csv")
    assert a.columns == b.columns == ["a", "b"]
    np.testing.assert_allclose(a.normalized, b.normalized, rtol=1e-6)


def test_distill_and_eval_take_a_dataframe(tmp_path, monkeypatch):
    import distilts

    monkeypatch.setenv("DISTILTS_CACHE_DIR", str(tmp_path / "cache"))
    spec = distilts.DistillSpec(student="dlinear", teacher="patchtst", data=_frame(), lookback=48, horizon=12,
                                stride=4, train=distilts.TrainConfig(epochs=1, device="cpu", kd=False))
    config, metrics, _ = distilts.distill_student(spec, tmp_path / "student", progress=False, log=lambda s: None)
    assert config["columns"] == ["a", "b"] and np.isfinite(metrics["test"]["mse"])
    again = distilts.evaluate_student(tmp_path / "student", spec.data, device="cpu", write=False, progress=False)
    assert again["test"]["mse"] == pytest.approx(metrics["test"]["mse"], rel=1e-6)
