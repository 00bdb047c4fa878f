"""What `distilts distill` and `distilts eval` do, without the command line: data -> cached teacher
outputs -> trained student -> student directory with metrics, plots and a model card
(`distill_student`, `evaluate_student`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from distilts import distributed, teachers
from distilts.cache.entry import TeacherCache, fill_teacher_cache
from distilts.data import Dataset
from distilts.data.panel import PanelDataset
from distilts.data.spec import DataSpec
from distilts.distill import evaluate as ev
from distilts.distill.config import AUTO_LOOKBACK_HORIZONS, DistillSpec, TrainConfig, auto_lookback
from distilts.distill.intervals import calibrate_intervals
from distilts.distill.online_hidden import OnlineHidden
from distilts.distill.trainer import CHECKPOINT, TrainData, TrainResult, train
from distilts.errors import DistiltsError
from distilts.metrics import seasonality
from distilts.quantiles import QuantileError, missing_levels, student_levels
from distilts.students.data import SAVED_ARGS, dataset_for_student
from distilts.students.ensemble import NAME as ENSEMBLE
from distilts.students.io import load_student_dir, resolved_spec, save_student_dir
from distilts.students.registry import build_student, param_count, student_class, student_options
from distilts.teachers.base import resolve_device
from distilts.utils import atomic_write_text, write_json


@dataclass
class TeacherOutputs:
    """Cached teacher arrays aligned with the run's windows (None where not needed)."""

    info: dict | None = None
    train_forecasts: np.ndarray | None = None  # [N, H, D, Q] at the student's levels for a quantile student
    train_hidden: np.ndarray | OnlineHidden | None = None  # cached, or computed by the teacher per batch
    val_forecasts: np.ndarray | None = None  # point forecasts [N, H, D] (the teacher's own)
    test_forecasts: np.ndarray | None = None
    val_quantiles: np.ndarray | None = None  # [N, H, D, Q] at the student's levels (quantile students)
    test_quantiles: np.ndarray | None = None


def teacher_outputs(
    dataset: Dataset, spec: DistillSpec, progress: bool = True, train_stride: int | None = None
) -> TeacherOutputs:
    """Fetch (computing once if missing) the teacher outputs this run needs from the teacher cache.

    Val windows use the run's stride, train windows `train_stride` (default: the same); test
    metrics always use stride-1 windows. Hidden states (FTA) are cached for the train part only:
    the train part with them is one entry, the forecasts of the other parts another (an entry
    written by `distilts teach --hidden` serves both). Without FTA and with one stride everywhere a
    single forecast-only entry holds all three parts.
    """
    if not spec.uses_teacher:
        return TeacherOutputs()
    if spec.teacher_hidden not in ("cache", "online"):
        raise DistiltsError(f"--teacher-hidden must be 'cache' or 'online' (got {spec.teacher_hidden!r}).")
    online = spec.train.use_fta and spec.teacher_hidden == "online"
    fta = spec.train.use_fta and not online
    train_stride = train_stride or spec.stride

    levels = spec.levels

    def cache(parts: tuple[str, ...], stride: int, hidden: bool):
        assert isinstance(spec.lookback, int)  # "auto" is resolved before the teacher runs
        return fill_teacher_cache(
            dataset,
            spec.teacher,
            spec.teacher_path,
            spec.lookback,
            spec.horizon,
            parts=parts,
            stride=stride,
            hidden=hidden,
            hidden_tokens=spec.hidden_tokens,
            cache_dir=spec.cache_dir,
            device=spec.train.device,
            progress=progress,
            max_cache_gb=spec.max_cache_gb,
            quantiles=levels is not None,
        )

    eval_parts = ("val", "test") if spec.stride == 1 else ("val",)
    train: TeacherCache | None = None
    if spec.needs_teacher_training_outputs and train_stride == spec.stride and not fta:
        main = train = cache(("train",) + eval_parts, spec.stride, False)
    else:
        if spec.needs_teacher_training_outputs:
            train = cache(("train",), train_stride, fta)
        main = cache(eval_parts, spec.stride, False)
    test = main if spec.stride == 1 else cache(("test",), 1, False)
    out = TeacherOutputs(
        info=_teacher_info(train or main, spec.teacher_path),
        val_forecasts=main.forecasts("val"),
        test_forecasts=test.forecasts("test"),
    )
    if levels is not None:
        out.val_quantiles = teacher_quantiles(main, "val", levels)
        out.test_quantiles = teacher_quantiles(test, "test", levels)
    if spec.train.use_kd:
        assert train is not None  # KD needs the train windows' teacher outputs (cached above)
        out.train_forecasts = train.forecasts("train") if levels is None else teacher_quantiles(train, "train", levels)
    if fta:
        assert train is not None
        out.train_hidden = train.hidden("train")
    if online:
        teacher = teachers.load_teacher(spec.teacher, spec.teacher_path, spec.train.device)
        out.train_hidden = OnlineHidden(
            teacher, dataset.windows("train", spec.lookback, spec.horizon, train_stride), spec.hidden_tokens
        )
    return out


