"""Pass `fold-linear`: a DLinear student (+ the scaler) folded into one MatMul + Add per variate.

DLinear is affine in its (normalized) input, variate by variate: the moving average with replicate
padding, the seasonal/trend split and both linear maps are all linear over the lookback, so
`y_d = K_d^T z_d + c_d` with `K_d [L, H]`. `K` and `c` are read off the student's own linear core in
float64 by evaluating it on the unit basis (so the fold follows whatever decomposition the module
implements, and is exact up to float64 rounding), then cast to float32 once.

The scaler around the student, `z = (x - mu) / sd` and `out = y * sd + mu`, is folded as well:
  no RevIN:   out_d = K_d^T x_d + (c_d * sd_d + mu_d - mu_d * 1^T K_d)     (one MatMul + Add)
  with RevIN (per-window normalization, kept as its own cheap ops: mean, variance, sqrt):
    m, s = mean and sqrt(var + eps * sd^2) of the raw window (equal to RevIN's statistics of z,
    mapped back), out_d = g_d K_d^T (x_d - m_d) + s_d c'_d + m_d, where RevIN's affine weight `w`
    and bias `b` are folded into `g = w / (w + eps^2)` and `c' = (c + b 1^T K - b) / (w + eps^2)`.
For int8 jobs the scaler stays outside (its own float submodules, so
quantizers do not quantize raw values of mixed scales) and only the student is replaced.
Shared DLinear keeps one `[L, H]` weight (per-variate gains and biases ride on it); `individual`
keeps one per variate.

Quantile DLinear: the affine part gives `H + rank` columns (median and gap features), folded the
same way into one MatMul + Add, then the non-crossing head (students/quantile.py) follows. With the
scaler folded the feature columns take `sd` but not `+ mu` (`f_raw = sd f`), and the head's bias is
scaled per variate, which |.| allows: `median_raw + sd |f W + b| A = median_raw + |f_raw W + sd b| A`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from distilts.compile.wrapper import RawScaleForecaster
from distilts.students.dlinear import DLinear

NAME = "fold-linear"


class FoldedLinear(nn.Module):
    """Raw (or normalized) `[B, L, D]` -> `[B, H, D]`: one matmul + bias, optional per-window normalization.

    weight: `[L, H]` (shared over variates) or `[D, L, H]` (one per variate); bias `[H, D]`;
    gain `[D]` or None (shared weight with per-variate RevIN gains); revin_eps `[D]` or None (no
    per-window normalization).
    """

    def __init__(
        self,
        weight: np.ndarray,
        bias: np.ndarray,
        gain: np.ndarray | None = None,
        revin_eps: np.ndarray | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.shared = weight.ndim == 2
        # stored as nn.Linear would ([H, L]) for the shared weight, so exporters emit MatMul(x, W^T) and
        # weight quantizers see an ordinary linear layer
        w = weight.T if self.shared else weight
        self.weight: torch.Tensor
        self.bias: torch.Tensor
        self.gain: torch.Tensor | None
        self.revin_eps: torch.Tensor | None
        self.register_buffer("weight", torch.tensor(np.ascontiguousarray(w), dtype=dtype))
        self.register_buffer("bias", torch.tensor(np.ascontiguousarray(bias), dtype=dtype))  # [H, D]
        self.register_buffer("gain", None if gain is None else torch.tensor(gain[:, None], dtype=dtype))  # [D, 1]
        self.revin = revin_eps is not None
        self.register_buffer("revin_eps", None if revin_eps is None else torch.tensor(revin_eps, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.revin:
            m = x.mean(dim=1, keepdim=True)  # [B, 1, D]
            x = x - m
            assert self.revin_eps is not None
            s = torch.sqrt((x * x).mean(dim=1, keepdim=True) + self.revin_eps)
        xt = x.transpose(1, 2)  # [B, D, L]
        if self.shared:
            y = nn.functional.linear(xt, self.weight)  # [B, D, H]
        else:
            y = torch.bmm(xt.transpose(0, 1), self.weight).transpose(0, 1)  # [D, B, H] -> [B, D, H]
        if self.gain is not None:
            y = y * self.gain
        y = y.transpose(1, 2)  # [B, H, D]
        if self.revin:
            return y + s * self.bias + m
        return y + self.bias


class FoldedQuantileLinear(nn.Module):
    """Raw (or normalized) `[B, L, D]` -> `[B, D, H, Q]` (the artifact layout): one matmul + bias giving
    the median and the gap features `[B, D, H + rank]`, then the non-crossing quantile head (already
    scaled to raw values)."""

    artifact_layout = True  # its output is [B, D, H, Q] already (compile/wrapper.py)

    def __init__(
        self, weight: np.ndarray, bias: np.ndarray, head: nn.Module, horizon: int, dtype: torch.dtype = torch.float32
    ) -> None:
        super().__init__()
        self.shared = weight.ndim == 2
        w = weight.T if self.shared else weight  # shared: [H + rank, L] (as nn.Linear); per variate: [D, L, H + rank]
        self.weight: torch.Tensor
        self.bias: torch.Tensor
        self.register_buffer("weight", torch.tensor(np.ascontiguousarray(w), dtype=dtype))
        self.register_buffer("bias", torch.tensor(np.ascontiguousarray(bias.T), dtype=dtype))  # [D, H + rank]
        self.head: Any = head.to(dtype)
        self.horizon = horizon

    @property
    def levels(self) -> tuple[float, ...]:
        return tuple(self.head.levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xt = x.transpose(1, 2)  # [B, D, L]
        if self.shared:
            y = nn.functional.linear(xt, self.weight)  # [B, D, H + rank]
        else:
            y = torch.bmm(xt.transpose(0, 1), self.weight).transpose(0, 1)  # [D, B, H + rank] -> [B, D, H + rank]
        y = y + self.bias
        return self.head(y[..., : self.horizon], y[..., self.horizon :])  # [B, D, H, Q]


def apply(module: nn.Module, precision: str) -> tuple[nn.Module, dict] | None:
    """The fold of a wrapped DLinear in the module's dtype and the pass record; None for any other module.

    fp32: student and scaler folded together; int8: only the student, behind the wrapper's scaler.
    """
    if not isinstance(module, RawScaleForecaster) or not applies(module.student):
        return None
    if precision == "fp32":
        folded: nn.Module = fold(module.student, module.mean, module.std, dtype=module.dtype)
        scope = "student and scaler"
    else:
        folded = module.rewrap(fold(module.student, dtype=module.dtype))
        scope = "student (scaler kept as float ops for the quantizer)"
    shared = getattr(folded, "student", folded).shared
    return folded, {
        "name": NAME,
        "stage": "module",
        "scope": scope,
        "description": "DLinear's moving average and both linear maps (+ RevIN affine"
        + (", + the scaler" if precision == "fp32" else "")
        + ") folded into one "
        "MatMul + Add per variate, computed in float64"
        + (
            " (H + rank columns: median and gap features, then the non-crossing quantile head)"
            if isinstance(getattr(folded, "student", folded), FoldedQuantileLinear)
            else ""
        ),
        "weights": "shared [L, H]" if shared else "per variate [D, L, H]",
        "constants": int(sum(b.numel() for b in folded.buffers())),
    }


def applies(student: nn.Module) -> bool:
    """Whether `student` is a DLinear (the linear student this pass folds)."""
    return isinstance(student, DLinear)


def _linear_core(student: Any) -> tuple[np.ndarray, np.ndarray]:
    """(K [D, L, H], c [H, D]) of the student without RevIN, in float64: y_d = K_d^T z_d + c_d."""
    core: Any = copy.deepcopy(student).to(torch.float64).eval()
    core.revin = None
    L, D = int(student.lookback), int(student.n_variates)
    basis = torch.zeros(L + 1, L, D, dtype=torch.float64)
    basis[torch.arange(1, L + 1), torch.arange(L)] = 1.0  # window 0: zeros; window j+1: unit step at time j
    with torch.no_grad():
        if getattr(core, "quantile_head", None) is not None:  # the affine part: median + gap features
            out = core.linear_core(basis).transpose(1, 2).numpy()  # [L + 1, H + rank, D]
        else:
            out = core(basis).numpy()  # [L + 1, H, D]
    c = out[0]
    k = (out[1:] - c[None]).transpose(2, 0, 1)  # [D, L, H]
    return k, c


def fold(
    student: Any,
    mean: Sequence[float] | np.ndarray | None = None,
    std: Sequence[float] | np.ndarray | None = None,
    dtype: torch.dtype = torch.float32,
) -> FoldedLinear | FoldedQuantileLinear:
    """The folded module of a DLinear `student`, with the scaler (`mean`, `std`) folded in when given."""
    k, c = _linear_core(student)  # [D, L, H], [H, D]
    D = k.shape[0]
    mu = np.zeros(D) if mean is None else np.asarray(mean, np.float64)
    sd = np.ones(D) if std is None else np.asarray(std, np.float64)
    colsum = k.sum(axis=1).T  # [H, D]: 1^T K_d
    revin = getattr(student, "revin", None)
    gain, eps = None, None
    head = getattr(student, "quantile_head", None)
    if head is not None:  # no RevIN with quantiles (DLinear refuses it)
        H = int(student.horizon)
        bias = c * sd - mu * colsum
        bias[:H] += mu  # the median columns are forecasts (+ mu); the gap features are differences (no mu)
        weight = k[0] if isinstance(student.seasonal, nn.Linear) else k
        return FoldedQuantileLinear(weight, bias, head.scaled(sd, dtype), H, dtype=dtype).eval()
    if revin is None:
        bias = c * sd + mu - mu * colsum
    else:
        w = revin.weight.detach().double().numpy() if revin.affine else np.ones(D)
        b = revin.bias.detach().double().numpy() if revin.affine else np.zeros(D)
        denom = w + (revin.eps * revin.eps if revin.affine else 0.0)
        g = w / denom
        bias = (c + b * colsum - b) / denom if revin.affine else c
        eps = float(revin.eps) * sd * sd
        gain = g
    shared = isinstance(student.seasonal, nn.Linear)  # individual DLinear: one map per variate
    if shared:
        weight = k[0]
        if gain is not None and np.all(gain == 1.0):
            gain = None
    else:
        weight = k * gain[:, None, None] if gain is not None else k
        gain = None
    return FoldedLinear(weight, bias, gain, eps, dtype=dtype).eval()
