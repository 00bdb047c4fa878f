"""Verify artifacts on another architecture than this machine's: the emulated arm64 device.

An arm64 target (rpi4, rpi5, jetson-cpu) and any artifact compiled with `--verify-on aarch64` has its
verification windows run again in the emulated arm64 runtime (`distilts.device.arm64`), with the same
tolerances against the PyTorch student. All artifacts of one `distilts compile` call share ONE emulated
process (its start and imports cost seconds).

The golden pair is per instruction set (`golden.by_isa`): int8 kernels legitimately differ between
ISAs (x86 without VNNI adds u8 x s8 products in saturating int16; arm64 and VNNI x86 do not), so one
output with a tolerance wide enough for every ISA would also pass a wrong backend. Each verified ISA
stores its own output for the golden input and the runtime checks against the one of its CPU.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distilts.compile import verify
from distilts.device import arm64
from distilts.runtime.arch import host_arch
from distilts.runtime.inputs import Inputs, n_rows


@dataclass
class ArchCheck:
    """One artifact's result on one architecture (a manifest `architectures[arch]` entry + its golden)."""

    arch: str
    record: dict
    golden_out: np.ndarray | None = None  # set when verified
    required: bool = False  # the target's own architecture: a failure refuses the artifact

    @property
    def verified(self) -> bool:
        return bool(self.record.get("verified"))


@dataclass
class Pending:
    """A job whose candidates are in its scratch dir, waiting for the cross-architecture check."""

    key: str
    backend: str
    precision: str
    candidates: dict[str, list[tuple[Path, int | None]]]  # candidate -> its files (path, batch)
    archs: list[str]
    required: set[str] = field(default_factory=set)
    host_preds: dict[str, np.ndarray | None] = field(default_factory=dict)  # candidate -> forecasts here


def archs_for(job, verify_on: tuple[str, ...]) -> tuple[list[str], set[str]]:
    """(architectures to check besides this machine's, the subset that is the target's own)."""
    own = {job.target.arch} if job.target is not None and getattr(job.target, "arch", None) else set()
    want = (set(verify_on) | own) - {host_arch()}
    return sorted(want), own - {host_arch()}


def check_all(
    pending: list[Pending], verify_x: Inputs, ref: np.ndarray, config: dict, log: Callable[[str], None]
) -> dict[str, dict[str, ArchCheck]]:
    """Run every candidate of every pending job on the emulated arm64 runtime, in one process.

    Returns {job key: {candidate: ArchCheck}}; `record["max_abs_diff_vs_host"]` is the largest
    normalized difference between the forecasts there and here.
    """
    todo = [p for p in pending if "aarch64" in p.archs]
    if not todo:
        return {}
    backends = sorted({p.backend for p in todo})
    try:
        dev = arm64.ensure_device(backends, log)
    except arm64.EmulatorUnavailable as exc:
        log(f"WARNING: not verified on aarch64: {exc}")
        rec = {"verified": False, "reason": f"emulator unavailable: {exc}"}
        return {
            p.key: {c: ArchCheck("aarch64", dict(rec), required="aarch64" in p.required) for c in p.candidates}
            for p in todo
        }
    mean = np.asarray(config["scaler"]["mean"], np.float64)
    std = np.asarray(config["scaler"]["std"], np.float64)
    emulated = (
        f"qemu-aarch64 {dev.info['versions']['qemu']}, Debian bookworm arm64 python {dev.info['versions']['python']}"
    )
    n = sum(len(p.candidates) for p in todo)
    log(f"verifying {len(todo)} artifact(s) ({n} candidate(s)) on emulated aarch64 ({emulated}; one process)")
    with tempfile.TemporaryDirectory(prefix="distilts-verify-") as d:
        if isinstance(verify_x, dict):  # an artifact with covariates: its named inputs
            xpath = Path(d) / "x.npz"
            arrays: dict[str, Any] = {k: np.ascontiguousarray(v, np.float32) for k, v in verify_x.items()}
            np.savez(xpath, **arrays)
        else:
            xpath = Path(d) / "x.npy"
            np.save(xpath, np.ascontiguousarray(verify_x, np.float32))
        tasks: list[dict] = []
        index: list[tuple[Pending, str]] = []
        for p in todo:
            for c, files in p.candidates.items():
                tasks.append(
                    {
                        "id": f"{p.key}/{c}",
                        "kind": "files",
                        "backend": p.backend,
                        "x": str(xpath),
                        "out": str(Path(d) / f"{len(tasks)}.npy"),
                        "files": [[str(f), b] for f, b in files],
                    }
                )
                index.append((p, c))
        try:
            result = arm64.run_tasks(dev, tasks, backends)
        except arm64.EmulatorUnavailable as exc:
            result = {"tasks": {t["id"]: {"ok": False, "error": str(exc)} for t in tasks}}
        out: dict[str, dict[str, ArchCheck]] = {}
        for (p, c), t in zip(index, tasks, strict=False):
            res = result["tasks"].get(t["id"], {"ok": False, "error": "no result"})
            required = "aarch64" in p.required
            if not res.get("ok"):
                rec = {"verified": False, "emulated": emulated, "reason": f"runtime error: {res.get('error')}"}
                out.setdefault(p.key, {})[c] = ArchCheck("aarch64", rec, required=required)
                continue
            preds = np.load(t["out"])
            errs_each = [verify.errors(pred, ref, mean, std) for pred in preds]
            errs = {k: max(e[k] for e in errs_each) for k in errs_each[0]}
            ok = verify.within(errs, p.precision)
            rec = {
                "verified": ok,
                "isa": "arm64",
                "emulated": emulated,
                "runtime": res.get("version"),
                "windows": n_rows(verify_x),
                **errs,
                "tolerance": dict(verify.TOLERANCES[p.precision]),
            }
            host = p.host_preds.get(c)
            if host is not None:
                diff = verify.normalized(preds[0], mean, std) - verify.normalized(host, mean, std)
                rec["max_abs_diff_vs_host"] = float(np.max(np.abs(diff)))
                rec["rel_mse_vs_host"] = float(
                    np.mean(diff**2) / max(float(np.mean(verify.normalized(host, mean, std) ** 2)), 1e-12)
                )
            out.setdefault(p.key, {})[c] = ArchCheck("aarch64", rec, preds[0][:1] if ok else None, required)
    return out


def failure_message(what: str, check: ArchCheck, precision: str) -> str:
    """Why an artifact is refused on its target's architecture, and what to do."""
    r = check.record
    tol = verify.TOLERANCES[precision]
    if "rel_mse" in r:
        err = (
            f"rel-MSE {r['rel_mse']:.3g} (allowed {tol['rel_mse']:g}), max abs error {r['max_abs_err']:.3g} "
            f"normalized units (allowed {tol['max_abs']:g}) vs the PyTorch student, {r.get('runtime')}"
        )
    else:
        err = r.get("reason", "unknown error")
    fix = (
        "use the fp32 artifact or another format for this target"
        if precision == "int8"
        else "try another format for this target, and report the backend bug"
    )
    return (
        f"{what} fails on its target's architecture {check.arch} ({r.get('emulated', 'emulated')}): {err}. "
        + ("The artifact was not written. " if check.required else "")
        + f"Fix: {fix}; `scripts/arm64-device.sh run -- forecast ARTIFACT ...` runs it there."
    )
