"""`distilts compile`: student directory -> verified ONNX / OpenVINO / TFLite artifacts.

A CLI boundary: at import only click and pure-Python tables (no numpy, no torch), so `distilts --help`
stays fast; the pipeline (torch) and the table printer (rich) are imported when the command runs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click

from distilts.compile import DEFAULT_CALIB_WINDOWS, DEFAULT_VERIFY_WINDOWS
from distilts.errors import DataError, DistiltsError, MissingExtraError, ModelDirError
from distilts.runtime.backends import BACKENDS
from distilts.targets import resolve_job


@click.command(name="compile")
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option(
    "--target",
    "targets",
    multiple=True,
    required=True,
    metavar="TARGET",
    help="A format (onnx, openvino, tflite, tflm, ethos-u, c) or a named target (see `distilts targets`). Repeat or "
    "comma-separate for several artifacts in one call.",
)
@click.option(
    "--int8",
    is_flag=True,
    help="Post-training int8 quantization, calibrated on train windows (overrides a named target's precision).",
)
@click.option(
    "--batch",
    "batches",
    multiple=True,
    type=click.IntRange(min=1),
    help="TFLite batch size(s) to compile (fixed-batch format; repeatable). Default: the target's "
    "batch, else 1. ONNX and OpenVINO always take any batch.",
)
@click.option(
    "--calib-windows",
    type=click.IntRange(min=0),
    default=DEFAULT_CALIB_WINDOWS,
    show_default=True,
    help="Train windows used to calibrate int8 activation ranges.",
)
@click.option(
    "--verify-windows",
    type=click.IntRange(min=1),
    default=DEFAULT_VERIFY_WINDOWS,
    show_default=True,
    help="Held-out (test split) windows each artifact is checked on against the PyTorch student.",
)
@click.option(
    "--data",
    "data_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="The series the student was trained on (default: the path recorded in its config.json).",
)
@click.option(
    "--verify-on",
    "verify_on",
    multiple=True,
    type=click.Choice(["aarch64"]),
    help="Also run the verification windows on this architecture (an emulated arm64 device, built "
    "once into a cache: scripts/arm64-device.sh). Automatic for arm64 targets (rpi4, rpi5, "
    "jetson-cpu).",
)
@click.option(
    "--passes/--no-passes",
    default=True,
    show_default=True,
    help="Module passes before export (docs/compile.md): fold a linear student (DLinear) and its scaler "
    "into one MatMul + Add. --no-passes exports the student's graph as written.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Output directory; each artifact goes to OUT/<format>-<precision>[-<target>]/. Default: MODEL_DIR/artifacts.",
)
def compile_cmd(
    model_dir: str,
    targets: tuple[str, ...],
    int8: bool,
    batches: tuple[int, ...],
    calib_windows: int,
    verify_windows: int,
    verify_on: tuple[str, ...],
    data_path: str | None,
    passes: bool,
    out_dir: str | None,
) -> None:
    """Export a distilled student to ONNX, OpenVINO IR or TFLite (fp32 or int8) and verify it.

    The artifact takes raw values [B, L, D] and returns raw-scale forecasts [B, H, D] (the scaler is
    folded into the graph). Each one is run in its own runtime on held-out windows against the
    PyTorch student and refused when the error exceeds the tolerance (docs/compile.md).

    \b
    Examples:
      distilts compile runs/etth1-dlinear --target tflite --int8
      distilts compile runs/etth1-dlinear --target rpi4 --target x86-server
      distilts compile runs/etth1-dlinear --target onnx,openvino,tflite
      distilts compile runs/etth1-dlinear --target onnx --int8 --verify-on aarch64
    """
    specs = [s for t in targets for s in t.split(",") if s.strip()]
    jobs = [resolve_job(s, int8=int8, batches=batches) for s in specs]  # unknown target: error before torch loads
    seen, unique = set(), []
    for j in jobs:
        if j.dirname not in seen:
            seen.add(j.dirname)
            unique.append(j)
    for j in unique:  # a missing extra is reported before any work is done
        _require_format(j.format, j.precision)
    from distilts.compile.pipeline import compile_student

    out = Path(out_dir) if out_dir else Path(model_dir) / "artifacts"
    try:
        results = compile_student(
            model_dir,
            unique,
            out,
            data=data_path,
            calib_windows=calib_windows,
            verify_windows=verify_windows,
            verify_on=verify_on,
            passes=passes,
            log=lambda s: click.echo(s, err=True),
        )
    except DistiltsError as exc:
        raise _with_search_hint(exc, unique, model_dir, data_path) from None
    _print_table(results)


def _with_search_hint(exc: DistiltsError, jobs: list, model_dir: str, data_path: str | None) -> DistiltsError:
    """A student refused by a named device (does not fit, loses too much in int8, an operator it lacks):
    the same error, ending with the `distilts search` command that finds one that fits."""
    named = [j.target.name for j in jobs if j.target is not None]
    if not named or isinstance(exc, (DataError, ModelDirError, MissingExtraError)):
        return exc
    data = f" --data {data_path}" if data_path else ""
    hint = (
        f" To get a student that fits {named[0]}: `distilts search --target {named[0]}{data} --out runs/search-"
        f"{named[0]}` (searches students, sizes, lookbacks and precisions for that device)."
    )
    return (
        type(exc)(str(exc).rstrip() + hint)
        if type(exc).__init__ is DistiltsError.__init__
        else DistiltsError(str(exc).rstrip() + hint)
    )


# formats without a runtime backend of their own (full-int8 TFLite for TFLite Micro / Ethos-U, C source):
# the modules compiling them needs; the runtime formats' needs are in distilts.runtime.backends.BACKENDS
_MICRO = (*BACKENDS["tflite"].compile_needs, "ai_edge_quantizer", "tflite_micro")
BELOW_THE_PI: dict[str, tuple[str, ...]] = {"tflm": _MICRO, "ethos-u": (*_MICRO, "ethosu"), "c": ()}


def _require_format(fmt: str, precision: str) -> None:
    """MissingExtraError naming the pip extra when a library this format needs is absent (not imported)."""
    if fmt in BACKENDS:
        backend = BACKENDS[fmt]
        needs = [*backend.compile_needs, *(backend.compile_int8_needs if precision == "int8" else ())]
    else:
        needs = list(BELOW_THE_PI[fmt])
    for module in ["torch", *needs]:
        if importlib.util.find_spec(module) is None:
            extra = "mcu" if module in ("tflite_micro", "ethosu") else "compile"
            raise MissingExtraError(module, extra, f"{fmt} {precision} artifacts")


def _print_table(results) -> None:
    from rich.console import Console
    from rich.table import Table

    from distilts.compile.verify import TOLERANCES

    tol = "; ".join(f"{p} rel-MSE <= {t['rel_mse']:g}, max abs <= {t['max_abs']:g}" for p, t in TOLERANCES.items())
    table = Table(
        title="Artifacts, verified against the PyTorch student",
        caption=f"normalized-scale errors on held-out windows; tolerance {tol}",
    )
    for col in ("artifact", "size", "int8 method", "rel-MSE", "max abs", "verified on", "time"):
        table.add_column(col, justify="left" if col in ("artifact", "int8 method", "verified on") else "right")
    for r in results:
        v = r.manifest["verification"]
        method = (r.manifest.get("quantization") or {}).get("method") or "-"
        table.add_row(
            r.directory.name,
            _size(r.size),
            method,
            f"{v['rel_mse']:.1e}",
            f"{v['max_abs_err']:.1e}",
            _archs(r.manifest),
            f"{r.seconds:.1f}s",
        )
    console = Console()
    console.print(table)
    for r in results:
        for line in _below_the_pi(r.manifest):
            console.print(f"{r.directory.name}: {line}")
    if results:
        console.print(f"artifacts in {results[0].directory.parent}/ (manifest.json in each)")


def _archs(manifest: dict) -> str:
    """'x86_64, aarch64 (emulated)' or with 'NOT aarch64' for a failed or skipped check."""
    parts = []
    for arch, rec in (manifest.get("architectures") or {}).items():
        label = arch + (" (emulated)" if rec.get("emulated") else "")
        parts.append(label if rec.get("verified") else f"NOT {arch}")
    if manifest.get("mcu"):
        parts.append("TFLite Micro")
    return ", ".join(parts) or "-"


def _below_the_pi(manifest: dict) -> list[str]:
    """Memory and NPU lines for microcontroller, Ethos-U and C artifacts."""
    out = []
    mcu = manifest.get("mcu")
    if mcu:
        fits = mcu.get("fits")
        out.append(
            f"tensor arena {mcu['tensor_arena_bytes']:,} B, model {mcu['flash_bytes']:,} B"
            + (
                f" (profile: {fits['sram_bytes'] // 1024} KiB SRAM, {fits['flash_bytes'] // 1024} KiB flash)"
                if fits
                else ""
            )
        )
        v = mcu.get("vela")
        if v:
            out.append(
                f"Vela {v['accelerator']}: {len(v['npu_operators'])} NPU / {len(v['cpu_operators'])} CPU "
                f"operators, {v['macs_npu_share']:.0%} of {v['macs_total']:,} MACs on the NPU, "
                f"{v['cycles_total']:,} cycles = {v['inference_time_ms']:.3f} ms, SRAM {v['sram_bytes']:,} B"
            )
            if v.get("warning"):
                out.append(f"WARNING: {v['warning']}")
    if manifest.get("c"):
        out.append(
            f"C: {manifest['c']['flash_bytes']:,} B of constants, forecast() stack ~"
            f"{manifest['c']['stack_bytes_approx']:,} B, no heap"
        )
    return out


def _size(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1024**2 else f"{n / 1024**2:.2f} MiB"
