"""`distilts distill` with covariates: a target driven by a known-future column is learned with it and not
without it; the student directory records the covariates block; KD and FTA run unchanged; eval reads it back."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from distilts.cli import cli

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

L, H, N = 24, 6, 700
TINIER = {
    "num_hidden_layers": 1,
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "num_experts": 2,
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Hourly target y_t = 2 f_t + noise, with f white noise: only a known-future f can forecast it."""
    rng = np.random.default_rng(1)
    f = rng.normal(size=N)
    y = 2.0 * f + 0.05 * rng.normal(size=N)
    dates = np.datetime64("2024-01-01T00:00") + np.arange(N) * np.timedelta64(1, "h")
    path = tmp_path_factory.mktemp("cov") / "driven.csv"
    lines = ["date,y,f"] + [
        f"{str(d).replace('T', ' ')}:00,{a:.6f},{b:.6f}" for d, a, b in zip(dates, y, f, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory) -> str:
    from distilts.teachers.timemoe import save_random_checkpoint

    return str(save_random_checkpoint(tmp_path_factory.mktemp("timemoe") / "tinier", config_overrides=TINIER, seed=4))


def distill(out, data, *extra):
    args = ["distill", "--data", str(data), "--lookback", str(L), "--horizon", str(H), "--device", "cpu"]
    res = CliRunner().invoke(cli, [*args, "--quiet", "--out", str(out), "--epochs", "15", *map(str, extra)])
    assert res.exit_code == 0, res.output
    return json.loads((out / "config.json").read_text()), json.loads((out / "metrics.json").read_text())


def test_known_future_covariate_is_learned(tmp_path, data):
    cfg, with_cov = distill(
        tmp_path / "cov",
        data,
        "--student",
        "dlinear",
        "--future-covariates",
        "f",
        "--calendar",
        "--no-kd",
        "--lr",
        "0.01",
    )
    _, without = distill(tmp_path / "plain", data, "--student", "dlinear", "--columns", "y", "--no-kd", "--lr", "0.01")
    cov = cfg["covariates"]
    # weeks of data: the month's yearly cycle is not covered twice, so the calendar drops it (and says so)
    assert cov["future"] == ["f", "calendar:hour_of_day", "calendar:day_of_week"]
    assert cov["calendar_dropped"] == ["month"]
    assert "calendar features month dropped" in (tmp_path / "cov" / "card.md").read_text()
    assert cov["past"] == [] and cov["static"] == [] and cov["calendar"]["country"] is None
    assert len(cov["stats"]["future"]["mean"]) == 3
    assert cfg["student"]["kwargs"]["n_future"] == 3 and cfg["columns"] == ["y"]
    assert cfg["data"]["future_covariates"] == ["f"] and cfg["data"]["calendar"] == ""
    assert with_cov["test"]["mse"] < 0.3 * without["test"]["mse"]
    assert "**Covariates**: future f, calendar:hour_of_day" in (tmp_path / "cov" / "card.md").read_text()
    res = CliRunner().invoke(cli, ["eval", str(tmp_path / "cov"), "--data", str(data), "--json"])
    assert res.exit_code == 0, res.output
    again = json.loads((tmp_path / "cov" / "metrics.json").read_text())
    assert again["test"]["mse"] == pytest.approx(with_cov["test"]["mse"], rel=1e-5)


@pytest.mark.parametrize("student", ["tide", "tsmixer"])
def test_kd_and_fta_run_unchanged(tmp_path, data, teacher_dir, student):
    sizes = {
        "tide": ["-O", "hidden_size=16", "-O", "decoder_output_dim=2", "-O", "final_decoder_hidden=4"],
        "tsmixer": ["-O", "n_block=1", "-O", "ff_dim=8", "-O", "hidden=4"],
    }[student]
    cfg, metrics = distill(
        tmp_path / student,
        data,
        "--student",
        student,
        *sizes,
        "--past-covariates",
        "f",
        "--teacher",
        "timemoe",
        "--teacher-path",
        teacher_dir,
        "--beta",
        "0.5",
        "--stride",
        "8",
        "--cache-dir",
        tmp_path / "cache",
    )
    assert cfg["covariates"]["past"] == ["f"] and cfg["student"]["kwargs"]["n_past"] == 1
    assert cfg["loss"]["kd"] and cfg["loss"]["fta"]
    assert "univariate" in cfg["covariates"]["teacher"]
    assert np.isfinite(metrics["test"]["mse"])
