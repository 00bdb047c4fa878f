"""Data stage: loading, validation errors, the standard split, the scaler, windows."""

from __future__ import annotations

import numpy as np
import pytest

from distilts.data import load_dataset, load_series, make_windows, standard_split, synthetic_series
from distilts.data.scaler import Scaler
from distilts.data.series import fill_missing
from distilts.errors import DataError

GOOD = "date,a,b\n2024-01-01 00:00:00,1,10\n2024-01-01 01:00:00,2,20\n2024-01-01 02:00:00,3,30\n"


# ---- real data: ETTh1 ------------------------------------------------------------------------
def test_etth1_standard_split_sizes(etth1_path):
    ds = load_dataset(etth1_path)
    assert ds.split.scheme == "ett-hourly"
    assert ds.split.sizes() == {"train": 8640, "val": 2880, "test": 2880}
    assert ds.columns == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    assert ds.series.freq == np.timedelta64(3600, "s")


def test_etth1_scaler_fitted_on_train_only(etth1_path):
    ds = load_dataset(etth1_path)
    train = ds.series.values[:8640].astype(np.float64)
    np.testing.assert_allclose(ds.scaler.mean, train.mean(0), rtol=1e-10)
    np.testing.assert_allclose(ds.scaler.std, train.std(0), rtol=1e-10)
    z = ds.normalized[:8640]
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-4)
    # the test part is NOT zero-mean under train statistics (no leakage)
    assert np.abs(ds.normalized[11520:14400].mean(0)).max() > 0.05
    # known value: OT's train mean on the standard split
    assert ds.scaler.mean[-1] == pytest.approx(17.1280, abs=1e-3)


def test_etth1_window_counts_follow_the_standard_protocol(etth1_path):
    ds = load_dataset(etth1_path)
    assert len(ds.windows("train", 512, 96)) == 8640 - 512 - 96 + 1
    assert len(ds.windows("val", 512, 96)) == 2880 - 96 + 1
    test = ds.windows("test", 512, 96)
    assert len(test) == 2880 - 96 + 1
    x, y = test.batch([0])
    # first test window: targets start at row 11520, lookback reaches into val
    np.testing.assert_array_equal(x[0], ds.normalized[11520 - 512 : 11520])
    np.testing.assert_array_equal(y[0], ds.normalized[11520 : 11520 + 96])


def test_columns_by_name(etth1_path):
    ds = load_dataset(etth1_path, columns=["OT", "HUFL"])
    assert ds.columns == ["OT", "HUFL"]
    assert ds.normalized.shape == (17420, 2)


# ---- windows -------------------------------------------------------------------------------
def test_windows_are_views_and_batches_match():
    values = np.arange(200, dtype=np.float32).reshape(100, 2)
    w = make_windows(values, (0, 70), lookback=10, horizon=5)
    assert np.shares_memory(w._view, values)
    assert len(w) == 70 - 10 - 5 + 1
    x, y = w.batch(np.array([0, 3]))
    np.testing.assert_array_equal(x[1], values[3:13])
    np.testing.assert_array_equal(y[0], values[10:15])
    strided = make_windows(values, (0, 70), 10, 5, stride=4)
    assert len(strided) == len(range(10, 66, 4))


def test_too_short_series_names_the_fix():
    values = np.zeros((50, 1), dtype=np.float32)
    with pytest.raises(DataError, match="too short for lookback 40 \\+ horizon 20"):
        make_windows(values, (0, 50), 40, 20)


def test_ett_split_needs_enough_rows():
    with pytest.raises(DataError, match="needs 14400 rows"):
        standard_split(1000, "ett-hourly", "ETTh1.csv")


def test_ratio_split():
    sp = standard_split(1000, "auto", "mydata.csv")
    assert sp.scheme == "ratio" and sp.sizes() == {"train": 700, "val": 100, "test": 200}


# ---- synthetic default -----------------------------------------------------------------------
def test_synthetic_is_deterministic_and_correlated():
    a, b = synthetic_series(seed=0), synthetic_series(seed=0)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.array_equal(a.values, synthetic_series(seed=1).values)
    assert a.values.shape == (8760, 4) and np.isfinite(a.values).all()
    corr = np.corrcoef(a.values.T)
    assert abs(corr[0, 3]) > 0.5  # load and price move together
    ds = load_dataset(None)
    assert ds.split.scheme == "ratio" and len(ds.windows("test", 512, 96)) > 0


# ---- bad input ---------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found.*--data"):
        load_series(tmp_path / "nope.csv")


