"""Teachers with covariates: Chronos-2 through its pipeline's dict inputs (tiny official-layout checkpoint),
a family without covariate inputs forecasting univariate, and the teacher cache keyed on the covariates used."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("chronos")
torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from distilts.cache.entry import fill_teacher_cache  # noqa: E402
from distilts.data import load_dataset  # noqa: E402


@pytest.fixture(scope="module")
def chronos2_dir(tmp_path_factory) -> str:
    from distilts.teachers import chronos2

    return str(chronos2.save_random_checkpoint(tmp_path_factory.mktemp("c2") / "chronos-2", seed=1))


def windows(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, 64, 2)).astype(np.float32)
    cov = {
        "past": rng.normal(size=(3, 64, 1)).astype(np.float32),
        "future": rng.normal(size=(3, 80, 2)).astype(np.float32),
    }
    return x, cov


@pytest.mark.parametrize("multivariate", [True, False])
def test_chronos2_forecasts_with_covariates(chronos2_dir, multivariate):
    from distilts.teachers import chronos2

    teacher = chronos2.load(chronos2_dir, "cpu", multivariate=multivariate)
    assert teacher.takes_covariates
    x, cov = windows()
    plain = teacher.predict(x, 16, hidden=True, quantiles=True)
    with_cov = teacher.predict(x, 16, hidden=True, quantiles=True, covariates=cov)
    assert with_cov.forecast.shape == (3, 16, 2) and with_cov.quantiles.shape == (3, 16, 2, 21)
    assert with_cov.hidden.shape == plain.hidden.shape  # the target rows of each group only
    assert np.abs(with_cov.forecast - plain.forecast).max() > 1e-4
    later = {"past": cov["past"], "future": cov["future"].copy()}
    later["future"][:, 64:] += 3.0  # the known-future values over the horizon reach the forecast
    assert np.abs(teacher.predict(x, 16, covariates=later).forecast - with_cov.forecast).max() > 1e-4
    again = teacher.predict(x, 16, hidden=True, quantiles=True)
    np.testing.assert_array_equal(again.forecast, plain.forecast)  # covariates are per call only


def test_cache_is_keyed_on_the_covariates_used(chronos2_dir, tmp_path):
    rng = np.random.default_rng(2)
    n = 400
    dates = np.datetime64("2024-01-01T00:00") + np.arange(n) * np.timedelta64(1, "h")
    f = rng.normal(size=n)
    lines = ["date,y,f"] + [
        f"{str(d).replace('T', ' ')}:00,{a:.5f},{b:.5f}" for d, a, b in zip(dates, f + 0.1, f, strict=True)
    ]
    path = tmp_path / "d.csv"
    path.write_text("\n".join(lines) + "\n")
    plain = load_dataset(path, columns=["y"])
    covs = load_dataset(path, future_covariates=["f"])
    kw = {"parts": ("test",), "stride": 8, "cache_dir": str(tmp_path / "cache"), "progress": False, "device": "cpu"}
    a = fill_teacher_cache(plain, "chronos-2", chronos2_dir, 32, 8, **kw)
    b = fill_teacher_cache(covs, "chronos-2", chronos2_dir, 32, 8, **kw)
    assert a.directory != b.directory
    assert "covariates" not in a.info and b.info["covariates"] == {"past": [], "future": ["f"]}
    assert np.abs(np.asarray(a.forecasts("test")) - np.asarray(b.forecasts("test"))).max() > 1e-4


def test_timesfm_forecasts_with_covariates(tmp_path):
    pytest.importorskip("timesfm")
    from distilts.teachers import timesfm

    teacher = timesfm.load(str(timesfm.save_random_checkpoint(tmp_path / "timesfm")), "cpu")
    x, cov = windows(1)
    cov["static"] = np.array([[0.5], [1.0], [-1.0]], np.float32)
    plain = teacher.predict(x, 16, quantiles=True)
    with_cov = teacher.predict(x, 16, quantiles=True, covariates=cov)
    assert with_cov.forecast.shape == (3, 16, 2) and with_cov.quantiles.shape == (3, 16, 2, 9)
    assert np.abs(with_cov.forecast - plain.forecast).max() > 1e-4
    only_past = teacher.predict(x, 16, quantiles=True, covariates={"past": cov["past"]})
    np.testing.assert_allclose(only_past.forecast, plain.forecast, atol=1e-6)  # no TimesFM input for past-only


def test_a_family_without_covariate_inputs_forecasts_univariate(tmp_path):
    from distilts.teachers import timemoe

    teacher = timemoe.load(str(timemoe.save_random_checkpoint(tmp_path / "tm", seed=0)), "cpu")
    assert not teacher.takes_covariates
    x, cov = windows(2)
    np.testing.assert_array_equal(teacher.predict(x, 8, covariates=cov).forecast, teacher.predict(x, 8).forecast)


def test_moirai_forecasts_with_dynamic_real_features(tmp_path):
    pytest.importorskip("uni2ts")
    from distilts.teachers import moirai

    teacher = moirai.load(str(moirai.save_random_checkpoint(tmp_path / "moirai")), "cpu")
    assert teacher.takes_covariates
    x, cov = windows(3)
    plain = teacher.predict(x, 16, hidden=True)
    with_cov = teacher.predict(x, 16, hidden=True, covariates=cov)
    assert with_cov.forecast.shape == (3, 16, 2) and with_cov.hidden.shape == plain.hidden.shape
    assert np.abs(with_cov.forecast - plain.forecast).max() > 1e-4
    np.testing.assert_array_equal(teacher.predict(x, 16).forecast, plain.forecast)  # per call only, seeded
