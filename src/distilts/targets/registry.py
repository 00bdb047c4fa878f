"""Named deployment targets: each fixes an artifact format, precision, thread count and batch size.

Pure Python (no heavy imports): `distilts targets` and the compile CLI read this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from distilts.errors import DistiltsError

FORMATS: tuple[str, ...] = ("onnx", "openvino", "tflite")
PRECISIONS: tuple[str, ...] = ("fp32", "int8")
# how the runtime sets up its session (docs/compile.md, "Targets"): latency = batch-1 calls answered as
# fast as possible; throughput = large batches, parallel streams/requests
MODES: tuple[str, ...] = ("latency", "throughput")


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

    @property
    def arch(self) -> str:
        """The CPU architecture the artifact runs on (aarch64 targets are also verified on emulated arm64)."""
        return "aarch64" if self.isa == "arm64" else "x86_64"

    def line(self) -> str:
        """One line for `distilts targets`."""
        return (f"{self.name:<11} {self.format:<8} {self.precision:<4} threads={self.threads:<2} "
                f"batch={self.batch:<3} {self.mode:<10} {self.arch:<7} {self.description}")


TARGETS: dict[str, Target] = {t.name: t for t in (
    # why each choice: docs/compile.md, "Targets"
    Target("rpi4", "tflite", "int8", 4, 1, "Raspberry Pi 4 (Cortex-A72): LiteRT int8, XNNPACK", "arm64"),
    Target("rpi5", "tflite", "fp32", 4, 1, "Raspberry Pi 5 (Cortex-A76): LiteRT fp32, exact numbers", "arm64"),
    Target("jetson-cpu", "onnx", "fp32", 6, 1, "Jetson Orin CPU (Cortex-A78AE): ONNX Runtime fp32", "arm64"),
    # x86 int8 ISA: x86-edge assumes no VNNI (AMD embedded, older NUCs), so its int8 never saturates
    Target("x86-edge", "onnx", "int8", 4, 1, "small x86 box (N100/NUC, AMD embedded): ONNX Runtime int8", "avx2"),
    Target("x86-server", "openvino", "fp32", 8, 64, "x86 server, batched serving: OpenVINO fp32, dynamic batch",
           "avx512_vnni", mode="throughput"),
)}


def target_names() -> list[str]:
    return list(TARGETS)


def valid_choices() -> str:
    """'onnx, openvino, tflite (formats) or rpi4, ... (targets)' for error messages."""
    return f"{', '.join(FORMATS)} (formats) or {', '.join(TARGETS)} (named targets)"


def list_targets() -> list[Target]:
    """Every named deployment target, in the order `distilts targets` lists them."""
    return list(TARGETS.values())


def get_target(name: str) -> Target:
    """The named deployment target `name` (an UnknownTargetError lists the valid ones)."""
    if name not in TARGETS:
        raise UnknownTargetError(f"Unknown target '{name}'. Use one of: {valid_choices()}. "
                                 "See `distilts targets`.")
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
        if self.target is not None:
            return self.target.isa
        from distilts.runtime.arch import host_isa

        return host_isa()


def resolve_job(spec: str, int8: bool = False, batches: tuple[int, ...] = ()) -> CompileJob:
    """Turn a --target value (format or named target) plus --int8/--batch into a CompileJob.

    ONNX and OpenVINO artifacts always take a dynamic batch; TFLite is compiled at fixed batch sizes
    (--batch, else the target's batch, else 1).
    """
    spec = spec.strip().lower()
    if spec in FORMATS:
        fmt, precision, target = spec, "int8" if int8 else "fp32", None
        default_batch = 1
    else:
        target = get_target(spec)
        fmt, precision = target.format, "int8" if int8 else target.precision
        default_batch = target.batch
    if any(b < 1 for b in batches):
        raise DistiltsError(f"--batch must be a positive integer (got {list(batches)}).")
    if fmt == "tflite":
        chosen: tuple[int | None, ...] = tuple(sorted(set(batches))) or (default_batch,)
    else:
        chosen = (None,)
    return CompileJob(fmt, precision, chosen, target)
