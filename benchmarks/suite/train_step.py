"""CPU training step: each zoo student at its paper's ETTh1 size, under glibc's malloc and under jemalloc.

One Adam step (forward, MSE, backward, update) on a random batch shaped as the paper's ETTh1 run (the
lookback and batch of benchmarks/suite/zoo_etth1.py, 7 variates, H=96), timed per call by
`distilts.profile.timing.per_call` after warm-up steps, in a fresh process per allocator: the allocator is
chosen at process start (`LD_PRELOAD`), which is why `distilts distill` re-runs itself under jemalloc
(src/distilts/allocator.py). Rows without jemalloc installed are skipped with a note.

    python -m benchmarks run train_step --preset full
"""

from __future__ import annotations

import ctypes.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator

from benchmarks.harness import Context, Record
from benchmarks.suite.zoo_etth1 import HORIZON, ZOO

VARIATES = 7
WORKER = f"""
import json, sys, torch
from distilts.profile.timing import per_call
from distilts.students.registry import build_student, parse_option_values
name, lookback, batch, steps, opts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
torch.manual_seed(0)
model = build_student(name, lookback, {HORIZON}, {VARIATES}, **parse_option_values(name, opts)).train()
opt = torch.optim.Adam(model.parameters(), 1e-4)
x, y = torch.randn(batch, lookback, {VARIATES}), torch.randn(batch, {HORIZON}, {VARIATES})
def step():
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
t = per_call(step, warmup=3, iters=steps, budget_s=60.0, min_iters=min(steps, 5), threads=torch.get_num_threads())
print(json.dumps(t.summary()))
"""


def _flag(flags: list[str], name: str) -> str:
    return flags[flags.index(name) + 1]


def _options(flags: list[str]) -> list[str]:
    return [flags[i + 1] for i, f in enumerate(flags) if f == "-O"]


def run(ctx: Context, students: list[str], steps: int, batch: int | None) -> Iterator[Record]:
    jemalloc = ctypes.util.find_library("jemalloc")
    base = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_CONF")}
    allocators = {"glibc": base}
    if jemalloc:
        allocators["jemalloc"] = {**base, "LD_PRELOAD": jemalloc, "MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1"}
    else:
        ctx.log("jemalloc is not installed (apt-get install libjemalloc2): glibc rows only")
    for label in students:
        spec = ZOO[label]
        name = spec.get("student", label)
        size = batch or int(_flag(spec["flags"], "--batch-size"))
        medians = {}
        for alloc, env in allocators.items():
            cmd = [sys.executable, "-c", WORKER, name, str(spec["lookback"]), str(size), str(steps),
                   *_options(spec["flags"])]
            res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            stats = json.loads(res.stdout.strip().splitlines()[-1])
            medians[alloc] = stats["median_ms"]
            params = {"student": label, "lookback": spec["lookback"], "batch": size, "allocator": alloc}
            ctx.log(f"{label} {alloc}: {stats['median_ms']:.0f} ms a step (iqr {stats['iqr_rel']:.1%})")
            yield ctx.record("step_ms", stats["median_ms"], "ms", params, stats=stats)
        if "jemalloc" in medians:
            yield ctx.record("jemalloc_speedup", medians["glibc"] / medians["jemalloc"], "x",
                             {"student": label, "lookback": spec["lookback"], "batch": size})


PRESETS = {
    "quick": {"students": ["dlinear", "tsmixer"], "steps": 5, "batch": 8},
    "full": {"students": ["dlinear", "mlp", "itransformer", "nhits", "patchtst", "tide", "tsmixer"], "steps": 20,
             "batch": None},
}
