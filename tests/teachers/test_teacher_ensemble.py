"""Teacher ensembles: members cached on their own and reused, inverse-MSE weights per step fitted on val,
the combined forecasts and quantiles, fallbacks carried into the ensemble's metadata, spec errors, and
`distilts distill --teacher ensemble:patchtst=DIR+statsforecast:SeasonalNaive` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("statsforecast")
pytest.importorskip("transformers")

from distilts.cache.ensemble import inverse_mse_weights
from distilts.cache.entry import fill_teacher_cache
from distilts.data import load_dataset
from distilts.errors import DistiltsError
from distilts.teachers import statistical
from distilts.teachers.spec import check_teacher, parse_ensemble

L, H = 48, 12
SNAIVE = "statsforecast:SeasonalNaive?n_jobs=1"


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    """Seven weeks of the built-in synthetic series (4 hourly variates) as a CSV: short, so fast to forecast."""
    from distilts.data.synthetic import synthetic_series

    ts = synthetic_series(n_rows=1200)
    path = tmp_path_factory.mktemp("data") / "small.csv"
    rows = [",".join([str(d), *(f"{v:.6f}" for v in row)]) for d, row in zip(ts.dates, ts.values, strict=True)]
    path.write_text("\n".join(["date," + ",".join(ts.columns), *rows]) + "\n")
    return path


@pytest.fixture(scope="module")
def dataset(small_csv):
    return load_dataset(small_csv)


@pytest.fixture(scope="module")
def patchtst_dir(dataset, tmp_path_factory):
    """A tiny PatchTST teacher trained one epoch (as tests/teachers/test_teacher_patchtst builds it)."""
    from distilts.distill.config import TeacherTraining
    from distilts.distill.train_teacher import train_teacher

    out = tmp_path_factory.mktemp("t") / "patchtst"
    train_teacher(dataset, out, TeacherTraining(lookback=L, horizon=H, epochs=1, d_model=16, layers=1, heads=2,
                                                patch_length=8, patch_stride=8, batch_size=128, stride=4,
                                                val_stride=4, device="cpu"), log=None)
    return str(out)


def test_inverse_mse_weights():
    y = np.zeros((10, 3, 2))
    w = inverse_mse_weights([y + 1.0, y + 0.5], y)  # MSE 1 and 0.25
    assert w.shape == (2, 3, 2)
    np.testing.assert_allclose(w[:, 0, 0], [0.2, 0.8])
    f2 = y + 0.5
    f2[:, 2] = 2.0  # the second member is worse on the last step only: the weights follow per step
    w = inverse_mse_weights([y + 1.0, f2], y)
    np.testing.assert_allclose(w[:, 2, 0], [0.8, 0.2])
    np.testing.assert_allclose(w.sum(axis=0), 1.0)


def test_spec_errors():
    with pytest.raises(DistiltsError, match="at least two members"):
        check_teacher("ensemble:patchtst")
    with pytest.raises(DistiltsError, match="cannot be an ensemble"):
        check_teacher("ensemble:patchtst+ensemble:a+b")
    with pytest.raises(DistiltsError, match="Unknown teacher 'nope'.*statsforecast:AutoETS"):
        check_teacher("ensemble:nope+statsforecast:AutoETS")
    with pytest.raises(DistiltsError, match="Unknown statsforecast model"):
        check_teacher("ensemble:patchtst+statsforecast:Nope")
    with pytest.raises(DistiltsError, match="ambiguous"):
        parse_ensemble("ensemble:patchtst+chronos+statsforecast:AutoETS", teacher_path="/x")
    with pytest.raises(DistiltsError, match="twice"):
        check_teacher("ensemble:statsforecast:AutoETS+statsforecast:AutoETS")
    members = parse_ensemble("ensemble:patchtst+statsforecast:AutoETS?n_jobs=2", teacher_path="/ckpt")
    assert [(m.spec, m.path) for m in members] == [("patchtst", "/ckpt"), ("statsforecast:AutoETS?n_jobs=2", None)]
    members = parse_ensemble("ensemble:patchtst=/a/b+statsforecast:AutoETS?season=24")
    assert [(m.spec, m.path) for m in members] == [("patchtst", "/a/b"), ("statsforecast:AutoETS?season=24", None)]


def test_patchtst_and_statsforecast_ensemble(dataset, patchtst_dir, tmp_path):
    spec = f"ensemble:patchtst={patchtst_dir}+{SNAIVE}"
    ens = fill_teacher_cache(dataset, spec, None, L, H, parts=("train", "test"), stride=4, cache_dir=tmp_path,
                             progress=False)
    # members are ordinary entries, reused as they are by a run of one member
    pt = fill_teacher_cache(dataset, "patchtst", patchtst_dir, L, H, parts=("val", "train", "test"), stride=4,
                            cache_dir=tmp_path, progress=False)
    sn = fill_teacher_cache(dataset, SNAIVE, None, L, H, parts=("val", "train", "test"), stride=4,
                            cache_dir=tmp_path, progress=False)
    assert pt.reused and sn.reused
    info = ens.info["teacher_info"]
    assert ens.info["teacher"] == "ensemble:patchtst+statsforecast:SeasonalNaive"
    assert [m["cache"] for m in info["members"]] == [str(pt.directory), str(sn.directory)]
    y_val = dataset.windows("val", L, H, 4).targets()
    w = inverse_mse_weights([pt.forecasts("val"), sn.forecasts("val")], y_val)
    np.testing.assert_allclose(np.asarray(info["weights"]), w, atol=1e-6)
    for part in ("train", "test"):
        expected = w[0] * pt.forecasts(part) + w[1] * sn.forecasts(part)
        np.testing.assert_allclose(ens.forecasts(part), expected, rtol=1e-5, atol=1e-6)
    mse = [float(((np.asarray(c.forecasts("val")) - y_val) ** 2).mean()) for c in (pt, sn)]
    assert [m["val"]["mse"] for m in info["members"]] == pytest.approx(mse, abs=1e-6)
    assert info["val"]["mse"] <= max(mse) + 1e-6  # a convex combination: never worse than its worst member
    # --teacher-path goes to the one member that needs a checkpoint: the same entry
    again = fill_teacher_cache(dataset, f"ensemble:patchtst+{SNAIVE}", patchtst_dir, L, H, parts=("train", "test"),
                               stride=4, cache_dir=tmp_path, progress=False)
    assert again.reused and again.directory == ens.directory


def test_quantile_ensemble_is_sorted_and_weighted(dataset, tmp_path):
    spec = f"ensemble:{SNAIVE}+statsforecast:AutoTheta?n_jobs=1"
    ens = fill_teacher_cache(dataset, spec, None, L, H, parts=("test",), stride=4, cache_dir=tmp_path,
                             progress=False, quantiles=True)
    a = fill_teacher_cache(dataset, SNAIVE, None, L, H, parts=("test",), stride=4, cache_dir=tmp_path,
                           progress=False, quantiles=True)
    b = fill_teacher_cache(dataset, "statsforecast:AutoTheta", None, L, H, parts=("test",), stride=4,
                           cache_dir=tmp_path, progress=False, quantiles=True)
    w = np.asarray(ens.info["teacher_info"]["weights"])
    expected = np.sort(w[0][..., None] * a.quantiles("test") + w[1][..., None] * b.quantiles("test"), axis=-1)
    np.testing.assert_allclose(ens.quantiles("test"), expected, rtol=1e-5, atol=1e-5)
    assert ens.info["quantile_levels"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert (np.diff(np.asarray(ens.quantiles("test")), axis=-1) >= 0).all()


def test_member_fallbacks_reach_the_ensemble_metadata(dataset, tmp_path, monkeypatch):
    real = statistical.build_model

    def failing_on_the_second_variate(spec, season):
        model = real(spec, season)
        fit = model.fit

        def fit_or_fail(y, *a, **k):
            if np.isclose(float(np.mean(y)), float(dataset.scaler.mean[1]), rtol=1e-5):
                raise ValueError("simulated failure")
            return fit(y, *a, **k)

        model.fit = fit_or_fail
        return model

    monkeypatch.setattr(statistical, "build_model", failing_on_the_second_variate)
    spec = f"ensemble:{SNAIVE}+statsforecast:AutoTheta?n_jobs=1"
    ens = fill_teacher_cache(dataset, spec, None, L, H, parts=("test",), stride=4, cache_dir=tmp_path,
                             progress=False)
    col = dataset.columns[1]
    assert list(ens.info["fallbacks"]) == [f"statsforecast:SeasonalNaive: {col}", f"statsforecast:AutoTheta: {col}"]
    assert "simulated failure" in ens.info["teacher_info"]["members"][1]["fallbacks"][col]


def test_distill_cli_with_an_ensemble(small_csv, patchtst_dir, tmp_path):
    from click.testing import CliRunner

    from distilts.cli import cli

    out = tmp_path / "student"
    res = CliRunner().invoke(cli, [
        "distill", "--teacher", f"ensemble:patchtst+{SNAIVE}", "--teacher-path", patchtst_dir, "--student",
        "itransformer", "-O", "d_model=8", "-O", "e_layers=1", "-O", "n_heads=2", "-O", "d_ff=16", "--data",
        str(small_csv), "--lookback", str(L), "--horizon", str(H), "--stride", "4", "--epochs", "1", "--cache-dir",
        str(tmp_path / "c"), "--quiet", "--device", "cpu", "--out", str(out)])
    assert res.exit_code == 0, res.output
    # iTransformer's default FTA needs hidden states the ensemble does not have: one warning line, beta 0
    assert "has no hidden states: FTA is off" in res.output
    config = json.loads((out / "config.json").read_text())
    assert config["loss"]["beta"] == 0
    t = config["teacher"]
    assert t["kind"] == "ensemble" and [m["spec"] for m in t["members"]] == ["patchtst", "statsforecast:SeasonalNaive"]
    assert len(t["mean_weights"]) == 2 and sum(t["mean_weights"]) == pytest.approx(1, abs=1e-3)
    card = (out / "card.md").read_text()
    assert "| member | val MSE | val MAE | mean weight |" in card and "| statsforecast:SeasonalNaive |" in card
    # `distilts eval` rebuilds the ensemble from the members recorded in config.json (from the cache)
    metrics = json.loads((out / "metrics.json").read_text())
    ev = CliRunner().invoke(cli, ["eval", str(out), "--data", str(small_csv), "--cache-dir", str(tmp_path / "c"),
                                  "--json"])
    assert ev.exit_code == 0, ev.output
    assert json.loads(ev.output)["teacher"]["test"]["mse"] == pytest.approx(metrics["teacher"]["test"]["mse"])
