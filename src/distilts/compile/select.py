"""Which candidate of an artifact ships: within tolerance, then fastest among the accurate ones.

fp32 has one candidate; int8 has one per quantization recipe (distilts.compile.backends). The choice
uses the errors measured here and, when the artifact was also verified on another architecture
(distilts.compile.crossarch), the errors there and the agreement between the two (docs/compile.md).
"""

from __future__ import annotations

from collections.abc import Callable

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


# the rules of `choose`, in words: the manifest's `quantization.chosen_by`
VS_STUDENT = "vs the PyTorch student on the verification windows"
FASTEST = (
    f"the fastest batch-1 call (1 thread, compile machine) among the candidates within tolerance at rel-MSE <= "
    f"{INT8_GOAL:g} {VS_STUDENT}"
)
FASTEST_BOTH = (
    f"the fastest batch-1 call (1 thread, compile machine) among the candidates within tolerance on x86_64 "
    f"and aarch64 whose forecasts agree across them (max abs difference <= {AGREE:g} normalized) at "
    f"rel-MSE <= {INT8_GOAL:g} on both {VS_STUDENT}"
)
SMALLEST = f"the smallest rel-MSE {VS_STUDENT} (no candidate within tolerance reached rel-MSE <= {INT8_GOAL:g})"
SMALLEST_BOTH = (
    f"the smallest worst-architecture rel-MSE {VS_STUDENT} (no candidate agreed across x86_64 and "
    f"aarch64 at rel-MSE <= {INT8_GOAL:g})"
)
SMALLEST_HERE = f"the smallest rel-MSE {VS_STUDENT} (no candidate held on aarch64)"


def choose(
    candidates: list[Candidate], checks: dict[str, ArchCheck], job: CompileJob, log: Callable[[str], None]
) -> tuple[Candidate, ArchCheck | None, str]:
    """The candidate to ship, its aarch64 check (None when not checked) and the rule that chose it (words).

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
    any_check = next(iter(checks.values()), None)
    if any_check is None or any_check.record.get("reason", "").startswith("emulator unavailable"):
        best, rule = _fastest_good(here, lambda c: c.errors["rel_mse"], job.precision, FASTEST, SMALLEST)
        return best, any_check, rule

    for c in candidates:
        r = checks[c.name].record if c.name in checks else {"reason": "no result"}
        log(
            f"{job.dirname}: {c.name} on aarch64: "
            + (
                f"rel-MSE {r['rel_mse']:.3g}, max abs {r['max_abs_err']:.3g}; vs x86_64: rel-MSE "
                f"{r.get('rel_mse_vs_host', float('nan')):.3g}, "
                f"max abs {r.get('max_abs_diff_vs_host', float('nan')):.3g}"
                if "rel_mse" in r
                else r.get("reason", "?")
            )
        )

    def worst(c: Candidate) -> float:
        return max(c.errors["rel_mse"], checks[c.name].record.get("rel_mse", float("inf")))

    both = [c for c in here if checks.get(c.name) is not None and checks[c.name].verified]
    if both:
        agree = [
            c
            for c in both
            if checks[c.name].record.get("max_abs_diff_vs_host", 0.0) <= AGREE
            and (job.precision == "fp32" or worst(c) <= INT8_GOAL)
        ]
        if agree:
            best, rule = _fastest_good(agree, worst, job.precision, FASTEST_BOTH, SMALLEST_BOTH)
        else:
            best, rule = min(both, key=worst), SMALLEST_BOTH
            log(
                f"{job.dirname}: no candidate forecasts the same on x86_64 and aarch64 (max abs difference <= "
                f"{AGREE:g} normalized) at rel-MSE <= {INT8_GOAL:g}; {best.name} differs by "
                f"{checks[best.name].record['max_abs_diff_vs_host']:.3g}"
            )
        return best, checks[best.name], rule
    best = min(here, key=lambda c: c.errors["rel_mse"])
    check = checks.get(best.name) or next(iter(checks.values()))
    if check.required:
        raise ArtifactError(failure_message(what + (f" ({best.method})" if best.method else ""), check, job.precision))
    log(f"WARNING: {job.dirname} does NOT hold on aarch64: {failure_message(what, check, job.precision)}")
    return best, check, SMALLEST_HERE


def _fastest_good(
    candidates: list[Candidate], err: Callable[[Candidate], float], precision: str, fastest: str, smallest: str
) -> tuple[Candidate, str]:
    """The fastest candidate (batch-1 call here) among those at err <= INT8_GOAL, else the smallest err;
    with the words of the rule that applied (`fastest` or `smallest`)."""
    good = [c for c in candidates if precision == "fp32" or err(c) <= INT8_GOAL]
    if not good:
        return min(candidates, key=err), smallest
    return min(good, key=lambda c: (c.latency_ms if c.latency_ms is not None else float("inf"), err(c))), fastest
