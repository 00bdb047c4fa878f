"""Pass `fold-scaler`: drop the global scaler around a student that normalizes each window itself (RevIN).

With RevIN as the student's first and last step, the train-split scaler `z = (x - mu) / sd` around it
is redundant: RevIN's statistics of `z` are those of `x` mapped through the scaler, so
  RevIN(z) = (x - m_x) / sqrt(var_x + eps * sd^2)   and   out = F(...) * sqrt(var_x + eps * sd^2) + m_x,
exactly. The pass keeps the student and gives its RevIN a per-variate `eps * sd^2`; the scaler's four
elementwise ops over the raw input and output leave the graph. (DLinear goes through `fold-linear`.)
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from distilts.compile.wrapper import RawScaleForecaster
from distilts.students.revin import RevIN

NAME = "fold-scaler"


class RawRevIN(nn.Module):
    """RevIN on raw values that equals `revin` on scaler-normalized values (statistics eps * sd^2)."""

    def __init__(self, revin: Any, std: Sequence[float] | np.ndarray, dtype: torch.dtype) -> None:
        super().__init__()
        self.inner = revin
        self.affine = revin.affine
        self.eps_stats: torch.Tensor
        self.register_buffer(
            "eps_stats", torch.tensor(float(revin.eps) * np.asarray(std, np.float64) ** 2, dtype=dtype)
        )

    def normalize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean = x.mean(dim=1, keepdim=True)
        var = x.var(dim=1, keepdim=True, unbiased=False) + self.eps_stats
        inv = torch.rsqrt(var)  # as RevIN: RSQRT has an int8 kernel in TFLite Micro, SQRT does not
        z, std = (x - mean) * inv, var * inv
        if self.affine:
            z = z * self.inner.weight + self.inner.bias
        return z, mean, std

    def denormalize(self, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        return self.inner.denormalize(y, mean, std)


def apply(module: nn.Module, precision: str) -> tuple[nn.Module, dict] | None:
    """The wrapped student without its scaler (absorbed by its RevIN), in the module's dtype, and the
    pass record; None unless `module` is a wrapped student with RevIN."""
    if not isinstance(module, RawScaleForecaster) or not applies(module.student):
        return None
    return fold(module.student, module.std, dtype=module.dtype), {
        "name": NAME,
        "stage": "module",
        "scope": "scaler into the student's RevIN",
        "description": "the train-split scaler around a per-window-normalized (RevIN) student folded into "
        "RevIN's statistics (eps * std^2), exact",
    }


def applies(student: nn.Module) -> bool:
    """A point student with a RevIN (per-window normalization) of the project's own kind. (A quantile
    student keeps the wrapper: it also puts the output in the artifact layout, compile/wrapper.py.)"""
    return type(getattr(student, "revin", None)) is RevIN and getattr(student, "levels", None) is None


def fold(student: Any, std: Sequence[float] | np.ndarray, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A copy of `student` (in `dtype`) taking raw values: its RevIN absorbs the scaler."""
    out: Any = copy.deepcopy(student).to(dtype).eval()
    out.revin = RawRevIN(out.revin, std, dtype)
    return out
