"""Chronos-2, Moirai-2 and TimesFM-2.5 teachers on tiny random checkpoints written by each package's
own save_pretrained and loaded through its own loader; `distilts teach` on ETTh1 and
teach -> distill from the cache for each family."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from distilts.teachers import default_path, load_teacher
from distilts.errors import DistiltsError, ModelDirError

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

FAMILIES = ("chronos-2", "moirai-2", "timesfm")
B, L, D, H = 2, 64, 3, 24
CONFIGS = Path(__file__).resolve().parents[2] / "benchmarks" / "teacher-configs"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    from distilts.teachers import chronos2, moirai2, timesfm

    root = tmp_path_factory.mktemp("recent-teachers")
    return {
        "chronos-2": str(chronos2.save_random_checkpoint(root / "chronos-2", seed=1)),
        "moirai-2": str(moirai2.save_random_checkpoint(root / "moirai-2", seed=1)),
        "timesfm": str(timesfm.save_random_checkpoint(root / "timesfm", seed=1)),
    }


@pytest.fixture(scope="module")
def loaded(checkpoints):
    return {name: load_teacher(name, path, "cpu") for name, path in checkpoints.items()}


def _windows(seed: int = 0, length: int = L) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)[None, :, None]
    return (np.sin(2 * np.pi * t / 16) + 0.3 * rng.normal(size=(B, length, D))).astype(np.float32)


@pytest.mark.parametrize("name", FAMILIES)
def test_forecast_and_hidden(loaded, checkpoints, name, checkpoint_sha256):
    teacher = loaded[name]
    x = _windows()
    out = teacher.predict(x, H, hidden=True)
    assert out.forecast.shape == (B, H, D) and out.forecast.dtype == np.float32 and np.isfinite(out.forecast).all()
    assert out.hidden.shape == (B, D, teacher.hidden_tokens(L), teacher.d_model) and np.isfinite(out.hidden).all()
    again = teacher.predict(x, H)  # deterministic; hidden off gives the same forecast
    assert again.hidden is None
    np.testing.assert_array_equal(out.forecast, again.forecast)
    # a window's forecast does not depend on the other windows of its batch
    np.testing.assert_allclose(teacher.predict(x[1:], H).forecast, out.forecast[1:], atol=1e-5)
    # the package's scaling is inside: an affine change of the input moves the forecast with it
    moved = teacher.predict(x * 3 + 2, H).forecast
    assert not np.allclose(moved, out.forecast)
    np.testing.assert_allclose(moved, out.forecast * 3 + 2, rtol=1e-3, atol=1e-3)
    assert teacher.name == name and teacher.checkpoint_hash == checkpoint_sha256(checkpoints[name])
    assert {"point", "hidden", "d_model"} <= set(teacher.info)


def test_hidden_token_counts(loaded):
    assert loaded["chronos-2"].hidden_tokens(512) == 32  # 16-step patches
    assert loaded["chronos-2"].hidden_tokens(100) == 7  # left-padded to a whole patch
    assert loaded["moirai-2"].hidden_tokens(512) == 32  # 16-step patches
    assert loaded["timesfm"].hidden_tokens(512) == 16  # 32-step patches
    assert loaded["timesfm"].hidden_tokens(50) == 2
    out = loaded["timesfm"].predict(_windows(length=50), 8, hidden=True)  # context padded to 64
    assert out.hidden.shape[2] == 2 and np.isfinite(out.forecast).all()


def test_chronos2_hidden_is_the_pipelines_embedding(loaded):
    """The hooked encoder output of the forecast call is what `pipeline.embed` returns for the context
    patches (same rows, same order) when the forecast needs one future patch, as embed assumes."""
    teacher = loaded["chronos-2"]
    x = _windows()
    hid = teacher.predict(x, 16, hidden=True).hidden
    emb, _ = teacher.pipeline.embed(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1))))
    np.testing.assert_allclose(hid, torch.stack(emb)[:, :, : hid.shape[2]].numpy(), atol=1e-5)


def test_chronos2_sees_variates_jointly_unless_asked_not_to(loaded, checkpoints):
    from distilts.teachers import chronos2

    x = _windows()
    other = x.copy()
    other[:, :, 0] = np.cos(np.arange(L) / 3)[None]  # change variate 0 only
    joint = loaded["chronos-2"]
    assert joint.joint and joint.info["multivariate"]
    assert not np.allclose(joint.predict(x, H).forecast[:, :, 1:], joint.predict(other, H).forecast[:, :, 1:])
    alone = chronos2.load(checkpoints["chronos-2"], "cpu", multivariate=False)
    assert not alone.joint
    full = alone.predict(x, H).forecast
    np.testing.assert_array_equal(full[:, :, 1:], alone.predict(other, H).forecast[:, :, 1:])
    np.testing.assert_allclose(full[:, :, 1:2], alone.predict(x[:, :, 1:2], H).forecast, atol=1e-6)


@pytest.mark.parametrize("name", ["moirai-2", "timesfm"])
def test_univariate_families_are_channel_independent(loaded, name):
    x = _windows()
    full = loaded[name].predict(x, H).forecast
    assert not loaded[name].joint
    np.testing.assert_allclose(full[:, :, 1:2], loaded[name].predict(x[:, :, 1:2], H).forecast, atol=1e-5)


def test_context_limits_are_clear_errors(loaded):
    with pytest.raises(DistiltsError, match="at most 8192 context steps.*--lookback 8192"):
        loaded["chronos-2"].check_window(8193, 96)
    with pytest.raises(DistiltsError, match="at most 512 patches.*--lookback 8096"):
        loaded["moirai-2"].check_window(8192, 96)
    loaded["moirai-2"].check_window(8096, 96)
    with pytest.raises(DistiltsError, match="up to 16384 steps.*--lookback 16256"):
        loaded["timesfm"].check_window(16384, 96)
    loaded["timesfm"].check_window(16256, 96)


def test_timesfm_definition_is_read_from_the_weights():
    """The released 200M layout maps back to the package's own definition (and so its own classes)."""
    from timesfm.timesfm_2p5 import timesfm_2p5_base, timesfm_2p5_torch

    from distilts.teachers.timesfm import _wrapper_class, definition_from_shapes

    with torch.device("meta"):  # shapes only, no 200M allocation
        module = timesfm_2p5_torch.TimesFM_2p5_200M_torch_module()
    definition = definition_from_shapes({k: tuple(v.shape) for k, v in module.state_dict().items()})
    assert definition == timesfm_2p5_base.TimesFM_2p5_200M_Definition()
    assert _wrapper_class(definition) is timesfm_2p5_torch.TimesFM_2p5_200M_torch


