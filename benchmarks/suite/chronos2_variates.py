#!/usr/bin/env python
"""Chronos-2 teacher cost: the variates of a window forecast jointly vs one by one.

Builds Chronos-2 at its released size (benchmarks/teacher-configs/chronos-2.json) with RANDOM
weights (cost only; a checkpoint directory can be given instead) and times `predict(x, H,
hidden=True)` on evenly spaced ETTh1 test windows in both modes (interleaved), one thread; the
minimum of --reps calls per mode is the figure (robust to other jobs on the machine).

    python -m benchmarks run chronos2_variates --preset full
"""

from __future__ import annotations

import argparse
import sys
import json
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1]  # benchmarks/


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(HERE.parents[1] / "shared" / "data" / "ETTh1.csv"))
    p.add_argument("--checkpoint", default=None, help="Chronos-2 directory (default: real-size random weights)")
    p.add_argument("--lookback", type=int, default=512)
    p.add_argument("--horizon", type=int, default=96)
    p.add_argument("--windows", type=int, default=16)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--out-json", default=None)
    args = p.parse_args(argv)

    import torch

    from distilts.data import load_dataset
    from distilts.teachers import chronos2

    torch.set_num_threads(1)
    ckpt = args.checkpoint
    if ckpt is None:
        ckpt = str(Path(tempfile.mkdtemp(prefix="chronos-2-")) / "random")
        cfg = json.loads((HERE / "teacher-configs" / "chronos-2.json").read_text())
        chronos2.save_random_checkpoint(ckpt, tiny=False, config_overrides=cfg)
    windows = load_dataset(args.data).windows("test", args.lookback, args.horizon, 1)
    x, _ = windows.batch(np.linspace(0, len(windows) - 1, args.windows).astype(int))
    teachers = {"joint": chronos2.load(ckpt, "cpu", multivariate=True),
                "one-by-one": chronos2.load(ckpt, "cpu", multivariate=False)}
    times: dict[str, list[float]] = {mode: [] for mode in teachers}
    for mode, teacher in teachers.items():
        teacher.predict(x[:2], args.horizon, hidden=True)  # warm-up
    for _ in range(args.reps):  # modes interleaved, so a change in machine load hits both
        for mode, teacher in teachers.items():
            t0 = time.perf_counter()
            teacher.predict(x, args.horizon, hidden=True)
            times[mode].append(time.perf_counter() - t0)
    best = {mode: min(t) for mode, t in times.items()}
    record = {"benchmark": "chronos2_variates", "windows": int(x.shape[0]), "variates": int(x.shape[2]),
              "lookback": args.lookback, "horizon": args.horizon, "seconds": times, "min_s": best,
              "joint_over_one_by_one": best["joint"] / best["one-by-one"], "checkpoint": ckpt,
              "loadavg": Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None}
    print(f"{'mode':<12} {'min s':>8} {'median s':>9}  ({record['windows']} windows x {record['variates']} variates)")
    for mode, t in times.items():
        print(f"{mode:<12} {best[mode]:8.2f} {float(np.median(t)):9.2f}")
    print(f"joint / one-by-one (min) = {record['joint_over_one_by_one']:.2f}")
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(record, indent=2) + "\n")
    return record


# --- the harness entry (benchmarks/harness.py): the presets as this module's options -----------------------
PRESETS: dict[str, dict] = {"quick": {"lookback": 64, "horizon": 16, "windows": 2, "reps": 1}, "full": {}}


def run(ctx, **params):
    from benchmarks.support import script

    return script.run_main(ctx, sys.modules[__name__], params, takes_argv=True)

if __name__ == "__main__":
    main()
