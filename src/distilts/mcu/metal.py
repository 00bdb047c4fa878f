"""Bare-metal verification of a C artifact on every emulated Cortex-M board: outputs, sizes, instructions.

For each board of distilts.mcu.firmware.BOARDS the artifact is built as firmware (the profile's
flash and SRAM in the linker script) and run on QEMU (distilts.mcu.qemu). Its outputs must equal
the host build's bit for bit (both are C99 without FMA contraction); flash, RAM, instructions per
forecast and a latency *estimate* (instructions x a documented CPI / the profile's clock) go into the
manifest. Works for any artifact that follows the header contract of distilts.mcu.firmware.

Skipped with a one-line notice when the tools are missing, unless CI=true (then it is an error).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from distilts.errors import DistiltsError
from distilts.mcu import firmware, qemu
from distilts.mcu.ctoolchain import ToolchainUnavailable

MAX_WINDOWS = 8  # golden windows run on each board (instruction counts are their mean)
INSTRUCTIONS_HOW = (
    "qemu-system-arm -icount shift=0 (1 ns of virtual time per instruction): SysTick read around each "
    "forecast() call, converted with a timed loop of known length; resolution one SysTick tick"
)


class NotBitIdentical(DistiltsError):
    """The bare-metal build's forecasts differ from the host build's."""


def unavailable() -> str | None:
    """Why the bare-metal check cannot run here (None when it can)."""
    missing = [m for m in (firmware.tools_missing(), None if shutil.which(qemu.QEMU) else qemu.QEMU) if m]
    return ", ".join(missing) or None


def _latency(board: firmware.Board, instructions: float) -> dict:
    return {
        "estimate": True,
        "ms": round(instructions * board.cpi / (board.mhz * 1e3), 3),
        "cpi": board.cpi,
        "mhz": board.mhz,
        "source": board.cpi_source,
    }


def run_board(
    board: firmware.Board,
    src: Path,
    sources: Sequence[str],
    header: str,
    x: np.ndarray,
    host: np.ndarray,
    work: Path,
    score: Callable[[np.ndarray], dict] | None = None,
) -> dict:
    """Build, run and check the artifact on one board; its manifest entry (or why it does not fit)."""
    try:
        built = firmware.build(board, src, list(sources), header, work)
    except firmware.DoesNotFit as exc:
        return {"fits": False, "overflow_bytes": exc.overflow, "note": str(exc), "machine": board.machine}
    res = qemu.run(board, built.elf, x, work)
    y = res.outputs.reshape(host.shape)
    same = np.asarray(host, np.float32).view(np.uint32) == y.view(np.uint32)
    if not same.all():
        diff = float(np.max(np.abs(y.astype(np.float64) - host)))
        raise NotBitIdentical(
            f"The C artifact on {board.profile} (QEMU {board.machine}) differs from the host build in "
            f"{int((~same).sum())} of {same.size} outputs (max abs {diff:.3g}). Both are compiled -std=c99 "
            "-ffp-contract=off; a difference points at code that depends on the platform (report it)."
        )
    n = res.instructions
    return {
        "fits": True,
        "machine": board.machine,
        "cpu": board.cpu_flags[0].removeprefix("-mcpu="),
        "bit_identical_to_host": True,
        "windows": int(len(x)),
        **({"errors": score(y)} if score else {}),
        **built.sizes,
        "instructions_per_forecast": int(round(float(n.mean()))),
        "instructions_min_max": [int(round(float(n.min()))), int(round(float(n.max())))],
        "instructions_how": INSTRUCTIONS_HOW,
        "latency_estimate": _latency(board, float(n.mean())),
        "emulator": res.emulator,
        "compiler": firmware.compiler_version(),
    }


def verify(
    src: Path,
    sources: Sequence[str],
    header: str,
    x: np.ndarray,
    host: np.ndarray,
    work: Path,
    log: Callable[[str], None] = lambda s: None,
    score: Callable[[np.ndarray], dict] | None = None,
    profiles: Sequence[str] = tuple(firmware.BOARDS),
) -> dict:
    """{'boards': {profile: entry}} for the manifest, or {'skipped': why} when the tools are missing (not CI).

    `x` [B, L, D] raw windows, `host` [B, H, D] the host build's forecasts of them; `score(y)` adds
    error figures against a reference (e.g. the PyTorch student).
    """
    if why := unavailable():
        msg = f"bare-metal check skipped: {why} not installed (apt-get install --no-install-recommends {firmware.APT})"
        if os.environ.get("CI") == "true":
            raise ToolchainUnavailable(msg.replace("skipped", "required under CI=true"))
        log(msg)
        return {"skipped": msg}
    x, host = x[:MAX_WINDOWS], host[:MAX_WINDOWS]
    src, work = Path(src).resolve(), Path(work).resolve()  # the tools run in other directories
    boards = {}
    for p in profiles:
        b = firmware.BOARDS[p]
        e = boards[p] = run_board(b, src, sources, header, x, host, work / p, score)
        if e["fits"]:
            log(
                f"bare metal {p} ({b.machine}): bit-identical to the host build, "
                f"{e['instructions_per_forecast']:,} instructions/forecast, flash {e['flash_bytes']:,} B, "
                f"RAM {e['ram_bytes']:,} B, ~{e['latency_estimate']['ms']} ms at {b.mhz} MHz (estimate)"
            )
        else:
            log(f"bare metal {p}: does not fit ({e['note']})")
    return {"boards": boards}
