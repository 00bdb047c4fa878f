"""The ensemble student: members reading the tails of one window, averaged; trained independently; one artifact."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from distilts.cli import cli
from distilts.distill.losses import point_loss
from distilts.distill.trainer import _forward
from distilts.errors import DistiltsError
from distilts.students.ensemble import Ensemble
from distilts.students.io import load_student_dir
from distilts.students.registry import build_student

L, H = 24, 6


def test_forecast_is_the_mean_of_members_reading_their_tails():
    torch.manual_seed(0)
    ens = Ensemble(L, H, 1, member="mlp", lookbacks=(8, 24), seeds=2, member_options={"d_model": 8}).eval()
    assert ens.views == (8, 8, 24, 24) and [m.lookback for m in ens.members] == [8, 8, 24, 24]
    x = torch.randn(5, L, 1)
    with torch.no_grad():
        want = sum(m(x[:, L - v :, :]) for m, v in zip(ens.members, ens.views, strict=True)) / 4
        got = ens(x)
    assert got.shape == (5, H, 1)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    # the newest 8 steps are all a short member sees: changing older steps moves only the long members
    x2 = x.clone()
    x2[:, :10] += 100.0
    with torch.no_grad():
        torch.testing.assert_close(ens.members[0](x2[:, -8:]), ens.members[0](x[:, -8:]))


def test_members_are_trained_on_their_own_losses():
    """The training forward gives each member's forecast; a member's gradient ignores the other members."""
    torch.manual_seed(0)
    ens = build_student("ensemble", L, H, 1, member="mlp", seeds=2, member_options={"d_model": 8, "batch_norm": False})
    ens.train()
    x, y = torch.randn(16, L, 1), torch.randn(16, H, 1)

    def member1_grad() -> torch.Tensor:
        ens.zero_grad()
        preds, _ = _forward(ens, None, x, None)
        torch.stack([point_loss(p, y, "mae") for p in preds]).mean().backward()
        return ens.members[1].hidden.weight.grad.clone()

    before = member1_grad()
    with torch.no_grad():
        ens.members[0].out.bias += 5.0  # a different member 0 leaves member 1's gradient as it was
    torch.testing.assert_close(member1_grad(), before)
    ens.eval()
    assert _forward(ens, None, x, None)[0].shape == (16, H, 1)  # evaluation: the averaged forecast


@pytest.mark.parametrize(
    "kwargs, words",
    [({"lookbacks": (8, 32)}, "1..24"), ({"seeds": 0}, "at least 1"), ({"member": "ensemble"}, "cannot be ensembles")],
)
def test_bad_ensembles_are_one_line_errors(kwargs, words):
    with pytest.raises(DistiltsError, match=words):
        build_student("ensemble", L, H, 1, **kwargs)


@pytest.fixture(scope="module")
def panel_file(tmp_path_factory):
    """Six hourly series of very different levels (1 to 10^4) and scales."""
    rng = np.random.default_rng(1)
    parts = []
    for i, n in enumerate([90, 120, 70, 100, 80, 110]):
        t = np.arange(n)
        level, scale = 10.0 ** rng.uniform(0, 4), 10.0 ** rng.uniform(-1, 3)
        y = level + scale * (np.sin(2 * np.pi * t / 12) + 0.1 * rng.normal(size=n))
        ds = pd.date_range("2022-01-01", periods=n, freq="h")
        parts.append(pd.DataFrame({"unique_id": f"u{i}", "ds": ds, "y": y}))
    path = tmp_path_factory.mktemp("panel") / "panel.parquet"
    pd.concat(parts).to_parquet(path, index=False)
    return path


def test_distilled_ensemble_is_one_student_and_one_microcontroller_artifact(panel_file, tmp_path):
    """--ensemble-lookbacks/--ensemble-seeds -> one student directory; cortex-m7 full int8 verifies, and its
    per-window I/O normalization serves a series of any level (a window x 1000 + 5 -> the forecast x 1000 + 5)."""
    out = tmp_path / "ens"
    res = CliRunner().invoke(cli, [
        "distill", "--student", "mlp", "-O", "d_model=8", "--data", str(panel_file), "--horizon", str(H),
        "--ensemble-lookbacks", "8,4H", "--ensemble-seeds", "2", "--loss", "mae", "--sampling", "series",
        "--no-kd", "--beta", "0", "--epochs", "1", "--quiet", "--device", "cpu", "--out", str(out)])
    assert res.exit_code == 0, res.output
    model, config = load_student_dir(out)
    assert config["lookback"] == 24 and config["student"]["name"] == "ensemble"
    kw = config["student"]["kwargs"]
    assert kw["member"] == "mlp" and kw["lookbacks"] == [8, 24] and kw["seeds"] == 2
    assert kw["member_options"]["d_model"] == 8 and kw["member_options"]["revin"] is True  # panel: RevIN per member
    assert config["normalization"]["instance"] == "revin" and len(model.members) == 4

    res = CliRunner().invoke(cli, ["compile", str(out), "--target", "cortex-m7"])
    assert res.exit_code == 0, res.output
    art = out / "artifacts" / "tflm-int8-cortex-m7"
    man = json.loads((art / "manifest.json").read_text())
    assert man["verification"]["passed"] is True and man["mcu"]["fits"]["flash_needed_bytes"] < 2 * 1024 * 1024
    assert man["io"]["instance"]["eps"] > 0
    assert "wmean[d]" in (art / "main.cc").read_text()  # the C example normalizes each window too

    from distilts.runtime.forecaster import Forecaster

    fc = Forecaster.load(art)
    x = (np.sin(np.arange(L) * 2 * np.pi / 12) + 3.0)[:, None].astype(np.float32)
    y = fc.predict(x)
    y_big = fc.predict(x * 1000.0 + 5.0)
    np.testing.assert_allclose(y_big, y * 1000.0 + 5.0, rtol=1e-3, atol=1e-2 * 1000)
    assert np.isfinite(y).all() and y.shape == (H, 1)


def test_median_combination_is_the_members_elementwise_median():
    from distilts.students.ensemble import median

    torch.manual_seed(1)
    for n in (1, 2, 5, 6):
        members = [torch.randn(3, H, 1) for _ in range(n)]
        torch.testing.assert_close(median(members), torch.quantile(torch.stack(members), 0.5, dim=0))
    ens = Ensemble(L, H, 1, lookbacks=(8, 16, 24), combine="median", member_options={"d_model": 8}).eval()
    x = torch.randn(4, L, 1)
    with torch.no_grad():
        torch.testing.assert_close(ens(x), torch.stack(ens.member_forecasts(x)).median(dim=0).values)


def test_student_ensemble_with_quantiles_gives_its_members_the_head(panel_file, tmp_path):
    out = tmp_path / "q"
    res = CliRunner().invoke(cli, [
        "distill", "--student", "ensemble", "-O", "seeds=2", "--quantiles", "0.1,0.5,0.9", "--data", str(panel_file),
        "--lookback", str(L), "--horizon", str(H), "--no-kd", "--beta", "0", "--epochs", "1", "--quiet",
        "--device", "cpu", "--out", str(out)])
    assert res.exit_code == 0, res.output
    model, config = load_student_dir(out)
    assert config["student"]["kwargs"]["member_options"]["quantiles"] == [0.1, 0.5, 0.9]
    assert model.levels == (0.1, 0.5, 0.9)
    with torch.no_grad():
        q = model(torch.randn(3, L, 1))
    assert q.shape == (3, H, 1, 3) and bool((q.diff(dim=-1) >= 0).all())  # a mean of sorted levels stays sorted