def test_published_configs_match_the_embedded_ones():
    from distilts.teachers import chronos2, moirai2

    official = json.loads((CONFIGS / "chronos-2.json").read_text())
    official.pop("transformers_version", None)
    assert chronos2.checkpoint_config(tiny=False) == official
    assert moirai2.SMALL_CONFIG == json.loads((CONFIGS / "moirai-2.0-r-small.json").read_text())


def test_wrong_family_and_pickles_are_refused(checkpoints, tmp_path):
    from distilts.teachers import moirai

    with pytest.raises(ModelDirError, match="--teacher chronos-2"):
        load_teacher("chronos-bolt", checkpoints["chronos-2"], "cpu")
    with pytest.raises(ModelDirError, match="not a Chronos-2 checkpoint"):
        load_teacher("chronos-2", checkpoints["moirai-2"], "cpu")
    m1 = moirai.save_random_checkpoint(tmp_path / "moirai-1", tiny=True)
    with pytest.raises(ModelDirError, match="--teacher moirai"):
        load_teacher("moirai-2", str(m1), "cpu")
    with pytest.raises(ModelDirError, match="not a TimesFM-2.5"):
        load_teacher("timesfm", checkpoints["moirai-2"], "cpu")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(f"{checkpoints['timesfm']}/config.json", pickled / "config.json")
    torch.save({"x": torch.zeros(1)}, pickled / "pytorch_model.bin")
    with pytest.raises(ModelDirError, match="model.safetensors"):
        load_teacher("timesfm", str(pickled), "cpu")


