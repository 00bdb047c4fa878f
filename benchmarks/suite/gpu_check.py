#!/usr/bin/env python
"""GPU check (run by scripts/gpu-check.sh): real-size TimeMoE-50M (the published config, RANDOM
weights: only cost is measured) on one GPU, written as one JSON record.

  1. teacher throughput (series/s, windows/s at D variates) of the cache fill's teacher call,
     `TimeMoETeacher.predict(x [B, L, D], H, hidden=True)`, in fp32 and in bf16 autocast, at the
     teacher's default inner batch (32 series per model call, what `distilts teach` uses) and a large one
  2. `fill_teacher_cache` end to end (fp32, as `distilts teach --hidden` runs): seconds, bytes
  3. one distill epoch (DLinear + KD + FTA) with AMP bf16 on that cache, and the same epoch with
     `--teacher-hidden online` (teacher run on every batch): the "store vs recompute" trade-off

    scripts/gpu-check.sh                       # on a GPU, ~5 minutes
    python -m benchmarks run gpu_check --preset full
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks.support.benchlib import ROOT, git_commit, machine_info

# the published config: shared/ inside the checkout (device machines), else beside it
CONFIG = next((d / "teacher-configs" / "timemoe-50m.json" for d in (ROOT / "shared", ROOT.parent / "shared")
               if (d / "teacher-configs" / "timemoe-50m.json").is_file()),
              ROOT.parent / "shared" / "teacher-configs" / "timemoe-50m.json")


def official_config(path: Path) -> tuple[dict, str]:
    from distilts.teachers.timemoe import OFFICIAL_50M_CONFIG

    if path.is_file():
        cfg = json.loads(path.read_text())
        return cfg, str(path)
    return dict(OFFICIAL_50M_CONFIG), ("distilts.teachers.timemoe.OFFICIAL_50M_CONFIG "
                                       "(equal to the published config.json)")


def synthetic_dataset(rows: int, work: Path):
    """The built-in synthetic series (4 variates, hourly) at `rows` rows, loaded as a user's file."""
    from distilts.data import load_dataset
    from distilts.data.synthetic import synthetic_series

    s = synthetic_series(n_rows=rows)
    csv = work / "series.csv"
    csv.write_text("date," + ",".join(s.columns) + "\n" + "".join(
        f"{d},{','.join(f'{v:.5f}' for v in r)}\n" for d, r in zip(s.dates.astype(str), s.values)))
    return load_dataset(str(csv))


