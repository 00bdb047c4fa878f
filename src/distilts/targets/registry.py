"""Named deployment targets: each fixes an artifact format, precision, thread count and batch size.

Pure Python (no heavy imports): `distilts targets` and the compile CLI read this table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from distilts.errors import DistiltsError
from distilts.plugins import Registry
from distilts.runtime.arch import arch_of_isa, host_isa
from distilts.runtime.backends import BACKENDS

BELOW_THE_PI: tuple[str, ...] = ("tflm", "ethos-u", "c")


class _Formats:
    """The --target formats: the runtime backends (plugins included), then the formats below the Pi."""

    def __iter__(self) -> Iterator[str]:
        yield from BACKENDS
        yield from BELOW_THE_PI

    def __contains__(self, name: object) -> bool:
        return name in BACKENDS or name in BELOW_THE_PI


FORMATS = _Formats()
# below the Pi (docs/compile.md, "Microcontrollers, Ethos-U and C"): TFLite Micro and Ethos-U artifacts are
# full-integer int8 only; `c` is a dependency-free C source of a folded DLinear or of a student's layers (MLP,
# TSMixer, TiDE, N-HiTS / N-BEATS: distilts.mcu.clower), fp32 or int8
INT8_ONLY: tuple[str, ...] = ("tflm", "ethos-u")
BATCH_ONE: tuple[str, ...] = ("tflm", "ethos-u", "c")
PRECISIONS: tuple[str, ...] = ("fp32", "int8")


class UnknownTargetError(DistiltsError):
    """A --target that is neither a format nor a named target."""


@dataclass(frozen=True)
class Target:
    """A deployment target. `batch` is the batch size it serves (TFLite files are compiled at it);
    `threads` and `mode` (latency | throughput) go into the manifest for the runtime's session settings."""

    name: str
    format: str
    precision: str
    threads: int
    batch: int
    description: str
    isa: str = "avx2"  # int8 instruction set (distilts.runtime.arch.ISAS): picks the int8 settings
    mode: str = "latency"  # runtime default: "latency" (batch 1) or "throughput" (docs/runtime.md)
    sram_kib: int | None = None  # microcontroller profiles: SRAM for the tensor arena, flash for the model;
    flash_kib: int | None = None  # compile refuses a model that does not fit (with the figures)
    accelerator: str | None = None  # Ethos-U: Vela's --accelerator-config

    @property
    def arch(self) -> str | None:
        """The CPU architecture the artifact runs on (aarch64 targets are also verified on emulated arm64);
        None for a microcontroller (verified in the TFLite Micro interpreter instead)."""
        return None if self.isa == "mcu" else arch_of_isa(self.isa)

    def line(self) -> str:
        """One line for `distilts targets`."""
        where = self.arch or (f"{self.sram_kib}K/{self.flash_kib}K" if self.sram_kib else "mcu")
        return (
            f"{self.name:<13} {self.format:<8} {self.precision:<4} threads={self.threads:<2} "
            f"batch={self.batch:<3} {self.mode:<10} {where:<10} {self.description}"
        )


