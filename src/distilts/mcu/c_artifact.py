"""`--target c`: the folded linear student as one dependency-free C file, verified on three CPUs.

Writes `model.c` (weights as const arrays, fp32 or int8, and `forecast`), `model.h` and `main.c` (an
example that forecasts windows read from stdin), then checks the code against the PyTorch student:
natively (system cc, shared library through ctypes) and cross-compiled for aarch64 and armhf
(Debian's cross gcc, static) under qemu-user, each within the precision's tolerance; then as bare-metal
firmware on emulated Cortex-M boards (distilts.mcu.metal: bit-identical to the host build, flash, RAM
and instructions per forecast in the manifest's `bare_metal`). A student the `fold-linear` pass folds
(DLinear) becomes one matrix product (distilts.mcu.cgen); MLP, TSMixer, TiDE and N-HiTS / N-BEATS are
generated from their layers (distilts.mcu.clower -> distilts.mcu.cgraph); any other is refused naming
the layer that blocks it. A quantile DLinear's C (folded core, non-crossing head, online calibration step)
is mcu/quantile_c.py's.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from distilts.compile import verify as ver
from distilts.compile.manifest import build_manifest, model_entry
from distilts.compile.passes import fold_linear
from distilts.compile.scratch import Scratch
from distilts.errors import DistiltsError
from distilts.mcu import cemit, cgen, cgraph, clower, ctoolchain, metal, quantile_c

ARCHS = ("x86_64", "aarch64", "armhf")
QUANTILE_C = {
    "output_layout": "[D][H][Q] raw, levels ascending",
    "calibration": {
        "rule": "theta += lr * std_d * (tau - (y <= q + theta)) per variate, step and level (conformal quantile "
        "tracker, Angelopoulos, Candes & Tibshirani 2023); docs/runtime.md",
        "state": "distilts_calib_t (D x H x Q float offsets + uint32 counter)",
        "entries": [
            "void distilts_calibrate_init(distilts_calib_t *s)",
            "void distilts_calibrate_update(distilts_calib_t *s, const float *forecast, const float *observed)",
            "void distilts_calibrate_apply(const distilts_calib_t *s, float *quantiles)",
        ],
    },
}
Program = cgen.LinearModel | cgraph.Graph | quantile_c.QuantileModel


class NotFoldable(DistiltsError):
    """The student is not a linear student, so it has no C artifact."""


def linear_model(student, config: dict) -> cgen.LinearModel | quantile_c.QuantileModel:
    """The student (+ its scaler) folded in float64, as arrays (a quantile DLinear: core + head); refuses
    a non-linear student."""
    if not fold_linear.applies(student):
        raise NotFoldable(
            f"The C target needs a student that folds into one matrix product (DLinear); "
            f"{type(student).__name__} has non-linear operators (e.g. softmax attention, "
            "LayerNorm, GELU). Compile it to tflite/onnx instead, or distil a DLinear student."
        )
    if getattr(student, "quantile_head", None) is not None:
        return quantile_c.from_student(student, config)
    folded = fold_linear.fold(student, config["scaler"]["mean"], config["scaler"]["std"], dtype=torch.float64)
    return cgen.from_folded(folded)


def program(student, config: dict) -> Program:
    """What the C code computes: the folded matrix product (DLinear), else the student's layers as a graph."""
    if fold_linear.applies(student) or type(student).__name__ == "DLinear":
        return linear_model(student, config)
    try:
        return clower.lower(student, config)
    except clower.NotLowerable as exc:
        raise NotFoldable(str(exc)) from None


def write_sources(model: Program, precision: str, out: Path, name: str) -> list[str]:
    """model.c, model.h and main.c into `out`; returns the file names."""
    if isinstance(model, quantile_c.QuantileModel):
        (out / cgen.HEADER).write_text(quantile_c.header(model, name))
        (out / cgen.SOURCE).write_text(quantile_c.source(model, precision, name))
        (out / cgen.EXAMPLE).write_text(cgen.example())
        return [cgen.SOURCE, cgen.HEADER, cgen.EXAMPLE]
    if isinstance(model, cgraph.Graph):
        plan = cgraph.plan(model, precision)
        (out / cgen.HEADER).write_text(cemit.header(model, plan, precision))
        (out / cgen.SOURCE).write_text(cemit.source(model, plan, precision)[0])
        (out / cgen.EXAMPLE).write_text(cgen.example())
        return [cgen.SOURCE, cgen.HEADER, cgen.EXAMPLE]
    (out / cgen.HEADER).write_text(cgen.header(model, name))
    (out / cgen.SOURCE).write_text(cgen.source(model, precision, name))
    (out / cgen.EXAMPLE).write_text(cgen.example())
    return [cgen.SOURCE, cgen.HEADER, cgen.EXAMPLE]


