"""Which candidate of an artifact ships: within tolerance, then fastest among the accurate ones.

fp32 has one candidate; int8 has one per quantization recipe (distilts.compile.backends). The choice
uses the errors measured here and, when the artifact was also verified on another architecture
(distilts.compile.crossarch), the errors there and the agreement between the two (docs/compile.md).
"""

from __future__ import annotations

from typing import Callable

from distilts.compile import verify
from distilts.compile.crossarch import ArchCheck, failure_message
from distilts.compile.verify import Candidate
from distilts.errors import ArtifactError
from distilts.targets import CompileJob

# candidates whose forecasts differ between architectures by more than this (max abs, normalized units,
# over the verification windows) count as disagreeing. Kernels that quantize activations differ (e.g.
# onnxruntime's dynamic int8 quantizes them per row on arm64, per tensor on x86) or flip rare rounding
# ties of float inputs computed 1 ulp apart; weight-only int8 and float arithmetic agree to ~1e-6.
AGREE = 1e-3
INT8_GOAL = 1e-3  # rel-MSE an int8 artifact should reach on every architecture (docs/compile.md)


def choose(candidates: list[Candidate], checks: dict[str, ArchCheck], job: CompileJob, log: Callable[[str], None]
           ) -> tuple[Candidate, ArchCheck | None]:
    """The candidate to ship and its aarch64 check (None when not checked).

    Without an aarch64 check: among candidates within tolerance here, the fastest (batch-1 call, measured
    here) of those that reach INT8_GOAL, else the smallest rel-MSE. With one: among candidates within
    tolerance on both architectures, the fastest of those whose forecasts agree across them (max abs
    difference <= AGREE) and that reach INT8_GOAL on both, else the smallest worst-architecture rel-MSE.
    A failure on the target's own architecture refuses the artifact; a failure on a `--verify-on`
    architecture is recorded.
    """
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
        r = checks[c.name].record if c.name in checks else {"reason": "no result"}
        log(f"{job.dirname}: {c.name} on aarch64: " + (
            f"rel-MSE {r['rel_mse']:.3g}, max abs {r['max_abs_err']:.3g}; vs x86_64: rel-MSE "
            f"{r.get('rel_mse_vs_host', float('nan')):.3g}, max abs {r.get('max_abs_diff_vs_host', float('nan')):.3g}"
            if "rel_mse" in r else r.get("reason", "?")))

    def worst(c: Candidate) -> float:
        return max(c.errors["rel_mse"], checks[c.name].record.get("rel_mse", float("inf")))

    both = [c for c in here if checks.get(c.name) is not None and checks[c.name].verified]
    if both:
        agree = [c for c in both if checks[c.name].record.get("max_abs_diff_vs_host", 0.0) <= AGREE
                 and (job.precision == "fp32" or worst(c) <= INT8_GOAL)]
        best = _fastest_good(agree, worst, job.precision) if agree else min(both, key=worst)
        if not agree:
            log(f"{job.dirname}: no candidate forecasts the same on x86_64 and aarch64 (max abs difference <= "
                f"{AGREE:g} normalized) at rel-MSE <= {INT8_GOAL:g}; {best.name} differs by "
                f"{checks[best.name].record['max_abs_diff_vs_host']:.3g}")
        return best, checks[best.name]
    best = min(here, key=lambda c: c.errors["rel_mse"])
    check = checks.get(best.name) or next(iter(checks.values()))
    if check.required:
        raise ArtifactError(failure_message(what + (f" ({best.method})" if best.method else ""), check,
                                            job.precision))
    log(f"WARNING: {job.dirname} does NOT hold on aarch64: {failure_message(what, check, job.precision)}")
    return best, check


def _fastest_good(candidates: list[Candidate], err: Callable[[Candidate], float], precision: str) -> Candidate:
    """The fastest candidate (batch-1 call here) among those at err <= INT8_GOAL; else the smallest err."""
    good = [c for c in candidates if precision == "fp32" or err(c) <= INT8_GOAL]
    if not good:
        return min(candidates, key=err)
    return min(good, key=lambda c: (c.latency_ms if c.latency_ms is not None else float("inf"), err(c)))