@pytest.mark.parametrize("name", FAMILIES)
def test_unreachable_hub_id_says_how_to_fix(monkeypatch, tmp_path, name):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    hub_id = default_path(name)
    with pytest.raises(ModelDirError) as err:
        load_teacher(name, None, "cpu")
    msg = str(err.value)
    assert hub_id in msg and f"hf download {hub_id}" in msg and "--teacher-path" in msg


# --- the CLI: teach on ETTh1 at L=512/H=96, then teach -> distill on a small file ---------------------
def _small_csv(tmp_path) -> str:
    n = 360
    t = np.arange(n)
    dates = np.datetime64("2024-01-01T00") + t.astype("timedelta64[h]")
    a = np.sin(2 * np.pi * t / 24) + 0.1 * np.cos(t / 7)
    b = np.cos(2 * np.pi * t / 12) + 0.01 * t
    lines = ["date,a,b"] + [f"{d},{x:.5f},{y:.5f}" for d, x, y in zip(dates.astype(str), a, b)]
    path = tmp_path / "small.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize("name", FAMILIES)
def test_teach_then_distill_from_the_cache(name, checkpoints, etth1_path, tmp_path, monkeypatch):
    from distilts.cli import cli
    from distilts import teachers

    d_model = {"chronos-2": 32, "moirai-2": 64, "timesfm": 32}[name]
    cache = str(tmp_path / "cache")
    common = ["--teacher", name, "--teacher-path", checkpoints[name], "--cache-dir", cache, "--device", "cpu"]
    # ETTh1, L=512, H=96, hidden states: the real shapes (a few test windows keep it fast)
    res = CliRunner().invoke(cli, ["teach", *common, "--data", str(etth1_path), "--lookback", "512", "--horizon", "96",
                                   "--stride", "512", "--parts", "test", "--hidden", "--hidden-tokens", "0", "--quiet"])
    assert res.exit_code == 0, res.output
    tokens = {"chronos-2": 32, "moirai-2": 32, "timesfm": 16}[name]
    assert f"test: 6 windows, forecasts (6, 96, 7), hidden (6, 7, {tokens}, {d_model})" in res.output

    # teach fills every part of a small file; distill (with FTA) then runs from that cache alone
    data = _small_csv(tmp_path)
    window = ["--data", data, "--lookback", "32", "--horizon", "16", "--hidden-tokens", "2"]
    res = CliRunner().invoke(cli, ["teach", *common, *window, "--hidden", "--quiet"])
    assert res.exit_code == 0 and "computed" in res.output, res.output

    def no_teacher(*a, **k):
        raise AssertionError("distill must take the teacher's outputs from the cache filled by teach")

    monkeypatch.setattr(teachers, "load_teacher", no_teacher)
    out = tmp_path / "student"
    res = CliRunner().invoke(cli, ["distill", *common, *window, "--student", "dlinear", "--epochs", "1",
                                   "--beta", "0.1", "--quiet", "--out", str(out)])
    assert res.exit_code == 0, res.output
    config = json.loads((out / "config.json").read_text())
    assert config["teacher"]["name"] == name and config["loss"]["fta"]["d_teacher"] == d_model
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["teacher"]["name"] == name and np.isfinite(metrics["test"]["mse"])


@pytest.mark.parametrize("name, n_levels", [("chronos-2", 21), ("moirai-2", 9), ("timesfm", 9)])
def test_quantiles_at_the_native_levels(loaded, name, n_levels):
    """Chronos-2: its 21 quantile heads; Moirai-2 and TimesFM: 0.1 ... 0.9. The point forecast is the 0.5 level."""
    teacher, x = loaded[name], _windows()
    out = teacher.predict(x, H, quantiles=True)
    assert len(teacher.quantile_levels) == n_levels and out.quantiles.shape == (B, H, D, n_levels)
    np.testing.assert_allclose(out.quantiles[..., teacher.quantile_levels.index(0.5)], out.forecast, rtol=1e-4,
                               atol=1e-4)
    np.testing.assert_allclose(teacher.predict(x, H).forecast, out.forecast, rtol=1e-5, atol=1e-5)
