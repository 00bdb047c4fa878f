"""The non-crossing quantile head in a form full-int8 kernels cover (TFLite Micro, Ethos-U).

`students/quantile.py` writes the gaps as `|r|`, `r = f W + b`; ai-edge-quantizer has no int8 ABS
kernel, so the float ABS would stay in the graph. `|r| = relu(r) + relu(-r)`, and the sum folds into
the assembly matrix: with `A = [a0; A_g]` (row 0: the median's, then one row per gap),

    q = [median, relu(r), relu(-r)] @ [a0; A_g; A_g]

which is equal in exact arithmetic, for any weights, and uses only FULLY_CONNECTED/BATCH_MATMUL,
RELU and CONCATENATION (int8 in TFLite Micro and on the Ethos-U NPU). Levels still cannot cross:
each gap is a sum of two non-negative terms, and int8 requantization is monotone.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class ReluQuantileHead(nn.Module):
    """`(median [B, D, H], features [B, D, rank]) -> [B, D, H, Q]`, the same map as a `QuantileOutput`."""

    def __init__(self, head: Any) -> None:
        super().__init__()
        self.levels = tuple(head.levels)
        self.horizon, self.n_levels = int(head.horizon), len(self.levels)
        w = head.gaps.weight.detach()
        bias = head.gaps.bias.detach() if head.variate_bias is None else head.variate_bias.detach()  # [G] or [D, G]
        self.weight: torch.Tensor
        self.bias: torch.Tensor
        self.assemble: torch.Tensor
        self.register_buffer("weight", torch.cat([w, -w], dim=0).clone())  # [2 G, rank]
        self.register_buffer("bias", torch.cat([bias, -bias], dim=-1).clone())  # [2 G] or [D, 2 G]
        a = head.assemble.detach()
        self.register_buffer("assemble", torch.cat([a[:1], a[1:], a[1:]], dim=0).clone())  # [2 Q - 1, Q]
        # the calibrated widening w of every gap is a constant after assembly: w A_g, [H, Q] or [D, H, Q]
        self.offset: torch.Tensor | None
        widen = getattr(head, "widen", None)
        offset = None
        if widen is not None:
            offset = torch.matmul(widen.detach().unflatten(-1, (self.horizon, self.n_levels - 1)), a[1:]).clone()
        self.register_buffer("offset", offset)

    def forward(self, median: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        r = torch.relu(nn.functional.linear(features, self.weight) + self.bias)  # [B, D, 2 G]
        H, G = self.horizon, self.n_levels - 1
        pos = r[..., : H * G].unflatten(-1, (H, G))
        neg = r[..., H * G :].unflatten(-1, (H, G))
        out = torch.matmul(torch.cat([median.unsqueeze(-1), pos, neg], dim=-1), self.assemble)
        return out if self.offset is None else out + self.offset


class ArtifactLayout(nn.Module):
    """A quantile student's `[B, H, D, Q]` as the artifact's `[B, D, H, Q]` (variates first: what the
    per-variate output quantization and every MCU artifact expect; a folded DLinear gives it already)."""

    artifact_layout = True

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.student = student

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.student(x).transpose(1, 2)


def int8_form(module: nn.Module) -> nn.Module:
    """A copy of `module` with its quantile head (`head` of a folded DLinear, `quantile_head` of a student)
    in the ReLU form, in the artifact layout `[B, D, H, Q]`; any other module is returned as it is."""
    for name in ("head", "quantile_head"):
        head = getattr(module, name, None)
        if head is not None and hasattr(head, "assemble") and not isinstance(head, ReluQuantileHead):
            out = copy.deepcopy(module)
            setattr(out, name, ReluQuantileHead(head))
            return out if getattr(out, "artifact_layout", False) else ArtifactLayout(out)
    return module