def teacher_quantiles(cache: TeacherCache, part: str, levels: tuple[float, ...]) -> np.ndarray:
    """The cached teacher quantiles of `part` at `levels` (`[N, H, D, Q]`, memory-mapped when they are
    the cached levels themselves), or a QuantileError naming what the teacher offers instead."""
    have = cache.info.get("quantile_levels")
    name = cache.info.get("teacher")
    if not have:
        raise QuantileError(
            f"The teacher '{name}' gives point forecasts only, so it cannot teach a quantile "
            "student. Use a probabilistic teacher (chronos, chronos-bolt, chronos-2, moirai, "
            "moirai-2, timesfm, or a patchtst trained with `distilts train-teacher --quantiles`), "
            "or train the quantile student on ground truth only (--no-kd --beta 0)."
        )
    if missing := missing_levels(levels, have):
        raise QuantileError(
            f"The teacher '{name}' has no quantile levels {missing} (it gives {list(have)}). "
            f"Ask for levels it has, e.g. --quantiles {','.join(f'{v:g}' for v in have)}."
        )
    arr = cache.quantiles(part)
    idx = [[round(float(v), 6) for v in have].index(round(float(v), 6)) for v in levels]
    return arr if idx == list(range(arr.shape[-1])) else np.asarray(arr[..., idx])


