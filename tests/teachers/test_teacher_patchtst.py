"""PatchTST teacher: train one tiny epoch, save, load through the teacher interface."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from distilts.data import load_dataset  # noqa: E402
from distilts.errors import DistiltsError, ModelDirError  # noqa: E402

L, H = 48, 12


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    from distilts.distill.config import TeacherTraining
    from distilts.distill.train_teacher import train_teacher

    ds = load_dataset(None, seed=0)  # built-in synthetic series, 4 variates, 70/10/20 split
    out = tmp_path_factory.mktemp("t") / "patchtst"
    info = train_teacher(ds, out, TeacherTraining(lookback=L, horizon=H, epochs=1, d_model=16, layers=1, heads=2,
                                                  patch_length=8, patch_stride=8, batch_size=128, stride=16,
                                                  val_stride=8, device="cpu"), log=None)
    return out, info, ds


def test_training_writes_checkpoint(teacher_dir):
    out, info, _ = teacher_dir
    assert (out / "config.json").exists() and (out / "model.safetensors").exists()
    assert not list(out.glob("*.bin"))
    saved = json.loads((out / "training.json").read_text())
    assert saved["test"]["mse"] == pytest.approx(info["test"]["mse"])
    assert np.isfinite(saved["val"]["mse"]) and saved["train"]["best_epoch"] == 1
    assert not list(out.parent.glob(".*partial"))  # atomic: no leftovers


def test_load_predict_shapes_and_determinism(teacher_dir):
    from distilts.teachers import patchtst

    out, info, ds = teacher_dir
    teacher = patchtst.load(str(out), "cpu")
    x, _ = ds.windows("test", L, H).batch(np.arange(5))
    res = teacher.predict(x, H, hidden=True)
    assert res.forecast.shape == (5, H, 4) and res.forecast.dtype == np.float32
    assert res.hidden.shape == (5, 4, teacher.hidden_tokens(L), 16) == (5, 4, 6, 16)
    again = teacher.predict(x, H, hidden=False)
    assert again.hidden is None
    np.testing.assert_array_equal(res.forecast, again.forecast)
    # batch-independence: one window alone gives the same forecast
    np.testing.assert_allclose(teacher.predict(x[2:3], H).forecast[0], res.forecast[2], atol=1e-5)
    assert teacher.name == "patchtst" and teacher.d_model == 16 and len(teacher.checkpoint_hash) == 64
    assert teacher.info["path"] == str(out)


def test_registry_and_errors(teacher_dir, tmp_path):
    from distilts.teachers import default_path, load_teacher, patchtst

    out, _, ds = teacher_dir
    assert patchtst.DEFAULT_PATH is None
    with pytest.raises(DistiltsError, match="teacher-path"):
        default_path("patchtst")
    teacher = load_teacher("patchtst", str(out), "cpu")
    x, _ = ds.windows("test", L, H).batch(np.arange(2))
    with pytest.raises(DistiltsError, match="forecasts 12 steps"):
        teacher.predict(x, 24)
    # a shorter horizon is the first steps of the trained one
    np.testing.assert_array_equal(teacher.predict(x, 5).forecast, teacher.predict(x, H).forecast[:, :5])
    with pytest.raises(DistiltsError, match="lookback 48"):
        teacher.predict(x[:, -32:], H)
    with pytest.raises(ModelDirError, match="train-teacher"):
        patchtst.load(str(tmp_path / "nope"), "cpu")
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "config.json").write_text("{}")
    (tmp_path / "pickled" / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(ModelDirError, match="never loaded"):
        patchtst.load(str(tmp_path / "pickled"), "cpu")


def test_cli_trains(tmp_path):
    from click.testing import CliRunner

    from distilts.distill.train_teacher_cli import train_teacher

    out = tmp_path / "cli"
    res = CliRunner().invoke(train_teacher, ["--lookback", "32", "--horizon", "8", "--out", str(out), "--epochs", "1",
                                             "--d-model", "8", "--layers", "1", "--heads", "2", "--stride", "64",
                                             "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "test MSE" in res.output and (out / "model.safetensors").exists()
