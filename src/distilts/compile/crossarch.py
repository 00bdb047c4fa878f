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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from distilts.runtime.arch import host_arch

ARCHS = ("aarch64",)  # what --verify-on accepts besides this machine's own architecture


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


def check_all(pending: list[Pending], verify_x: np.ndarray, ref: np.ndarray, config: dict,
              log: Callable[[str], None]) -> dict[str, dict[str, ArchCheck]]:
    """Run every candidate of every pending job on the emulated arm64 runtime, in one process.

    Returns {job key: {candidate: ArchCheck}}; `record["max_abs_diff_vs_host"]` is the largest
    normalized difference between the forecasts there and here.
    """
    from distilts.device import arm64
    from distilts.compile import verify

    todo = [p for p in pending if "aarch64" in p.archs]
    if not todo:
        return {}
    backends = sorted({p.backend for p in todo})
    try:
        dev = arm64.ensure_device(backends, log)
    except arm64.EmulatorUnavailable as exc:
        log(f"WARNING: not verified on aarch64: {exc}")
        rec = {"verified": False, "reason": f"emulator unavailable: {exc}"}
        return {p.key: {c: ArchCheck("aarch64", dict(rec), required="aarch64" in p.required) for c in p.candidates}
                for p in todo}
    mean = np.asarray(config["scaler"]["mean"], np.float64)
    std = np.asarray(config["scaler"]["std"], np.float64)
    emulated = (f"qemu-aarch64 {dev.info['versions']['qemu']}, Debian bookworm arm64 python "
                f"{dev.info['versions']['python']}")
    n = sum(len(p.candidates) for p in todo)
    log(f"verifying {len(todo)} artifact(s) ({n} candidate(s)) on emulated aarch64 ({emulated}; one process)")
    with tempfile.TemporaryDirectory(prefix="distilts-verify-") as d:
        xpath = Path(d) / "x.npy"
        np.save(xpath, np.ascontiguousarray(verify_x, np.float32))
        tasks, index = [], []
        for p in todo:
            for c, files in p.candidates.items():
                tasks.append({"id": f"{p.key}/{c}", "kind": "files", "backend": p.backend, "x": str(xpath),
                              "out": str(Path(d) / f"{len(tasks)}.npy"), "files": [[str(f), b] for f, b in files]})
                index.append((p, c))
        try:
            result = arm64.run_tasks(dev, tasks, backends)
        except arm64.EmulatorUnavailable as exc:
            result = {"tasks": {t["id"]: {"ok": False, "error": str(exc)} for t in tasks}}
        out: dict[str, dict[str, ArchCheck]] = {}
        for (p, c), t in zip(index, tasks):
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
            rec = {"verified": ok, "isa": "arm64", "emulated": emulated, "runtime": res.get("version"),
                   "windows": int(len(verify_x)), **errs, "tolerance": dict(verify.TOLERANCES[p.precision])}
            host = p.host_preds.get(c)
            if host is not None:
                diff = verify.normalized(preds[0], mean, std) - verify.normalized(host, mean, std)
                rec["max_abs_diff_vs_host"] = float(np.max(np.abs(diff)))
                rec["rel_mse_vs_host"] = float(np.mean(diff ** 2)
                                               / max(float(np.mean(verify.normalized(host, mean, std) ** 2)), 1e-12))
            out.setdefault(p.key, {})[c] = ArchCheck("aarch64", rec, preds[0][:1] if ok else None, required)
    return out


# candidates whose forecasts differ between architectures by more than this (max abs, normalized units,
# over the verification windows) count as disagreeing. Kernels that quantize activations differ (e.g.
# onnxruntime's dynamic int8 quantizes them per row on arm64, per tensor on x86) or flip rare rounding
# ties of float inputs computed 1 ulp apart; weight-only int8 and float arithmetic agree to ~1e-6.
AGREE = 1e-3
INT8_GOAL = 1e-3  # rel-MSE an int8 artifact should reach on every architecture (docs/compile.md)


