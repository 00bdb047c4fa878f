"""Student training: distilling a tiny TimeMoE lowers validation loss, exact resume after a kill,
early stopping with the best weights kept, the per-epoch JSON-lines log, settings checks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from distilts.data import load_dataset
from distilts.cache.fill import pool_tokens
from distilts.distill.checkpoint import load_checkpoint
from distilts.distill.evaluate import predict
from distilts.students import build_student
from distilts.distill.config import TrainConfig
from distilts.distill.trainer import CHECKPOINT, LOG, TrainData, lr_factor, train
from distilts.errors import DistiltsError

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

L, H, TOKENS = 64, 16, 4


@pytest.fixture(scope="module")
def data() -> TrainData:
    """Synthetic windows (train stride 24, val stride 8) with a tiny TimeMoE's forecasts and pooled
    hidden states for every training window."""
    import tempfile

    from distilts.teachers import timemoe

    ds = load_dataset(None)
    train_w, val_w = ds.windows("train", L, H, 24), ds.windows("val", L, H, 8)
    with tempfile.TemporaryDirectory() as tmp:
        teacher = timemoe.load(str(timemoe.save_random_checkpoint(tmp, seed=5)), "cpu")
        out = teacher.predict(train_w.inputs(), H, hidden=True)
    return TrainData(train_w, val_w, out.forecast, pool_tokens(out.hidden, TOKENS).astype(np.float16))


def _model(name="dlinear", seed=0, **kw):
    torch.manual_seed(seed)
    return build_student(name, L, H, 4, **kw)


def _val_mse(model, data) -> float:
    return float(np.mean((predict(model, data.val) - data.val.targets()) ** 2))


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 3, "batch_size": 32, "lr": 3e-3, "device": "cpu", "beta": 0.1, **kw})


def test_distilling_a_tiny_teacher_lowers_validation_loss(data, tmp_path):
    model = _model()
    before = _val_mse(model, data)
    result = train(model, data, _cfg(epochs=4), tmp_path, progress=False)
    after = _val_mse(model, data)
    assert after < 0.8 * before, (before, after)
    assert math.isclose(after, result.best_val_mse, rel_tol=1e-5)
    first, last = result.history[0], result.history[-1]
    assert last["train_sup"] < first["train_sup"] and last["train_kd"] < first["train_kd"]
    assert last["train_fta"] > 0 and result.fta["n_tokens"] == TOKENS and result.fta["d_teacher"] == 32
    # the model keeps its own parameters only: FTA lives beside it
    assert not any("fta" in k or k.startswith(("W_s", "E", "W_out")) for k in model.state_dict())


class Killed(Exception):
    pass


def test_killed_and_resumed_run_ends_with_the_same_weights(data, tmp_path):
    """iTransformer with dropout + KD + FTA, so model, FTA, AdamW, the RNG and the LR schedule all
    have to come back from the checkpoint for the weights to match bit for bit."""
    kw = {"d_model": 16, "n_heads": 2, "e_layers": 1, "d_ff": 32, "dropout": 0.2}
    cfg = _cfg(epochs=3, schedule="cosine", patience=5)
    full = _model("itransformer", **kw)
    ref = train(full, data, cfg, tmp_path / "full", progress=False, settings={"run": 1})

    def die_after_first_epoch(epoch, record):
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        train(_model("itransformer", **kw), data, cfg, tmp_path / "killed", progress=False, settings={"run": 1},
              on_epoch_end=die_after_first_epoch)
    _, meta = load_checkpoint(tmp_path / "killed" / CHECKPOINT)
    assert meta["epoch"] == 1 and not meta["finished"]
    assert len((tmp_path / "killed" / LOG).read_text().splitlines()) == 1

    torch.manual_seed(1234)  # a fresh process would be in some other RNG state; resume must not care
    torch.rand(7)
    resumed_model = _model("itransformer", seed=99, **kw)  # different init: overwritten by the checkpoint
    resumed = train(resumed_model, data, cfg, tmp_path / "killed", progress=False, settings={"run": 1}, resume=True)

    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert resumed.history == ref.history
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed_model.state_dict()[k]), k
    assert (tmp_path / "killed" / LOG).read_text() == (tmp_path / "full" / LOG).read_text()

    tensors, _ = load_checkpoint(tmp_path / "full" / CHECKPOINT)
    assert any(k.startswith("fta.") for k in tensors) and any(k.startswith("optimizer.") for k in tensors)


def test_resume_refuses_other_settings_and_a_missing_checkpoint(data, tmp_path):
    cfg = _cfg(epochs=1, beta=0.0)
    train(_model(), data, cfg, tmp_path / "a", progress=False, settings={"student": "dlinear"})
    with pytest.raises(DistiltsError,
                       match=r"different settings \(train.lr: 0.003 in the checkpoint, 0.01 now\).*without --resume"):
        train(_model(), data, _cfg(epochs=1, beta=0.0, lr=1e-2), tmp_path / "a", progress=False,
              settings={"student": "dlinear"}, resume=True)
    with pytest.raises(DistiltsError, match=r"different settings \(student: 'dlinear' in the checkpoint, 'other' now"):
        train(_model(), data, cfg, tmp_path / "a", progress=False, settings={"student": "other"}, resume=True)
    with pytest.raises(DistiltsError, match="nothing to resume"):
        train(_model(), data, cfg, tmp_path / "empty", progress=False, resume=True)


def test_early_stopping_and_a_finished_run_resumes_to_nothing(data, tmp_path):
    """lr 0: validation never improves after the first epoch, so patience 2 stops after epoch 3."""
    cfg = _cfg(epochs=10, lr=0.0, patience=2, beta=0.0)
    result = train(_model(), data, cfg, tmp_path, progress=False)
    assert result.stopped_early and result.epochs_run == 3 and result.best_epoch == 1
    assert [r["best"] for r in result.history] == [True, False, False]
    _, meta = load_checkpoint(tmp_path / CHECKPOINT)
    assert meta["finished"] and meta["stopped_early"]
    again = train(_model(), data, cfg, tmp_path, progress=False, resume=True)
    assert again.epochs_run == 3 and again.stopped_early


def test_model_ends_with_the_best_epoch_weights(data, tmp_path, monkeypatch):
    from distilts.distill import trainer

    model = _model()
    snapshots, calls = {}, []

    def keep(epoch, record):
        snapshots[epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    def worse_after_epoch_2(*args, **kwargs):  # validation predictions of epochs 1, 3, 4 are off by 10
        calls.append(1)
        return predict(*args, **kwargs) + (0.0 if len(calls) == 2 else 10.0)

    monkeypatch.setattr(trainer, "predict", worse_after_epoch_2)
    result = train(model, data, _cfg(epochs=4, patience=10, beta=0.0), tmp_path, progress=False, on_epoch_end=keep)
    assert result.best_epoch == 2 and result.epochs_run == 4
    assert [r["best"] for r in result.history] == [True, True, False, False]
    assert all(torch.equal(v, snapshots[2][k]) for k, v in model.state_dict().items())
    assert not all(torch.equal(v, snapshots[4][k]) for k, v in model.state_dict().items())
    assert result.best_val_mse == min(r["val_mse"] for r in result.history)


def test_metrics_json_lines_one_per_epoch(data, tmp_path):
    result = train(_model(), data, _cfg(epochs=2, tau=0.0), tmp_path, progress=False)
    lines = (tmp_path / LOG).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records == result.history and [r["epoch"] for r in records] == [1, 2]
    for r in records:
        assert set(r) == {"epoch", "train_sup", "train_kd", "train_fta", "train_loss", "train_lr", "val_mse", "val_mae", "best"}
        assert math.isclose(r["train_loss"], r["train_sup"] + 0.5 * r["train_kd"] + 0.1 * r["train_fta"], rel_tol=1e-4)
    assert records[1]["train_lr"] < records[0]["train_lr"]  # cosine


def test_ablations_switch_loss_terms_off(data, tmp_path):
    no_kd = train(_model(), data, _cfg(epochs=1, kd=False), tmp_path / "a", progress=False)
    assert no_kd.history[0]["train_kd"] == 0.0 and no_kd.history[0]["train_fta"] > 0
    no_fta = train(_model(), data, _cfg(epochs=1, beta=0.0), tmp_path / "b", progress=False)
    assert no_fta.history[0]["train_fta"] == 0.0 and no_fta.fta is None
    gt_only = TrainData(data.train, data.val)  # no teacher arrays at all
    plain = train(_model(), gt_only, _cfg(epochs=1, kd=False, beta=0.0), tmp_path / "c", progress=False)
    assert plain.history[0]["train_loss"] == plain.history[0]["train_sup"]


def test_missing_or_misaligned_teacher_outputs(data, tmp_path):
    with pytest.raises(DistiltsError, match="needs the teacher's forecasts"):
        train(_model(), TrainData(data.train, data.val), _cfg(beta=0.0), tmp_path, progress=False)
    with pytest.raises(DistiltsError, match="needs the teacher's hidden states"):
        train(_model(), TrainData(data.train, data.val, data.teacher_forecasts), _cfg(), tmp_path, progress=False)
    short = TrainData(data.train, data.val, data.teacher_forecasts[:-1])
    with pytest.raises(DistiltsError, match="does not match these windows"):
        train(_model(), short, _cfg(beta=0.0), tmp_path, progress=False)
    with pytest.raises(DistiltsError, match="Unknown LR schedule"):
        train(_model(), data, _cfg(schedule="linear"), tmp_path, progress=False)


def test_lr_schedules():
    assert lr_factor("cosine", 0, 4) == 1.0 and math.isclose(lr_factor("cosine", 2, 4), 0.5)
    assert [lr_factor("step", e, 9) for e in range(3)] == [1.0, 0.5, 0.25]
    assert lr_factor("constant", 7, 8) == 1.0