TARGETS: Registry[Target] = Registry(
    "target",
    {
        t.name: t
        for t in (
            # why each choice: docs/compile.md, "Targets"
            Target("rpi4", "tflite", "int8", 4, 1, "Raspberry Pi 4 (Cortex-A72): LiteRT int8, XNNPACK", "arm64"),
            Target("rpi5", "tflite", "fp32", 4, 1, "Raspberry Pi 5 (Cortex-A76): LiteRT fp32, exact numbers", "arm64"),
            Target("jetson-cpu", "onnx", "fp32", 6, 1, "Jetson Orin CPU (Cortex-A78AE): ONNX Runtime fp32", "arm64"),
            # x86 int8 ISA: x86-edge assumes no VNNI (AMD embedded, older NUCs), so its int8 never saturates
            Target(
                "x86-edge", "onnx", "int8", 4, 1, "small x86 box (N100/NUC, AMD embedded): ONNX Runtime int8", "avx2"
            ),
            Target(
                "x86-server",
                "openvino",
                "fp32",
                8,
                64,
                "x86 server, batched serving: OpenVINO fp32, dynamic batch",
                "avx512_vnni",
                mode="throughput",
            ),
            # microcontrollers (SRAM / flash of a typical part of the class; the arena must fit the SRAM,
            # the model the flash)
            Target(
                "cortex-m4f",
                "tflm",
                "int8",
                1,
                1,
                "Cortex-M4F MCU (STM32F4-class: 192 KB SRAM, 1 MB flash): TFLite Micro full int8",
                "mcu",
                sram_kib=192,
                flash_kib=1024,
            ),
            Target(
                "cortex-m7",
                "tflm",
                "int8",
                1,
                1,
                "Cortex-M7 MCU (STM32F7-class: 512 KB SRAM, 2 MB flash): TFLite Micro full int8",
                "mcu",
                sram_kib=512,
                flash_kib=2048,
            ),
            Target(
                "cortex-m55",
                "tflm",
                "int8",
                1,
                1,
                "Cortex-M55 MCU with Helium (Corstone-300-class: 512 KB SRAM, 2 MB flash): TFLite Micro full int8",
                "mcu",
                sram_kib=512,
                flash_kib=2048,
            ),
            Target(
                "ethos-u55-128",
                "ethos-u",
                "int8",
                1,
                1,
                "Cortex-M55 + Ethos-U55 NPU, 128 MACs/cycle (512 KB SRAM, 2 MB flash): Vela + TFLite Micro",
                "mcu",
                sram_kib=512,
                flash_kib=2048,
                accelerator="ethos-u55-128",
            ),
            Target(
                "ethos-u65-256",
                "ethos-u",
                "int8",
                1,
                1,
                "Ethos-U65 NPU, 256 MACs/cycle, beside a host CPU with DRAM "
                "(384 KB NPU SRAM, 64 MB DRAM): Vela + TFLite Micro",
                "mcu",
                sram_kib=384,
                flash_kib=65536,
                accelerator="ethos-u65-256",
            ),
        )
    },
)


def target_names() -> list[str]:
    return list(TARGETS)


def valid_choices() -> str:
    """'onnx, openvino, ... (formats) or rpi4, ... (targets)' for error messages."""
    return f"{', '.join(FORMATS)} (formats) or {', '.join(TARGETS)} (named targets)"


def list_targets() -> list[Target]:
    """Every named deployment target, in the order `distilts targets` lists them."""
    return list(TARGETS.values())


def get_target(name: str) -> Target:
    """The named deployment target `name` (an UnknownTargetError lists the valid ones)."""
    if name not in TARGETS:
        raise UnknownTargetError(f"Unknown target '{name}'. Use one of: {valid_choices()}. See `distilts targets`.")
    return TARGETS[name]


@dataclass(frozen=True)
class CompileJob:
    """One artifact to build: format x precision x batch sizes (None = dynamic), maybe for a target."""

    format: str
    precision: str
    batches: tuple[int | None, ...]
    target: Target | None = None

    @property
    def dirname(self) -> str:
        return f"{self.format}-{self.precision}" + (f"-{self.target.name}" if self.target else "")

    @property
    def threads(self) -> int | None:
        return self.target.threads if self.target else None

    @property
    def isa(self) -> str:
        """The int8 ISA the artifact is built for: the named target's, else this machine's."""
        return self.target.isa if self.target is not None else host_isa()


def resolve_job(spec: str, int8: bool = False, batches: tuple[int, ...] = ()) -> CompileJob:
    """Turn a --target value (format or named target) plus --int8/--batch into a CompileJob.

    ONNX and OpenVINO artifacts always take a dynamic batch; TFLite is compiled at fixed batch sizes
    (--batch, else the target's batch, else 1).
    """
    spec = spec.strip().lower()
    if spec in FORMATS:
        fmt, precision, target = spec, "int8" if int8 or spec in INT8_ONLY else "fp32", None
        default_batch = 1
    else:
        target = get_target(spec)
        fmt, precision = target.format, "int8" if int8 else target.precision
        default_batch = target.batch
    if any(b < 1 for b in batches):
        raise DistiltsError(f"--batch must be a positive integer (got {list(batches)}).")
    if fmt in BATCH_ONE:
        if set(batches) - {1}:
            raise DistiltsError(f"--target {spec} forecasts one window per call: drop --batch {list(batches)}.")
        chosen: tuple[int | None, ...] = (1,)
    elif fmt == "tflite":
        chosen = tuple(sorted(set(batches))) or (default_batch,)
    else:
        chosen = (None,)
    return CompileJob(fmt, precision, chosen, target)
