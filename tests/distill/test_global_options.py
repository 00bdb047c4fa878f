"""Global training options for many series (the M4 recipe): --loss, --sampling series, --lookback auto,
--ensemble-lookbacks parsing; fast, on synthetic panels, through the command line where it matters."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from distilts.cli import cli
from distilts.data import load_dataset
from distilts.distill.cli import parse_lookbacks
from distilts.distill.config import auto_lookback
from distilts.distill.losses import kd_loss, mase_scale, point_loss, smape_loss
from distilts.distill.trainer import epoch_order
from distilts.errors import DistiltsError

H = 6


@pytest.fixture(scope="module")
def panel_file(tmp_path_factory):
    """Hourly series of lengths 60..300 (one long series holds most windows), levels 1 to 10^4."""
    rng = np.random.default_rng(2)
    parts = []
    for i, n in enumerate([300, 60, 70, 80, 90]):
        t = np.arange(n)
        level, scale = 10.0 ** rng.uniform(1, 4), 10.0 ** rng.uniform(0, 2)
        y = level + scale * (np.sin(2 * np.pi * t / 12) + 0.1 * rng.normal(size=n))
        ds = pd.date_range("2022-01-01", periods=n, freq="h")
        parts.append(pd.DataFrame({"unique_id": f"u{i}", "ds": ds, "y": y}))
    path = tmp_path_factory.mktemp("panel") / "panel.parquet"
    pd.concat(parts).to_parquet(path, index=False)
    return path


def _distill(panel_file, out, *extra):
    res = CliRunner().invoke(cli, [
        "distill", "--student", "mlp", "-O", "d_model=8", "--data", str(panel_file), "--horizon", str(H),
        "--no-kd", "--beta", "0", "--quiet", "--device", "cpu", "--out", str(out), *map(str, extra)])
    return res


def test_series_sampling_draws_equal_windows_from_every_series(panel_file):
    w = load_dataset(panel_file).windows("train", 24, H)
    counts = np.bincount(w.series_index)
    assert counts[0] > 5 * counts[1:].max()  # the long series holds most windows
    order = epoch_order(w, "series", np.random.default_rng([0, 3]))
    assert len(order) == len(w)
    drawn = np.bincount(w.series_index[order], minlength=len(counts))
    assert drawn.max() - drawn.min() <= 1  # every series alike, whatever its length
    again = epoch_order(w, "series", np.random.default_rng([0, 3]))
    np.testing.assert_array_equal(order, again)  # a pure function of (seed, epoch): resume stays exact
    assert sorted(epoch_order(w, "window", np.random.default_rng(0))) == list(range(len(w)))


def test_series_sampling_on_one_table_is_a_one_line_error(tmp_path):
    res = CliRunner().invoke(cli, ["distill", "--student", "mlp", "-O", "d_model=8", "--lookback", "24", "--horizon",
                                   "6", "--no-kd", "--beta", "0", "--epochs", "1", "--max-train-windows", "16",
                                   "--sampling", "series", "--quiet", "--device", "cpu", "--out", str(tmp_path / "s")])
    assert res.exit_code != 0 and "--sampling window" in res.output and "Traceback" not in res.output


def test_losses_are_the_documented_figures():
    pred, y = torch.tensor([[[1.0], [3.0]]]), torch.tensor([[[2.0], [1.0]]])
    x = torch.tensor([[[0.0], [2.0], [0.0]]])  # mean absolute step 2
    assert point_loss(pred, y, "mse").item() == pytest.approx(2.5)
    assert point_loss(pred, y, "mae").item() == pytest.approx(1.5)
    assert point_loss(pred, y, "mase", x).item() == pytest.approx(0.75)
    assert mase_scale(x * 7 + 3).item() == pytest.approx(14.0)  # scaled with the window: shift-free
    assert smape_loss(pred, y).item() == pytest.approx(0.5 * (2 / 3 + 2 * 2 / 4))
    w = torch.tensor([0.25, 0.75])
    assert kd_loss(pred, y, w, "mae").item() == pytest.approx(0.25 * 1 + 0.75 * 2)


def test_mae_loss_stops_early_on_val_mae_and_records_it(panel_file, tmp_path):
    res = _distill(panel_file, tmp_path / "mae", "--lookback", 24, "--loss", "mae", "--sampling", "series",
                   "--epochs", 3, "--patience", 1)
    assert res.exit_code == 0, res.output
    config = json.loads((tmp_path / "mae" / "config.json").read_text())
    assert config["train"]["loss"] == "mae" and config["train"]["sampling"] == "series"
    log = [json.loads(line) for line in (tmp_path / "mae" / "train_log.jsonl").read_text().splitlines()]
    best = min(range(len(log)), key=lambda i: log[i]["val_mae"])
    assert config["train"]["best_epoch"] == best + 1


def test_smape_loss_trains_on_a_panel(panel_file, tmp_path):
    res = _distill(panel_file, tmp_path / "smape", "--lookback", 24, "--loss", "smape", "--epochs", 1)
    assert res.exit_code == 0, res.output
    log = json.loads((tmp_path / "smape" / "train_log.jsonl").read_text().splitlines()[0])
    assert 0 < log["train_sup"] < 2  # sMAPE / 100 lies in [0, 2]


def test_auto_lookback_follows_the_horizon_season_and_data(panel_file, tmp_path):
    assert auto_lookback(48, None, None) == 336  # 7H, the longest N-BEATS lookback
    assert auto_lookback(10, 24, None) == 72  # 70 rounded up to whole days
    assert auto_lookback(48, 24, 200) == 200  # cut to what the data leaves room for
    res = _distill(panel_file, tmp_path / "auto", "--lookback", "auto", "--epochs", 1)
    assert res.exit_code == 0, res.output
    assert "lookback auto: 48 steps" in res.output  # 7 x 6 = 42 -> two 24-hour seasons (freq from the dates)
    assert json.loads((tmp_path / "auto" / "config.json").read_text())["lookback"] == 48


def test_ensemble_lookbacks_parse_steps_horizons_and_nbeats():
    assert parse_lookbacks("96,2H,3.5H", 48) == [96, 96, 168]
    assert parse_lookbacks("nbeats", 48) == [96, 144, 192, 240, 288, 336]
    for bad in ("0", "xH", ","):
        with pytest.raises(DistiltsError, match="ensemble-lookbacks"):
            parse_lookbacks(bad, 48)


def test_lookback_that_disagrees_with_the_ensemble_is_refused(panel_file, tmp_path):
    res = _distill(panel_file, tmp_path / "e", "--lookback", 30, "--ensemble-lookbacks", "12,24", "--epochs", 1)
    assert res.exit_code != 0 and "drop --lookback" in res.output and "Traceback" not in res.output
