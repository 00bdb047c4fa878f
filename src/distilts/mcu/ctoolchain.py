"""Build and run the C artifact: natively through ctypes, and cross-compiled (static) under qemu-user.

Native: the system `cc` builds `model.c` into a shared library whose `forecast` is called through
ctypes. Cross: Debian's `aarch64-linux-gnu-gcc` and `arm-linux-gnueabihf-gcc` link `model.c` +
`main.c` statically, and trixie's static `qemu-aarch64` / `qemu-arm` (kept in the emulated device's
cache, distilts.device.arm64.qemu_binary) run it on the windows piped through stdin.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distilts.device.arm64 import EmulatorUnavailable, qemu_binary
from distilts.errors import DistiltsError

CFLAGS = ("-O2", "-std=c99", "-ffp-contract=off", "-Wall", "-Werror")


class ToolchainUnavailable(DistiltsError):
    """A C compiler or emulator the C artifact's verification needs is not installed here."""


@dataclass(frozen=True)
class Cross:
    """A foreign architecture the C artifact is cross-compiled for and run on under qemu-user."""

    arch: str
    compiler: str
    qemu: str
    apt: str  # the Debian package with the compiler

    def cc(self) -> str:
        path = shutil.which(self.compiler)
        if path is None:
            raise ToolchainUnavailable(
                f"`{self.compiler}` is not installed, so the C artifact cannot be checked on "
                f"{self.arch}. Fix: apt-get install {self.apt} (scripts/setup.sh does)."
            )
        return path


CROSS: dict[str, Cross] = {
    c.arch: c
    for c in (
        Cross("aarch64", "aarch64-linux-gnu-gcc", "qemu-aarch64", "gcc-aarch64-linux-gnu"),
        Cross("armhf", "arm-linux-gnueabihf-gcc", "qemu-arm", "gcc-arm-linux-gnueabihf"),
    )
}


def _run(argv: list[str], what: str, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(argv, capture_output=True, **kw)
    if res.returncode != 0:
        err = res.stderr.decode(errors="replace") if isinstance(res.stderr, bytes) else res.stderr
        raise DistiltsError(f"{what} failed (exit {res.returncode}): {err.strip()[-800:]}")
    return res


def native_cc() -> str:
    for name in ("cc", "gcc", "clang"):
        if path := shutil.which(name):
            return path
    raise ToolchainUnavailable(
        "No C compiler (cc, gcc or clang) on PATH to check the C artifact. Fix: apt-get install gcc."
    )


def compiler_version(cc: str) -> str:
    out = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0].strip() if out else Path(cc).name


def build_shared(src: Path, out: Path) -> Path:
    """`model.c` -> a shared library with `forecast` (system cc, -O2)."""
    _run(
        [native_cc(), *CFLAGS, "-shared", "-fPIC", str(src / "model.c"), "-lm", "-o", str(out)],
        "Compiling the C artifact with the system compiler",
    )
    return out


def run_shared(lib: Path, x: np.ndarray, horizon: int) -> np.ndarray:
    """Forecasts of `x` [B, L, D] through the library's `forecast` (ctypes)."""
    so = ctypes.CDLL(str(lib))
    fn = so.forecast
    fn.restype = None
    fn.argtypes = [ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]
    B, _, D = x.shape
    out = np.zeros((B, horizon, D), np.float32)
    fp = ctypes.POINTER(ctypes.c_float)
    for i in range(B):
        w = np.ascontiguousarray(x[i], dtype=np.float32)
        fn(w.ctypes.data_as(fp), out[i].ctypes.data_as(fp))
    return out


def build_static(arch: str, src: Path, out: Path) -> Path:
    """`model.c` + `main.c` cross-compiled and statically linked for `arch` (aarch64 | armhf)."""
    _run(
        [CROSS[arch].cc(), *CFLAGS, "-static", str(src / "model.c"), str(src / "main.c"), "-lm", "-o", str(out)],
        f"Cross-compiling the C artifact for {arch}",
    )
    return out


def run_emulated(
    arch: str, binary: Path, x: np.ndarray, horizon: int, log: Callable[[str], None] = lambda s: None
) -> tuple[np.ndarray, str]:
    """(forecasts of `x` by the static `binary` under qemu-user, the emulator's version)."""
    try:
        qemu = qemu_binary(CROSS[arch].qemu, log)
    except EmulatorUnavailable as exc:
        raise ToolchainUnavailable(str(exc)) from exc
    B, _, D = x.shape
    res = _run(
        [str(qemu), str(binary)],
        f"Running the {arch} C artifact under {qemu.name}",
        input=np.ascontiguousarray(x, dtype=np.float32).tobytes(),
        timeout=600,
    )
    y = np.frombuffer(res.stdout, dtype=np.float32)
    if y.size != B * horizon * D:
        raise DistiltsError(
            f"The {arch} C artifact wrote {y.size} values for {B} windows (expected {B * horizon * D})."
        )
    version = subprocess.run([str(qemu), "--version"], capture_output=True, text=True).stdout.split()
    return y.reshape(B, horizon, D).copy(), f"{qemu.name} {version[2] if len(version) > 2 else '?'}"