def test_no_numeric_columns(write_csv):
    p = write_csv("date,name\n2024-01-01,x\n2024-01-02,y\n")
    with pytest.raises(DataError, match="no numeric columns"):
        load_series(p)


def test_unknown_column(write_csv):
    p = write_csv(GOOD)
    with pytest.raises(DataError, match="unknown column.*zzz.*Available: a, b"):
        load_series(p, columns=["a", "zzz"])


def test_non_numeric_column_chosen(write_csv):
    p = write_csv("date,a,label\n2024-01-01,1,x\n2024-01-02,2,y\n")
    with pytest.raises(DataError, match="label are not numeric"):
        load_series(p, columns=["a", "label"])


def test_nan_reported_with_count_and_fill_policy(write_csv):
    p = write_csv("date,a,b\n2024-01-01 00:00,1,\n2024-01-01 01:00,nan,20\n2024-01-01 02:00,3,inf\n")
    with pytest.raises(DataError) as err:
        load_series(p)
    msg = str(err.value)
    assert "3 missing or non-finite" in msg and "a: 1" in msg and "b: 2" in msg
    assert "row 2" in msg and "--fill" in msg
    ts = load_series(p, fill="ffill")
    np.testing.assert_array_equal(ts.values[:, 0], [1, 1, 3])
    np.testing.assert_array_equal(ts.values[:, 1], [20, 20, 20])  # leading gap takes next value
    assert ts.notes and "filled 3" in ts.notes[-1]


def test_non_monotonic_dates(write_csv):
    p = write_csv("date,a\n2024-01-02,1\n2024-01-01,2\n2024-01-03,3\n")
    with pytest.raises(DataError, match="not strictly increasing at row 3"):
        load_series(p)


def test_duplicate_dates(write_csv):
    p = write_csv("date,a\n2024-01-01,1\n2024-01-01,2\n")
    with pytest.raises(DataError, match="not strictly increasing.*duplicate"):
        load_series(p)


def test_date_gaps_refused_then_reindexed_with_fill(write_csv):
    p = write_csv("date,a\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n2024-01-01 04:00,5\n2024-01-01 05:00,6\n")
    with pytest.raises(DataError, match="1 gap\\(s\\) in the date column"):
        load_series(p)
    ts = load_series(p, fill="interpolate")
    assert len(ts) == 6
    np.testing.assert_allclose(ts.values[:, 0], [1, 2, 3, 4, 5, 6])


def test_malformed_row_and_empty(write_csv):
    with pytest.raises(DataError, match="row 3: 2 fields where the header has 3"):
        load_series(write_csv("date,a,b\n2024-01-01,1,2\n2024-01-02,1\n"))
    with pytest.raises(DataError, match="is empty"):
        load_series(write_csv("", name="empty.csv"))


def test_unsupported_extension(write_csv):
    with pytest.raises(DataError, match="unsupported file type"):
        load_series(write_csv(GOOD, name="data.xlsx"))


def test_unknown_fill_policy(write_csv):
    with pytest.raises(DataError, match="Unknown fill policy"):
        load_series(write_csv(GOOD), fill="magic")


def test_fill_policies():
    v = np.array([[np.nan], [1.0], [np.nan], [3.0], [np.nan]])
    np.testing.assert_array_equal(fill_missing(v, "ffill")[:, 0], [1, 1, 1, 3, 3])
    np.testing.assert_array_equal(fill_missing(v, "bfill")[:, 0], [1, 1, 3, 3, 3])
    np.testing.assert_array_equal(fill_missing(v, "interpolate")[:, 0], [1, 1, 2, 3, 3])
    np.testing.assert_array_equal(fill_missing(v, "zero")[:, 0], [0, 1, 0, 3, 0])


def test_parquet_roundtrip(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    dates = np.datetime64("2024-01-01T00:00:00") + np.arange(5) * np.timedelta64(1, "h")
    pq.write_table(pa.table({"date": dates, "x": np.arange(5.0)}), tmp_path / "d.parquet")
    ts = load_series(tmp_path / "d.parquet")
    assert ts.columns == ["x"] and ts.freq == np.timedelta64(3600, "s")


def test_scaler_roundtrip_and_constant_column():
    v = np.array([[1.0, 5.0], [3.0, 5.0]])
    s = Scaler.fit(v)
    assert s.std[1] == 1.0
    s2 = Scaler.from_dict(s.to_dict())
    np.testing.assert_allclose(s2.inverse(s2.transform(v)), v, rtol=1e-6)
