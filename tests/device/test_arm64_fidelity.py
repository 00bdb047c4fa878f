#!/usr/bin/env python
"""Edge fidelity: do artifacts forecast on (emulated) arm64 what they forecast here?

Each artifact is loaded here and in ONE emulated arm64 process (scripts/arm64-device.sh) with
`Forecaster.load` (checksums + the golden self-check of that CPU's ISA), then forecasts the same raw
test windows. Prints the largest difference in normalized units (|x86 - arm64| / scaler std, i.e. a
fraction of each variate's scale) per artifact and writes JSON.

    python benchmarks/arm64_fidelity.py RUN/artifacts/* --data ../shared/data/ETTh1.csv
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("artifacts", nargs="+")
    ap.add_argument("--data", required=True, help="the series the students were trained on")
    ap.add_argument("--windows", type=int, default=64, help="test windows forecast on both (default 64)")
    ap.add_argument("--json", default="benchmarks/results/arm64_fidelity.json")
    a = ap.parse_args()

    from distilts.device import arm64
    from distilts.compile.data import load_compile_data
    from distilts.students.io import read_student_config
    from distilts.runtime import Forecaster

    dev = arm64.find_device(arm64.BACKENDS) or arm64.build(arm64.BACKENDS)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tasks, here = [], []
        for i, art in enumerate(map(Path, a.artifacts)):
            fc = Forecaster.load(art)
            config = read_student_config(Path(fc.manifest.student["dir"]))
            x = load_compile_data(config, a.data).windows("test", a.windows)
            np.save(f"{d}/x{i}.npy", x)
            here.append((art, fc, fc.predict(x)))
            tasks.append({"id": str(art), "kind": "artifact", "dir": str(art), "x": f"{d}/x{i}.npy",
                          "out": f"{d}/y{i}.npy"})
        res = arm64.run_tasks(dev, tasks, list(arm64.BACKENDS))
        for (art, fc, y86), t in zip(here, tasks):
            r = res["tasks"][t["id"]]
            man = fc.manifest.raw
            row = {"artifact": f"{man['student']['name']}/{art.name}",
                   "method": (man.get("quantization") or {}).get("method") or "fp32",
                   "self_check_arm64": "passed (golden: " + str(r.get("golden_isa")) + ")" if r["ok"] else r["error"]}
            if r["ok"]:
                diff = np.abs(np.load(t["out"]).astype(np.float64) - y86) / fc.manifest.scaler_std
                row["max_abs_diff_normalized"] = float(diff.max())
                row["verified_rel_mse"] = {k: v.get("rel_mse") for k, v in man.get("architectures", {}).items()}
            rows.append(row)
    print(f"x86_64 vs emulated aarch64, {a.windows} test windows; max |x86 - arm64| / std")
    print("| artifact | int8 method | self-check on arm64 | max abs diff | rel-MSE vs student x86_64 / aarch64 |")
    print("|---|---|---|---|---|")
    for r in rows:
        rm = r.get("verified_rel_mse", {})
        print(f"| {r['artifact']} | {r['method']} | {r['self_check_arm64']} | "
              f"{r.get('max_abs_diff_normalized', float('nan')):.1e} | "
              f"{rm.get('x86_64', float('nan')):.1e} / {rm.get('aarch64') or float('nan'):.1e} |")
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps({"windows": a.windows, "device": dev.describe(), "rows": rows}, indent=2))
    return 0 if all("max_abs_diff_normalized" in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
