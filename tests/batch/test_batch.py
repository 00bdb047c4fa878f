"""Batch forecasting of long-format data: every series, its own step, cutoffs, skipped ids, Ray = one process."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from compiled_factory import LOOKBACK
from distilts.cli import cli
from distilts.compile.pipeline import compile_student
from distilts.runtime.forecaster import Forecaster
from distilts.targets import resolve_job

H = 6


@pytest.fixture(scope="module")
def uni_art(tmp_path_factory):
    """A univariate (D=1) DLinear artifact: distilled on one column of the synthetic series."""
    out = tmp_path_factory.mktemp("uni") / "student"
    res = CliRunner().invoke(
        cli,
        [
            "distill",
            "--no-kd",
            "--beta",
            "0",
            "--student",
            "dlinear",
            "--columns",
            "load",
            "--lookback",
            str(LOOKBACK),
            "--horizon",
            str(H),
            "--epochs",
            "1",
            "--quiet",
            "--stride",
            "8",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    [art] = compile_student(
        out, [resolve_job("onnx")], tmp_path_factory.mktemp("uni-art"), calib_windows=16, verify_windows=16
    )
    return art.directory


def long_frame(names=("item_id", "timestamp", "target")) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    parts = []
    for sid, n, freq, start in (
        ("s1", 60, "h", "2021-01-01"),
        ("s2", 40, "15min", "2021-03-05 10:00"),
        ("s3", 10, "D", "2020-01-01"),
        ("s4", 33, "D", "2019-06-01"),
    ):
        ts = pd.date_range(start, periods=n, freq=freq)
        parts.append(pd.DataFrame({names[0]: sid, names[1]: ts, names[2]: rng.normal(size=n).cumsum() + 10}))
    return pd.concat(parts, ignore_index=True)


def _forecast(args):
    return CliRunner().invoke(cli, ["forecast", *map(str, args)])


def test_every_series_from_its_last_window_with_its_own_step(uni_art, tmp_path):
    df = long_frame()
    data = tmp_path / "series.parquet"
    df.to_parquet(data, index=False, row_group_size=16)
    out = tmp_path / "forecasts.parquet"
    res = _forecast([uni_art, "--data", data, "--out", out])
    assert res.exit_code == 0, res.output
    assert "skipped 1 series: s3: 10 values, needs 24" in res.output
    got = pd.read_parquet(out)
    assert list(got.columns) == ["item_id", "timestamp", "forecast"]
    assert sorted(got.item_id.unique()) == ["s1", "s2", "s4"]
    fc = Forecaster.load(uni_art)
    for sid, step in (("s1", "1h"), ("s2", "15min"), ("s4", "1D")):
        hist = df[df.item_id == sid]
        rows = got[got.item_id == sid]
        want = fc.predict(hist.target.to_numpy(np.float32)[-LOOKBACK:, None])[:, 0]
        np.testing.assert_allclose(rows.forecast.to_numpy(), want, rtol=1e-5, atol=1e-5)
        expected_t = hist.timestamp.iloc[-1] + pd.Timedelta(step) * np.arange(1, H + 1)
        assert (rows.timestamp.to_numpy().astype("datetime64[s]") == np.asarray(expected_t, "datetime64[s]")).all()

    # the same data as CSV in the Nixtla convention gives the same numbers
    nix = df.rename(columns={"item_id": "unique_id", "timestamp": "ds", "target": "y"})
    nix.to_csv(tmp_path / "series.csv", index=False)
    res = _forecast([uni_art, "--data", tmp_path / "series.csv", "--out", tmp_path / "f2.csv"])
    assert res.exit_code == 0, res.output
    other = pd.read_csv(tmp_path / "f2.csv")
    np.testing.assert_allclose(other.forecast.to_numpy(), got.forecast.to_numpy(), rtol=1e-6)


def test_cutoffs_backtest(uni_art, tmp_path):
    df = long_frame()
    data = tmp_path / "series.parquet"
    df.to_parquet(data, index=False)
    out = tmp_path / "bt.parquet"
    res = _forecast([uni_art, "--data", data, "--out", out, "--cutoff", "-6", "--cutoff", "2021-01-02 23:00"])
    assert res.exit_code == 0, res.output
    got = pd.read_parquet(out)
    assert "cutoff" in got.columns
    fc = Forecaster.load(uni_art)
    s1 = df[df.item_id == "s1"].reset_index(drop=True)
    for cut_row in (53, 47):  # -6: window ends 6 before the end; 2021-01-02 23:00 is row 47 of s1
        rows = got[(got.item_id == "s1") & (got.cutoff == s1.timestamp[cut_row])]
        want = fc.predict(s1.target.to_numpy(np.float32)[cut_row + 1 - LOOKBACK : cut_row + 1, None])[:, 0]
        np.testing.assert_allclose(rows.forecast.to_numpy(), want, rtol=1e-5, atol=1e-5)
    # s2 has no 2021-01-02 23:00 -> skipped for that cutoff only, and said so
    assert "s2: cutoff 2021-01-02 23:00:00 is outside it" in res.output


def test_bad_input_writes_nothing(uni_art, tmp_path):
    df = long_frame()
    df.loc[5, "timestamp"] = df.loc[4, "timestamp"]
    data = tmp_path / "dup.parquet"
    df.to_parquet(data, index=False)
    out = tmp_path / "f.parquet"
    res = _forecast([uni_art, "--data", data, "--out", out])
    assert res.exit_code != 0 and "series 's1' has duplicate timestamp" in res.output
    assert not out.exists() and not list(tmp_path.glob(".f.parquet*"))


def test_multivariate_artifact_refuses_long_data(tmp_path_factory, tmp_path):
    from artifact_factory import artifact

    data = tmp_path / "series.parquet"
    long_frame().to_parquet(data, index=False)
    res = _forecast([artifact(tmp_path_factory, "onnx"), "--data", data, "--out", tmp_path / "f.parquet"])
    assert res.exit_code != 0 and "univariate (D=1)" in res.output


def test_m4_wide_rows(uni_art, tmp_path):
    rng = np.random.default_rng(0)
    rows = [("H1", rng.normal(size=30)), ("H2", rng.normal(size=50))]
    width = max(len(v) for _, v in rows)
    with open(tmp_path / "Hourly-train.csv", "w") as f:
        f.write(",".join(f'"V{i + 1}"' for i in range(width + 1)) + "\n")
        for sid, v in rows:
            f.write(",".join([f'"{sid}"', *(f'"{x}"' for x in v)] + ['""'] * (width - len(v))) + "\n")
    res = _forecast([uni_art, "--data", tmp_path / "Hourly-train.csv", "--out", tmp_path / "f.parquet"])
    assert res.exit_code == 0, res.output
    got = pd.read_parquet(tmp_path / "f.parquet")
    assert list(got.columns) == ["id", "step", "forecast"] and got.step.tolist()[:H] == list(range(1, H + 1))
    want = Forecaster.load(uni_art).predict(rows[1][1][-LOOKBACK:, None].astype(np.float32))[:, 0]
    np.testing.assert_allclose(got[got.id == "H2"].forecast.to_numpy(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed (the ray extra)")
def test_ray_two_workers_write_the_same_numbers(uni_art, tmp_path):
    import ray

    df = long_frame()
    data = tmp_path / "series.parquet"
    df.to_parquet(data, index=False, row_group_size=16)
    _forecast([uni_art, "--data", data, "--out", tmp_path / "one.parquet"])
    from distilts.batch.ray_engine import forecast_ray, plan_ranges

    assert [(r["lo"], r["hi"]) for r in plan_ranges([data], "item_id", 50)] == [(0, 60), (60, 110), (110, 143)]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:  # ranges of ~50 rows (whole series) over 2 actors
        rep = forecast_ray(str(uni_art), data, tmp_path / "ray_out", workers=2, range_rows=50)
        res = _forecast([uni_art, "--data", data, "--out", tmp_path / "ray_cli", "--engine", "ray"])
    finally:
        ray.shutdown()
    assert res.exit_code == 0, res.output
    assert rep.skipped == [("s3", "10 values, needs 24")] and rep.series == 3 and rep.windows == 3
    one = pd.read_parquet(tmp_path / "one.parquet").sort_values(["item_id", "timestamp"]).reset_index(drop=True)
    for out in ("ray_out", "ray_cli"):
        two = pd.read_parquet(tmp_path / out).sort_values(["item_id", "timestamp"]).reset_index(drop=True)
        assert list(two.columns) == list(one.columns)
        pd.testing.assert_frame_equal(one, two)


def test_batch_forecast_never_imports_pandas(uni_art, tmp_path):
    """The runtime never imports pandas, not even through pyarrow (which does so when it can)."""
    import subprocess
    import sys

    data = tmp_path / "series.parquet"
    long_frame().to_parquet(data, index=False)
    code = (
        "import sys\n"
        "tried = []\n"
        "class Watch:\n"  # records every attempt (pyarrow imports pandas whenever it is installed)
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pandas': tried.append(name)\n"
        "sys.meta_path.insert(0, Watch())\n"
        "from distilts.batch.panel import forecast_file\n"
        "from distilts.runtime.forecaster import Forecaster\n"
        f"rep = forecast_file(Forecaster.load({str(uni_art)!r}), {str(data)!r}, {str(tmp_path / 'f.parquet')!r})\n"
        "assert not tried and 'pandas' not in sys.modules and rep.series == 3, rep.summary()\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
