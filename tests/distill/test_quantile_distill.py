"""`distilts distill --quantiles`: a quantile student end to end (ground truth only here; the
teacher-quantile path is in tests/distill/test_quantile_cache.py), and bad levels refused with nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from distilts.cli import cli

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

SMALL = ["--lookback", "48", "--horizon", "12", "--epochs", "1", "--max-train-windows", "300", "--stride", "8",
         "--quiet"]


def test_quantile_student_ground_truth_only(tmp_path):
    out = tmp_path / "q"
    res = CliRunner().invoke(cli, ["distill", "--student", "dlinear", "--no-kd", "--beta", "0",
                                   "--quantiles", "0.1,0.5,0.9", "--quantile-rank", "4", *SMALL, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "Probabilistic test metrics" in res.output
    config = json.loads((out / "config.json").read_text())
    assert config["student"]["kwargs"]["quantiles"] == [0.1, 0.5, 0.9]
    assert config["loss"]["supervised"] == "pinball" and config["loss"]["levels"] == [0.1, 0.5, 0.9]
    metrics = json.loads((out / "metrics.json").read_text())
    q = metrics["test"]["quantiles"]
    assert q["levels"] == [0.1, 0.5, 0.9] and q["crossings"] == 0
    assert 0.0 < q["interval"]["coverage"] <= 1.0 and q["interval"]["mean_width"] > 0 and q["wql"] > 0
    assert "WQL" in (out / "card.md").read_text()
    from distilts.students import load_student_dir

    model, _ = load_student_dir(out)
    y = model(torch.randn(2, 48, 4))
    assert y.shape == (2, 12, 4, 3) and bool(torch.all(torch.diff(y, dim=-1) >= 0))
    # split-conformal calibration on the validation windows (on by default): covers at least nominal there,
    # only widens, and travels with the student (config.json -> the head of the reloaded model)
    iv = config["intervals"]
    assert iv["val_coverage_after"]["0.8"] >= 0.8 - 1e-9 and min(iv["widen"]) >= 0
    assert len(iv["widen"]) == 12 * 2 and model.quantile_head.widen is not None
    assert "calibrated" in (out / "card.md").read_text()
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert "val_wql" in log[0] and np.isfinite(log[0]["val_wql"])


@pytest.mark.parametrize("levels, words", [("0.1,0.5,1.5", "between 0 and 1"), ("0.9,0.5,0.1", "increasing"),
                                           ("0.1,0.5,0.5", "repeated"), ("0.2,0.8", "median")])
def test_bad_levels_write_nothing(tmp_path, levels, words):
    out = tmp_path / "bad"
    res = CliRunner().invoke(cli, ["distill", "--no-kd", "--beta", "0", "--quantiles", levels, *SMALL,
                                   "--out", str(out)])
    assert res.exit_code != 0 and words in res.output
    assert not out.exists()


def test_quantile_rank_without_quantiles_is_refused(tmp_path):
    res = CliRunner().invoke(cli, ["distill", "--no-kd", "--beta", "0", "--quantile-rank", "4", *SMALL,
                                   "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and "--quantiles" in res.output


def test_calibration_can_be_turned_off(tmp_path):
    out = tmp_path / "q"
    res = CliRunner().invoke(cli, ["distill", "--student", "dlinear", "--no-kd", "--beta", "0", "--quantiles",
                                   "0.1,0.5,0.9", "--no-calibrate-intervals", *SMALL, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "intervals" not in json.loads((out / "config.json").read_text())
