"""Long-format and M4 wide-row data: conventions, streaming, per-series split, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from distilts.data import load_dataset
from distilts.data.long import LongColumns, iter_blocks
from distilts.data.panel import load_panel, panel_windows, split_panel, too_short
from distilts.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
M4 = ROOT.parent / "shared" / "data" / "m4"


def long_frame(lengths=(30, 45, 12), freqs=("h", "h", "D"), names=("item_id", "timestamp", "target")) -> pd.DataFrame:
    """Series a, b, c of different lengths, start times and frequencies; value = 100*series + step."""
    parts = []
    for s, (n, f) in enumerate(zip(lengths, freqs)):
        ts = pd.date_range(f"2020-01-0{s + 1}", periods=n, freq=f)
        parts.append(pd.DataFrame({names[0]: "abc"[s], names[1]: ts, names[2]: 100.0 * s + np.arange(n)}))
    return pd.concat(parts, ignore_index=True)


def write(df: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False, row_group_size=7)  # row groups cut through series
    else:
        df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("names", [("item_id", "timestamp", "target"), ("unique_id", "ds", "y")])
def test_both_conventions_and_formats_read_the_same_panel(tmp_path, suffix, names):
    path = write(long_frame(names=names), tmp_path / f"d{suffix}")
    panel = load_panel(path, block_rows=5)  # tiny record batches: series span many of them
    assert panel.ids == ["a", "b", "c"]
    assert panel.lengths.tolist() == [30, 45, 12]
    np.testing.assert_array_equal(panel.series(1), 100 + np.arange(45, dtype=np.float32))
    assert panel.steps.tolist() == [3600, 3600, 86400]
    assert panel.starts[2] == np.datetime64("2020-01-03", "s").astype(np.int64)
    assert isinstance(panel.values, np.memmap)


def test_named_columns(tmp_path):
    df = long_frame().rename(columns={"item_id": "sensor", "timestamp": "when", "target": "kw"})
    df["other"] = "x"
    path = write(df, tmp_path / "d.csv")
    with pytest.raises(DataError, match="--id-column"):
        load_panel(path)
    panel = load_panel(path, LongColumns("sensor", "when", "kw"))
    assert panel.ids == ["a", "b", "c"] and panel.steps[0] == 3600


def test_m4_wide_rows(tmp_path):
    path = tmp_path / "Hourly-train.csv"
    path.write_text('"V1","V2","V3","V4"\n"H1","1","2","3"\n"H2","4","5",""\n')
    panel = load_panel(path)
    assert panel.ids == ["H1", "H2"] and panel.lengths.tolist() == [3, 2] and panel.starts is None
    np.testing.assert_array_equal(panel.series(1), [4, 5])


@pytest.mark.skipif(not (M4 / "Hourly-train.csv").exists(), reason="M4 data not present")
def test_m4_hourly_file():
    panel = load_panel(M4 / "Hourly-train.csv")
    test = load_panel(M4 / "Hourly-test.csv")
    assert len(panel) == 414 and panel.ids == test.ids
    assert panel.lengths.min() == 700 and panel.lengths.max() == 960 and set(test.lengths) == {48}


def test_per_series_split_windows_and_too_short():
    panel = load_panel_from([np.arange(20.0), np.arange(100.0, 140.0), np.arange(5.0)])
    sp = split_panel(panel, val=4, test=4)
    assert sp.part("test", panel.lengths)[0].tolist() == [16, 36, 1]
    w = panel_windows(panel, sp, "train", lookback=6, horizon=4, stride=2)
    assert w.skipped == ["c"]
    assert too_short(panel, 6, 4) == ["c"]
    x, y = w.batch(np.arange(len(w)))
    assert x.shape[1:] == (6, 1) and y.shape[1:] == (4, 1)
    # every window lies inside one series and its targets inside that series' train part
    assert np.all(np.diff(x[..., 0], axis=1) == 1) and np.all(x[:, -1, 0] + 1 == y[:, 0, 0])
    assert y[w.series_index == 0].max() == 11 and y[w.series_index == 1].max() == 131  # train ends at n - 8
    capped = panel_windows(panel, sp, "train", 6, 4, max_per_series=1)
    assert capped.series_index.tolist() == [0, 1] and capped.targets()[:, -1, 0].tolist() == [11, 131]
    test_w = panel_windows(panel, sp, "test", 6, 4)
    assert test_w.targets()[:, :, 0].tolist() == [[16, 17, 18, 19], [136, 137, 138, 139]]


def load_panel_from(series):
    from distilts.data.panel import Panel

    return Panel.from_series(list("abc"[: len(series)]), series)


def _bad(tmp_path, df, suffix=".csv"):
    path = write(df, tmp_path / f"bad{suffix}")
    with pytest.raises(DataError) as err:
        for _ in iter_blocks(path, block_rows=4):
            pass
    return str(err.value)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_bad_input_names_the_series_and_the_fix(tmp_path, suffix):
    df = long_frame()
    dup = pd.concat([df.iloc[:40], df.iloc[39:]], ignore_index=True)  # b's row repeated
    msg = _bad(tmp_path, dup, suffix)
    assert "'b'" in msg and "duplicate timestamp" in msg and "Remove" in msg

    unsorted = df.copy()
    unsorted.loc[[31, 32], "timestamp"] = unsorted.loc[[32, 31], "timestamp"].to_numpy()
    msg = _bad(tmp_path, unsorted, suffix)
    assert "'b'" in msg and "out of time order" in msg and "Sort" in msg

    mixed = df.copy()
    mixed.loc[35:, "timestamp"] = mixed.loc[35:, "timestamp"] + pd.Timedelta("30min") * np.arange(len(mixed) - 35)
    mixed = mixed[mixed.item_id != "c"]
    msg = _bad(tmp_path, mixed, suffix)
    assert "'b'" in msg and "mixed frequencies" in msg and "Resample" in msg

    text = df.astype({"target": str})
    text.loc[33, "target"] = "n/a?"
    msg = _bad(tmp_path, text, suffix)
    assert "'b'" in msg and "non-numeric" in msg and "n/a?" in msg

    apart = pd.concat([df.iloc[:10], df.iloc[30:40], df.iloc[10:30]], ignore_index=True)
    msg = _bad(tmp_path, apart, suffix)
    assert "'a'" in msg and "not contiguous" in msg and "Sort" in msg

    msg = _bad(tmp_path, df.drop(columns="item_id"), suffix)
    assert "no id column" in msg and "--id-column" in msg


def test_empty_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_panel(empty)
    header_only = tmp_path / "h.csv"
    header_only.write_text("item_id,timestamp,target\n")
    with pytest.raises(DataError, match="no rows"):
        load_panel(header_only)


def test_headerless_numeric_file_is_data(tmp_path, capsys):
    """The LTSF exchange_rate layout: 8 numeric columns, no header, no dates."""
    rng = np.random.default_rng(0)
    rows = np.round(rng.uniform(0.5, 2.0, size=(300, 8)), 6)
    path = tmp_path / "exchange_rate.csv"
    path.write_text("\n".join(",".join(f"{v:.6f}" for v in r) for r in rows) + "\n")
    ds = load_dataset(path)
    assert ds.columns == [str(i) for i in range(8)]
    assert len(ds.series) == 300
    np.testing.assert_allclose(ds.series.values[0], rows[0], rtol=1e-6)
    err = capsys.readouterr().err
    assert "no header row" in err and "no dates" in err and "'ratio' rule" in err and "train rows 0..209" in err


def test_headerless_file_with_dates(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("".join(f"2020-01-01 {h:02d}:00:00,{h}.5,{2 * h}\n" for h in range(24)))
    ds = load_dataset(path)
    assert ds.columns == ["1", "2"] and ds.series.dates[0] == np.datetime64("2020-01-01T00:00:00")
    assert ds.series.values[0].tolist() == [0.5, 0.0]
