"""teachers/student.py: a distilts student directory as a teacher (teacher-assistant distillation): its
forecasts are the student's own, in the windows' scale; lookback cut, horizon prefix, a univariate teacher
on multivariate windows, quantiles; refusals (no window normalization, too short a lookback, too long a
horizon, FTA); and `distilts distill --teacher student` and an ensemble member end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from distilts.cli import cli
from distilts.errors import DistiltsError, ModelDirError
from distilts.students.io import save_student_dir
from distilts.students.registry import build_student
from distilts.teachers import load_teacher
from distilts.teachers.spec import has_hidden_states, parse_ensemble

L, H = 48, 12


def make_student(directory, n_variates: int = 1, **kwargs):
    """A random-initialised student directory, as `distilts distill` writes one."""
    torch.manual_seed(0)
    name = kwargs.pop("name", "mlp")
    model = build_student(name, L, H, n_variates, **kwargs)
    save_student_dir(directory, model, {"student": {"name": name, "kwargs": kwargs}, "lookback": L, "horizon": H,
                                        "n_variates": n_variates, "columns": [f"v{i}" for i in range(n_variates)]})
    return model.eval()


def windows(b: int, length: int, d: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.standard_normal((b, length, d)).astype(np.float32)


def test_forecasts_are_the_students_own_in_the_windows_scale(tmp_path):
    model = make_student(tmp_path / "s")
    teacher = load_teacher("student", str(tmp_path / "s"), "cpu")
    x = windows(5, L + 16, 1)  # a longer lookback is cut to the teacher's last L steps
    out = teacher.predict(x, H - 2)  # a shorter horizon: the first steps
    with torch.inference_mode():
        want = model(torch.from_numpy(x[:, -L:])).numpy()[:, : H - 2]
    np.testing.assert_allclose(out.forecast, want, rtol=1e-5, atol=1e-5)
    assert out.hidden is None and out.quantiles is None
    moved = teacher.predict(10 * x + 3, H).forecast
    np.testing.assert_allclose(moved, 10 * teacher.predict(x, H).forecast + 3, rtol=1e-3, atol=1e-3)
    assert teacher.info["student"] == "mlp" and len(teacher.checkpoint_hash) == 64


def test_a_univariate_teacher_forecasts_each_variate_of_a_window(tmp_path):
    make_student(tmp_path / "s")
    teacher = load_teacher("student", str(tmp_path / "s"), "cpu")
    x = windows(4, L, 3)
    out = teacher.predict(x, H).forecast
    assert out.shape == (4, H, 3)
    for v in range(3):
        np.testing.assert_allclose(out[:, :, v], teacher.predict(x[:, :, v : v + 1], H).forecast[:, :, 0], atol=1e-5)


def test_a_quantile_student_teaches_its_levels(tmp_path):
    make_student(tmp_path / "q", name="tsmixer", n_block=1, ff_dim=8, norm="window", quantiles=[0.1, 0.5, 0.9])
    teacher = load_teacher("student", str(tmp_path / "q"), "cpu")
    assert teacher.quantile_levels == (0.1, 0.5, 0.9)
    out = teacher.predict(windows(3, L, 2), H, quantiles=True)
    assert out.quantiles is not None and out.quantiles.shape == (3, H, 2, 3)
    np.testing.assert_allclose(out.forecast, out.quantiles[..., 1])
    assert (np.diff(out.quantiles, axis=-1) >= 0).all()


def test_refusals_name_the_fix(tmp_path):
    make_student(tmp_path / "plain", name="dlinear")
    with pytest.raises(ModelDirError, match="does not normalize its windows"):
        load_teacher("student", str(tmp_path / "plain"), "cpu")
    make_student(tmp_path / "s", n_variates=2, name="dlinear", revin=True)
    teacher = load_teacher("student", str(tmp_path / "s"), "cpu")
    with pytest.raises(DistiltsError, match=f"--lookback {L}"):
        teacher.predict(windows(2, L - 1, 2), H)
    with pytest.raises(DistiltsError, match=f"--horizon {H}"):
        teacher.predict(windows(2, L, 2), H + 1)
    with pytest.raises(DistiltsError, match="2 variates together"):
        teacher.predict(windows(2, L, 3), H)
    with pytest.raises(DistiltsError, match="--beta 0"):
        teacher.predict(windows(2, L, 2), H, hidden=True)
    with pytest.raises(DistiltsError, match="point forecasts only"):
        teacher.predict(windows(2, L, 2), H, quantiles=True)
    with pytest.raises(ModelDirError, match="does not exist"):
        load_teacher("student", str(tmp_path / "missing"), "cpu")


def test_spec_a_student_needs_a_path_and_has_no_hidden_states():
    assert not has_hidden_states("student")
    members = parse_ensemble("ensemble:student+statsforecast:SeasonalNaive", teacher_path="DIR")
    assert members[0].path == "DIR"


def test_distill_from_a_student_and_from_an_ensemble_with_one(tmp_path):
    pytest.importorskip("statsforecast")
    data = ["distill", "--lookback", str(L), "--horizon", str(H), "--stride", "8", "--epochs",
            "1", "--cache-dir", str(tmp_path / "c"), "--quiet", "--device", "cpu"]
    big = tmp_path / "big"
    res = CliRunner().invoke(cli, [*data, "--no-kd", "--beta", "0", "--student", "mlp", "--out", str(big)])
    assert res.exit_code == 0, res.output
    small = tmp_path / "small"
    res = CliRunner().invoke(cli, [*data, "--teacher", "student", "--teacher-path", str(big), "--student", "dlinear",
                                   "--out", str(small)])
    assert res.exit_code == 0, res.output
    config = json.loads((small / "config.json").read_text())
    assert config["teacher"]["name"] == "student" and config["loss"]["kd"]
    metrics = json.loads((small / "metrics.json").read_text())
    big_metrics = json.loads((big / "metrics.json").read_text())
    # the teacher's test score is the teacher student's own (same windows, same scale)
    assert metrics["teacher"]["test"]["mse"] == pytest.approx(big_metrics["test"]["mse"], rel=1e-4)
    res = CliRunner().invoke(cli, [*data, "--teacher", f"ensemble:student={big}+statsforecast:SeasonalNaive?n_jobs=1",
                                   "--student", "dlinear", "--out", str(tmp_path / "ens")])
    assert res.exit_code == 0, res.output
    t = json.loads((tmp_path / "ens" / "config.json").read_text())["teacher"]
    assert [m["spec"] for m in t["members"]] == ["student", "statsforecast:SeasonalNaive"]
    res = CliRunner().invoke(cli, [*data, "--teacher", "student", "--teacher-path", str(big), "--beta", "0.3",
                                   "--student", "dlinear", "--out", str(tmp_path / "fta")])
    assert res.exit_code != 0 and "has none: use --beta 0" in res.output
