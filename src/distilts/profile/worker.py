"""Measure ONE model in its own process, so that its peak RSS is attributable to it.

Run as `python -m distilts.profile.worker SPEC.json`. The spec names the model (a compiled
artifact, a PyTorch student directory or a teacher), the input windows (.npy) and the batch sizes;
the worker writes `result.json` and `pred.npy` into the spec's `out` directory. Only the `student`
and `teacher` kinds import torch.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from distilts.profile import timing
from distilts.runtime.backends import BACKENDS
from distilts.runtime.forecaster import Forecaster


def rss_mb() -> tuple[float | None, float | None]:
    """(current RSS, peak RSS) of this process in MiB; psutil if present, else resource/procfs."""
    cur = peak = None
    try:
        import psutil  # optional

        info = psutil.Process().memory_info()
        cur = info.rss / 2**20
        peak = getattr(info, "peak_wset", None)  # Windows
        peak = peak / 2**20 if peak else None
    except ImportError:
        try:
            with open("/proc/self/statm") as f:
                cur = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except OSError:
            pass
    try:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = kb / 2**20 if sys.platform == "darwin" else kb / 2**10  # macOS reports bytes
    except ImportError:  # Windows: psutil's peak_wset (or nothing)
        pass
    return cur, peak


def time_latency(
    fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, warmup: int, iters: int, budget_s: float
) -> dict:
    """Batch-1 latency (ms) over the windows of x in turn (distilts.profile.timing.per_call)."""
    i = iter(range(1 << 62))

    def call() -> None:
        k = next(i) % len(x)
        fn(x[k : k + 1])

    return {"batch": 1, **timing.per_call(call, warmup=warmup, iters=iters, budget_s=budget_s).summary()}


def time_throughput(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int, budget_s: float) -> dict:
    """Windows per second when calling with `batch` windows at a time (distilts.profile.timing.throughput)."""
    xb = np.ascontiguousarray(x[np.arange(batch) % len(x)])
    return timing.throughput(lambda: fn(xb), batch, budget_s=budget_s)


def predict_all(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([fn(x[lo : lo + batch]) for lo in range(0, len(x), batch)])


def artifact_model(fc: Forecaster) -> tuple[Callable[[np.ndarray], np.ndarray], dict]:
    """(fc.predict, facts about the loaded artifact: backend and its version, precision, batches, threads)."""
    sess = next(iter(fc.sessions.values()))
    return fc.predict, {
        "backend": fc.backend,
        "backend_version": sess.version,
        "precision": fc.manifest.precision,
        "batch_sizes": fc.batch_sizes,
        "threads": fc.threads,
    }


def load_model(spec: dict) -> tuple[Callable[[np.ndarray], np.ndarray], dict]:
    """(predict function on the spec's input scale, facts about the model)."""
    kind, threads, horizon = spec["kind"], spec.get("threads"), int(spec["horizon"])
    if kind == "artifact":
        return artifact_model(Forecaster.load(spec["path"], threads=threads))
    # torch, students and teachers are imported here, not at the top: an artifact's process must not
    # load them (its peak RSS is what a device pays)
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    if kind == "student":
        from distilts.students import load_student_dir

        model, config = load_student_dir(spec["path"])
        model = model.to("cpu").eval()
        levels = getattr(model, "levels", None)
        median = None if levels is None else levels.index(0.5)

        def fn(x: np.ndarray) -> np.ndarray:  # the point forecast (the median of a quantile student)
            with torch.inference_mode():
                y = model(torch.from_numpy(np.ascontiguousarray(x)))
                return (y if median is None else y[..., median]).numpy()

        return fn, {
            "backend": f"torch {torch.__version__}",
            "threads": torch.get_num_threads(),
            "param_count": int(sum(p.numel() for p in model.parameters())),
        }
    if kind == "teacher":
        from distilts.teachers import load_teacher

        teacher = load_teacher(spec["name"], spec.get("path"), device="cpu")

        def fn(x: np.ndarray) -> np.ndarray:
            return np.asarray(teacher.predict(np.ascontiguousarray(x), horizon).forecast, dtype=np.float32)

        return fn, {
            "backend": f"torch {torch.__version__}",
            "threads": torch.get_num_threads(),
            "param_count": _param_count(teacher),
            "checkpoint_path": str(teacher.path),
        }
    raise ValueError(f"unknown model kind {kind!r}")


def _param_count(obj) -> int | None:
    """Parameters of a teacher: its `param_count`, or those of the first torch module it holds."""
    if getattr(obj, "param_count", None):
        return int(obj.param_count)
    import torch  # loaded already (teacher kind only); not at the top, see load_model

    for value in vars(obj).values():
        if isinstance(value, torch.nn.Module):
            return int(sum(p.numel() for p in value.parameters()))
        inner = getattr(value, "model", None)  # e.g. a pipeline wrapping the module
        if isinstance(inner, torch.nn.Module):
            return int(sum(p.numel() for p in inner.parameters()))
    return None


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    out = Path(spec["out"])
    x = np.load(spec["inputs"])
    base_cur, base_peak = rss_mb()
    t0 = time.perf_counter()
    fn, facts = load_model(spec)
    load_s = time.perf_counter() - t0
    _, peak_after_load = rss_mb()
    budget = float(spec.get("budget_s", 20.0))
    latency = time_latency(fn, x, int(spec.get("warmup", 10)), int(spec.get("iters", 200)), budget)
    throughput = [time_throughput(fn, x, int(b), budget / 4) for b in spec["batches"]]
    pred = predict_all(fn, x, int(spec.get("predict_batch", 64)))
    np.save(out / "pred.npy", pred.astype(np.float32))
    _, peak = rss_mb()
    result = {
        "load_s": load_s,
        "latency_ms": latency,
        "throughput": throughput,
        "rss_mb": {"baseline": base_cur, "baseline_peak": base_peak, "peak_after_load": peak_after_load, "peak": peak},
        "modules": sorted(
            m for m in ("torch", "transformers", "pandas", *(b.package for b in BACKENDS.values())) if m in sys.modules
        ),
        **facts,
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1])