def distill_student(
    spec: DistillSpec,
    out_dir: str | os.PathLike,
    *,
    resume: bool = False,
    progress: bool = True,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    log: Callable[[str], None] = print,
) -> tuple[dict, dict | None, TrainResult]:
    """`distilts distill`: train the student of `spec` into the student directory `out_dir` (weights,
    config.json, metrics.json, card.md, plots/, train_log.jsonl, checkpoint/); returns (config,
    metrics, train result). `resume` continues a killed run from its last epoch checkpoint; under
    torchrun only rank 0 gets the metrics (the other ranks get None)."""
    resolve_device(spec.train.device)  # an unavailable --device fails before any work
    out = Path(out_dir)
    if not resume and (out / CHECKPOINT).is_dir():
        log(f"note: {out} holds the checkpoint of an earlier run; starting over (use --resume to continue it)")
    dataset = spec.data.load()
    resolve_lookback(spec, dataset, log)
    normalization = panel_normalization(spec, dataset, log)
    train_stride = spec.train_stride(dataset)
    train_w = dataset.windows("train", spec.lookback, spec.horizon, train_stride)
    val_w = dataset.windows("val", spec.lookback, spec.horizon, spec.stride)
    test_w = dataset.windows("test", spec.lookback, spec.horizon, 1)  # fail now, not after training
    log(
        f"windows: train {len(train_w):,} (stride {train_stride}), val {len(val_w):,} (stride {spec.stride}), "
        f"test {len(test_w):,} (stride 1)"
    )
    if getattr(train_w, "skipped", None):  # a panel: series too short for one window, by id
        ids = train_w.skipped
        log(
            f"note: {len(ids)} series have no training window (too short for lookback {spec.lookback} + horizon "
            f"{spec.horizon} before their val/test values): {', '.join(ids[:20])}{' ...' if len(ids) > 20 else ''}"
        )
    covariates = getattr(dataset, "covariates", None)
    if covariates is not None:  # the student's covariate inputs (a student without them refuses in one line)
        spec.student_kwargs.update(zip(("n_past", "n_future", "n_static"), covariates.dims, strict=True))
        log(
            f"covariates: past {covariates.past_columns}, future {covariates.future_columns}, "
            f"static {covariates.static_columns}"
        )
        if covariates.calendar_dropped:
            log(
                f"note: calendar features {', '.join(covariates.calendar_dropped)} dropped: the data's span does not "
                "cover their cycle twice (month and holidays need 2 years, weekday 2 weeks, hour 2 days)"
            )
    teacher = teacher_outputs(dataset, spec, progress, train_stride)
    assert isinstance(spec.lookback, int)  # "auto" was resolved above (resolve_lookback)
    torch.manual_seed(spec.train.seed)
    model = build_student(spec.student, spec.lookback, spec.horizon, len(dataset.columns), **spec.student_kwargs)
    log(
        f"student {spec.student}: {param_count(model):,} parameters"
        + (" (the FTA projection is training-only and is not shipped)" if spec.train.use_fta else "")
    )
    data = TrainData(train_w, val_w, teacher.train_forecasts, teacher.train_hidden)
    result = train(
        model,
        data,
        spec.train,
        out,
        settings=spec.settings(),
        resume=resume,
        progress=progress,
        on_epoch_end=on_epoch_end,
    )
    config = student_config(spec, dataset, teacher.info, result, train_stride)
    if spec.train.calibrate_intervals and getattr(model, "quantile_head", None) is not None:
        intervals = calibrate_intervals(model, val_w, device=str(next(model.parameters()).device))
        if intervals is not None:
            config["intervals"] = intervals
            if "val_coverage_after" in intervals:
                log(
                    f"intervals calibrated on {intervals['windows']:,} validation windows (CQR): coverage "
                    + ", ".join(
                        f"{k}: {intervals['val_coverage_before'][k]:.1%} -> {v:.1%}"
                        for k, v in intervals["val_coverage_after"].items()
                    )
                )
    if normalization is not None:
        config["normalization"] = normalization
    if covariates is not None:
        config["covariates"] = covariates.config()
        if teacher.info is not None:
            used = teacher.info.get("covariates")
            config["covariates"]["teacher"] = (
                f"The teacher ({teacher.info['name']}) forecast with the covariates through its own package "
                f"({'; '.join(f'{role} {cols}' for role, cols in used.items())}; other roles are not its inputs)"
                if used
                else f"The teacher ({teacher.info['name']}) cannot take covariates: it forecast from the target "
                "windows only (univariate); the covariates reach the student through the ground-truth loss"
            )
    if not distributed.current().is_main:  # under torchrun rank 0 writes the student directory
        return config, None, result
    save_student_dir(out, model, config)
    config["param_count"] = param_count(model)
    metrics = score_student(model, config, dataset, teacher, out, device=spec.train.device)
    return config, metrics, result


