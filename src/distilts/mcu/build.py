"""Microcontroller and Ethos-U artifacts: full-int8 TFLite verified in TFLite Micro, sized against the device.

One build for both: the full-int8 model (compile/full_int8.py) is run in the TFLite Micro interpreter on
the verification windows (raw values quantized with the scaler folded in, outputs dequantized) and
checked against the PyTorch student with the int8 tolerance; its tensor arena is measured there.
The artifact carries `model.tflite` (which LiteRT on a Linux device also loads through
`distilts.runtime.Forecaster`), `model_data.cc/.h` (the model as a C array) and `main.cc` (the
TFLite Micro calls with the quantization parameters). For an Ethos-U target, Vela compiles the same
model into `model_vela.tflite` and its report; the NPU's `ethos-u` operator needs the hardware or
Arm's FVP, so the numbers stay verified on the pre-Vela model.
A profile whose SRAM or flash is too small is refused with the figures; nothing is written.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from distilts.compile import litert_ops
from distilts.errors import DistiltsError
from distilts.mcu import precision, tflm, tflm_firmware, vela

NPU_MAC_SHARE = 0.9  # below this share of the matrix-product MACs on the NPU, compile warns


class DoesNotFit(DistiltsError):
    """The model needs more SRAM or flash than the target profile has."""


@dataclass(frozen=True)
class Budget:
    """What a device offers the model: SRAM for the tensor arena (+ the app's stack), flash for the model."""

    name: str
    sram_bytes: int
    flash_bytes: int
    accelerator: str | None = None  # Vela --accelerator-config (Ethos-U targets)


def _kib(n: float) -> str:
    return f"{n / 1024:.1f} KiB"


def build(
    student,
    config: dict,
    calib_x: np.ndarray,
    verify_x: np.ndarray,
    ref: np.ndarray,
    out: Path,
    budget: Budget | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> dict:
    """Write model.tflite (+ C sources, + Vela output) into `out`; returns the manifest's `mcu` record
    (+ `io`, the I/O quantization, and `preds`, the TFLite Micro forecasts of `verify_x`).

    Raises UnsupportedOperator (naming the operator) when the student has no full-int8 TFLite Micro
    form, ArtifactError beyond the int8 tolerance, DoesNotFit when `budget` is too small.
    """
    path = out / "model.tflite"
    cand = precision.quantize(student, config, calib_x, verify_x, ref, path, log)  # int8, else int16x8
    io, content, pred, errs = cand.io, cand.content, cand.pred, cand.errs
    ops = litert_ops.operators(content)
    arena = tflm.arena_bytes(content)
    log(
        f"TFLite Micro ({cand.activations} activations): rel-MSE {errs['rel_mse']:.3g}, max abs "
        f"{errs['max_abs_err']:.3g}, arena {arena} B, model {len(content)} B, operators {', '.join(ops)}"
    )
    record = {
        "interpreter": f"tflite-micro {_version('tflite-micro')}",
        "activations": cand.activations,  # int16x8 when int8 activations were over the tolerance (mcu/precision.py)
        **({"int8_activations_errors": cand.int8_errs} if cand.int8_errs else {}),
        "operators": ops,
        "tensor_arena_bytes": arena,
        "arena_margin_bytes": tflm.ARENA_MARGIN,
        "arena_measured_on": "this host (64-bit); a 32-bit MCU needs at most this",
        "model_bytes": len(content),
        "flash_bytes": len(content),
        "flash_note": "the model only; the TFLite Micro library and its kernels add their code size",
        "verification": {"windows": int(len(verify_x)), **errs},
        "io": io,
        "preds": pred,
    }
    if budget is not None:
        record["vela"] = _vela(path, budget, out, log) if budget.accelerator else None
        _check_fit(record, budget)
    calls, embedded, arena_c = tflm.resolver_calls(ops), content, arena
    v: Any = record.get("vela")
    if v:  # the device runs Vela's model: one ethos-u operator + whatever stayed on the CPU
        embedded = (out / "model_vela.tflite").read_bytes()
        calls = ["AddEthosU", *(f"Add{op}" for op in dict.fromkeys(v["cpu_operators"]))]
        arena_c = max(arena, v["sram_bytes"], v["dram_bytes"])  # Vela's scratch lives in the tensor arena
    cc, h = tflm.model_data(embedded)
    (out / "model_data.cc").write_text(cc)
    (out / "model_data.h").write_text(h)
    (out / "main.cc").write_text(tflm.example(calls, io, arena_c, getattr(student, "levels", None)))
    if budget is not None and getattr(student, "levels", None) is None and not v:  # firmware for the board
        L, D = io["input"]["shape"][1], io["input"]["shape"][2]
        tflm_firmware.write(out, budget.name, L, io["output"]["shape"][1], D)
    return record


def _vela(path: Path, budget: Budget, out: Path, log) -> dict:
    work = out / "_vela"
    assert budget.accelerator is not None  # called for Ethos-U budgets only
    rep = vela.compile_model(path, budget.accelerator, work)
    for key, name in (("model", "model_vela.tflite"), ("summary", "vela-summary.csv"), ("report", "vela-report.txt")):
        shutil.move(str(work / rep["files"][key]), out / name)
        rep["files"][key] = name
    shutil.rmtree(work)
    rep["vela_model_bytes"] = (out / "model_vela.tflite").stat().st_size
    log(
        f"Vela {budget.accelerator}: {len(rep['npu_operators'])} NPU / {len(rep['cpu_operators'])} CPU operators, "
        f"{rep['macs_npu_share']:.0%} of {rep['macs_total']} MACs on the NPU, {rep['cycles_total']} cycles "
        f"({rep['inference_time_ms']:.3f} ms at {rep['clock_hz'] / 1e6:.0f} MHz), SRAM {_kib(rep['sram_bytes'])}"
    )
    if rep["macs_npu_share"] < NPU_MAC_SHARE:
        rep["warning"] = (
            f"only {rep['macs_npu_share']:.0%} of the matrix-product MACs ({rep['macs_npu']:,} of "
            f"{rep['macs_total']:,}) run on the {budget.accelerator} NPU; CPU operators: "
            f"{', '.join(rep['cpu_operators']) or 'none'} (see vela-report.txt)"
        )
        log(f"WARNING: {rep['warning']}")
    return rep


def _check_fit(record: dict, budget: Budget) -> None:
    sram = record["tensor_arena_bytes"] + record["arena_margin_bytes"]
    flash = record["flash_bytes"]
    vela = record.get("vela")
    if vela:  # the NPU's own figures: the SRAM it schedules; the Vela model (command stream + encoded weights)
        sram = max(sram, vela["sram_bytes"])
        flash = max(flash, vela["vela_model_bytes"])
    short = []
    if sram > budget.sram_bytes:
        short.append(
            f"SRAM: needs {_kib(sram)} (tensor arena {_kib(record['tensor_arena_bytes'])}"
            f"{', Vela ' + _kib(vela['sram_bytes']) if vela else ''}), {budget.name} has {_kib(budget.sram_bytes)}"
        )
    if flash > budget.flash_bytes:
        short.append(f"flash: needs {_kib(flash)} for the model, {budget.name} has {_kib(budget.flash_bytes)}")
    record["fits"] = {
        "sram_needed_bytes": sram,
        "sram_bytes": budget.sram_bytes,
        "flash_needed_bytes": flash,
        "flash_bytes": budget.flash_bytes,
    }
    if short:
        raise DoesNotFit(
            f"The model does not fit {budget.name}: {'; '.join(short)}. Fix: a smaller student "
            "(shorter --lookback or --horizon), or a target with more memory (`distilts targets`). "
            "The artifact was not written."
        )


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"
