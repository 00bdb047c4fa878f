"""Arm Ethos-U NPUs: compile a full-int8 TFLite model with Vela (`ethos-u-vela`, the `mcu` extra) and read its report.

Vela rewrites the model: the operators it can place on the NPU become one `ethos-u` custom operator
(a command stream); the rest stay TFLite operators for the Cortex-M CPU beside it. Its estimates
(cycles, inference time, SRAM and flash use) come from its performance model of the chosen system
configuration (Vela's defaults per accelerator, recorded in the report): no hardware is involved.
The `ethos-u` operator itself runs only on the NPU or Arm's Corstone virtual platform (FVP), so the
numbers of an Ethos-U artifact are verified on the pre-Vela full-int8 model in TFLite Micro.

ai_edge_litert is imported inside the functions: an optional extra that may be missing.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from distilts.errors import DistiltsError, require

# matrix products: MACs per output element = the reduced dimension
_MAC_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL", "CONV_2D", "DEPTHWISE_CONV_2D")


class VelaError(DistiltsError):
    """Vela could not compile the model."""


def version() -> str:
    return f"ethos-u-vela {metadata.version('ethos-u-vela')}"


def model_macs(model: bytes) -> dict[str, int]:
    """MACs per matrix-product operator of a TFLite model ({'FULLY_CONNECTED#1': n, ...}, others 0)."""
    from ai_edge_litert import interpreter as lite

    it = lite.Interpreter(model_content=model)
    shapes = {t["index"]: [int(v) for v in t["shape"]] for t in it.get_tensor_details()}
    out: dict[str, int] = {}
    for op in it._get_ops_details():
        name = op["op_name"]
        if name not in _MAC_OPS:
            continue
        y = int(np.prod(shapes[op["outputs"][0]]))
        w = shapes[op["inputs"][1]]
        k = {
            "FULLY_CONNECTED": w[-1],
            "BATCH_MATMUL": shapes[op["inputs"][0]][-1],
            "CONV_2D": int(np.prod(w[1:])),
            "DEPTHWISE_CONV_2D": int(np.prod(w[1:3])),
        }[name]
        out[f"{name}#{op['index']}"] = y * int(k)
    return out


def compile_model(src: Path, accelerator: str, out_dir: Path) -> dict:
    """Run Vela on `src` for `accelerator` (e.g. ethos-u55-128) into `out_dir`; returns the parsed report.

    Report: npu_operators / cpu_operators (names), macs_total (the model's), macs_npu (Vela's count on
    the NPU), macs_npu_share, cycles (npu, total), inference_time_ms, inferences_per_second, sram_bytes,
    flash_bytes (off-chip flash or DRAM holding the weights), system_config, memory_mode, clock_hz.
    """
    require("ethosu.vela", "mcu", "Ethos-U compilation (Vela)")
    out_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-c",
        "from ethosu.vela.vela import main; raise SystemExit(main())",
        str(src),
        "--accelerator-config",
        accelerator,
        "--output-dir",
        str(out_dir),
        "--show-cpu-operations",
    ]
    res = subprocess.run(argv, capture_output=True, text=True)
    if res.returncode != 0:
        raise VelaError(f"Vela ({version()}) failed for {accelerator}: {(res.stderr or res.stdout).strip()[-800:]}")
    text = res.stdout
    (out_dir / "vela-report.txt").write_text(text + res.stderr)
    [summary] = list(out_dir.glob(f"{src.stem}_summary_*.csv"))
    row = next(csv.DictReader(summary.open()))
    npu = re.findall(r"^\s+NPU: (\w+) = ", text, re.M)
    cpu = re.findall(r"^\s+CPU: (\w+) = ", text, re.M)
    macs = model_macs(src.read_bytes())
    total = sum(macs.values())
    npu_macs = int(float(row["nn_macs"]))
    memory = {
        "sram_bytes": int(float(row["sram_memory_used"]) * 1024),
        "flash_bytes": int(
            float(row["off_chip_flash_memory_used"]) * 1024 + float(row["on_chip_flash_memory_used"]) * 1024
        ),
        "dram_bytes": int(float(row["dram_memory_used"]) * 1024),
    }
    return {
        "accelerator": accelerator,
        "vela": version(),
        "system_config": row["system_config"],
        "memory_mode": row["memory_mode"],
        "clock_hz": float(row["core_clock"]),
        "npu_operators": npu,
        "cpu_operators": cpu,
        "macs_total": total,
        "macs_npu": npu_macs,
        "macs_npu_share": (npu_macs / total) if total else 1.0,
        "cycles_npu": int(float(row["cycles_npu"])),
        "cycles_total": int(float(row["cycles_total"])),
        "inference_time_ms": float(row["inference_time"]) * 1e3,
        "inferences_per_second": float(row["inferences_per_second"]),
        **memory,
        "files": {"model": f"{src.stem}_vela.tflite", "summary": summary.name, "report": "vela-report.txt"},
    }
