"""Train a PatchTST teacher on a dataset's normalized train windows, early-stopped on val MSE (with
`quantiles`: a quantile head trained with the pinball loss, early-stopped on val WQL).

Writes `config.json` + `model.safetensors` (via `save_pretrained`) and `training.json` (settings,
per-epoch losses, best epoch, val and test MSE/MAE on normalized values) into `out_dir` in one
atomic rename, so a crashed run never leaves a half-written teacher behind. SIGTERM / Ctrl-C during
training stops it early *with* the best epoch so far (recorded as `stopped_by_signal`).
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from transformers import PatchTSTConfig, PatchTSTForPrediction
from transformers.utils import logging as hf_logging

from distilts.data import Dataset, Windows
from distilts.distill import evaluate as ev
from distilts.distill.config import TeacherTraining
from distilts.distill.trainer import EarlyStopping
from distilts.errors import DistiltsError
from distilts.teachers.base import resolve_device
from distilts.teachers.patchtst import quantile_forecast
from distilts.utils import atomic_directory, write_json


def build_patchtst(n_variates: int, opts: TeacherTraining) -> PatchTSTForPrediction:
    """A fresh channel-independent `PatchTSTForPrediction` (flatten MSE head, per-window std scaling)."""
    if opts.d_model % opts.heads:
        raise DistiltsError(f"--d-model {opts.d_model} must be divisible by the number of heads ({opts.heads}).")
    if opts.lookback < opts.patch_length:
        raise DistiltsError(f"lookback {opts.lookback} is shorter than one patch ({opts.patch_length} steps).")
    levels = list(opts.quantiles) if opts.quantiles else None
    config = PatchTSTConfig(
        num_input_channels=n_variates,
        context_length=opts.lookback,
        prediction_length=opts.horizon * (len(levels) if levels else 1),
        patch_length=opts.patch_length,
        patch_stride=opts.patch_stride,
        d_model=opts.d_model,
        num_hidden_layers=opts.layers,
        num_attention_heads=opts.heads,
        ffn_dim=opts.ffn_dim or 2 * opts.d_model,
        attention_dropout=0.0,
        ff_dropout=0.0,
        head_dropout=0.0,
        positional_dropout=0.0,
        path_dropout=0.0,
        scaling="std",
        # extra attributes of the config (kept in config.json): not in the class's typed signature
        **cast(dict[str, Any], {"distilts_quantiles": levels, "dropout": opts.dropout}),
        loss="mse",
        pooling_type=None,
        share_embedding=True,
        channel_attention=False,
        do_mask_input=False,
    )
    torch.manual_seed(opts.seed)
    return PatchTSTForPrediction(config)


class PointForecaster(nn.Module):
    """A `PatchTSTForPrediction` as a forecaster `[B, L, D] -> [B, H, D]` (what `evaluate.predict` takes),
    or `[B, H, D, Q]` at `levels` for a quantile PatchTST."""

    def __init__(self, model: PatchTSTForPrediction) -> None:
        super().__init__()
        self.model = model
        q = getattr(model.config, "distilts_quantiles", None)
        self.levels = tuple(q) if q else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        point, quantiles, _ = quantile_forecast(self.model, x, self.levels)
        return point if quantiles is None else quantiles


def _scores(model: PatchTSTForPrediction, windows: Windows, device: str) -> dict[str, float]:
    """MSE and MAE (normalized values) of `model` over all `windows`: the student's test protocol (of
    the median for a quantile PatchTST, which also gets WQL and the 80% interval's coverage)."""
    fc = PointForecaster(model).train(model.training)
    s = ev.scores(ev.predict(fc, windows, 256, device), windows, fc.levels)
    out = {"mse": s["mse"], "mae": s["mae"]}
    if "quantiles" in s:
        q = s["quantiles"]
        out.update(wql=q["wql"], coverage_80=(q.get("interval") or {}).get("coverage"))
    return out


