"""The probabilistic offline chain: `train-teacher --quantiles` (a quantile PatchTST, pinball loss),
its quantiles in the teacher cache `[N, H, D, Q]` (resumable like the forecasts), `distill --quantiles`
with quantile KD, and the errors: a point-only teacher, levels the teacher lacks, nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from distilts.cli import cli

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

L, H = 48, 12
SMALL = ["--lookback", str(L), "--horizon", str(H)]


@pytest.fixture(scope="module")
def qteacher(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("qteacher") / "patchtst-q"
    res = CliRunner().invoke(cli, ["train-teacher", *SMALL, "--quantiles", "deciles", "--epochs", "1", "--stride", "16",
                                   "--d-model", "16", "--layers", "1", "--heads", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return str(out)


def test_quantile_teacher_levels_do_not_cross_and_median_is_the_forecast(qteacher):
    from distilts.teachers import load_teacher

    t = load_teacher("patchtst", qteacher, "cpu")
    assert t.quantile_levels == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    x = np.random.default_rng(0).normal(size=(5, L, 4)).astype(np.float32)
    out = t.predict(x, H, quantiles=True)
    assert out.quantiles.shape == (5, H, 4, 9) and np.all(np.diff(out.quantiles, axis=-1) >= 0)
    np.testing.assert_array_equal(out.forecast, out.quantiles[..., 4])
    np.testing.assert_allclose(t.predict(x, 6).forecast, out.forecast[:, :6], rtol=1e-6)  # shorter horizons
    info = json.loads((__import__("pathlib").Path(qteacher) / "training.json").read_text())
    assert info["quantiles"] == list(t.quantile_levels) and "val_wql" in info["history"][0]


def test_cache_holds_quantiles_and_resumes(qteacher, dataset, tmp_path):
    from distilts.cache.entry import fill_teacher_cache
    from distilts.teachers import load_teacher

    kw = dict(parts=("val",), stride=4, cache_dir=tmp_path, device="cpu", progress=False, batch_size=32)
    cache = fill_teacher_cache(dataset, "patchtst", qteacher, L, H, quantiles=True, **kw)
    q, f = cache.quantiles("val"), cache.forecasts("val")
    assert q.shape == (*f.shape, 9) and cache.info["quantile_levels"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    x, _ = dataset.windows("val", L, H, 4).batch(np.arange(3))
    np.testing.assert_allclose(q[:3], load_teacher("patchtst", qteacher, "cpu").predict(x, H, quantiles=True).quantiles,
                               rtol=1e-5, atol=1e-6)
    # a point entry of the same teacher is another entry (its key is unchanged by the option)
    point = fill_teacher_cache(dataset, "patchtst", qteacher, L, H, **kw)
    assert point.directory != cache.directory and not point.info.get("quantiles")
    # kill after the first chunk: the rerun resumes and gives the same arrays
    import shutil

    again = tmp_path / "again"
    d = cache.directory
    shutil.copytree(d.parent.parent, again)
    entry = again / "teacher" / d.name
    (entry / "meta.json").unlink()
    (entry / "val.json").unlink()
    for kind in ("forecast", "quantiles"):
        arr = np.load(entry / f"val.{kind}.npy")
        arr[32:] = 0
        np.save(entry / f"val.{kind}.npy.partial", arr)
        (entry / f"val.{kind}.npy").unlink()
    rec = json.loads((d / "val.json").read_text())
    (entry / "val.progress.json").write_text(json.dumps({"windows": rec["windows"], "chunk_size": 32,
                                                         "forecast_shape": rec["forecast_shape"], "hidden_shape": None,
                                                         "quantiles_shape": rec["quantiles_shape"],
                                                         "teacher": rec["teacher"], "done": [0]}))
    resumed = fill_teacher_cache(dataset, "patchtst", qteacher, L, H, quantiles=True, **{**kw, "cache_dir": again})
    np.testing.assert_array_equal(resumed.quantiles("val"), q)


def test_distill_with_quantile_kd_end_to_end(qteacher, tmp_path):
    out = tmp_path / "student"
    res = CliRunner().invoke(cli, ["distill", "--teacher", "patchtst", "--teacher-path", qteacher, *SMALL,
                                   "--quantiles", "0.1,0.5,0.9", "--quantile-kd", "l2", "--epochs", "1",
                                   "--stride", "8", "--cache-dir", str(tmp_path / "cache"), "--quiet",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["teacher"]["test"]["quantiles"]["levels"] == [0.1, 0.5, 0.9]  # its levels picked from the 9
    assert json.loads((out / "config.json").read_text())["loss"]["quantile_kd"] == "l2"


def test_point_teacher_and_missing_levels_are_refused_with_nothing_written(qteacher, teacher_dir, tmp_path):
    for teacher, path, levels, words in (("timemoe", teacher_dir, "deciles", "point forecasts only"),
                                         ("patchtst", qteacher, "0.05,0.5,0.95", "no quantile levels [0.05, 0.95]")):
        out = tmp_path / f"s-{teacher}"
        res = CliRunner().invoke(cli, ["distill", "--teacher", teacher, "--teacher-path", path, *SMALL, "--quantiles",
                                       levels, "--epochs", "1", "--stride", "8", "--cache-dir",
                                       str(tmp_path / "cache"), "--quiet", "--out", str(out)])
        assert res.exit_code != 0 and words in res.output, res.output
        assert "chronos-bolt" in res.output or "0.1,0.2" in res.output  # names the fix
        assert not out.exists()
    res = CliRunner().invoke(cli, ["teach", "--teacher", "timemoe", "--teacher-path", teacher_dir, *SMALL,
                                   "--quantiles", "--parts", "val", "--cache-dir", str(tmp_path / "c2"), "--quiet"])
    assert res.exit_code != 0 and "point forecasts only" in res.output
    assert not any((tmp_path / "c2").glob("teacher/*/*.npy*"))