def resolve_lookback(spec: DistillSpec, dataset: Dataset, log: Callable[[str], None]) -> None:
    """`--season` 0 -> the data frequency's season (1 when unknown), and `--lookback auto` -> a number of steps
    (`distill.config.auto_lookback`), both set in `spec` (the lookback logged)."""
    season = spec.train.season or seasonality(
        None if dataset.series.freq is None else int(dataset.series.freq.astype(np.int64))
    )
    spec.train.season = season
    if spec.lookback != "auto":
        return
    H = spec.horizon
    if isinstance(dataset, PanelDataset):  # half the series keep a training window at least (val and test: H each)
        room = int(np.median(dataset.panel.lengths)) - 3 * H
    else:
        room = int(dataset.split.train[1] - dataset.split.train[0]) - H
    spec.lookback = auto_lookback(H, season if season > 1 else None, room)
    log(
        f"lookback auto: {spec.lookback} steps ({AUTO_LOOKBACK_HORIZONS} x horizon {H}"
        + (f", whole seasons of {season}" if season > 1 else "")
        + (f"; cut to {room}, what the data leaves room for" if spec.lookback == room else "")
        + ")"
    )


def panel_normalization(spec: DistillSpec, dataset: Dataset, log: Callable[[str], None]) -> dict | None:
    """Instance normalization (RevIN) for a global student on panel data: on unless `--no-revin` (set in
    `spec.student_kwargs`); the choice and why, for config.json and the card. None for a single table or a
    student that normalizes each window itself (iTransformer)."""
    name, kwargs = spec.student, spec.student_kwargs
    if name == ENSEMBLE:  # the members take the series' raw values: their RevIN is what counts
        name = kwargs.setdefault("member", student_options(ENSEMBLE)["member"])
        kwargs = kwargs.setdefault("member_options", {})
    if not isinstance(dataset, PanelDataset):
        return None
    options = student_options(name)
    if "revin" not in options:
        if kwargs.get("norm", options.get("norm")) == "none":  # no window normalization: one common scale
            dataset.per_series_scaling = False
            log(
                f"warning: {name} with norm=none sees every series on the panel's common scale (as the artifact "
                "will); series of other levels get poor forecasts (-O norm=window normalizes each window)"
            )
            return {"instance": None, "why": "norm=none: the panel's common scale"}
        return None
    quantile_revin = getattr(student_class(name), "quantile_revin", False)  # RevIN without affine
    if kwargs.get("quantiles") and kwargs.get("revin") is not False and not quantile_revin:
        raise DistiltsError(
            f"{dataset.series.source} holds many series of different scales, and a global {name} takes "
            "each series' raw values only through instance normalization, which quantile students do not support "
            "yet. Distil a point student (drop --quantiles), or use --student itransformer (it normalizes each "
            "window itself)."
        )
    if "revin" not in kwargs:
        kwargs["revin"] = True
        why = "on by default: a global student on panel data takes each series' raw values (--no-revin opts out)"
        log(f"instance normalization (RevIN): {why}")
    elif kwargs["revin"]:
        why = "on (--revin)"
    else:
        dataset.per_series_scaling = False  # the student learns the scale the artifact will be given
        why = (
            "off (--no-revin): the student sees every series on the panel's common scale (as the artifact will), "
            "so series of other levels get poor forecasts; use it for one series or series already on one scale"
        )
        log(f"warning: instance normalization {why}")
    kwargs.setdefault("revin_eps", dataset.revin_eps)
    return {"instance": "revin" if kwargs["revin"] else None, "why": why}


