"""`distilts profile`: latency, memory and accuracy of a compiled student, the PyTorch student and
the teacher, on the same test windows, each measured in its own subprocess (profile_worker).

Accuracy is on the normalized scale (the manifest's scaler), the benchmark convention.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distilts import __version__
from distilts.data import load_dataset, make_windows
from distilts.data.panel import PanelDataset
from distilts.data.spec import DataSpec
from distilts.errors import DistiltsError
from distilts.runtime.manifest import Manifest, read_manifest

RSS_METHOD = (
    "Each model runs in its own fresh Python process (python -m distilts.profile.worker), so "
    "peak RSS (resource.getrusage ru_maxrss; psutil where resource is missing) is the peak of a process "
    "that loaded only that model and its library. 'baseline' is the RSS of that process before the model "
    "library was imported (Python + numpy + the windows); peak - baseline is attributable to the model."
)


@dataclass
class ModelSpec:
    role: str  # "student (artifact)", "student (pytorch)", "teacher"
    kind: str  # artifact | student | teacher
    path: str | None
    name: str = ""


@dataclass
class ProfileWindows:
    """The same test windows for every model: raw inputs, normalized inputs, normalized truth."""

    x_raw: np.ndarray  # [N, L, D]
    x_norm: np.ndarray
    y_norm: np.ndarray  # [N, H, D]
    mean: np.ndarray  # [D] the scaler used for the normalized scale
    std: np.ndarray
    info: dict


def profile_windows(man: Manifest, data_args: dict, n_windows: int) -> ProfileWindows:
    """Up to n_windows evenly spaced windows of the standard test split, normalized with the manifest's scaler."""
    if man.covariates:
        raise DistiltsError(
            f"{man.directory}: distilts profile times artifacts whose only input is the window; this one also "
            f"takes covariates ({', '.join(k for k in ('past', 'future', 'static') if man.covariates.get(k))}). "
            "Time it with Forecaster.predict(window, future=..., ...) or `python -m benchmarks run covariates_epf`."
        )
    ds = load_dataset(
        data_args.get("path"),
        columns=man.columns,
        split=data_args.get("split", "auto"),
        fill=data_args.get("fill"),
        date_column=data_args.get("date_column"),
    )
    if isinstance(ds, PanelDataset):  # long format: the test window of each series, in its raw values
        raw = ds.windows("test", man.lookback, man.horizon)
        idx = _evenly(len(raw), n_windows)
        x_z, y_z = raw.batch(idx)
        affine = raw.raw_affine(idx)
        assert affine is not None
        x_raw, y_raw = x_z * affine[1] + affine[0], y_z * affine[1] + affine[0]
        split = {"scheme": "per series: the last H values of each series are its test part"}
    else:
        raw = make_windows(ds.series.values, ds.split.test, man.lookback, man.horizon)
        idx = _evenly(len(raw), n_windows)
        x_raw, y_raw = raw.batch(idx)
        split = ds.split.to_dict()
    notes: list[str] = []
    if man.scaler_mean is not None and man.scaler_std is not None:
        mean, std = man.scaler_mean, man.scaler_std
        if not (np.allclose(mean, ds.scaler.mean, rtol=1e-3, atol=1e-6) and np.allclose(std, ds.scaler.std, rtol=1e-3)):
            notes.append(
                "the manifest's scaler differs from this data's train-split scaler: is this the training data?"
            )
    else:
        mean, std = ds.scaler.mean, ds.scaler.std
        notes.append("the manifest has no scaler; using this data's train-split scaler")
    norm = lambda v: ((v - mean) / std).astype(np.float32)  # noqa: E731
    info = {
        "source": ds.series.source,
        "rows": len(ds.panel.values) if isinstance(ds, PanelDataset) else len(ds.series),
        "split": split,
        "part": "test",
        "windows": int(len(idx)),
        "test_windows_available": len(raw),
        "lookback": man.lookback,
        "horizon": man.horizon,
        "columns": man.columns,
        "scale": "normalized (manifest scaler)",
        "notes": notes,
    }
    return ProfileWindows(x_raw, norm(x_raw), norm(y_raw), mean, std, info)