def _steps(model: Program) -> int:
    """Floats per variate in one forecast: H, or H x Q for a quantile model (the C harness reads B x steps x D)."""
    return int(getattr(model, "out_steps", model.horizon))


def _layout(model: Program, y: np.ndarray) -> np.ndarray:
    """The harness's [B, steps, D] floats as the model's forecasts ([B, H, D], or [B, D, H, Q])."""
    shape = getattr(model, "output_shape", None)
    return y if shape is None else y.reshape(len(y), *shape)


def flash_bytes(model: Program, precision: str) -> int:
    """Bytes of constant data the weights take in flash (weights, scales, row sums, bias, gains; + a
    quantile head's)."""
    if isinstance(model, quantile_c.QuantileModel):
        return flash_bytes(model.core, precision) + quantile_c.head_flash_bytes(model)
    if isinstance(model, cgraph.Graph):
        return cemit.source(model, cgraph.plan(model, precision), precision)[1]
    n_w = model.weight.size
    rows = model.weight.shape[0] * model.horizon
    consts = (model.bias.size + 2 * model.n_variates) * 4
    return consts + (n_w * 4 if precision == "fp32" else n_w + rows * 8)


def memory(model: Program, precision: str) -> dict:
    """The manifest's memory figures: flash (the constants) and stack, with the planned static RAM of a graph."""
    if isinstance(model, cgraph.Graph):
        ram = cgraph.plan(model, precision).ram_bytes()
        return {"flash_bytes": flash_bytes(model, precision), "ram_bytes": ram, "ops": len(model.ops)}
    if isinstance(model, quantile_c.QuantileModel):
        return {"flash_bytes": flash_bytes(model, precision), "stack_bytes_approx": quantile_c.stack_bytes(model)}
    return {"flash_bytes": flash_bytes(model, precision), "stack_bytes_approx": cgen.stack_bytes(model)}


def verify(
    src: Path,
    work: Path,
    model: Program,
    x: np.ndarray,
    ref: np.ndarray,
    config: dict,
    precision: str,
    log: Callable[[str], None] = lambda s: None,
) -> dict[str, dict]:
    """Build and run the sources on every architecture of ARCHS; {arch: errors + how}; raises beyond tolerance."""
    mean = np.asarray(config["scaler"]["mean"], np.float64)
    std = np.asarray(config["scaler"]["std"], np.float64)
    out: dict[str, dict] = {}
    lib = ctoolchain.build_shared(src, work / "libforecast.so")
    pred = _layout(model, ctoolchain.run_shared(lib, x, _steps(model)))
    cc = ctoolchain.native_cc()
    out["x86_64"] = {
        **ver.errors(pred, ref, mean, std),
        "compiler": ctoolchain.compiler_version(cc),
        "how": "native shared library through ctypes",
        "emulated": False,
    }
    for arch in ("aarch64", "armhf"):
        binary = ctoolchain.build_static(arch, src, work / f"forecast-{arch}")
        y, emu = ctoolchain.run_emulated(arch, binary, x, _steps(model), log)
        y = _layout(model, y)
        out[arch] = {
            **ver.errors(y, ref, mean, std),
            "compiler": ctoolchain.compiler_version(ctoolchain.CROSS[arch].cc()),
            "how": f"static binary under {emu}",
            "emulated": True,
            "max_abs_diff_vs_x86_64": float(np.max(np.abs(ver.normalized(y - pred, 0.0 * std, std)))),
        }
    for arch, errs in out.items():
        log(f"c-{precision}: {arch}: rel-MSE {errs['rel_mse']:.3g}, max abs {errs['max_abs_err']:.3g} ({errs['how']})")
        ver.check(errs, precision, f"The C artifact ({precision}) on {arch}")
    return out