def student_config(
    spec: DistillSpec, dataset: Dataset, teacher_info: dict | None, result: TrainResult, train_stride: int | None = None
) -> dict:
    """The `config.json` of the student directory (format and param_count are added on save)."""
    freq = dataset.series.freq
    return {
        "student": resolved_spec({"name": spec.student, "kwargs": dict(spec.student_kwargs)}),
        "lookback": spec.lookback,
        "horizon": spec.horizon,
        "columns": list(dataset.columns),
        "n_variates": len(dataset.columns),
        "freq_seconds": None if freq is None else int(freq.astype(np.int64)),
        "scaler": dataset.scaler.to_dict(),
        "teacher": teacher_info,
        "data": {
            "source": _absolute_if_file(dataset.series.source),
            "hash": dataset.data_hash,
            "split": dataset.split.to_dict(),
            "split_scheme": spec.data.split,
            "fill": spec.data.fill,
            "date_column": spec.data.date_column,
            **{k: _plain(getattr(spec.data, k)) for k in SAVED_ARGS if getattr(spec.data, k) is not None},
        },
        "loss": {
            "kd": spec.train.use_kd,
            "alpha": spec.train.alpha,
            "tau": spec.train.tau,
            "beta": spec.train.beta,
            **(
                {
                    "supervised": "pinball",
                    "quantile_kd": spec.train.quantile_kd if spec.train.use_kd else None,
                    "levels": list(spec.levels),
                }
                if spec.levels
                else {}
            ),
            "fta": result.fta,
            "hidden_tokens": spec.hidden_tokens if spec.train.use_fta else None,
            "teacher_hidden": spec.teacher_hidden if spec.train.use_fta else None,
        },
        "train": {
            **{k: v for k, v in asdict(spec.train).items() if k not in ("alpha", "beta", "tau", "kd", "quantile_kd")},
            "stride": spec.stride,
            "train_stride": train_stride or spec.stride,
            "max_train_windows": spec.max_train_windows,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "best_val_mse": result.best_val_mse,
            "stopped_early": result.stopped_early,
            "wall_s": round(result.wall_s, 3),
            "optimizer": "AdamW",
            "ranks": distributed.current().world,
        },
    }


def score_student(
    model: nn.Module, config: dict, dataset: Dataset, teacher: TeacherOutputs, out: Path | None, device: str = "cpu"
) -> dict:
    """Test (stride 1) and val metrics of student and teacher; with `out`, writes metrics.json,
    plots/ and card.md there."""
    device = resolve_device(device)
    model.to(device)
    L, H = config["lookback"], config["horizon"]
    levels = getattr(model, "levels", None)
    season = seasonality(config.get("freq_seconds"))
    test_w = dataset.windows("test", L, H, 1)
    pred = ev.predict(model, test_w, 256, device)
    metrics: dict[str, Any] = {
        "student": config["student"]["name"],
        "param_count": config["param_count"],
        "protocol": {
            "part": "test",
            "stride": 1,
            "lookback": L,
            "horizon": H,
            "scale": "normalized (z-score with the training part's statistics)",
            "data": dataset.series.source,
            "data_hash": dataset.data_hash,
        },
        "test": ev.scores(pred, test_w, levels, season),
        "teacher": None,
    }
    val_stride = config.get("train", {}).get("stride", 1)
    val_w = dataset.windows("val", L, H, val_stride)
    metrics["val"] = {**ev.scores(ev.predict(model, val_w, 256, device), val_w, levels, season), "stride": val_stride}
    if teacher.test_forecasts is not None and teacher.info is not None:
        metrics["teacher"] = {
            "name": teacher.info["name"],
            "checkpoint_sha256": teacher.info["checkpoint_sha256"],
            "test": ev.scores(teacher.test_forecasts, test_w),
        }
        if teacher.test_quantiles is not None:
            metrics["teacher"]["test"]["quantiles"] = ev.scores(teacher.test_quantiles, test_w, levels, season)[
                "quantiles"
            ]
        if teacher.val_forecasts is not None and len(teacher.val_forecasts) == len(val_w):
            metrics["teacher"]["val"] = {**ev.scores(teacher.val_forecasts, val_w), "stride": val_stride}
    if out is not None:
        write_json(out / "metrics.json", metrics)
        ev.write_plots(
            out,
            test_w,
            pred,
            None if teacher.test_forecasts is None else np.asarray(teacher.test_forecasts),
            metrics,
            list(dataset.columns),
            levels,
        )
        atomic_write_text(out / "card.md", ev.model_card(config, metrics))
    return metrics


