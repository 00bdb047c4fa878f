"""The cost model: figures of a candidate BEFORE training, to reject what cannot fit.

- flash: the bytes of the weights the artifact will hold (int8: 1 byte, fp32: 4), counted on the
  network the compile passes produce (a DLinear folds into one `[L, H]` matrix per variate group);
- RAM (microcontrollers): what an arena planner must hold at least: the largest input + output of one
  layer at batch 1, in bytes of the precision (TFLite Micro's planner reuses the rest);
- latency (CPUs): the untrained network exported to ONNX fp32 at batch 1 and timed on this CPU with
  the shared timing module (weights do not change the time; int8 is allowed to be up to
  `INT8_SPEEDUP` faster than this figure before a candidate is rejected).
The compiled artifact's real figures decide afterwards (distilts.choose.trial).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from distilts.choose.budget import Budget
from distilts.choose.space import Candidate
from distilts.students.registry import build_student

INT8_SPEEDUP = 3.0


def weight_count(model: nn.Module) -> int:
    """Weights the artifact holds: the folded matrix for a model the fold-linear pass applies to."""
    from distilts.compile.passes import fold_linear

    if fold_linear.applies(model):
        m: Any = model
        weight = getattr(m.seasonal, "weight", None)
        groups = int(m.n_variates) if weight is not None and weight.dim() == 3 else 1  # individual: one per variate
        return groups * (int(m.lookback) * int(m.horizon) + int(m.horizon))
    return int(sum(p.numel() for p in model.parameters()))


def arena_floor_bytes(model: nn.Module, lookback: int, n_variates: int, itemsize: int) -> int:
    """The largest (input + output) of one leaf module at batch 1, in bytes of `itemsize`."""
    peak = [lookback * n_variates]

    def hook(_m, inputs, output):
        n_in = sum(t.numel() for t in inputs if isinstance(t, torch.Tensor))
        n_out = output.numel() if isinstance(output, torch.Tensor) else 0
        peak.append(n_in + n_out)

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, lookback, n_variates))
    finally:
        for h in handles:
            h.remove()
    return int(max(peak) * itemsize)


def onnx_latency_ms(model: nn.Module, lookback: int, n_variates: int) -> float:
    """Median ms per batch-1 forecast of the network exported to ONNX fp32, one thread."""
    import onnxruntime as ort

    from distilts.profile import timing
    from distilts.quiet import quiet

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.onnx"
        x = torch.zeros(1, lookback, n_variates)
        with quiet():
            torch.onnx.export(model.eval(), (x,), str(path), input_names=["x"], output_names=["y"], dynamo=True)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feed = {"x": np.zeros((1, lookback, n_variates), np.float32)}
        return timing.per_call(lambda: sess.run(None, feed), warmup=5, iters=100, budget_s=2.0).median_ms


def estimate(candidate: Candidate, horizon: int, n_variates: int, budget: Budget, mcu: bool) -> dict[str, Any]:
    """Pre-training figures of `candidate` and `rejected` (the reason) when one already exceeds `budget`."""
    model = build_student(candidate.student, candidate.lookback, horizon, n_variates, **candidate.kwargs)
    itemsize = 1 if candidate.precision == "int8" else 4
    figures: dict[str, Any] = {
        "params": int(sum(p.numel() for p in model.parameters())),
        "flash_kib": weight_count(model) * itemsize / 1024,
    }
    if mcu:
        figures["ram_kib"] = arena_floor_bytes(model, candidate.lookback, n_variates, itemsize) / 1024
    elif budget.latency_ms is not None:
        fp32_ms = onnx_latency_ms(model, candidate.lookback, n_variates)
        figures["latency_ms_fp32_onnx"] = fp32_ms
        figures["latency_ms"] = fp32_ms / (INT8_SPEEDUP if candidate.precision == "int8" else 1.0)
    over = budget.violations(figures)
    figures["rejected"] = f"estimated before training: {'; '.join(over)}" if over else None
    return figures