def choose(candidates: list, checks: dict[str, ArchCheck], job, log: Callable[[str], None]):
    """The candidate to ship and its aarch64 check (None when not checked).

    Without an aarch64 check: among candidates within tolerance here, the fastest (batch-1 call, measured
    here) of those that reach INT8_GOAL, else the smallest rel-MSE. With one: among candidates within
    tolerance on both architectures, the fastest of those whose forecasts agree across them (max abs
    difference <= AGREE) and that reach INT8_GOAL on both, else the smallest worst-architecture rel-MSE.
    A failure on the target's own architecture refuses the artifact; a failure on a `--verify-on`
    architecture is recorded.
    """
    from distilts.compile import verify
    from distilts.errors import ArtifactError

    def name(c) -> str:
        return c.method or "fp32"

    what = f"The {job.format} {job.precision} artifact"
    here = [c for c in candidates if verify.within(c.errors, job.precision)]
    if not here:
        best = min(candidates, key=lambda c: c.errors["rel_mse"])
        verify.check(best.errors, job.precision, what + (f" ({best.method})" if best.method else ""))
    if not checks:
        return _fastest_good(here, lambda c: c.errors["rel_mse"], job.precision), None
    any_check = next(iter(checks.values()))
    if any_check.record.get("reason", "").startswith("emulator unavailable"):
        return _fastest_good(here, lambda c: c.errors["rel_mse"], job.precision), any_check

    for c in candidates:
        r = checks[name(c)].record if name(c) in checks else {"reason": "no result"}
        log(f"{job.dirname}: {name(c)} on aarch64: " + (
            f"rel-MSE {r['rel_mse']:.3g}, max abs {r['max_abs_err']:.3g}; vs x86_64: rel-MSE "
            f"{r.get('rel_mse_vs_host', float('nan')):.3g}, max abs {r.get('max_abs_diff_vs_host', float('nan')):.3g}"
            if "rel_mse" in r else r.get("reason", "?")))

    def worst(c) -> float:
        return max(c.errors["rel_mse"], checks[name(c)].record.get("rel_mse", float("inf")))

    both = [c for c in here if checks.get(name(c)) is not None and checks[name(c)].verified]
    if both:
        agree = [c for c in both if checks[name(c)].record.get("max_abs_diff_vs_host", 0.0) <= AGREE
                 and (job.precision == "fp32" or worst(c) <= INT8_GOAL)]
        best = _fastest_good(agree, worst, job.precision) if agree else min(both, key=worst)
        if not agree:
            log(f"{job.dirname}: no candidate forecasts the same on x86_64 and aarch64 (max abs difference <= "
                f"{AGREE:g} normalized) at rel-MSE <= {INT8_GOAL:g}; {name(best)} differs by "
                f"{checks[name(best)].record['max_abs_diff_vs_host']:.3g}")
        return best, checks[name(best)]
    best = min(here, key=lambda c: c.errors["rel_mse"])
    check = checks.get(name(best)) or next(iter(checks.values()))
    if check.required:
        raise ArtifactError(failure_message(what + (f" ({best.method})" if best.method else ""), check,
                                            job.precision))
    log(f"WARNING: {job.dirname} does NOT hold on aarch64: {failure_message(what, check, job.precision)}")
    return best, check


def _fastest_good(candidates: list, err: Callable, precision: str):
    """The fastest candidate (batch-1 call here) among those at err <= INT8_GOAL; else the smallest err."""
    good = [c for c in candidates if precision == "fp32" or err(c) <= INT8_GOAL]
    if not good:
        return min(candidates, key=err)
    return min(good, key=lambda c: (c.latency_ms if c.latency_ms is not None else float("inf"), err(c)))


def failure_message(what: str, check: ArchCheck, precision: str) -> str:
    """Why an artifact is refused on its target's architecture, and what to do."""
    from distilts.compile.verify import TOLERANCES

    r = check.record
    tol = TOLERANCES[precision]
    if "rel_mse" in r:
        err = (f"rel-MSE {r['rel_mse']:.3g} (allowed {tol['rel_mse']:g}), max abs error {r['max_abs_err']:.3g} "
               f"normalized units (allowed {tol['max_abs']:g}) vs the PyTorch student, {r.get('runtime')}")
    else:
        err = r.get("reason", "unknown error")
    fix = ("use the fp32 artifact or another format for this target" if precision == "int8"
           else "try another format for this target, and report the backend bug")
    return (f"{what} fails on its target's architecture {check.arch} ({r.get('emulated', 'emulated')}): {err}. "
            + ("The artifact was not written. " if check.required else "")
            + f"Fix: {fix}; `scripts/arm64-device.sh run -- forecast ARTIFACT ...` runs it there.")


def architectures(job, host_errors: dict, checks: dict[str, ArchCheck]) -> tuple[dict, dict]:
    """The manifest's `architectures` (every arch: verified or why not) and `golden.by_isa`: the golden
    outputs of the other verified ISAs (this machine's is `golden.output`)."""
    from distilts.runtime.arch import host_isa

    from distilts.compile.verify import within

    arch, isa = host_arch(), host_isa()
    archs = {arch: {"verified": within(host_errors, job.precision), "isa": isa, "emulated": None,
                    **{k: host_errors[k] for k in ("rel_mse", "max_abs_err")}}}
    by_isa: dict = {}  # this machine's output is golden.output (golden.isa); the others' here
    for a, c in checks.items():
        archs[a] = c.record
        if c.verified and c.golden_out is not None:
            by_isa[c.record.get("isa", a)] = np.asarray(c.golden_out, np.float32).tolist()
    target_arch = getattr(job.target, "arch", None) if job.target is not None else arch
    if target_arch not in archs:
        archs[target_arch] = {"verified": False, "reason": "not checked (pass --verify-on " + target_arch + ")"}
    return archs, by_isa
