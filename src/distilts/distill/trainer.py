"""Student training: AdamW, a per-epoch LR schedule, early stopping on validation MSE, AMP on CUDA,
an atomic checkpoint after every epoch and an exact `resume`.

Exactness on CPU: the data order of epoch e is `default_rng([seed, e]).permutation(N)` (a pure
function of seed and epoch), the LR of epoch e is a pure function of e (the "scheduler state" is
the epoch), and the checkpoint holds model, FTA, optimizer, torch RNG state and the early-stopping
state; so a killed-and-resumed run ends with the same weights as an uninterrupted one.

Under torchrun (`distilts.distributed`): DistributedDataParallel over student + FTA; the
same global order and global batch, each batch split over the ranks with a loss weight that makes
DDP's gradient average the global batch's gradient; rank 0 scores validation and writes the log and
the checkpoint (which holds every rank's RNG state).

LR schedules (factor on --lr at epoch e of E): cosine `0.5 * (1 + cos(pi * e / E))`;
step `0.5 ** e` (the DLinear/iTransformer reference "type1"); constant `1`.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from distilts import distributed
from distilts.data.windows import Windows
from distilts.distill.checkpoint import (
    load_checkpoint,
    optimizer_from_parts,
    optimizer_to_parts,
    prefixed,
    save_checkpoint,
    unprefixed,
)
from distilts.distill.config import TrainConfig
from distilts.distill.evaluate import predict
from distilts.distill.fta import FTA
from distilts.distill.losses import (
    horizon_weights,
    kd_loss,
    pinball_loss,
    point_loss,
    quantile_kd_loss,
    smape_loss,
    smape_per_step,
    total_loss,
)
from distilts.errors import DistiltsError
from distilts.metrics import wql
from distilts.progress import Bar
from distilts.quantiles import median_index
from distilts.teachers.base import resolve_device
from distilts.utils import atomic_write_text

LOG = "train_log.jsonl"
CHECKPOINT = "checkpoint"


@dataclass
class TrainData:
    """Training windows and, aligned with them, the cached teacher outputs the losses need."""

    train: Windows
    val: Windows
    teacher_forecasts: np.ndarray | None = None  # [N_train, H, D]; [N_train, H, D, Q] for a quantile student
    teacher_hidden: Any = None  # [N_train, D, T, d_T]


@dataclass
class EarlyStopping:
    """Early stopping on a validation score (lower is better): the best epoch (0-based), its score and
    weights, and the epochs since; `stop` once `patience` epochs in a row brought no improvement."""

    patience: int
    best: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    best_state: dict[str, torch.Tensor] | None = None

    def update(self, score: float, epoch: int, model: nn.Module) -> bool:
        """Record `epoch`'s score; True when it is the best so far (then `model`'s weights are kept)."""
        if score < self.best:
            self.best, self.best_epoch, self.bad_epochs = score, epoch, 0
            self.best_state = _clone(model.state_dict())
            return True
        self.bad_epochs += 1
        return False

    @property
    def stop(self) -> bool:
        return self.bad_epochs >= self.patience


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_val_mse: float = math.inf  # the early-stopping score: val MSE (MAE with loss mae), or WQL (quantiles)
    stopped_early: bool = False
    fta: dict | None = None
    wall_s: float = 0.0

    @property
    def epochs_run(self) -> int:
        return len(self.history)


def lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    """LR multiplier of `epoch` (0-based) out of `epochs`."""
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / max(1, epochs)))
    if schedule == "step":
        return 0.5**epoch
    if schedule == "constant":
        return 1.0
    raise ValueError(f"unknown LR schedule {schedule!r}")  # TrainConfig.check names the choices


class _Run:
    """The mutable state of one training run (what a checkpoint holds)."""

    def __init__(self, model: nn.Module, data: TrainData, cfg: TrainConfig, device: str) -> None:
        self.model, self.data, self.cfg, self.device = model, data, cfg, device
        self.comm = distributed.current()
        _check_data(data, cfg)
        torch.manual_seed(distributed.rank_seed(cfg.seed, self.comm.rank))
        self.fta: FTA | None = None
        if cfg.use_fta:
            if not hasattr(model, "forward_with_repr"):
                raise DistiltsError(
                    f"{type(model).__name__} has no `forward_with_repr`/`repr_dim` (the features FTA "
                    "aligns with the teacher): train it with --beta 0, or add them to the student."
                )
            if data.teacher_hidden is None:
                raise DistiltsError("FTA (--beta > 0) needs the teacher's hidden states: none were cached.")
            _, _, n_tokens, d_teacher = data.teacher_hidden.shape
            self.fta = FTA(int(cast(Any, model).repr_dim), d_teacher, n_tokens, latent=cfg.fta_latent).to(device)
        model.to(device)
        # under torchrun: student + FTA in one DDP module (rank 0's weights broadcast to all ranks)
        self.ddp = distributed.wrap_ddp(_Objective(model, self.fta), device) if self.comm.active else None
        params = list(model.parameters()) + (list(self.fta.parameters()) if self.fta else [])
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp) if device == "cuda" else None
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype is torch.float16 else None
        self.weights = horizon_weights(data.train.horizon, cfg.tau, device)
        self.season = max(int(cfg.season), 1)  # the mase loss's seasonal period (run.py resolves 0 from the data)
        levels = getattr(model, "levels", None)
        self.levels = None if levels is None else torch.tensor(levels, dtype=torch.float32, device=device)
        if cfg.use_kd and data.teacher_forecasts is not None:
            want = data.teacher_forecasts.ndim == 4
            if want != (levels is not None) or (want and data.teacher_forecasts.shape[-1] != len(levels or ())):
                raise DistiltsError(
                    f"The teacher targets {tuple(data.teacher_forecasts.shape)} do not match the "
                    f"student's output (levels {levels}): a quantile student distils the teacher's "
                    "quantiles at its own levels, a point student the teacher's forecasts."
                )
        self.epoch = 0  # next epoch to run
        self.early = EarlyStopping(cfg.patience, best_state=_clone(model.state_dict()))
        self.history: list[dict] = []
        self.finished = self.stopped_early = False

    # -- checkpoint --------------------------------------------------------------------------
    def save(self, directory: Path, settings: dict) -> None:
        opt_tensors, opt_meta = optimizer_to_parts(self.optimizer)
        rng = self.comm.gather(torch.get_rng_state())  # every rank's stream, so a resume continues each
        if not self.comm.is_main:
            return
        tensors = {
            **prefixed(self.model.state_dict(), "model"),
            **prefixed(self.early.best_state or {}, "best"),
            **opt_tensors,
            "rng.torch": rng[0],
            **{f"rng.torch.rank{r}": t for r, t in enumerate(rng) if r},
        }
        if self.fta is not None:
            tensors.update(prefixed(self.fta.state_dict(), "fta"))
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        meta = {
            "epoch": self.epoch,
            "best_val_mse": self.early.best,
            "best_epoch": self.early.best_epoch,
            "bad_epochs": self.early.bad_epochs,
            "finished": self.finished,
            "stopped_early": self.stopped_early,
            "history": self.history,
            "optimizer": opt_meta,
            "settings": settings,
            "grad_scaler": self.scaler.state_dict() if self.scaler else None,
            "lr_schedule": {"name": self.cfg.schedule, "epoch": self.epoch},
        }
        save_checkpoint(directory, tensors, meta)

    def restore(self, directory: Path, settings: dict) -> None:
        tensors, meta = load_checkpoint(directory)
        if _jsonable(meta.get("settings")) != _jsonable(settings):
            diff = _differences(_jsonable(meta.get("settings") or {}), _jsonable(settings))
            shown = "; ".join(f"{k}: {old!r} in the checkpoint, {new!r} now" for k, old, new in diff[:6])
            raise DistiltsError(
                f"The checkpoint in {directory} was written with different settings ({shown}). "
                "Resume with the same options, or run without --resume to start over."
            )
        self.model.load_state_dict(unprefixed(tensors, "model"))
        self.early.best_state = unprefixed(tensors, "best")
        if self.fta is not None:
            self.fta.load_state_dict(unprefixed(tensors, "fta"))
        optimizer_from_parts(self.optimizer, tensors, meta["optimizer"])
        if self.scaler is not None and meta.get("grad_scaler"):
            self.scaler.load_state_dict(meta["grad_scaler"])
        key = f"rng.torch.rank{self.comm.rank}" if self.comm.rank else "rng.torch"
        if key in tensors:
            torch.set_rng_state(tensors[key])
        else:  # a rank the saved run did not have: a fresh stream of its own
            torch.manual_seed(distributed.rank_seed(self.cfg.seed + int(meta["epoch"]), self.comm.rank))
        if "rng.cuda" in tensors and torch.cuda.is_available():
            torch.cuda.set_rng_state(tensors["rng.cuda"])
        self.epoch, self.history = meta["epoch"], meta["history"]
        self.early.best, self.early.best_epoch = meta["best_val_mse"], meta["best_epoch"]
        self.early.bad_epochs = meta["bad_epochs"]
        self.finished, self.stopped_early = meta["finished"], meta["stopped_early"]

    # -- one epoch ---------------------------------------------------------------------------
    def train_epoch(self, bar: Bar) -> dict[str, float]:
        cfg, data, model = self.cfg, self.data, self.model
        factor = lr_factor(cfg.schedule, self.epoch, cfg.epochs)
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr * factor
        model.train()
        if self.fta is not None:
            self.fta.train()
        order = epoch_order(data.train, cfg.sampling, np.random.default_rng([cfg.seed, self.epoch]))
        sums = {"sup": 0.0, "kd": 0.0, "fta": 0.0, "loss": 0.0}
        seen: float = 0
        bar.start(f"epoch {self.epoch + 1}", math.ceil(len(order) / cfg.batch_size))
        for lo in range(0, len(order), cfg.batch_size):
            # --batch-size is the global batch: under torchrun each rank takes its share of it
            idx, scale = distributed.shard_batch(order[lo : lo + cfg.batch_size], self.comm)
            parts = self.step(idx, scale)
            n = len(idx) if scale else 0
            seen += n
            for k, v in parts.items():
                sums[k] += v * n
            bar.advance(1, " ".join(f"{k} {sums[k] / max(1, seen):.4f}" for k in ("sup", "kd", "fta")))
        if self.comm.active:  # the epoch's means over all ranks' windows
            *totals, seen = self.comm.sum([*sums.values(), seen])
            sums = dict(zip(sums, totals, strict=False))
        return {k: v / max(1, seen) for k, v in sums.items()} | {"lr": cfg.lr * factor}

    def terms(
        self,
        pred: torch.Tensor,
        y: torch.Tensor,
        teacher: torch.Tensor | None,
        x: torch.Tensor,
        kind: str,
        raw: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(supervised term, KD term or None) of one forecast of windows `x`: pinball and level-by-level KD for a
        quantile student, else the point loss `kind` (mse | mae | mase | smape) against the truth and the
        teacher; smape compares on each series' raw values (`raw`: mean, std)."""
        if self.levels is not None:
            sup = pinball_loss(pred, y, self.levels)
            kd = None
            if teacher is not None:
                kd = quantile_kd_loss(pred, teacher, self.levels, self.weights, self.cfg.quantile_kd)
            return sup, kd
        if kind == "smape":
            assert raw is not None  # step() maps back to raw values whenever a member uses smape
            mean, std = raw
            pred, y = pred * std + mean, y * std + mean
            kd = None if teacher is None else (self.weights * smape_per_step(pred, teacher * std + mean)).sum()
            return smape_loss(pred, y), kd
        kd = None if teacher is None else kd_loss(pred, teacher, self.weights, kind, x, self.season)
        return point_loss(pred, y, kind, x, self.season), kd

    def raw_affine(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor] | None:
        """smape: (mean, std) `[B, 1, 1]` back to each window's series' raw values; None without smape."""
        kinds = getattr(self.model, "member_losses", None) or [self.cfg.loss]
        if "smape" not in kinds:
            return None
        affine = getattr(self.data.train, "raw_affine", lambda _i: None)(idx)
        if affine is None:
            raise DistiltsError(
                "--loss smape compares forecasts with each series' raw values, which only panel data (many series "
                "in long format or M4 rows, z-scored per series) keeps; use --loss mae or mase here."
            )
        return tuple(torch.tensor(a, dtype=torch.float32, device=self.device) for a in affine)  # type: ignore

    def step(self, idx: np.ndarray, scale: float = 1.0) -> dict[str, float]:
        cfg, data, dev = self.cfg, self.data, self.device
        x, y = (torch.from_numpy(a).to(dev) for a in data.train.batch(idx))
        raw = self.raw_affine(idx)
        cov = covariate_tensors(data.train, idx, dev)
        with torch.autocast("cuda", dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            hidden_t = _rows(data.teacher_hidden, idx, dev) if self.fta is not None else None
            if self.ddp is not None:
                pred, fta = self.ddp(x, hidden_t, cov)
            else:
                pred, fta = _forward(self.model, self.fta, x, hidden_t, cov)
            teacher = _rows(data.teacher_forecasts, idx, dev) if cfg.use_kd else None
            # an ensemble: each member against the truth (and the teacher), never the average (students/ensemble.py)
            members = pred if isinstance(pred, list) else [pred]
            kinds = getattr(self.model, "member_losses", None) or [cfg.loss] * len(members)
            terms = [self.terms(p.float(), y, teacher, x, kind, raw) for p, kind in zip(members, kinds, strict=True)]
            sup = torch.stack([t[0] for t in terms]).mean()
            kd = None if teacher is None else torch.stack([t[1] for t in terms if t[1] is not None]).mean()
            loss = total_loss(sup, kd, fta, cfg.alpha, cfg.beta)
        # DDP averages gradients over ranks; `scale` makes that the global batch's gradient (shard_batch)
        loss_to_step = loss * scale if self.ddp is not None else loss
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss_to_step).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss_to_step.backward()
            self.optimizer.step()
        return {
            "sup": sup.item(),
            "kd": kd.item() if kd is not None else 0.0,
            "fta": fta.item() if fta is not None else 0.0,
            "loss": loss.item(),
        }


