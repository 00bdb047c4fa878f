"""One trial: distil the candidate, compile it for the target, measure the artifact, judge the budget.

A trial writes `trials/NNNN/` (the student directory, its artifact and `record.json`, atomically); the
record is what trials.json, the Pareto front and the card are made of.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from distilts.choose.cost import estimate
from distilts.choose.settings import SearchSettings
from distilts.choose.space import Candidate
from distilts.errors import DistiltsError
from distilts.targets import CompileJob, Target
from distilts.utils import read_json, write_json

RECORD = "record.json"


class Pruned(Exception):
    """Raised from the epoch hook: this trial is losing (distilts.choose.study decides)."""


def trial_dir(out: str | Path, number: int) -> Path:
    return Path(out) / "trials" / f"{number:04d}"


def compile_job(candidate: Candidate, target: Target, final: bool = False) -> CompileJob:
    """The artifact a trial builds. On a CPU target a trial compiles the candidate's backend and precision
    for this machine (no emulated device: fast); `final` builds it for the target itself (its batch, threads
    and architecture checks, e.g. emulated arm64 for a Pi). A microcontroller target is always its own job."""
    from dataclasses import replace

    from distilts.targets import resolve_job

    if target.arch is None:
        return resolve_job(target.name)
    batches: tuple[int | None, ...] = (target.batch,) if candidate.backend == "tflite" else (None,)
    as_target = replace(target, format=candidate.backend, precision=candidate.precision)
    return CompileJob(candidate.backend, candidate.precision, batches, as_target if final else None)


def artifact_figures(artifact: Path, mcu: bool, threads: int = 1) -> dict[str, Any]:
    """flash (KiB: model files), RAM (KiB: tensor arena + margin, microcontrollers) and latency (ms per
    batch-1 forecast on this CPU, shared timing module; an estimate from the manifest for microcontrollers)."""
    man = read_json(artifact / "manifest.json")
    flash = sum(m["size"] for m in man["models"] if m.get("role") is None)
    figures: dict[str, Any] = {"flash_kib": flash / 1024, "artifact_bytes": flash}
    if mcu:
        info = man.get("mcu") or {}
        fits = info.get("fits") or {}
        figures["flash_kib"] = fits.get("flash_needed_bytes", flash) / 1024
        figures["ram_kib"] = fits.get("sram_needed_bytes", info.get("tensor_arena_bytes", 0)) / 1024
        estimate_ms = (info.get("bare_metal") or {}).get("latency_ms_estimate") or (info.get("vela") or {}).get(
            "latency_ms_estimate"
        )
        figures["latency_ms"] = estimate_ms
        figures["latency_kind"] = "estimate (instructions or NPU cycles)" if estimate_ms is not None else None
        return figures
    from distilts.profile import timing
    from distilts.runtime import Forecaster

    f = Forecaster.load(artifact, threads=threads)
    window = np.asarray(man["golden"]["input"], np.float32)[0] if "golden" in man else None
    if window is None or window.ndim != 2:
        window = np.zeros((man["lookback"], len(man["columns"])), np.float32)
    t = timing.per_call(lambda: f.predict(window), warmup=20, iters=300, budget_s=3.0, threads=threads)
    figures["latency_ms"] = t.median_ms
    figures["latency_spread"] = t.spread
    figures["latency_kind"] = f"measured on this CPU, batch 1, {threads} thread(s)"
    return figures


def run_trial(
    settings: SearchSettings,
    candidate: Candidate,
    number: int,
    n_variates: int,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> dict[str, Any]:
    """Run trial `number` for `candidate`; returns (and writes) its record. Pruned propagates."""
    from distilts.compile.pipeline import compile_student
    from distilts.distill.config import DistillSpec, TrainConfig
    from distilts.distill.run import distill_student
    from distilts.targets import get_target

    target = get_target(settings.target)
    mcu = target.arch is None
    out = trial_dir(settings.out, number)
    record: dict[str, Any] = {"number": number, "candidate": asdict(candidate), "label": candidate.label()}
    est = estimate(candidate, settings.horizon, n_variates, settings.budget, mcu)
    record["estimate"] = est
    if est["rejected"]:
        return _finish(out, record, "rejected", est["rejected"])
    spec = DistillSpec(
        student=candidate.student,
        student_kwargs=dict(candidate.kwargs),
        teacher=settings.teacher or "patchtst",
        teacher_path=settings.teacher_path,
        data=settings.data,
        lookback=candidate.lookback,
        horizon=settings.horizon,
        stride=settings.stride,
        cache_dir=settings.cache_dir,
        max_train_windows=settings.max_train_windows,
        train=TrainConfig(
            epochs=settings.epochs,
            lr=candidate.lr,
            patience=settings.patience,
            seed=settings.seed + number,
            alpha=settings.alpha,
            kd=settings.teacher is not None,
            beta=0.0,
        ),
    )
    student = out / "student"
    if student.exists():  # a retried trial (its process was killed): start clean
        shutil.rmtree(student)
    _config, metrics, result = distill_student(spec, student, progress=False, on_epoch_end=on_epoch, log=_quiet)
    assert metrics is not None
    record["val_mse"], record["val_mae"] = metrics["val"]["mse"], metrics["val"]["mae"]
    record["test_mse"], record["test_mae"] = metrics["test"]["mse"], metrics["test"]["mae"]
    record["params"] = metrics["param_count"]
    record["epochs"] = result.epochs_run
    job = compile_job(candidate, target)
    try:
        compile_student(student, [job], out / "artifacts", data=settings.data)
    except DistiltsError as exc:
        return _finish(out, record, "refused", f"compile refused: {exc}")
    record["artifact"] = str((out / "artifacts" / job.dirname).relative_to(settings.out))
    record["figures"] = artifact_figures(out / "artifacts" / job.dirname, mcu, threads=1)
    over = settings.budget.violations(record["figures"])
    return _finish(out, record, "over budget" if over else "fits", "; ".join(over) or None)


def _finish(out: Path, record: dict[str, Any], status: str, reason: str | None) -> dict[str, Any]:
    record["status"], record["reason"] = status, reason
    record["fits"] = status == "fits"
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / RECORD, record)
    return record


def read_records(out: str | Path) -> list[dict[str, Any]]:
    """Every finished trial's record, in trial order."""
    return [read_json(p) for p in sorted((Path(out) / "trials").glob(f"*/{RECORD}"))]


def _quiet(_msg: str) -> None:
    pass
