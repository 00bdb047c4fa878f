"""This machine's architecture and int8-relevant instruction set (standard library only: ships to devices)."""

from __future__ import annotations

import platform
from functools import lru_cache

# int8 instruction sets, as Optimum names its quantization configs: what the int8 kernels multiply with
ISAS = ("arm64", "avx2", "avx512", "avx512_vnni")
# manylinux wheel tags a device of each instruction-set family accepts, newest glibc first (a Pi OS or
# Debian bookworm has glibc 2.36): for `pip download/install --platform` (bundles, the emulated arm64 device)
WHEEL_PLATFORMS = {
    family: tuple(f"manylinux_2_{v}_{machine}" for v in range(36, 16, -1)) + (f"manylinux2014_{machine}",)
    for family, machine in (("arm64", "aarch64"), ("x86_64", "x86_64"))
}


def host_arch() -> str:
    """'x86_64' or 'aarch64' (the manifest's spelling of platform.machine())."""
    m = platform.machine().lower()
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(m, m)


def arch_of_isa(isa: str) -> str:
    return "aarch64" if isa == "arm64" else "x86_64"


@lru_cache(maxsize=1)
def host_isa() -> str:
    """The int8 ISA of this CPU: arm64, avx512_vnni (also AVX-VNNI), avx512 or avx2.

    Matters for int8 on x86: without VNNI, onnxruntime's and OpenVINO's u8 x s8 kernels (vpmaddubsw)
    add pairs of products in int16 and saturate; reduced-range weights avoid it.
    """
    arch = host_arch()
    if arch == "aarch64":
        return "arm64"
    if arch != "x86_64":
        return arch
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        return "avx2"  # unknown: the safe (non-saturating) choice
    if "avx512_vnni" in flags or "avx_vnni" in flags:
        return "avx512_vnni"
    return "avx512" if "avx512bw" in flags else "avx2"


def saturates_int8(isa: str) -> bool:
    """Whether full-range u8 x s8 int8 kernels saturate on `isa` (x86 without VNNI): use reduced range there."""
    return isa in ("avx2", "avx512")
