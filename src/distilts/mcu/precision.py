"""Heavy-tailed data on a microcontroller: int8 activations, else int16 activations (16x8) over a wider range
(a global student on panel data: int16 activations also when they halve int8's error, `_finer_for_panel`).

Full int8 calibrates each activation's range on the train windows. A series with spikes several
standard deviations beyond that range (the ETT datasets) gets them clipped at the input, and one
clipped spike in the last lags moves a forecast by more than the int8 tolerance's max abs error. When
the int8 model is over the tolerance, a second candidate is built: int8 weights and int16 activations
(ai-edge-quantizer `static_wi8_ai16`; TFLite Micro has 16x8 kernels for FULLY_CONNECTED, ADD,
CONCATENATION and the data-movement operators), calibrated on the train windows plus the same windows
stretched HEADROOM times around the scaler's mean, so every range is HEADROOM times wider, while the
int16 step stays 32767 / 127 / HEADROOM (64x) finer than int8's. It ships when it is within the same
tolerance. Otherwise compile refuses in one line with the measured figures of both and what would
pass (the fp32 forecast, measured on the same windows: `--target c`, fp32 C, runs on any Cortex-M).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distilts.compile import full_int8, litert_ops
from distilts.compile import verify as ver
from distilts.compile.passes import fold_linear
from distilts.errors import ArtifactError
from distilts.mcu import quantile_int8, tflm
from distilts.runtime import int8_io

HEADROOM = 4.0  # int16 activations: calibration ranges this many times wider than the train windows'
RECIPES = {"int8": "static_wi8_ai8", "int16x8": "static_wi8_ai16"}


class PrecisionRefused(ArtifactError):
    """No integer form of the model stays within the int8 tolerance on the verification windows."""


@dataclass
class Quantized:
    """One integer candidate: its activations ('int8' | 'int16x8'), file content, I/O record, forecasts, errors."""

    activations: str
    content: bytes
    io: dict
    pred: np.ndarray
    errs: dict[str, float]
    int8_errs: dict[str, float] | None = None  # int16x8: what int8 activations measured (why they were replaced)


def quantize(
    student, config: dict, calib_x: np.ndarray, verify_x: np.ndarray, ref: np.ndarray, path: Path, log
) -> Quantized:
    """The first integer candidate within the int8 tolerance, written to `path`; raises PrecisionRefused
    (both figures + the fp32 one) when none is, UnsupportedOperator when an operator has no integer kernel."""
    first = _candidate("int8", student, config, calib_x, verify_x, ref, path)
    if ver.within(first.errs, "int8"):
        return _finer_for_panel(first, student, config, calib_x, verify_x, ref, path, log)
    log(
        f"int8 activations: max abs {first.errs['max_abs_err']:.3g} over the tolerance; trying int16 activations (16x8)"
    )
    try:
        second = _candidate("int16x8", student, config, _stretched(calib_x, config), verify_x, ref, path)
    except tflm.UnsupportedOperator as exc:
        second, why = None, str(exc)
    if second is not None and ver.within(second.errs, "int8"):
        second.int8_errs = first.errs
        return second
    fp32 = _fp32_errors(student, config, verify_x, ref)
    raise PrecisionRefused(_refusal(first, second, fp32, why if second is None else "", fold_linear.applies(student)))


def _finer_for_panel(first: Quantized, student, config, calib_x, verify_x, ref, path: Path, log) -> Quantized:
    """A global student on panel data (per-window I/O normalization, full_int8.instance_eps): int16 activations
    too, kept when they at least halve int8's max abs error. The tolerance is in units of the largest
    series' std, while every window is quantized on its own scale: an int8 input step of ~0.05 window stds
    is within it, yet it moves the forecasts of near-periodic series, whose MASE scale is ~0.01 std (M4
    Hourly: OWA 0.468 in int8, 0.453 in int16x8, 0.449 in fp32; docs/design.md)."""
    if full_int8.instance_eps(student, config) is None:
        return first
    try:
        second = _candidate("int16x8", student, config, calib_x, verify_x, ref, path)
    except tflm.UnsupportedOperator:
        second = None
    if second is not None and ver.within(second.errs, "int8"):
        if second.errs["max_abs_err"] <= 0.5 * first.errs["max_abs_err"]:
            log(
                f"int16 activations (16x8): max abs {second.errs['max_abs_err']:.3g} vs int8's "
                f"{first.errs['max_abs_err']:.3g}: kept (a global student on panel data)"
            )
            second.int8_errs = first.errs
            return second
    path.write_bytes(first.content)  # the int8 model stays the one on disk
    return first


def _candidate(kind: str, student, config, calib_x, verify_x, ref, path: Path) -> Quantized:
    mean = np.asarray(config["scaler"]["mean"], np.float64)
    std = np.asarray(config["scaler"]["std"], np.float64)
    module = quantile_int8.int8_form(full_int8.normalized_module(student))
    io = full_int8.build_file(module, config, calib_x, path, recipe_name=RECIPES[kind])
    content = path.read_bytes()
    leftover = litert_ops.float_operators(content)
    if leftover or io["input"]["dtype"] not in ("int8", "int16"):
        raise tflm.UnsupportedOperator(
            f"{type(student).__name__} has no full-integer {kind} form: operator {', '.join(leftover) or '?'} "
            f"{'stays' if len(leftover) == 1 else 'stay'} in float after quantization (no integer kernel). "
            "Compile it to tflite/onnx --int8 for a CPU instead."
        )
    tflm.load(content)  # raises naming an operator TFLite Micro lacks
    pred = int8_io.run_raw(verify_x, io, lambda q: tflm.run(content, q))
    return Quantized(kind, content, io, pred, ver.errors(pred, ref, mean, std))


def _stretched(calib_x: np.ndarray, config: dict) -> np.ndarray:
    """The calibration windows plus the same windows stretched HEADROOM times around the scaler's mean."""
    mean = np.asarray(config["scaler"]["mean"], np.float64)
    wide = mean + HEADROOM * (np.asarray(calib_x, np.float64) - mean)
    return np.concatenate([calib_x, wide.astype(np.float32)])


