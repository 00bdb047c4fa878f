"""Run a compiled file in its own runtime and compare it with the PyTorch student (+ scaler wrapper).

Errors are measured on the normalized scale (both forecasts mapped through the student's scaler),
so a column with a large offset or unit cannot hide an error in another:
  max_abs_err = max |a - b|,  rel_mse = mean((a - b)^2) / mean(b^2)   (a: artifact, b: PyTorch).
`max_abs_err_raw` is the same maximum in the data's own units.
Quantile forecasts (artifact layout `[N, D, H, Q]`): the same over every level, plus
`worst_level_rel_mse` (the largest rel-MSE of one level alone, held to the same tolerance) and
`crossings` (windows x steps x variates whose levels are out of order: any is refused).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from distilts.errors import ArtifactError
from distilts.profile import timing
from distilts.runtime.backends import open_session
from distilts.runtime.batching import run_file
from distilts.runtime.inputs import Inputs, as_float32, repeat_first, take

# documented in docs/compile.md; int8 is looser: quantization changes the numbers by design
TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"rel_mse": 1e-6, "max_abs": 1e-3},
    "int8": {"rel_mse": 2e-2, "max_abs": 1.0},
}
# golden self-check at load time, as a fraction of the largest scaler std (atol) and relative (rtol)
GOLDEN_TOL: dict[str, tuple[float, float]] = {"fp32": (1e-4, 1e-4), "int8": (2e-2, 1e-3)}


# LiteRT aborts its whole process (SIGABRT) on some graphs it cannot plan (a zero-range int8 tensor did, in
# `allocate_tensors`), which no `except` catches: its candidates are opened and run once in a child process
# first, so such a crash refuses the candidate instead of killing compile (or a search's trial)
CRASH_PRONE = ("tflite",)
WINDOW_KEY = "__window__"
CRASH_PROBE = """
import sys, numpy as np
from distilts.runtime.batching import run_file
backend, path, batch, npz = sys.argv[1], sys.argv[2], int(sys.argv[3]) or None, np.load(sys.argv[4])
x = npz[sys.argv[5]] if sys.argv[5] in npz.files else {k: npz[k] for k in npz.files}
run_file(backend, path, batch, x)
"""


def crash_signal(backend: str, path: Path, batch: int | None, x: Inputs) -> int | None:
    """The signal that killed a child process opening `path` and running it on the first window, or None."""
    first = take(x, slice(0, 1))
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "x.npz"
        arrays: dict[str, np.ndarray] = first if isinstance(first, dict) else {WINDOW_KEY: first}
        np.savez(npz, **arrays)  # type: ignore[arg-type]  # the stub types every keyword as `allow_pickle`
        args = [backend, str(path), str(batch or 0), str(npz), WINDOW_KEY]
        res = subprocess.run([sys.executable, "-c", CRASH_PROBE, *args], capture_output=True, timeout=600)
    return -res.returncode if res.returncode < 0 else None


@dataclass
class Candidate:
    """One built candidate of an artifact, in the scratch directory: its files (name -> batch), how it
    was made, its errors against the PyTorch student here."""

    files: dict[str, int | None]
    method: str | None  # None: fp32
    note: str | None
    errors: dict[str, float]
    weights: list[str] = field(default_factory=list)  # side files (OpenVINO .bin)
    preds: np.ndarray | None = None  # forecasts of the verification windows here (first file)
    latency_ms: float | None = None  # median batch-1 call here, 1 thread (first file; int8 candidates only)
    side: dict[str, tuple[str, str]] = field(default_factory=dict)  # other files: scratch name -> (final name, role)
    facts: dict = field(default_factory=dict)  # manifest entries only this format has (e.g. `mcu`, `io`)

    @property
    def name(self) -> str:
        return self.method or "fp32"


def measure(
    backend: str, files: dict[Path, int | None], x: Inputs, ref: np.ndarray, config: dict
) -> tuple[dict[str, float], np.ndarray]:
    """(worst errors over a candidate's files vs the PyTorch student, the first file's forecasts) on the
    verification windows (TFLite has one file per batch size)."""
    mean = np.asarray(config["scaler"]["mean"], np.float64)
    std = np.asarray(config["scaler"]["std"], np.float64)
    try:
        if backend in CRASH_PRONE:
            for p, b in files.items():
                if (sig := crash_signal(backend, p, b, x)) is not None:
                    raise RuntimeError(f"{p.name} killed its runtime (signal {sig})")
        preds = [run_file(backend, p, b, x) for p, b in files.items()]
    except RuntimeError:  # the runtime cannot load or run this candidate (e.g. an unsupported int8 kernel
        # combination): it counts as infinitely wrong, so another candidate ships or compile refuses
        preds = [np.full_like(ref, np.nan)]
    errs = [errors(pred, ref, mean, std) for pred in preds]
    return {k: max(e[k] for e in errs) for k in errs[0]}, preds[0]


def time_file(backend: str, path: Path, batch: int | None, x: Inputs, calls: int = 20) -> float:
    """Median batch-1 call time (ms) of one model file here (fixed batches: one call at that batch).

    Used to choose between int8 candidates of equal standing: on small students int8 kernels can be
    slower than fp32 (e.g. weight-only int8 dequantizes every call), so speed is measured, not assumed.
    """
    sess = open_session(backend, path, batch=batch, input_name="x", output_name="y", threads=1)
    one = as_float32(repeat_first(x, batch or 1))
    return timing.per_call(lambda: sess.run(one), warmup=3, iters=calls, budget_s=5.0, threads=1).median_ms


def normalized(y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """`(y - mean) / std` per variate: the last axis of `[..., H, D]` forecasts, axis 1 of `[N, D, H, Q]`."""
    mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    if y.ndim == 4:
        mean, std = mean[:, None, None], std[:, None, None]
    return (y.astype(np.float64) - mean) / std


def errors(pred: np.ndarray, ref: np.ndarray, mean: np.ndarray, std: np.ndarray) -> dict[str, float]:
    """max_abs_err and rel_mse on the normalized scale, plus max_abs_err_raw (and, for quantile
    forecasts, worst_level_rel_mse and crossings)."""
    if pred.shape != ref.shape:
        raise ArtifactError(f"The artifact returns shape {pred.shape}, the PyTorch student {ref.shape}.")
    quantiles = pred.ndim == 4
    if not np.all(np.isfinite(pred)):
        inf = {"max_abs_err": float("inf"), "rel_mse": float("inf"), "max_abs_err_raw": float("inf")}
        return {**inf, "worst_level_rel_mse": float("inf"), "crossings": 0} if quantiles else inf
    a, b = normalized(pred, mean, std), normalized(ref, mean, std)
    out = {
        "max_abs_err": float(np.max(np.abs(a - b))),
        "rel_mse": float(np.mean((a - b) ** 2) / max(float(np.mean(b**2)), 1e-12)),
        "max_abs_err_raw": float(np.max(np.abs(pred.astype(np.float64) - ref))),
    }
    if quantiles:
        per_level = np.mean((a - b) ** 2, axis=(0, 1, 2)) / np.maximum(np.mean(b**2, axis=(0, 1, 2)), 1e-12)
        out["worst_level_rel_mse"] = float(per_level.max())
        out["crossings"] = int(np.any(np.diff(pred, axis=-1) < 0, axis=-1).sum())
    return out


def within(errs: dict[str, float], precision: str) -> bool:
    tol = TOLERANCES[precision]
    return (
        errs["rel_mse"] <= tol["rel_mse"]
        and errs["max_abs_err"] <= tol["max_abs"]
        and errs.get("worst_level_rel_mse", 0.0) <= tol["rel_mse"]
        and errs.get("crossings", 0) == 0
    )


def check(errs: dict[str, float], precision: str, what: str) -> None:
    """Raise ArtifactError when `errs` exceed the tolerance of `precision`."""
    if not within(errs, precision):
        tol = TOLERANCES[precision]
        levels = (
            f", worst quantile level rel-MSE {errs['worst_level_rel_mse']:.3g}, {errs['crossings']} crossed "
            "levels (allowed 0)"
            if "crossings" in errs
            else ""
        )
        raise ArtifactError(
            f"{what} does not match the PyTorch student: rel-MSE {errs['rel_mse']:.3g} (allowed "
            f"{tol['rel_mse']:g}), max abs error {errs['max_abs_err']:.3g} normalized units (allowed "
            f"{tol['max_abs']:g}){levels}. The artifact was not written."
            + (
                " int8 lost too much accuracy for this student: use the fp32 artifact, or more --calib-windows."
                if precision == "int8"
                else " This is a converter bug: try another format."
            )
        )


def calibration(calib_x: Inputs | None) -> Inputs:
    """The int8 calibration windows (compile_student always passes them for int8 jobs)."""
    if calib_x is None:
        raise ValueError("int8 candidates need calibration windows (compile_student passes them for int8 jobs)")
    return calib_x
