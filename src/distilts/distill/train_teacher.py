"""Train a PatchTST teacher on a dataset's normalized train windows, early-stopped on val MSE.

Writes `config.json` + `model.safetensors` (via `save_pretrained`) and `training.json` (settings,
per-epoch losses, best epoch, val and test MSE/MAE on normalized values) into `out_dir` in one
atomic rename, so a crashed run never leaves a half-written teacher behind. SIGTERM / Ctrl-C during
training stops it early *with* the best epoch so far (recorded as `stopped_by_signal`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import numpy as np

from distilts.data import Dataset, Windows
from distilts.errors import DistiltsError
from distilts.utils import atomic_directory, write_json


def build_patchtst(n_variates: int, lookback: int, horizon: int, d_model: int = 64, layers: int = 3,
                   heads: int = 4, ffn_dim: int | None = None, patch_length: int = 16, patch_stride: int = 8,
                   dropout: float = 0.2, seed: int = 0):
    """A fresh channel-independent `PatchTSTForPrediction` (flatten MSE head, per-window std scaling)."""
    import torch
    from transformers import PatchTSTConfig, PatchTSTForPrediction

    if d_model % heads:
        raise DistiltsError(f"--d-model {d_model} must be divisible by the number of heads ({heads}).")
    if lookback < patch_length:
        raise DistiltsError(f"lookback {lookback} is shorter than one patch ({patch_length} steps).")
    config = PatchTSTConfig(
        num_input_channels=n_variates, context_length=lookback, prediction_length=horizon,
        patch_length=patch_length, patch_stride=patch_stride, d_model=d_model, num_hidden_layers=layers,
        num_attention_heads=heads, ffn_dim=ffn_dim or 2 * d_model, dropout=dropout, attention_dropout=0.0,
        ff_dropout=0.0, head_dropout=0.0, positional_dropout=0.0, path_dropout=0.0,
        scaling="std", loss="mse", pooling_type=None, share_embedding=True, channel_attention=False, do_mask_input=False,
    )
    torch.manual_seed(seed)
    return PatchTSTForPrediction(config)


def _evaluate(model, windows: Windows, device: str, batch_size: int = 256) -> dict[str, float]:
    """MSE and MAE (normalized values) of `model` over all `windows`."""
    import torch

    model.eval()
    se = ae = 0.0
    n = 0
    with torch.inference_mode():
        for _, x, y in windows.iter_batches(batch_size):
            pred = model(past_values=torch.from_numpy(x).to(device)).prediction_outputs.float().cpu().numpy()
            se += float(np.square(pred - y, dtype=np.float64).sum())
            ae += float(np.abs(pred - y, dtype=np.float64).sum())
            n += y.size
    return {"mse": se / max(n, 1), "mae": ae / max(n, 1)}


def train_patchtst(
    dataset: Dataset,
    lookback: int,
    horizon: int,
    out_dir: str | Path,
    epochs: int = 10,
    *,
    d_model: int = 64,
    layers: int = 3,
    heads: int = 4,
    ffn_dim: int | None = None,
    patch_length: int = 16,
    patch_stride: int = 8,
    dropout: float = 0.2,
    batch_size: int = 64,
    lr: float = 1e-3,
    patience: int = 3,
    stride: int = 1,
    val_stride: int = 1,
    seed: int = 0,
    device: str = "cpu",
    log: Callable[[str], None] | None = print,
) -> dict:
    """Train, early-stop on val MSE, restore the best epoch, save to `out_dir`; returns training.json."""
    import torch

    from distilts.teachers.base import resolve_device

    device = resolve_device(device)
    log = log or (lambda s: None)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train = dataset.windows("train", lookback, horizon, stride)
    val = dataset.windows("val", lookback, horizon, val_stride)
    test = dataset.windows("test", lookback, horizon, 1)
    n_var = dataset.normalized.shape[1]
    model = build_patchtst(n_var, lookback, horizon, d_model, layers, heads, ffn_dim, patch_length, patch_stride,
                           dropout, seed).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = max(10, epochs * math.ceil(len(train) / batch_size))  # OneCycle needs >= 2 steps per phase
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
    best_box: list = [(math.inf, -1, None)]
    history: list[dict] = []
    t0 = time.perf_counter()
    stop = _StopOnSignal()  # SIGTERM / SIGINT: finish now with the best epoch so far
    with stop:
        _train_loop(model, opt, sched, train, val, device, epochs, batch_size, patience, rng, history, best_box,
                    stop, t0, log)
    best = best_box[0]
    if best[2] is None:
        raise DistiltsError("train-teacher was stopped before its first epoch finished; nothing to save.")
    model.load_state_dict(best[2])
    val_m = _evaluate(model, val, device)
    test_m = _evaluate(model, test, device)
    info = {
        "format": "distilts-teacher-training", "version": 1, "family": "patchtst",
        "data": {"source": dataset.series.source, "hash": dataset.data_hash, "split": dataset.split.to_dict(),
                 "columns": dataset.columns},
        "lookback": lookback, "horizon": horizon,
        "model": {"d_model": d_model, "layers": layers, "heads": heads, "ffn_dim": ffn_dim or 2 * d_model, "patch_length": patch_length,
                  "patch_stride": patch_stride, "dropout": dropout,
                  "param_count": int(sum(p.numel() for p in model.parameters()))},
        "train": {"epochs": epochs, "epochs_run": len(history), "best_epoch": best[1], "batch_size": batch_size,
                  "lr": lr, "patience": patience, "train_stride": stride, "val_stride": val_stride,
                  "train_windows": len(train), "seed": seed, "device": device, "stopped_by_signal": stop.fired,
                  "wall_s": round(time.perf_counter() - t0, 2)},
        "history": history,
        "val": val_m, "test": test_m,
        "metrics_note": "MSE/MAE on z-scored values (train statistics), test windows stride 1",
    }
    out_dir = Path(out_dir)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one tiny shard: no "Writing model shards" bar
    with atomic_directory(out_dir) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        write_json(tmp / "training.json", info)
    log(f"saved {out_dir}: val mse {val_m['mse']:.4f}, test mse {test_m['mse']:.4f} mae {test_m['mae']:.4f}")
    return info


def _train_loop(model, opt, sched, train, val, device, epochs, batch_size, patience, rng, history, best_box, stop,
                t0, log) -> None:
    """Epochs with early stopping; `best_box[0]` = (val mse, epoch, state) of the best epoch so far."""
    import torch

    bad = 0
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(train))
        total, count = 0.0, 0
        for lo in range(0, len(order), batch_size):
            if stop.fired:
                log("stopped by signal: keeping the best epoch so far")
                return
            x, y = train.batch(order[lo: lo + batch_size])
            out = model(past_values=torch.from_numpy(x).to(device), future_values=torch.from_numpy(y).to(device))
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += float(out.loss.detach()) * len(x)
            count += len(x)
        val_m = _evaluate(model, val, device)
        history.append({"epoch": epoch + 1, "train_mse": total / max(count, 1), "val_mse": val_m["mse"],
                        "val_mae": val_m["mae"], "elapsed_s": round(time.perf_counter() - t0, 2)})
        log(f"epoch {epoch + 1}/{epochs}: train mse {total / max(count, 1):.4f}  val mse {val_m['mse']:.4f}")
        if val_m["mse"] < best_box[0][0]:
            best_box[0] = (val_m["mse"], epoch + 1, {k: v.detach().clone() for k, v in model.state_dict().items()})
            bad = 0
        else:
            bad += 1
            if bad >= patience:
                log(f"early stop: val mse did not improve for {patience} epochs")
                return


class _StopOnSignal:
    """While active, SIGTERM and SIGINT set `fired` instead of killing the process (main thread only)."""

    def __init__(self) -> None:
        self.fired = False
        self._old: dict = {}

    def _handle(self, signum, frame) -> None:
        self.fired = True

    def __enter__(self) -> "_StopOnSignal":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        for sig, handler in self._old.items():
            signal.signal(sig, handler)
