"""Intervals after a shift: 80% coverage of a quantile DLinear's cortex-m7 artifact, frozen vs online-calibrated.

Trains a quantile DLinear (levels 0.1, 0.5, 0.9) on ETTh1, compiles it for `cortex-m7` (full-int8 TFLite
Micro; the Linux runtime runs the same file), and forecasts from every origin of the last `origins` steps
of the series. From origin `shift_at` on, the series shifts: its level by `level_shift` and its noise by
added Gaussian noise of `noise_sd` (both in units of each variate's training std). The interval
[q0.1, q0.9] is scored frozen (as compiled) and online-calibrated (distilts.runtime.calibration, the
conformal quantile tracker the C artifact also carries, lr `lr`; each forecast updated H steps late,
when its whole horizon is observed: `replay`). Coverage over all variates and steps, per phase: before
the shift, the first `recovery` origins after it, and after them. The goal (issue 29): online back within
5 points of 80% after `recovery` origins while the frozen interval stays off.

    python -m benchmarks run interval_drift --preset full
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from benchmarks.harness import Context, Record

NOMINAL = 0.8
PHASES = ("before", "adapting", "after")


def shifted_series(raw: np.ndarray, std: np.ndarray, shift_row: int, level: float, noise: float) -> np.ndarray:
    """`raw` [T, D] with the level moved by `level` std and N(0, (noise std)^2) added from row `shift_row` on."""
    out = raw.astype(np.float64).copy()
    rng = np.random.default_rng(0)
    tail = out[shift_row:]
    tail += level * std + rng.normal(size=tail.shape) * noise * std
    return out.astype(np.float32)


def coverage(q: np.ndarray, y: np.ndarray) -> float:
    """Share of `y` [N, H, D] inside [first level, last level] of `q` [N, H, D, Q]."""
    return float(np.mean((y >= q[..., 0]) & (y <= q[..., -1])))


def run(ctx: Context, lookback: int, horizon: int, epochs: int, origins: int, shift_at: int, recovery: int,
        level_shift: float, noise_sd: float, lr: float) -> Iterator[Record]:
    from distilts import Forecaster
    from distilts.data import load_dataset
    from distilts.runtime.calibration import replay

    student = ctx.fixtures.student("dlinear", lookback=lookback, horizon=horizon, epochs=epochs,
                                   extra=("--quantiles", "0.1,0.5,0.9"))
    fc = Forecaster.load(ctx.fixtures.artifact(student, "cortex-m7"), threads=1)
    raw = load_dataset(str(ctx.fixtures.data("etth1"))).series.values[-(origins + lookback + horizon):]
    std = fc.manifest.scaler_std
    series = shifted_series(raw, std, lookback + shift_at, level_shift, noise_sd)
    starts = np.arange(origins)
    x = np.stack([series[s: s + lookback] for s in starts])
    y = np.stack([series[s + lookback: s + lookback + horizon] for s in starts])  # [N, H, D]
    frozen = np.concatenate([fc.predict_quantiles(x[i: i + 256]) for i in range(0, origins, 256)])
    online = replay(fc.calibrator(lr=lr), frozen, y)
    phases = {"before": slice(horizon, shift_at), "adapting": slice(shift_at, shift_at + recovery),
              "after": slice(shift_at + recovery, origins)}
    params = {"lookback": lookback, "horizon": horizon, "origins": origins, "shift_at": shift_at,
              "recovery": recovery, "level_shift": level_shift, "noise_sd": noise_sd, "lr": lr,
              "artifact": "cortex-m7 (tflm full int8)"}
    for name, q in (("frozen", frozen), ("online", online)):
        for phase, sl in phases.items():
            cov = coverage(q[sl], y[sl])
            ctx.log(f"{name} {phase}: coverage {cov:.3f}")
            yield ctx.record(f"coverage_{phase}", cov, "share", {**params, "interval": name})
    off = abs(coverage(online[phases["after"]], y[phases["after"]]) - NOMINAL)
    yield ctx.record("online_within_5_points_after_recovery", bool(off <= 0.05), "bool", params,
                     note=f"|online coverage after {recovery} origins - 0.8| = {off:.3f}")


def report(records: list[dict]) -> str:
    rows: dict[str, dict] = {}
    verdict = ""
    for r in records:
        if r["metric"].startswith("coverage_"):
            rows.setdefault(r["params"]["interval"], {})[r["metric"].removeprefix("coverage_")] = r["value"]
        else:
            verdict = f"{'yes' if r['value'] else 'NO'} ({r['note']})"
    p = records[0]["params"]
    lines = [f"Quantile DLinear L={p['lookback']}, H={p['horizon']} on ETTh1, `cortex-m7` artifact; {p['origins']} "
             f"origins, shift at origin {p['shift_at']} (level +{p['level_shift']} std, added noise "
             f"{p['noise_sd']} std), online lr {p['lr']}; 80% interval coverage per phase (adapting: the first "
             f"{p['recovery']} origins after the shift).", "",
             "| interval | before | adapting | after |", "|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{row.get(ph, float('nan')):.3f}" for ph in PHASES) + " |")
    lines += ["", f"Online within 5 points of 80% after the adapting phase: {verdict}"]
    return "\n".join(lines) + "\n"


PRESETS: dict[str, dict] = {
    "quick": {"lookback": 96, "horizon": 24, "epochs": 1, "origins": 1200, "shift_at": 400, "recovery": 300,
              "level_shift": 1.0, "noise_sd": 1.0, "lr": 0.05},
    "full": {"lookback": 512, "horizon": 96, "epochs": 3, "origins": 2500, "shift_at": 800, "recovery": 400,
             "level_shift": 1.0, "noise_sd": 1.0, "lr": 0.05},
}
