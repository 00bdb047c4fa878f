"""Global students: many series in long format -> PatchTST teacher -> pooled-window KD -> D=1 artifact."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from distilts.cli import cli
from distilts.data import load_dataset
from distilts.runtime.forecaster import Forecaster

L, H = 24, 6


@pytest.fixture(scope="module")
def panel_file(tmp_path_factory):
    """Eight daily-seasonal series of very different scales and lengths; one too short to train on."""
    rng = np.random.default_rng(0)
    parts = []
    for i, n in enumerate([90, 120, 70, 100, 80, 110, 95, 20]):
        t = np.arange(n)
        level, scale = 10.0 ** rng.uniform(0, 4), 10.0 ** rng.uniform(-1, 3)
        y = level + scale * (np.sin(2 * np.pi * t / 12) + 0.1 * rng.normal(size=n))
        parts.append(pd.DataFrame({"unique_id": f"u{i}", "ds": pd.date_range("2022-01-01", periods=n, freq="h"), "y": y}))
    path = tmp_path_factory.mktemp("panel") / "panel.parquet"
    pd.concat(parts).to_parquet(path, index=False)
    return path


def _cli(args):
    res = CliRunner().invoke(cli, [*map(str, args)])
    assert res.exit_code == 0, res.output
    return res


def test_panel_dataset_pools_windows_per_series(panel_file):
    ds = load_dataset(panel_file, max_windows_per_series=3)
    train = ds.windows("train", L, H)
    assert ds.columns == ["target"] and ds.normalized.shape[1] == 1
    assert train.skipped == ["u7"] and len(train) == 7 * 3
    x, y = train.batch(np.arange(len(train)))
    assert x.shape == (21, L, 1) and y.shape == (21, H, 1)
    # per-series z-score: every series is on the same scale whatever its level
    assert np.abs(x).max() < 5
    test = ds.windows("test", L, H)
    assert len(test) == 7  # one window per series: its last H values


def test_without_instance_normalization_the_panel_is_on_the_artifacts_common_scale(panel_file):
    """--no-revin: nothing in the artifact knows a series' own statistics, so training sees what it will be given:
    raw values over the panel's one scale, not the per-series z-score (which only RevIN makes harmless)."""
    ds = load_dataset(panel_file)
    ds.per_series_scaling = False
    x, _ = ds.windows("train", L, H).batch(np.arange(4))
    raw, _ = load_dataset(panel_file).windows("train", L, H).batch(np.arange(4))
    mean, std = ds.series_stats(H)
    assert np.all(mean == 0) and np.all(std == ds.scaler.std[0])
    assert not np.allclose(x, raw)  # the default per-series z-score differs
    series = ds.panel.series(0)
    np.testing.assert_allclose(x[0, :, 0], series[:L] / ds.scaler.std[0], rtol=1e-5)


def test_global_dlinear_distilled_from_a_panel_teacher(panel_file, tmp_path):
    teacher = tmp_path / "teacher"
    _cli(["train-teacher", "--data", panel_file, "--lookback", L, "--horizon", H, "--out", teacher, "--epochs", "1",
          "--d-model", "16", "--layers", "1", "--heads", "2", "--patch-length", "6", "--patch-stride", "6",
          "--device", "cpu"])
    base = ["distill", "--student", "dlinear", "--data", panel_file, "--lookback", L, "--horizon", H, "--epochs", "2",
            "--quiet", "--device", "cpu", "--cache-dir", tmp_path / "cache"]
    opted_out = _cli([*base, "--no-kd", "--beta", "0", "--no-revin", "--epochs", "1", "--out", tmp_path / "x"])
    assert "warning: instance normalization off (--no-revin)" in opted_out.output
    config = json.loads((tmp_path / "x" / "config.json").read_text())
    assert config["student"]["kwargs"]["revin"] is False and config["normalization"]["instance"] is None
    student = tmp_path / "student"  # no normalization flag: RevIN is the default for a global student on a panel
    res = _cli([*base, "--teacher", "patchtst", "--teacher-path", teacher, "--out", student])
    assert "instance normalization (RevIN): on by default" in res.output
    assert "1 series have no training window" in res.output and "u7" in res.output
    config = json.loads((student / "config.json").read_text())
    assert config["student"]["kwargs"]["revin"] is True and config["normalization"]["instance"] == "revin"
    assert "Instance normalization**: on by default" in (student / "card.md").read_text()
    assert config["n_variates"] == 1 and config["teacher"]["name"] == "patchtst"
    metrics = json.loads((student / "metrics.json").read_text())
    assert metrics["teacher"] is not None and np.isfinite(metrics["test"]["mse"])

    _cli(["compile", student, "--target", "onnx", "--out", tmp_path / "art"])
    art = next((tmp_path / "art").glob("onnx*"))
    out = tmp_path / "f.parquet"
    _cli(["forecast", art, "--data", panel_file, "--out", out])
    got = pd.read_parquet(out)
    assert sorted(got.unique_id.unique()) == [f"u{i}" for i in range(7)]
    # one artifact for any series: raw values in, raw-scale forecasts out, near each series' level
    df = pd.read_parquet(panel_file)
    fc = Forecaster.load(art)
    import torch

    from distilts.students import load_student_dir

    model, _ = load_student_dir(student)
    for sid in got.unique_id.unique():
        hist = df[df.unique_id == sid].y.to_numpy(np.float64)
        want = fc.predict(hist[-L:, None].astype(np.float32))[:, 0]
        np.testing.assert_allclose(got[got.unique_id == sid].forecast.to_numpy(), want, rtol=1e-5)
        # the artifact on raw values = the student on the series' own z-scored window, scaled back
        # (series of levels 1..1e4 and scales 0.1..1e3: RevIN's epsilon must not swamp the small ones)
        train = hist[: len(hist) - 2 * H]
        m, sd = train.mean(), train.std()
        with torch.no_grad():
            z = model(torch.tensor((hist[-L:] - m) / sd, dtype=torch.float32)[None, :, None])[0, :, 0].numpy()
        np.testing.assert_allclose(want, z * sd + m, rtol=1e-3, atol=1e-3 * sd)
    # distilts profile takes the panel: each series' test window, raw values in
    from distilts.profile.profiler import profile_windows
    from distilts.runtime.manifest import read_manifest

    wins = profile_windows(read_manifest(art), {"path": panel_file}, 50)
    assert wins.x_raw.shape == (7, L, 1) and wins.info["windows"] == 7  # one test window per series
    sid = df.unique_id.drop_duplicates().iloc[0]
    hist = df[df.unique_id == sid].y.to_numpy(np.float64)
    np.testing.assert_allclose(wins.x_raw[0, :, 0], hist[-L - H : -H], rtol=1e-5)