def compile_job(
    job,
    student,
    config: dict,
    out_dir: Path,
    student_dir: Path,
    data,
    verify_x: np.ndarray,
    ref: np.ndarray,
    log: Callable[[str], None],
) -> tuple[Path, dict]:
    """Build, verify (three CPUs) and write the C artifact of `job` under `out_dir`; (its directory, manifest)."""
    model = program(student, config)
    graph = isinstance(model, cgraph.Graph)
    sc = Scratch.beside(out_dir / job.dirname, log)
    with sc.discarding() as tmp:
        work = tmp / "_build"
        work.mkdir()
        names = write_sources(model, job.precision, tmp, f"{config['student']['name']} {job.precision}")
        checks = verify(tmp, work, model, verify_x, ref, config, job.precision, log)
        golden_out = _layout(model, ctoolchain.run_shared(work / "libforecast.so", verify_x[:1], _steps(model)))
        if isinstance(model, quantile_c.QuantileModel):  # the firmware harness reads H x D floats per forecast
            bare_metal: dict = {
                "status": "not run",
                "reason": "quantile C artifacts ([D][H][Q] outputs) are verified on the three CPUs above; the "
                "bare-metal harness takes H x D outputs",
            }
        else:
            host = ctoolchain.run_shared(work / "libforecast.so", verify_x[: metal.MAX_WINDOWS], model.horizon)
            mean, std = (np.asarray(config["scaler"][k], np.float64) for k in ("mean", "std"))
            bare_metal = metal.verify(
                tmp,
                [cgen.SOURCE],
                cgen.HEADER,
                verify_x,
                host,
                work / "metal",
                log,
                score=lambda y: ver.errors(y, ref[: len(y)], mean, std),
            )
        shutil.rmtree(work)
        models = [
            model_entry(
                tmp,
                n,
                1 if n == cgen.SOURCE else None,
                role={cgen.SOURCE: "model", cgen.HEADER: "source", cgen.EXAMPLE: "example"}[n],
            )
            for n in names
        ]
        errs = checks["x86_64"]
        verification = {
            "windows": int(len(verify_x)),
            "part": "test",
            **{k: max(c[k] for c in checks.values()) for k in ("rel_mse", "max_abs_err")},
            "tolerance": dict(ver.TOLERANCES[job.precision]),
            "passed": True,
            "reference": "pytorch student (scaler folded in), normalized-scale errors; worst of the "
            "three architectures",
            "data": data.source,
            "data_hash": data.data_hash,
        }
        archs = {a: {"verified": True, **c} for a, c in checks.items()}
        std = np.asarray(config["scaler"]["std"], np.float64)
        atol_frac, rtol = ver.GOLDEN_TOL[job.precision]
        quant = None
        if job.precision == "int8":
            quant = {
                "method": "c-int8",
                "note": "int8 weights, one scale per output step; the window quantized per "
                "variate at run time, int32 accumulation, one rescale per output"
                if not graph
                else "every dense: int8 weights, one scale per output; its input quantized per tensor at run "
                "time (centre and step from its range), int32 accumulation, one rescale per output; other "
                "ops in float",
                "calib_windows": 0,
            }
        manifest = build_manifest(
            backend="c",
            precision=job.precision,
            models=models,
            config=config,
            student_dir=student_dir,
            target=None,
            quantization=quant,
            verification=verification,
            golden_in=verify_x[:1],
            golden_out=golden_out,
            atol=atol_frac * float(std.max()),
            rtol=rtol,
            opset=None,
            architectures=archs,
            passes=[
                {
                    "name": "c-lower" if graph else "fold-linear",
                    "stage": "module",
                    "scope": "student's layers and scaler as C ops (BatchNorm as affine), float64, cast once to "
                    "the C constants"
                    if graph
                    else "student and scaler, float64, cast once to the C constants",
                }
            ],
        )
        quantile = isinstance(model, quantile_c.QuantileModel)
        manifest["c"] = {
            "entry": "void forecast(const float *window, float *out)",
            **(QUANTILE_C if quantile else {}),
            **memory(model, job.precision),
            "heap_bytes": 0,
            "errors_x86_64": {k: errs[k] for k in ("rel_mse", "max_abs_err")},
            "build": "cc -O2 -std=c99 -ffp-contract=off model.c main.c -lm (any C99 compiler; see docs/compile.md)",
        }
        manifest["bare_metal"] = bare_metal
        final = sc.install(manifest)
    return final, manifest