def evaluate_student(
    model_dir: str | os.PathLike,
    data: Any = None,
    *,
    device: str = "auto",
    with_teacher: bool = True,
    lookback: int | None = None,
    cache_dir: str | None = None,
    write: bool = True,
    progress: bool = True,
) -> dict:
    """`distilts eval`: score a student directory on the test part (stride 1, normalized scale) of
    the series `data` names (a DataSpec, path, DataFrame or dict of `load_dataset`'s arguments; default:
    the built-in synthetic series), and its teacher from the teacher cache when the teacher's directory exists. Returns
    the metrics; `write` also puts metrics.json, plots/ and card.md into the directory."""
    data_args = DataSpec.of(data).args()
    model_dir = Path(model_dir)
    model, config = load_student_dir(model_dir)
    if lookback is not None and lookback != config["lookback"]:
        raise DistiltsError(
            f"--lookback {lookback} does not match the student's lookback {config['lookback']} "
            f"(in {model_dir / 'config.json'}); drop --lookback or pass {config['lookback']}."
        )
    dataset = dataset_for_student(config, data_args)
    teacher = TeacherOutputs()
    t = config.get("teacher")
    name, path, available = _recorded_teacher(t or {})
    if with_teacher and t and available and name is not None:
        levels = student_levels(config["student"]) if t.get("quantile_levels") else None
        spec = DistillSpec(
            teacher=name,
            teacher_path=path,
            lookback=config["lookback"],
            horizon=config["horizon"],
            stride=config["train"].get("stride", 1),
            cache_dir=cache_dir,
            student_kwargs={"quantiles": levels} if levels else {},
            train=TrainConfig(kd=False, beta=0.0, device=device),
        )
        teacher = teacher_outputs(dataset, spec, progress)
    return score_student(model, config, dataset, teacher, model_dir if write else None, device=device)


def _recorded_teacher(t: dict) -> tuple[str | None, str | None, bool]:
    """(teacher spec, checkpoint path, whether it can be rebuilt here) of a student's teacher from its config: a
    checkpoint directory that exists, a statistical model (no checkpoint), or an ensemble whose members' exist."""
    if t.get("kind") == "statistical":
        return t["name"], None, True
    if t.get("kind") == "ensemble":
        members = t.get("members") or []
        spec = "ensemble:" + "+".join(f"{m['spec']}={m['path']}" if m.get("path") else m["spec"] for m in members)
        return spec, None, all(not m.get("path") or Path(m["path"]).is_dir() for m in members)
    return t.get("name"), t.get("path"), bool(t.get("path") and Path(t["path"]).is_dir())


def _teacher_info(cache: TeacherCache, path: str | None) -> dict:
    """The teacher as this run named it (the cache entry may have been filled from another copy of
    the same checkpoint: it is keyed by the weights' hash, not by the path)."""
    info = cache.info
    extra = info.get("teacher_info") or {}
    if path and Path(path).is_dir():
        path = str(Path(path).resolve())
    return {
        "name": info["teacher"],
        "path": path or info.get("teacher_path"),
        "checkpoint_sha256": info["checkpoint_sha256"],
        "d_model": extra.get("d_model"),
        "cache": str(cache.directory),
        "cache_key": info.get("key"),
        **({"quantile_levels": info["quantile_levels"]} if info.get("quantile_levels") else {}),
        **{
            k: extra[k]
            for k in ("kind", "season", "combination", "members", "mean_weights", "weights", "val")
            if k in extra
        },
        **({"fallbacks": info["fallbacks"]} if info.get("fallbacks") else {}),
        **({"covariates": info["covariates"]} if info.get("covariates") else {}),
    }


def _plain(value: Any) -> Any:
    """A JSON value for config.json (tuples of column names as lists)."""
    return list(value) if isinstance(value, tuple) else value


def _absolute_if_file(source: str) -> str:
    """A data file's absolute path (so compile/eval find it from any directory); other sources as given."""
    p = Path(source)
    return str(p.resolve()) if p.is_file() else source
