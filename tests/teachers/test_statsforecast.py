"""Statistical teachers (statsforecast): spec parsing, the cache they fill (exact SeasonalNaive numbers, one fit
per series, resume after a kill, fallbacks), bad specifications, and `distilts distill` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("statsforecast")

from distilts.cache import fill as fill_mod
from distilts.cache.entry import fill_teacher_cache
from distilts.data.panel import Panel, PanelDataset
from distilts.errors import DistiltsError
from distilts.teachers import statistical
from distilts.teachers.spec import check_teacher, parse_stat, with_address

L, H = 48, 12


def _panel(n_series: int = 3, seed: int = 0) -> PanelDataset:
    """Positive hourly-like series of different lengths (daily cycle of period 24 plus noise)."""
    rng = np.random.default_rng(seed)
    series = []
    for i in range(n_series):
        n = 140 + 20 * i
        t = np.arange(n)
        series.append(10 + i + 3 * np.sin(2 * np.pi * t / 24) + 0.3 * rng.standard_normal(n))
    return PanelDataset(Panel.from_series([f"s{i}" for i in range(n_series)], series))


def test_spec_parsing_and_canonical_name():
    s = parse_stat("statsforecast:AutoETS?season=24&n_jobs=2&damped=true")
    assert (s.model, s.season, s.options, s.n_jobs) == ("AutoETS", 24, {"damped": True}, 2)
    assert s.name == "statsforecast:AutoETS?season=24&damped=true"  # n_jobs: not part of what is computed
    with pytest.raises(DistiltsError, match="use one of statsforecast:AutoARIMA, statsforecast:AutoETS"):
        check_teacher("statsforecast:Prophet")
    with pytest.raises(DistiltsError, match="key=value"):
        parse_stat("statsforecast:AutoETS?season")
    with pytest.raises(DistiltsError, match="positive integer"):
        parse_stat("statsforecast:AutoETS?season=0")
    with pytest.raises(DistiltsError, match="no option bogus"):
        statistical.load("statsforecast:AutoETS?bogus=1")


def test_run_options_and_address():
    s = parse_stat("statsforecast:AutoETS?address=auto&n_jobs=3")
    assert (s.address, s.n_jobs, s.name) == ("auto", 3, "statsforecast:AutoETS")
    assert s.run_options == "&n_jobs=3&address=auto"
    assert with_address("ensemble:patchtst=/p+statsforecast:AutoETS?season=24", "h:1") == (
        "ensemble:patchtst=/p+statsforecast:AutoETS?season=24&address=h:1"
    )
    assert with_address("statsforecast:MSTL", None) == "statsforecast:MSTL"


def test_quantile_levels_map_to_interval_ends():
    pct, cols = statistical.interval_columns((0.1, 0.25, 0.5, 0.75, 0.9))
    assert pct == [50, 80]
    assert cols == ["lo-80", "lo-50", "mean", "hi-50", "hi-80"]


def test_seasonal_naive_cache_is_exact_on_a_table(dataset, tmp_path):
    """SeasonalNaive's forecast of a window is its last season repeated: exact on the normalized scale."""
    cache = fill_teacher_cache(dataset, "statsforecast:SeasonalNaive?n_jobs=1", None, L, H, parts=("val", "test"),
                               stride=4, cache_dir=tmp_path, progress=False, quantiles=True)
    assert cache.info["teacher"] == "statsforecast:SeasonalNaive"
    assert cache.info["teacher_info"]["season"] == 24  # the synthetic series are hourly
    w = dataset.windows("test", L, H, 4)
    x = w.inputs()
    expected = np.concatenate([x[:, -24:]] * (H // 24 + 1), axis=1)[:, :H]
    np.testing.assert_allclose(cache.forecasts("test"), expected, atol=2e-5)
    q = np.asarray(cache.quantiles("test"))
    assert q.shape == (len(w), H, 4, 9)
    assert (np.diff(q, axis=-1) >= 0).all()  # never crossing
    np.testing.assert_allclose(q[..., 4], cache.forecasts("test"), atol=1e-6)  # 0.5 = the point forecast
    assert (q[..., 0] < q[..., -1]).mean() > 0.99  # real intervals


def test_one_fit_per_series_then_forward_on_every_window(tmp_path, monkeypatch):
    ds = _panel()
    fits = []
    real = statistical.build_model

    def counting(spec, season):
        model = real(spec, season)
        fit = model.fit
        model.fit = lambda y, *a, **k: (fits.append(len(y)), fit(y, *a, **k))[1]
        return model

    monkeypatch.setattr(statistical, "build_model", counting)
    monkeypatch.setattr(statistical.StatsForecastTeacher, "chunk_windows", 16)  # several chunks per series
    cache = fill_teacher_cache(ds, "statsforecast:AutoETS?season=24&n_jobs=1", None, L, H,
                               parts=("train", "val", "test"), cache_dir=tmp_path, progress=False)
    # one fit per series, on its train part (length - 2H values), for all three parts' windows
    assert sorted(fits) == sorted(int(n) - 2 * H for n in ds.panel.lengths)
    f = cache.forecasts("train")
    assert f.shape == (len(ds.windows("train", L, H)), H, 1) and np.isfinite(f).all()
    y = ds.windows("test", L, H).targets()
    assert float(((cache.forecasts("test") - y) ** 2).mean()) < 0.5  # fits the daily cycle (normalized MSE)


def test_parallel_workers_give_the_same_numbers(tmp_path):
    ds = _panel()
    one = fill_teacher_cache(ds, "statsforecast:AutoTheta?n_jobs=1", None, L, H, parts=("test",),
                             cache_dir=tmp_path / "a", progress=False)
    two = fill_teacher_cache(ds, "statsforecast:AutoTheta?n_jobs=2", None, L, H, parts=("test",),
                             cache_dir=tmp_path / "b", progress=False)
    assert one.directory.name == two.directory.name  # n_jobs does not key the entry
    np.testing.assert_allclose(one.forecasts("test"), two.forecasts("test"), rtol=1e-6, atol=1e-6)


def test_resume_after_a_kill(tmp_path, monkeypatch):
    ds = _panel()
    spec = "statsforecast:SeasonalNaive?n_jobs=1"
    monkeypatch.setattr(statistical.StatsForecastTeacher, "chunk_windows", 32)
    real = fill_mod.Filler.compute
    calls = []

    def dying(self, windows, idx, part, state):
        calls.append(part)
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated kill")
        return real(self, windows, idx, part, state)

    monkeypatch.setattr(fill_mod.Filler, "compute", dying)
    with pytest.raises(KeyboardInterrupt):
        fill_teacher_cache(ds, spec, None, L, H, parts=("train",), cache_dir=tmp_path, progress=False)
    entry = next((tmp_path / "teacher").iterdir())
    assert json.loads((entry / "train.progress.json").read_text())["done"] == [0, 1]
    monkeypatch.setattr(fill_mod.Filler, "compute", real)
    resumed = fill_teacher_cache(ds, spec, None, L, H, parts=("train",), cache_dir=tmp_path, progress=False)
    fresh = fill_teacher_cache(ds, spec, None, L, H, parts=("train",), cache_dir=tmp_path / "fresh", progress=False)
    np.testing.assert_array_equal(resumed.forecasts("train"), fresh.forecasts("train"))


def test_bad_specifications_are_one_line_errors(dataset, tmp_path):
    with pytest.raises(DistiltsError, match=r"season 168 is longer than the 48-step history") as err:
        fill_teacher_cache(dataset, "statsforecast:SeasonalNaive?season=168", None, L, H, parts=("val",),
                           cache_dir=tmp_path, progress=False)
    assert "\n" not in str(err.value)
    assert not list(tmp_path.glob("teacher/*"))  # no empty entry left behind
    with pytest.raises(DistiltsError, match="without hidden states"):
        fill_teacher_cache(dataset, "statsforecast:AutoETS", None, L, H, parts=("val",), hidden=True,
                           cache_dir=tmp_path, progress=False)


def test_a_failing_series_falls_back_and_is_recorded(tmp_path, monkeypatch):
    ds = _panel()
    real = statistical.build_model

    def flaky(spec, season):
        model = real(spec, season)
        fit = model.fit

        def fit_or_fail(y, *a, **k):
            if len(y) == 140 - 2 * H:  # series s0
                raise ValueError("simulated failure")
            return fit(y, *a, **k)

        model.fit = fit_or_fail
        return model

    monkeypatch.setattr(statistical, "build_model", flaky)
    cache = fill_teacher_cache(ds, "statsforecast:AutoETS?season=24&n_jobs=1", None, L, H, parts=("test",),
                               cache_dir=tmp_path, progress=False)
    assert list(cache.info["fallbacks"]) == ["s0"] and "simulated failure" in cache.info["fallbacks"]["s0"]
    w = ds.windows("test", L, H)
    s0 = np.flatnonzero(w.series_index == 0)
    x = w.inputs()[s0]
    np.testing.assert_allclose(cache.forecasts("test")[s0], x[:, -24:][:, :H], atol=2e-5)  # SeasonalNaive


def _hourly_csv(path, n: int = 600):
    t = np.arange(n)
    y = 5 + np.sin(2 * np.pi * t / 24) + 0.1 * np.random.default_rng(0).standard_normal(n)
    dates = np.datetime64("2024-01-01T00") + t.astype("timedelta64[h]")
    path.write_text("date,y\n" + "".join(f"{d},{v:.5f}\n" for d, v in zip(dates.astype(str), y, strict=True)))
    return path


def test_distill_cli_with_a_statistical_teacher(tmp_path):
    from click.testing import CliRunner

    from distilts.cli import cli as main

    out = tmp_path / "student"
    data = _hourly_csv(tmp_path / "hourly.csv")
    args = ["distill", "--teacher", "statsforecast:SeasonalNaive", "--student", "dlinear", "--data", str(data),
            "--lookback", str(L), "--horizon", str(H), "--stride", "4", "--epochs", "1", "--cache-dir",
            str(tmp_path / "c"), "--quiet", "--device", "cpu"]
    res = CliRunner().invoke(main, args + ["--out", str(out)])
    assert res.exit_code == 0, res.output
    config = json.loads((out / "config.json").read_text())
    assert config["teacher"]["name"] == "statsforecast:SeasonalNaive" and config["teacher"]["season"] == 24
    card = (out / "card.md").read_text()
    assert "statsforecast:SeasonalNaive" in card and "season 24" in card
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["teacher"]["name"] == "statsforecast:SeasonalNaive"
    ev = CliRunner().invoke(main, ["eval", str(out), "--data", str(data), "--cache-dir", str(tmp_path / "c"), "--json"])
    assert ev.exit_code == 0, ev.output
    assert json.loads(ev.output)["teacher"]["test"]["mse"] == pytest.approx(metrics["teacher"]["test"]["mse"])
    bad = CliRunner().invoke(main, args + ["--beta", "0.5", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "has none: use --beta 0" in bad.output
    unknown = CliRunner().invoke(main, ["distill", "--teacher", "statsforecast:Nope", "--out", str(tmp_path / "y")])
    assert unknown.exit_code != 0 and "statsforecast:AutoETS" in unknown.output


@pytest.mark.parametrize("model", ["MSTL", "AutoARIMA?seasonal=false"])  # a seasonal ARIMA fit takes seconds
def test_every_model_forecasts_without_fallback(model, tmp_path):
    ds = _panel()
    spec = f"statsforecast:{model}{'&' if '?' in model else '?'}season=24&n_jobs=1"
    cache = fill_teacher_cache(ds, spec, None, L, H, parts=("test",), cache_dir=tmp_path, progress=False,
                               quantiles=True)
    assert not cache.info.get("fallbacks") and np.isfinite(cache.forecasts("test")).all()
    assert (np.diff(np.asarray(cache.quantiles("test")), axis=-1) >= 0).all()
    if model == "MSTL":
        y = ds.windows("test", L, H).targets()
        assert float(((cache.forecasts("test") - y) ** 2).mean()) < 0.5


@pytest.mark.slow
def test_ray_tasks_give_the_same_entry(tmp_path):
    pytest.importorskip("ray")
    ds = _panel()
    local = fill_teacher_cache(ds, "statsforecast:AutoTheta?n_jobs=1", None, L, H, parts=("test",),
                               cache_dir=tmp_path / "a", progress=False)
    on_ray = fill_teacher_cache(ds, "statsforecast:AutoTheta?address=local", None, L, H, parts=("test",),
                                cache_dir=tmp_path / "b", progress=False)
    assert on_ray.directory.name == local.directory.name
    np.testing.assert_array_equal(on_ray.forecasts("test"), local.forecasts("test"))
