"""Run bare-metal firmware on an emulated Cortex-M board in qemu-system-arm and read back its output.

The firmware (distilts.mcu.firmware) reads its windows from the host file `windows.bin` and writes
through newlib's semihosting, which QEMU sends to a `-chardev file` (QEMU 7.2 sends newlib's `:tt`
writes to its own stdout instead; both are read). QEMU runs with `-icount shift=0`
(deterministic: virtual time advances 1 ns per guest instruction), so SysTick, which counts on the
core clock in virtual time, counts instructions up to a constant factor; the harness measures that
factor itself on a loop of known length ('C' line), so no board clock is assumed. Instruction
counts are exact to within one SysTick tick (tens of instructions) per forecast.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distilts.errors import DistiltsError
from distilts.mcu.ctoolchain import ToolchainUnavailable
from distilts.mcu.firmware import APT, CALIB_LOOPS, Board

QEMU = "qemu-system-arm"
CALIB_INSTRUCTIONS = 2 * CALIB_LOOPS  # subs + bne per turn


@dataclass(frozen=True)
class Run:
    """What the firmware printed: outputs [B, H*D] float32, instructions per forecast [B], the emulator."""

    outputs: np.ndarray
    instructions: np.ndarray
    emulator: str


def require_qemu() -> str:
    if (path := shutil.which(QEMU)) is None:
        raise ToolchainUnavailable(
            f"`{QEMU}` is not installed, so the C artifact cannot run on an emulated Cortex-M. "
            f"Fix: apt-get install --no-install-recommends {APT} (scripts/setup.sh does)."
        )
    return path


def version() -> str:
    out = subprocess.run([require_qemu(), "--version"], capture_output=True, text=True).stdout.split()
    return f"{QEMU} {out[3] if len(out) > 3 else '?'}"


def command(board: Board, elf: Path, out_file: Path) -> list[str]:
    """The qemu-system-arm command line that runs `elf` on `board`, semihosting output into `out_file`."""
    return [
        require_qemu(),
        "-M",
        board.machine,
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-icount",
        "shift=0,align=off,sleep=off",
        "-semihosting-config",
        "enable=on,target=native,chardev=semi",
        "-chardev",
        f"file,id=semi,path={out_file}",
        "-kernel",
        str(elf),
    ]


def run(board: Board, elf: Path, x: np.ndarray, work: Path, timeout: float = 600) -> Run:
    """Forecasts of the raw windows `x` [B, L, D] by the firmware `elf` on `board`'s emulated core."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "windows.bin").write_bytes(np.ascontiguousarray(x, dtype="<f4").tobytes())
    out_file = work / "semihosting.out"
    out_file.unlink(missing_ok=True)
    try:
        res = subprocess.run(command(board, elf, out_file), capture_output=True, text=True, cwd=work, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise DistiltsError(
            f"The {board.profile} firmware did not finish on QEMU {board.machine} in {timeout:.0f} s."
        ) from exc
    # newlib's `:tt` writes reach the semihosting chardev on newer QEMUs and QEMU's stdout on 7.2
    text = (out_file.read_text() if out_file.exists() else "") or res.stdout
    if res.returncode != 0:
        raise DistiltsError(
            f"The {board.profile} firmware exited with {res.returncode} on QEMU {board.machine}: "
            f"{(res.stderr or text).strip()[-800:]}"
        )
    return parse(text, len(x), board)


def parse(text: str, n_windows: int, board: Board) -> Run:
    """The harness's lines ('C <ticks>', then per window 'T <ticks>' and 'Y <hex bits> ...') as a Run."""
    calib, ticks, rows = None, [], []
    for line in text.splitlines():
        tag, rest = line[:1], line[1:]
        if tag == "C":
            calib = int(rest, 16)
        elif tag == "T":
            ticks.append(int(rest, 16))
        elif tag == "Y":
            rows.append(np.array([int(v, 16) for v in rest.split()], dtype=np.uint32).view(np.float32))
    if calib is None or len(rows) != n_windows or len(ticks) != n_windows or not calib:
        raise DistiltsError(
            f"The {board.profile} firmware printed {len(rows)} forecasts for {n_windows} windows "
            f"(calibration {'missing' if calib is None else calib}): {text[-400:]!r}"
        )
    per_tick = CALIB_INSTRUCTIONS / calib
    return Run(np.stack(rows), np.asarray(ticks, np.float64) * per_tick, version())