def _evenly(n: int, k: int) -> np.ndarray:
    """Up to `k` indices evenly spaced over `range(n)`."""
    return np.unique(np.linspace(0, n - 1, num=min(k, n)).round().astype(np.int64))


def _run_worker(spec: dict, workdir: Path, timeout: float) -> tuple[dict, np.ndarray]:
    wdir = workdir / spec["tag"]
    wdir.mkdir(parents=True, exist_ok=True)
    spec = {**spec, "out": str(wdir)}
    spec_path = wdir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "distilts.profile.worker", str(spec_path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise DistiltsError(f"profiling {spec['role']} failed: {tail[0]}")
    return json.loads((wdir / "result.json").read_text()), np.load(wdir / "pred.npy")


def _mse_mae(a: np.ndarray, b: np.ndarray) -> dict:
    d = a.astype(np.float64) - b.astype(np.float64)
    return {"mse": float(np.mean(d * d)), "mae": float(np.mean(np.abs(d)))}


def _quantile_scores(artifact_dir: str | Path, threads: int, wins: ProfileWindows, man: Manifest) -> dict:
    """WQL, MASE of the median and the 0.1-0.9 interval of a quantile artifact on the profile windows
    (normalized scale, seasonal-naive scale from each window's lookback)."""
    from distilts.metrics import probabilistic_scores, seasonality
    from distilts.runtime import Forecaster

    q = Forecaster.load(artifact_dir, threads=threads).predict_quantiles(wins.x_raw)  # [N, H, D, Q]
    q = (q - wins.mean[:, None]) / wins.std[:, None]
    return probabilistic_scores(q, wins.y_norm, wins.x_norm, man.levels or (), season=seasonality(man.freq_seconds))


def _dir_size(path: Path, patterns: tuple[str, ...]) -> int | None:
    if not path.is_dir():
        return None
    files = {p for pat in patterns for p in path.glob(pat) if p.is_file()}
    return sum(p.stat().st_size for p in files) or None


def student_dir_from_manifest(man: Manifest) -> str | None:
    """The student directory the manifest points to, if it still exists here."""
    for key in ("dir", "path", "source"):
        p = man.student.get(key)
        if p and (Path(p) / "config.json").is_file():
            return str(p)
    return None


def _torch_installed() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def profile_artifact(
    artifact_dir: str | Path,
    data: Any = None,
    *,
    teacher: str | None = None,
    teacher_path: str | None = None,
    student_dir: str | None = None,
    n_windows: int = 200,
    threads: int | None = None,
    iters: int = 200,
    warmup: int = 10,
    budget_s: float = 20.0,
    big_batch: int = 64,
    timeout_s: float = 1800.0,
    log=print,
) -> dict:
    """`distilts profile`: latency, throughput, peak RSS, size and accuracy of the artifact (+ its
    PyTorch student, + `teacher`), each in its own process, on test windows of the series `data`
    names (a DataSpec, path, DataFrame or dict of `load_dataset`'s arguments; default: the synthetic series).
    Returns the report dict
    (`profile.report.write_report` writes profile.json/.md/.png)."""
    data_args = DataSpec.of(data).args()
    man = read_manifest(artifact_dir)
    # one thread count for every model (artifact, PyTorch student, teacher), recorded in the report:
    # the target's threads, else 1 (torch's default of all cores for the teacher made speedups meaningless)
    threads = int(threads or (man.target or {}).get("threads") or 1)
    wins = profile_windows(man, data_args, n_windows)
    fixed = sorted({m.batch for m in man.models if m.batch is not None})
    dynamic = any(m.batch is None for m in man.models)
    batches = sorted(set(fixed) | ({1, big_batch} if dynamic else set()))
    explicit = student_dir is not None
    student_dir = student_dir or student_dir_from_manifest(man)
    if student_dir and not explicit and not _torch_installed():
        log(f"PyTorch student at {student_dir} skipped: torch is not installed here (a runtime-only install).")
        student_dir = None
    specs = [
        ModelSpec(
            "student (artifact)",
            "artifact",
            str(artifact_dir),
            f"{man.student.get('name', '?')} {man.backend}-{man.precision}",
        )
    ]
    if student_dir:
        specs.append(
            ModelSpec("student (pytorch)", "student", str(student_dir), str(man.student.get("name", "student")))
        )
    if teacher:
        specs.append(ModelSpec("teacher", "teacher", teacher_path, teacher))

    models: list[dict] = []
    preds: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="distilts-profile-") as tmp:
        tmpdir = Path(tmp)
        np.save(tmpdir / "x_raw.npy", wins.x_raw)
        np.save(tmpdir / "x_norm.npy", wins.x_norm)
        for i, s in enumerate(specs):
            log(f"profiling {s.role}: {s.name} ...")
            spec = {
                "tag": f"m{i}",
                "role": s.role,
                "kind": s.kind,
                "path": s.path,
                "name": s.name,
                "threads": threads,
                "horizon": man.horizon,
                "batches": batches,
                "iters": iters,
                "warmup": warmup,
                "budget_s": budget_s,
                "predict_batch": 16 if s.kind == "teacher" else 64,
                "inputs": str(tmpdir / ("x_raw.npy" if s.kind == "artifact" else "x_norm.npy")),
            }
            res, pred = _run_worker(spec, tmpdir, timeout_s)
            if s.kind == "artifact":
                pred = ((pred - wins.mean) / wins.std).astype(np.float32)  # raw forecasts -> normalized scale
                res["param_count"] = man.student.get("param_count")
                res["file_size_bytes"] = man.total_size
                res["files"] = {f.file: man.path(f).stat().st_size for f in man.files}
            elif s.kind == "student":
                res["file_size_bytes"] = _dir_size(Path(s.path or "."), ("*.safetensors",))
            else:
                res["file_size_bytes"] = _dir_size(
                    Path(res.get("checkpoint_path") or s.path or ""), ("*.safetensors", "*.bin", "*.pt", "*.pth")
                )
            preds[s.role] = pred
            models.append({"role": s.role, "name": s.name, "kind": s.kind, "path": s.path, **res})

    teacher_pred = preds.get("teacher")
    student_pred = preds.get("student (pytorch)")
    for m in models:
        p = preds[m["role"]]
        m["accuracy"] = {
            "vs_truth": _mse_mae(p, wins.y_norm),
            "vs_teacher": _mse_mae(p, teacher_pred) if teacher_pred is not None and m["kind"] != "teacher" else None,
        }
        if m["kind"] == "artifact" and student_pred is not None:
            m["accuracy"]["vs_pytorch_student"] = _mse_mae(p, student_pred)
    if man.levels is not None:  # here, after every worker ran (the parent's peak RSS is not theirs)
        by = {m["role"]: m for m in models}
        by["student (artifact)"]["accuracy"]["quantiles"] = _quantile_scores(artifact_dir, threads, wins, man)
    by_role = {m["role"]: m for m in models}
    speedup = {}
    art_p50 = by_role["student (artifact)"]["latency_ms"]["p50"]
    for ref in ("teacher", "student (pytorch)"):
        if ref in by_role:
            key = "teacher" if ref == "teacher" else "pytorch_student"
            speedup[f"{key}_p50_over_artifact_p50"] = by_role[ref]["latency_ms"]["p50"] / art_p50
    if "teacher" in by_role and "student (pytorch)" in by_role:
        speedup["teacher_p50_over_pytorch_student_p50"] = (
            by_role["teacher"]["latency_ms"]["p50"] / by_role["student (pytorch)"]["latency_ms"]["p50"]
        )
    return {
        "format": "distilts-profile",
        "version": 1,
        "created_by": f"distilts {__version__}",
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "artifact": {
            "path": str(artifact_dir),
            "backend": man.backend,
            "precision": man.precision,
            "target": man.target,
            "student": man.student,
        },
        "host": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "data": wins.info,
        "settings": {
            "threads": threads,
            "warmup": warmup,
            "iters": iters,
            "budget_s_per_model": budget_s,
            "throughput_batches": batches,
        },
        "rss_method": RSS_METHOD,
        "models": models,
        "speedup": speedup,
    }
