"""Teacher registry and the Chronos / Chronos-Bolt / Moirai adapters, on tiny random checkpoints
saved in each family's official layout and loaded through the same path as a hub download."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from distilts.teachers import TEACHERS, default_path, load_teacher
from distilts.errors import DistiltsError, ModelDirError

from conftest import TEACHER_CONFIGS

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

B, L, D = 2, 64, 3
HORIZON = {"chronos": 8, "chronos-bolt": 24, "moirai": 24}  # T5 samples token by token: keep it short


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    from distilts.teachers import chronos, moirai

    root = tmp_path_factory.mktemp("teachers")
    return {
        "chronos": str(chronos.save_random_checkpoint(root / "chronos", variant="chronos", seed=1)),
        "chronos-bolt": str(chronos.save_random_checkpoint(root / "bolt", variant="chronos-bolt", seed=1)),
        "moirai": str(moirai.save_random_checkpoint(root / "moirai", seed=1)),
    }


@pytest.fixture(scope="module")
def loaded(checkpoints):
    return {name: load_teacher(name, path, "cpu") for name, path in checkpoints.items()}


def _windows(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(L)[None, :, None]
    return (np.sin(2 * np.pi * t / 16) + 0.3 * rng.normal(size=(B, L, D))).astype(np.float32)


def test_registry_names_and_unknown_name():
    assert set(TEACHERS) == {"timemoe", "chronos", "chronos-bolt", "moirai", "chronos-2", "moirai-2", "timesfm",
                             "patchtst", "student"}
    with pytest.raises(DistiltsError, match="Use one of: timemoe, chronos, chronos-bolt, moirai, chronos-2, "
                                            "moirai-2, timesfm, patchtst, student"):
        load_teacher("chronos-3")


PUBLISHED = {"timemoe": "Maple728/TimeMoE-50M", "chronos": "amazon/chronos-t5-small",
             "chronos-bolt": "amazon/chronos-bolt-small", "moirai": "Salesforce/moirai-1.1-R-small",
             "chronos-2": "amazon/chronos-2", "moirai-2": "Salesforce/moirai-2.0-R-small",
             "timesfm": "google/timesfm-2.5-200m-pytorch"}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_without_a_path_the_published_checkpoint_is_fetched(name, monkeypatch):
    """No --teacher-path: the loader asks the hub for the family's published small model (weights and
    configs only), and an offline machine gets an error that says how to pass a downloaded copy."""
    import huggingface_hub

    asked = []

    def offline(repo_id, **kwargs):
        asked.append((repo_id, kwargs))
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(ModelDirError, match=rf"Could not fetch .*'{PUBLISHED[name]}'.*--teacher-path"):
        load_teacher(name, device="cpu")
    assert asked == [(PUBLISHED[name], {"allow_patterns": ["*.json", "*.safetensors"]})]
    assert default_path(name) == PUBLISHED[name]


def test_a_teacher_trained_here_needs_its_path():
    with pytest.raises(DistiltsError, match="no default checkpoint: pass --teacher-path"):
        load_teacher("patchtst")


def test_registry_and_teach_command_do_not_import_torch():
    code = ("import sys, distilts.teachers, distilts.cache.cli\n"
            "print('HEAVY', [m for m in ('torch', 'transformers', 'chronos', 'uni2ts', 'timesfm') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


def test_embedded_t5_config_is_the_published_one():
    from distilts.teachers.chronos import checkpoint_config

    for size in ("small",):
        official = json.loads((TEACHER_CONFIGS / f"chronos-t5-{size}.json").read_text())
        ours = checkpoint_config("chronos", tiny=False)
        official.pop("transformers_version", None)
        assert ours == official


@pytest.mark.parametrize("name", ["chronos", "chronos-bolt", "moirai"])
def test_forecast_and_hidden(loaded, checkpoints, name, checkpoint_sha256):
    teacher = loaded[name]
    h = HORIZON[name]
    x = _windows()
    out = teacher.predict(x, h, hidden=True)
    assert out.forecast.shape == (B, h, D) and out.forecast.dtype == np.float32
    assert np.isfinite(out.forecast).all()
    assert out.hidden.shape == (B, D, teacher.hidden_tokens(L), teacher.d_model)
    assert np.isfinite(out.hidden).all()
    # deterministic (sampling families are seeded per call), hidden off gives the same forecast
    again = teacher.predict(x, h, hidden=False)
    assert again.hidden is None
    np.testing.assert_array_equal(out.forecast, again.forecast)
    # the forecast depends on the input (and on the scale of the input)
    other = teacher.predict(_windows(seed=1) * 3 + 2, h).forecast
    assert not np.allclose(other, out.forecast)
    assert teacher.name == name
    assert teacher.checkpoint_hash == checkpoint_sha256(checkpoints[name])
    assert {"point", "hidden", "d_model"} <= set(teacher.info)


def test_hidden_token_counts(loaded):
    assert loaded["chronos"].hidden_tokens(64) == 64  # one per step, EOS dropped
    assert loaded["chronos"].hidden_tokens(2000) == 512  # cut to the model's context
    assert loaded["chronos-bolt"].hidden_tokens(512) == 32  # 16-step patches, [REG] dropped
    assert loaded["chronos-bolt"].hidden_tokens(100) == 7  # left-padded to a whole patch
    assert loaded["moirai"].hidden_tokens(512) == 16  # patch size 32


def test_bolt_is_channel_independent(loaded):
    x = _windows()
    full = loaded["chronos-bolt"].predict(x, 24).forecast
    one = loaded["chronos-bolt"].predict(x[:, :, 1:2], 24).forecast
    np.testing.assert_allclose(full[:, :, 1:2], one, rtol=1e-5, atol=1e-6)


def test_unreachable_hub_id_says_how_to_fix(monkeypatch, tmp_path):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelDirError) as err:
        load_teacher("chronos-bolt", "amazon/chronos-bolt-small", "cpu")
    msg = str(err.value)
    assert "amazon/chronos-bolt-small" in msg and "--teacher-path" in msg and "hf download" in msg


def test_pickled_weights_are_refused(checkpoints, tmp_path):
    d = tmp_path / "pickled"
    d.mkdir()
    shutil.copy(f"{checkpoints['chronos-bolt']}/config.json", d / "config.json")
    torch.save({"x": torch.zeros(1)}, d / "pytorch_model.bin")
    with pytest.raises(ModelDirError, match="pickled weights are never loaded"):
        load_teacher("chronos-bolt", str(d), "cpu")
    with pytest.raises(ModelDirError, match="model.safetensors"):
        load_teacher("moirai", str(d), "cpu")


def test_wrong_family_is_named(checkpoints):
    with pytest.raises(ModelDirError, match="--teacher chronos-bolt"):
        load_teacher("chronos", checkpoints["chronos-bolt"], "cpu")
    with pytest.raises(ModelDirError, match="not a Chronos checkpoint"):
        load_teacher("chronos", checkpoints["moirai"], "cpu")


def test_moirai_weights_must_match_config(checkpoints, tmp_path):
    d = tmp_path / "moirai"
    shutil.copytree(checkpoints["moirai"], d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["num_layers"] += 1
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelDirError, match="does not match its config.json"):
        load_teacher("moirai", str(d), "cpu")


@pytest.mark.parametrize("name, n_levels", [("chronos", 9), ("chronos-bolt", 9), ("moirai", 9)])
def test_quantiles_at_the_native_levels(loaded, name, n_levels):
    """Chronos-Bolt: its 9 quantile heads; Chronos (T5) and Moirai: empirical quantiles of their samples
    (sorted by construction; the sample count is in `info`). The point forecast is the 0.5 level."""
    teacher, h, x = loaded[name], HORIZON[name], _windows()
    out = teacher.predict(x, h, quantiles=True)
    assert len(teacher.quantile_levels) == n_levels and out.quantiles.shape == (B, h, D, n_levels)
    np.testing.assert_allclose(out.quantiles[..., teacher.quantile_levels.index(0.5)], out.forecast, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(teacher.predict(x, h).forecast, out.forecast, rtol=1e-5, atol=1e-5)
    if name != "chronos-bolt":  # sample quantiles are ordered; random heads need not be
        assert np.all(np.diff(out.quantiles, axis=-1) >= -1e-6)
        assert teacher.info["num_samples"] > 1 and "empirical" in teacher.info["quantiles"]