def train(
    model: nn.Module,
    data: TrainData,
    cfg: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    settings: dict | None = None,
    resume: bool = False,
    progress: bool = True,
    on_epoch_end: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Train `model` in place (it ends holding the best-validation weights); checkpoints in `run_dir`.

    `settings` (JSON-able) identifies the run: `resume` refuses a checkpoint written with others.
    `on_epoch_end(epoch, record)` runs after each epoch's checkpoint is on disk.
    """
    start = time.perf_counter()
    comm = distributed.current()
    run_dir = Path(run_dir)
    if comm.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    settings = {**(settings or {}), "train": {k: v for k, v in asdict(cfg).items() if k != "device"}}
    state = _Run(model, data, cfg, resolve_device(cfg.device))
    if resume:
        state.restore(run_dir / CHECKPOINT, settings)
    if comm.is_main:
        _write_log(run_dir / LOG, state.history)
    with Bar(progress and comm.is_main, stderr=False) as bar:
        while not state.finished and state.epoch < cfg.epochs:
            means = state.train_epoch(bar)
            val = None
            if comm.is_main:  # the weights are the same on every rank: rank 0 scores, the others follow
                val = val_scores(
                    predict(model, data.val, 256, state.device), data.val.targets(), getattr(model, "levels", None)
                )
            val = comm.broadcast(val)
            # early stopping: WQL for a quantile student, else the error of the training loss (MSE | MAE)
            kinds = set(getattr(model, "member_losses", None) or [cfg.loss])
            score = val.get("val_wql", val["val_mse"] if kinds == {"mse"} else val["val_mae"])
            improved = state.early.update(score, state.epoch, model)
            record = {"epoch": state.epoch + 1, **{f"train_{k}": v for k, v in means.items()}, **val, "best": improved}
            bar.print(
                f"epoch {record['epoch']}: sup {record['train_sup']:.4f} kd {record['train_kd']:.4f} "
                f"fta {record['train_fta']:.4f} | val MSE {record['val_mse']:.4f}"
                + (f" WQL {record['val_wql']:.4f}" if "val_wql" in record else "")
                + (" *" if record["best"] else "")
            )
            state.history.append(record)
            state.epoch += 1
            state.stopped_early = state.early.stop
            state.finished = state.stopped_early or state.epoch >= cfg.epochs
            if comm.is_main:
                _append_log(run_dir / LOG, record)
            state.save(run_dir / CHECKPOINT, settings)
            comm.barrier()  # the checkpoint is on disk before any rank moves on (or is stopped)
            if on_epoch_end is not None:
                on_epoch_end(state.epoch, record)
    assert state.early.best_state is not None  # set after the first epoch
    model.load_state_dict(state.early.best_state)
    model.eval()
    return TrainResult(
        state.history,
        state.early.best_epoch + 1,
        state.early.best,
        state.stopped_early,
        state.fta.settings() if state.fta else None,
        time.perf_counter() - start,
    )


class _Objective(nn.Module):
    """Student and FTA as one module, so DistributedDataParallel syncs the gradients of both."""

    def __init__(self, model: nn.Module, fta: FTA | None) -> None:
        super().__init__()
        self.model, self.fta = model, fta

    def forward(
        self, x: torch.Tensor, hidden_t: torch.Tensor | None, cov: dict[str, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return _forward(self.model, self.fta, x, hidden_t, cov)


# -- helpers -----------------------------------------------------------------------------------
def covariate_tensors(windows: Any, idx: np.ndarray, device: str) -> dict[str, torch.Tensor]:
    """The covariate blocks of windows `idx` as tensors (the student's keyword inputs); {} without covariates."""
    batch = getattr(windows, "covariate_batch", None)
    return {} if batch is None else {k: torch.from_numpy(v).to(device) for k, v in batch(idx).items()}


def _forward(
    model: nn.Module,
    fta: FTA | None,
    x: torch.Tensor,
    hidden_t: torch.Tensor | None,
    cov: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(forecast, FTA loss or None); the student's representation is computed only when FTA uses it."""
    cov = cov or {}
    if fta is None:
        members = getattr(model, "member_forecasts", None)  # an ensemble trains its members independently
        return (members(x, **cov) if members is not None and model.training else model(x, **cov)), None
    assert hidden_t is not None  # FTA runs with the teacher's hidden states
    pred, h = cast(Any, model).forward_with_repr(x, **cov)
    return pred, fta.loss(h.float(), hidden_t)


def epoch_order(windows: Windows, sampling: str, rng: np.random.Generator) -> np.ndarray:
    """The training windows of one epoch, in order. "window": a permutation of all of them. "series" (panel
    data): as many windows as there are, drawn equally from every series that has any (uniformly within a
    series, with replacement; a series with fewer windows than its share repeats some), then shuffled, so a
    long series weighs as much as a short one."""
    if sampling == "window":
        return rng.permutation(len(windows))
    series = getattr(windows, "series_index", None)
    if series is None:
        raise DistiltsError(
            "--sampling series draws equal windows from every series of a panel (many series in long format or "
            "M4 rows); this data is one table. Use --sampling window."
        )
    ids, first, count = np.unique(series, return_index=True, return_counts=True)  # windows of a series are contiguous
    share = -(-len(windows) // len(ids))
    picks = first[:, None] + np.floor(rng.random((len(ids), share)) * count[:, None]).astype(np.int64)
    return rng.permutation(picks.ravel())[: len(windows)]


def val_scores(pred: np.ndarray, truth: np.ndarray, levels: tuple[float, ...] | None) -> dict[str, float]:
    """`val_mse` (of the median for a quantile student), `val_mae` of a point student and, with quantiles,
    `val_wql`."""
    if levels is None:
        return {"val_mse": float(np.mean((pred - truth) ** 2)), "val_mae": float(np.mean(np.abs(pred - truth)))}
    return {
        "val_mse": float(np.mean((pred[..., median_index(levels)] - truth) ** 2)),
        "val_wql": wql(pred, truth, levels),
    }


def _check_data(data: TrainData, cfg: TrainConfig) -> None:
    if cfg.use_kd and data.teacher_forecasts is None:
        raise DistiltsError("Distillation (alpha > 0) needs the teacher's forecasts; pass --no-kd to train without.")
    if cfg.use_fta and data.teacher_hidden is None:
        raise DistiltsError("FTA (beta > 0) needs the teacher's hidden states; pass --beta 0 to train without.")
    for name, arr in (("forecasts", data.teacher_forecasts), ("hidden states", data.teacher_hidden)):
        if arr is not None and len(arr) != len(data.train):
            raise DistiltsError(
                f"The cached teacher {name} have {len(arr)} windows but training has "
                f"{len(data.train)}: the cache does not match these windows (stride?)."
            )
    cfg.check()


def _rows(arr: Any, idx: np.ndarray, device: str) -> torch.Tensor:
    """Rows `idx` of a teacher array (cache memmap or OnlineHidden) as a tensor on `device`."""
    if arr is None:
        raise DistiltsError("the teacher's outputs are missing for a loss that needs them (KD or FTA)")
    return torch.from_numpy(np.asarray(arr[idx], dtype=np.float32)).to(device)


def _clone(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state.items()}


def _differences(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) for every leaf where two JSON trees differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            out += _differences(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [(prefix.rstrip("."), old, new)]


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def _write_log(path: Path, history: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in history))


def _append_log(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