def timed(fn: Callable[[], Any], sync: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up (kernels, allocator)
    sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - t0) / repeats


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "runs" / "gpu-check" / "gpu-check.json")
    p.add_argument("--config", type=Path, default=CONFIG)
    p.add_argument("--lookback", type=int, default=512)
    p.add_argument("--horizon", type=int, default=96)
    p.add_argument("--variates", type=int, default=7)
    p.add_argument("--windows", type=int, default=64, help="windows per timed teacher call (one cache chunk)")
    p.add_argument("--big-batch", type=int, default=512, help="the large inner teacher batch to compare")
    p.add_argument("--rows", type=int, default=8760, help="rows of the synthetic series for the fill and the epoch")
    p.add_argument("--stride", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="small shapes (the CPU dry run)")
    a = p.parse_args(argv)
    if a.quick:
        a.lookback, a.horizon, a.windows, a.big_batch, a.rows, a.stride, a.repeats = 96, 24, 4, 64, 1200, 48, 1

    import torch

    from distilts.cache.entry import fill_teacher_cache
    from distilts.distill.online_hidden import OnlineHidden
    from distilts.students import build_student
    from distilts.teachers import timemoe
    from distilts.distill.config import TrainConfig
    from distilts.distill.trainer import TrainData, train

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    record: dict[str, Any] = {"benchmark": "gpu-check", "machine": machine_info(), "commit": git_commit(),
                              "device": torch.cuda.get_device_name(0) if cuda else "cpu (fallback: no CUDA)",
                              "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()},
                              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    a.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        tmp = a.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(tmp, a.out)

    cfg, source = official_config(a.config)
    record["teacher"] = {"config": source, "hidden_size": cfg["hidden_size"], "layers": cfg["num_hidden_layers"],
                         "params": timemoe.param_count(cfg), "weights": "random (cost only)"}
    work = Path(tempfile.mkdtemp(prefix="distilts-gpu-check-"))
    t0 = time.perf_counter()
    ckpt = timemoe.save_random_checkpoint(work / "timemoe-50m", base_config=cfg, tiny=False, seed=0)
    record["teacher"]["build_s"] = round(time.perf_counter() - t0, 1)
    save()

    # 1. teacher throughput
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.windows, a.lookback, a.variates)).astype(np.float32)
    series = a.windows * a.variates
    rows = []
    for inner in (32, a.big_batch):
        teacher = timemoe.load(str(ckpt), device, batch_size=inner)
        for precision in ("fp32", "bf16"):
            def call() -> None:
                with torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16"):
                    teacher.predict(x, a.horizon, hidden=True)

            if cuda:
                torch.cuda.reset_peak_memory_stats()
            try:
                s = timed(call, sync, a.repeats)
                row = {"inner_batch": inner, "precision": precision, "s_per_chunk": round(s, 4),
                       "series_per_s": round(series / s, 1), "windows_per_s": round(a.windows / s, 2)}
            except RuntimeError as exc:  # e.g. out of memory at the big batch
                row = {"inner_batch": inner, "precision": precision, "error": str(exc).splitlines()[0][:300]}
            if cuda:
                row["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
            rows.append(row)
            print(json.dumps(row), flush=True)
            record["teacher_throughput"] = rows
            save()
        del teacher
        if cuda:
            torch.cuda.empty_cache()

    # 2. the cache fill end to end (the code path of `distilts teach --hidden`, fp32)
    ds = synthetic_dataset(a.rows, work)
    t0 = time.perf_counter()
    cache = fill_teacher_cache(ds, "timemoe", str(ckpt), a.lookback, a.horizon, parts=("train",), stride=a.stride,
                                 hidden=True, hidden_tokens=16, cache_dir=work / "cache", batch_size=64, device=device,
                                 progress=False)
    sync()
    fill_s = time.perf_counter() - t0
    n_train = len(cache.forecasts("train"))
    record["cache_fill"] = {"part": "train", "windows": n_train, "variates": len(ds.columns), "stride": a.stride,
                            "seconds": round(fill_s, 2), "windows_per_s": round(n_train / fill_s, 2),
                            "bytes": cache.size_bytes, "precision": "fp32 (teachers load in float32)"}
    print(json.dumps(record["cache_fill"]), flush=True)
    save()

    # 3. one distill epoch with AMP (bf16), hidden states from the cache vs computed online
    train_w = ds.windows("train", a.lookback, a.horizon, a.stride)
    val_w = ds.windows("val", a.lookback, a.horizon, max(a.stride, 8))
    epochs = {}
    for mode in ("cache", "online"):
        hidden = cache.hidden("train") if mode == "cache" else OnlineHidden(
            timemoe.load(str(ckpt), device, batch_size=a.big_batch), train_w, 16)
        data = TrainData(train_w, val_w, cache.forecasts("train"), hidden)
        torch.manual_seed(0)
        model = build_student("dlinear", a.lookback, a.horizon, len(ds.columns))
        # online: the teacher runs inside the trainer's autocast, so in bf16 too
        result = train(model, data, TrainConfig(epochs=1, batch_size=32, device=device, amp="bf16"),
                       work / f"run-{mode}", progress=False)
        sync()
        epochs[mode] = {"seconds": round(result.wall_s, 2), "train_windows": len(train_w),
                        "val_mse": result.best_val_mse, "train_fta": result.history[0]["train_fta"]}
        print(mode, json.dumps(epochs[mode]), flush=True)
        record["distill_epoch_amp_bf16"] = epochs
        save()
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    save()
    print(f"wrote {a.out}")
    return record


# --- the harness entry (benchmarks/harness.py): the presets as this module's options -----------------------
PRESETS: dict[str, dict] = {"quick": {"quick": True}, "full": {}}


def run(ctx, **params):
    import torch

    from benchmarks.harness import BenchmarkError
    from benchmarks.support import script

    if not params.get("quick") and not torch.cuda.is_available():
        raise BenchmarkError("no CUDA device: the full gpu_check runs on a GPU machine (scripts/gpu-check.sh); "
                             "--preset quick is its CPU dry run")
    return script.run_main(ctx, sys.modules[__name__], params, takes_argv=True)

if __name__ == "__main__":
    main()
