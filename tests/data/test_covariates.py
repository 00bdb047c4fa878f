"""Covariates in the data stage: roles, calendar features, window blocks, train statistics, and the
one-line errors (column and first offending timestamp) for bad covariates."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from distilts.calendar import CALENDAR_FEATURES, calendar_columns, calendar_features, calendar_spec
from distilts.cli import cli
from distilts.data import DataSpec, load_dataset
from distilts.data.covariates import check_future_frame
from distilts.errors import DataError

N = 240


def wide_csv(path, nan_at: int | None = None, static_change: int | None = None):
    """A wide hourly file: target y, past p, known-future f1/f2, static s (constant unless `static_change`)."""
    rng = np.random.default_rng(0)
    dates = np.datetime64("2024-01-01T00:00") + np.arange(N) * np.timedelta64(1, "h")
    f1, f2, p = rng.normal(size=N), rng.normal(10.0, 2.0, size=N), rng.normal(size=N)
    y = f1 + 0.1 * rng.normal(size=N)
    s = np.full(N, 3.0)
    if static_change is not None:
        s[static_change:] = 4.0
    rows = ["date,y,p,f1,f2,s"]
    for i in range(N):
        cell = "" if i == nan_at else f"{f1[i]:.6f}"
        rows.append(f"{str(dates[i]).replace('T', ' ')}:00,{y[i]:.6f},{p[i]:.6f},{cell},{f2[i]:.6f},{s[i]}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_calendar_features_values():
    spec = calendar_spec("BE")
    assert spec["features"] == list(CALENDAR_FEATURES)
    assert calendar_columns(spec) == [f"calendar:{f}" for f in CALENDAR_FEATURES]
    t = np.array(["2024-12-25T10:00", "2024-12-23T23:00", "2024-01-01T00:00"], dtype="datetime64[s]")
    got = calendar_features(t, spec)
    # Christmas 2024 is a Wednesday (2), a Belgian holiday; 23 Dec a Monday, not a holiday; 1 Jan a holiday
    np.testing.assert_allclose(got[0], [10 / 23 - 0.5, 2 / 6 - 0.5, 0.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(got[1], [0.5, -0.5, 0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(got[2], [-0.5, 0.0 / 6 - 0.5, -0.5, 1.0], atol=1e-6)
    assert got.dtype == np.float32
    assert calendar_spec(None)["features"] == ["hour_of_day", "day_of_week", "month"]
    with pytest.raises(DataError, match="country 'XX'"):
        calendar_spec("XX")


def test_wide_roles_blocks_and_train_stats(tmp_path):
    path = wide_csv(tmp_path / "w.csv")
    ds = load_dataset(path, past_covariates=["p"], future_covariates=["f1", "f2"], static_covariates=["s"], calendar="")
    assert ds.columns == ["y"]  # covariates are not targets
    cov = ds.covariates
    assert cov.dims == (1, 3, 1)  # 10 days: weekday and month are dropped (their cycles are not covered twice)
    assert cov.future_columns == ["f1", "f2", "calendar:hour_of_day"]
    assert cov.calendar_dropped == ["day_of_week", "month"]
    lo, hi = ds.split.train
    f2 = cov.future[:, 1]
    assert cov.stats["future"]["mean"][1] == pytest.approx(f2[lo:hi].mean())  # train split only
    assert cov.stats["future"]["mean"][1] != pytest.approx(f2.mean())
    assert cov.stats["future"]["mean"][2:] == [0.0] and cov.stats["future"]["std"][2:] == [1.0]
    L, H = 24, 6
    w = ds.windows("train", L, H, 5)
    blocks = w.covariate_batch([0, 3])
    assert blocks["past"].shape == (2, L, 1) and blocks["future"].shape == (2, L + H, 3)
    assert blocks["static"].shape == (2, 1)
    s = w.starts[3]
    np.testing.assert_allclose(blocks["future"][1, L:, 0], cov.normalized["future"][s : s + H, 0])
    np.testing.assert_allclose(blocks["past"][1, :, 0], cov.normalized["past"][s - L : s, 0])
    hours = (ds.series.dates[s - L : s + H].astype("datetime64[h]").astype(np.int64)) % 24
    np.testing.assert_allclose(blocks["future"][1, :, 2], hours / 23 - 0.5, atol=1e-6)
    univariate = load_dataset(path, columns=["y"])
    assert univariate.data_hash != ds.data_hash  # the covariates used key caches and students


def test_long_format_with_static_table(tmp_path):
    rows = ["unique_id,ds,y,f"]
    for sid in ("A", "B"):
        for i in range(60):
            rows.append(
                f"{sid},2024-01-01 {i % 24:02d}:00:00,{i},{i * 2}".replace("2024-01-01", f"2024-01-{1 + i // 24:02d}")
            )
    data = tmp_path / "long.csv"
    data.write_text("\n".join(rows) + "\n")
    table = tmp_path / "static.csv"
    table.write_text("unique_id,area\nB,7\nA,5\n")
    ds = load_dataset(data, future_covariates=["f"], static_covariates=["area"], static_table=str(table))
    w = ds.windows("train", 12, 4)
    cov = ds.covariates
    np.testing.assert_allclose(cov.static[:, 0], [5, 7])
    last = len(w) - 1
    blocks = w.covariate_batch([0, last])
    assert blocks["future"].shape == (2, 16, 1)
    raw_static = blocks["static"][:, 0] * cov.stats["static"]["std"][0] + cov.stats["static"]["mean"][0]
    np.testing.assert_allclose(raw_static, [5, 7], atol=1e-5)  # window 0 is series A, the last one series B


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"future_covariates": ["nope"]}, "no covariate column 'nope'"),
        ({"columns": ["y", "f1"], "future_covariates": ["f1"]}, "'f1' is both a target and a covariate"),
        ({"past_covariates": ["f1"], "future_covariates": ["f1"]}, "covariate 'f1' is given as past and as future"),
    ],
)
def test_bad_covariates(tmp_path, kwargs, message):
    path = wide_csv(tmp_path / "w.csv")
    with pytest.raises(DataError, match=message):
        load_dataset(path, **kwargs)


def test_nan_and_varying_static_name_column_and_timestamp(tmp_path):
    with pytest.raises(DataError, match=r"covariate 'f1' has 1 missing .* first at 2024-01-02 03:00:00"):
        load_dataset(wide_csv(tmp_path / "nan.csv", nan_at=27), future_covariates=["f1"])
    with pytest.raises(
        DataError, match=r"static covariate 's' varies within a series \(first change at 2024-01-03 05:00:00"
    ):
        load_dataset(wide_csv(tmp_path / "st.csv", static_change=53), static_covariates=["s"])


def test_cli_error_is_one_line_and_writes_nothing(tmp_path):
    path = wide_csv(tmp_path / "nan.csv", nan_at=27)
    out = tmp_path / "student"
    res = CliRunner().invoke(
        cli, ["distill", "--data", str(path), "--future-covariates", "f1", "--no-kd", "--out", str(out)]
    )
    assert res.exit_code != 0
    assert "covariate 'f1'" in res.output and "2024-01-02 03:00:00" in res.output
    assert "Traceback" not in res.output
    assert not out.exists()


def test_dataspec_carries_covariates(tmp_path):
    spec = DataSpec.of({"path": str(tmp_path / "x.csv"), "future_covariates": ["a", "b"], "calendar": "FR"})
    assert spec.future_covariates == ("a", "b")
    assert spec.args()["future_covariates"] == ["a", "b"] and spec.args()["calendar"] == "FR"


def test_future_frame_check():
    t = np.datetime64("2024-01-01T00:00") + np.arange(4) * np.timedelta64(1, "h")
    want = t[1:] + np.timedelta64(1, "h")  # 02:00 .. 04:00, but the file stops at 03:00
    with pytest.raises(DataError, match="no known-future column 'f2' .* 2024-01-01 02:00:00"):
        check_future_frame({"f1": np.ones(4)}, t, ["f1", "f2"], want, "future.csv")
    with pytest.raises(DataError, match="does not cover the horizon: 'f1' has no value at 2024-01-01 04:00:00"):
        check_future_frame({"f1": np.ones(4)}, t, ["f1"], want, "future.csv")
    with pytest.raises(DataError, match="covariate 'f1' has 1 missing .* first at 2024-01-01 03:00:00"):
        check_future_frame({"f1": np.array([1, 1, 1, np.nan])}, t, ["f1"], t[1:], "future.csv")
    check_future_frame({"f1": np.ones(4)}, t, ["f1"], t[1:], "future.csv")


def test_calendar_keeps_the_features_whose_cycle_the_span_covers_twice():
    from distilts.calendar import calendar_spec, covered_spec

    spec = calendar_spec("BE")
    start = np.datetime64("2020-01-01T00:00")
    for days, kept in ((1, []), (2, ["hour_of_day"]), (20, ["hour_of_day", "day_of_week"]), (800, spec["features"])):
        t = start + np.arange(days * 24 + 1) * np.timedelta64(1, "h")
        got, dropped = covered_spec(spec, t)
        assert got["features"] == kept and dropped == [f for f in spec["features"] if f not in kept]


def test_a_saved_student_reads_its_own_calendar_features_whatever_the_span(tmp_path):
    path = wide_csv(tmp_path / "w.csv")
    exact = load_dataset(path, future_covariates=["f1"], calendar="", calendar_features=["hour_of_day", "month"])
    assert exact.covariates.future_columns == ["f1", "calendar:hour_of_day", "calendar:month"]
    assert exact.covariates.calendar_dropped == []