def _fp32_errors(student, config, verify_x, ref) -> dict[str, float]:
    """What fp32 gives on the same windows (the normalized module in float32, as the fp32 C artifact computes)."""
    mean = np.asarray(config["scaler"]["mean"], np.float64)
    std = np.asarray(config["scaler"]["std"], np.float64)
    module: Any = full_int8.normalized_module(student)
    with torch.no_grad():
        z = module(torch.tensor((verify_x - mean) / std, dtype=torch.float32)).numpy().astype(np.float64)
    quantiles = z.ndim == 4
    if quantiles and not getattr(module, "artifact_layout", False):
        z = z.transpose(0, 2, 1, 3)  # a student's [B, H, D, Q] -> the artifact's [B, D, H, Q]
    raw = z * (std[:, None, None] if quantiles else std) + (mean[:, None, None] if quantiles else mean)
    return ver.errors(raw, ref, mean, std)


def _figures(errs: dict[str, float]) -> str:
    text = f"max abs {errs['max_abs_err']:.3g}, rel-MSE {errs['rel_mse']:.3g}"
    if "crossings" in errs:
        text += f", worst level rel-MSE {errs['worst_level_rel_mse']:.3g}, {errs['crossings']} crossed levels"
    return text


def _refusal(first: Quantized, second: Quantized | None, fp32: dict, why: str, foldable: bool) -> str:
    tol = ver.TOLERANCES["int8"]
    tried = (
        f"int16 activations (16x8, {HEADROOM:g}x calibration range) {_figures(second.errs)}"
        if second is not None
        else f"int16 activations not available ({why.split(':')[0]})"
    )
    passes = ver.within(fp32, "fp32") or ver.within(fp32, "int8")
    fix = "`--target c` (fp32 C for any Cortex-M) or an fp32 target" if foldable else "an fp32 target (e.g. rpi5)"
    return (
        f"The integer model in TFLite Micro is over the int8 tolerance (max abs {tol['max_abs']:g} normalized "
        f"units, rel-MSE {tol['rel_mse']:g}, no crossed levels) on these windows (e.g. heavy tails clipped at the "
        f"calibration range): int8 activations {_figures(first.errs)}; {tried}; fp32 measures max abs "
        f"{fp32['max_abs_err']:.2g}"
        + (
            f" and would pass: compile for {fix}."
            if passes
            else ": no precision passes; check the student on these windows."
        )
        + " The artifact was not written."
    )