def train_teacher(
    dataset: Dataset,
    out_dir: str | Path,
    options: TeacherTraining | None = None,
    *,
    log: Callable[[str], None] | None = print,
) -> dict:
    """`distilts train-teacher`: train a PatchTST teacher on `dataset`'s train windows, early-stop on
    val MSE, restore the best epoch and save it to `out_dir` (config.json, model.safetensors,
    training.json) in one atomic rename; returns training.json's contents."""
    opts = options or TeacherTraining()
    lookback, horizon, epochs, batch_size, lr = opts.lookback, opts.horizon, opts.epochs, opts.batch_size, opts.lr
    device = resolve_device(opts.device)
    log = log or (lambda s: None)
    torch.manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)
    train = dataset.windows("train", lookback, horizon, opts.stride)
    val = dataset.windows("val", lookback, horizon, opts.val_stride)
    test = dataset.windows("test", lookback, horizon, 1)
    n_var = dataset.normalized.shape[1]
    model: Any = build_patchtst(n_var, opts)
    model = model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=opts.weight_decay)
    steps = max(10, epochs * math.ceil(len(train) / batch_size))  # OneCycle needs >= 2 steps per phase
    sched = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.2)
    early = EarlyStopping(opts.patience)
    history: list[dict] = []
    t0 = time.perf_counter()
    stop = _StopOnSignal()  # SIGTERM / SIGINT: finish now with the best epoch so far
    with stop:
        _train_loop(model, optimizer, sched, train, val, device, epochs, batch_size, rng, history, early, stop, t0, log)
    if early.best_state is None:
        raise DistiltsError("train-teacher was stopped before its first epoch finished; nothing to save.")
    model.load_state_dict(early.best_state)
    val_m = _scores(model, val, device)
    test_m = _scores(model, test, device)
    info = {
        "format": "distilts-teacher-training",
        "version": 1,
        "family": "patchtst",
        "data": {
            "source": dataset.series.source,
            "hash": dataset.data_hash,
            "split": dataset.split.to_dict(),
            "columns": dataset.columns,
        },
        "lookback": lookback,
        "horizon": horizon,
        "quantiles": list(opts.quantiles) if opts.quantiles else None,
        "model": {
            "d_model": opts.d_model,
            "layers": opts.layers,
            "heads": opts.heads,
            "ffn_dim": opts.ffn_dim or 2 * opts.d_model,
            "patch_length": opts.patch_length,
            "patch_stride": opts.patch_stride,
            "dropout": opts.dropout,
            "param_count": int(sum(p.numel() for p in model.parameters())),
        },
        "train": {
            "epochs": epochs,
            "epochs_run": len(history),
            "best_epoch": early.best_epoch + 1,
            "batch_size": batch_size,
            "lr": lr,
            "patience": opts.patience,
            "train_stride": opts.stride,
            "val_stride": opts.val_stride,
            "train_windows": len(train),
            "seed": opts.seed,
            "device": device,
            "stopped_by_signal": stop.fired,
            "wall_s": round(time.perf_counter() - t0, 2),
        },
        "history": history,
        "val": val_m,
        "test": test_m,
        "metrics_note": "MSE/MAE on z-scored values (train statistics), test windows stride 1",
    }
    out_dir = Path(out_dir)
    hf_logging.disable_progress_bar()  # one tiny shard: no "Writing model shards" bar
    with atomic_directory(out_dir) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        write_json(tmp / "training.json", info)
    log(f"saved {out_dir}: val mse {val_m['mse']:.4f}, test mse {test_m['mse']:.4f} mae {test_m['mae']:.4f}")
    return info


def _train_loop(
    model: PatchTSTForPrediction,
    optimizer: torch.optim.Optimizer,
    sched: Any,
    train: Windows,
    val: Windows,
    device: str,
    epochs: int,
    batch_size: int,
    rng: np.random.Generator,
    history: list[dict],
    early: EarlyStopping,
    stop: _StopOnSignal,
    t0: float,
    log: Callable[[str], None],
) -> None:
    """PatchTST's recipe: one data-order stream, the one-cycle LR (and momentum) stepped per batch, gradient
    norm clipped at 1; early stopping on val MSE as the student trainer (`trainer.EarlyStopping`)."""
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(train))
        total, count = 0.0, 0
        for lo in range(0, len(order), batch_size):
            if stop.fired:
                log("stopped by signal: keeping the best epoch so far")
                return
            x, y = train.batch(order[lo : lo + batch_size])
            loss = _loss(model, torch.from_numpy(x).to(device), torch.from_numpy(y).to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            sched.step()
            total += float(loss.detach()) * len(x)
            count += len(x)
        val_m = _scores(model, val, device)
        kind = "pinball" if "wql" in val_m else "mse"
        history.append(
            {
                "epoch": epoch + 1,
                f"train_{kind}": total / max(count, 1),
                **{f"val_{k}": v for k, v in val_m.items()},
                "elapsed_s": round(time.perf_counter() - t0, 2),
            }
        )
        log(
            f"epoch {epoch + 1}/{epochs}: train {kind} {total / max(count, 1):.4f}  val mse {val_m['mse']:.4f}"
            + (f"  val WQL {val_m['wql']:.4f}" if "wql" in val_m else "")
        )
        early.update(val_m.get("wql", val_m["mse"]), epoch, model)
        if early.stop:
            log(f"early stop: val mse did not improve for {early.patience} epochs")
            return


def _loss(model: PatchTSTForPrediction, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MSE of the point head, or the pinball loss of a quantile head against the truth."""
    levels = getattr(model.config, "distilts_quantiles", None)
    if not levels:
        return model(past_values=x, future_values=y).loss
    from distilts.distill.losses import pinball_loss

    _, q, _ = quantile_forecast(model, x, tuple(levels))
    return pinball_loss(q, y, torch.tensor(levels, dtype=q.dtype, device=q.device))


class _StopOnSignal:
    """While active, SIGTERM and SIGINT set `fired` instead of killing the process (main thread only)."""

    def __init__(self) -> None:
        self.fired = False
        self._old: dict = {}

    def _handle(self, signum, frame) -> None:
        self.fired = True

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
