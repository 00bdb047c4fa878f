"""The exported graph: raw `[B, L, D]` -> normalize -> student -> de-normalize -> raw `[B, H, D]`
(`[B, D, H, Q]` for a quantile student: variates first, so the folded head needs no output transpose
and every MatMul has its weights on the right; the runtime returns `[B, H, D, Q]` views).

Normalization lives in its own submodules so int8 quantizers can leave it in float (quantizing
raw inputs with one scale across variates of different magnitudes would waste the int8 range).
The wrapper also carries the exact scaler (float64 numpy) for the module passes, and
`as_float64()` gives the exact float64 original every pass is checked against.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from distilts.runtime.inputs import ROLES, Inputs, input_tails, n_rows, take


class Normalize(nn.Module):
    """z = (x - mean) * (1 / std), per variate (last axis)."""

    def __init__(self, mean: Sequence[float] | np.ndarray, std: Sequence[float] | np.ndarray) -> None:
        super().__init__()
        self.mean: torch.Tensor
        self.inv_std: torch.Tensor
        self.register_buffer("mean", torch.tensor(np.asarray(mean, dtype=np.float32)))
        self.register_buffer("inv_std", torch.tensor(1.0 / np.asarray(std, dtype=np.float64), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_std


class Denormalize(nn.Module):
    """x = z * std + mean, per variate (last axis; axis 1 of quantile forecasts `[B, D, H, Q]`, where a
    positive std keeps the levels in order)."""

    def __init__(
        self, mean: Sequence[float] | np.ndarray, std: Sequence[float] | np.ndarray, quantiles: bool = False
    ) -> None:
        super().__init__()
        shape = (-1, 1, 1) if quantiles else (-1,)
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(np.asarray(mean, dtype=np.float32).reshape(shape)))
        self.register_buffer("std", torch.tensor(np.asarray(std, dtype=np.float32).reshape(shape)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean


class RawScaleForecaster(nn.Module):
    """A student with its scaler folded in: raw values in, raw-scale forecasts out.

    `mean` and `std` (float64 numpy) are the exact scaler; the buffers hold it in the module's dtype.
    cov_stats: {role: (mean, std)} of the covariate inputs ("past", "future", "static"; the config's
    `covariates.stats`), each normalized by its own submodule `normalize_<role>` before the student.
    """

    def __init__(
        self,
        student: nn.Module,
        mean: Sequence[float] | np.ndarray,
        std: Sequence[float] | np.ndarray,
        cov_stats: dict[str, tuple] | None = None,
    ) -> None:
        super().__init__()
        self.mean = np.asarray(mean, np.float64)
        self.std = np.asarray(std, np.float64)
        self.cov_stats = {
            r: (np.asarray(m, np.float64), np.asarray(s, np.float64)) for r, (m, s) in (cov_stats or {}).items()
        }
        self.normalize = Normalize(mean, std)
        self.cov_normalize = nn.ModuleDict({r: Normalize(m, s) for r, (m, s) in self.cov_stats.items()})
        self.student = student
        quantiles = getattr(student, "levels", None) is not None
        self.denormalize = Denormalize(mean, std, quantiles)
        # a quantile student returns [B, H, D, Q]; the artifact layout is [B, D, H, Q] (a fold gives it directly)
        self.to_artifact_layout = quantiles and not getattr(student, "artifact_layout", False)

    @property
    def roles(self) -> tuple[str, ...]:
        """The covariate inputs this wrapper takes, in artifact order."""
        return tuple(r for r in ROLES if r in self.cov_stats)

    def forward(
        self,
        x: torch.Tensor,
        past: torch.Tensor | None = None,
        future: torch.Tensor | None = None,
        static: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.cov_stats:
            given = {"past": past, "future": future, "static": static}
            covs = {r: self.cov_normalize[r](given[r]) for r in self.roles}
            y = self.student(self.normalize(x), **covs)
        else:
            y = self.student(self.normalize(x))
        return self.denormalize(y.transpose(1, 2) if self.to_artifact_layout else y)

    @property
    def dtype(self) -> torch.dtype:
        return self.normalize.mean.dtype

    def rewrap(self, student: nn.Module) -> RawScaleForecaster:
        """`student` behind this wrapper's scaler, in this wrapper's dtype (exact when float64)."""
        out = RawScaleForecaster(student, self.mean, self.std, self.cov_stats).eval()
        return out.as_float64() if self.dtype == torch.float64 else out

    def as_float64(self) -> RawScaleForecaster:
        """A float64 copy with the scaler in exact float64 (the float32 wrapper rounds 1/std)."""
        w = copy.deepcopy(self).to(torch.float64).eval()
        m, s = torch.tensor(self.mean), torch.tensor(self.std)
        shape = w.denormalize.mean.shape  # [D], or [D, 1, 1] for quantile forecasts
        w.normalize.mean, w.normalize.inv_std = m, 1.0 / s
        w.denormalize.mean, w.denormalize.std = m.reshape(shape), s.reshape(shape)
        for r, (cm, cs) in self.cov_stats.items():
            w.cov_normalize[r].mean, w.cov_normalize[r].inv_std = torch.tensor(cm), 1.0 / torch.tensor(cs)
        return w


class PositionalInputs(nn.Module):
    """`wrapper` with its inputs as positional arguments in artifact order (x, then its covariate roles):
    what the exporters trace, so each graph input gets the manifest's name in that order."""

    def __init__(self, wrapper: nn.Module) -> None:
        super().__init__()
        self.wrapper = wrapper
        self.names = ("x", *getattr(wrapper, "roles", ()))

    def forward(
        self,
        x: torch.Tensor,
        a: torch.Tensor | None = None,
        b: torch.Tensor | None = None,
        c: torch.Tensor | None = None,
    ) -> torch.Tensor:
        covs = {n: t for n, t in zip(self.names[1:], (a, b, c), strict=False) if t is not None}
        return self.wrapper(x, **covs)


def covariate_stats(config: dict) -> dict[str, tuple]:
    """{role: (mean, std)} of the config's covariate inputs with at least one column (empty: univariate)."""
    cov = config.get("covariates") or {}
    stats = cov.get("stats") or {}
    out = {}
    for role in ROLES:
        cols = cov.get(role) or []
        if cols:
            st = stats.get(role) or {}
            out[role] = (st.get("mean", [0.0] * len(cols)), st.get("std", [1.0] * len(cols)))
    return out


def wrap_student(model: nn.Module, config: dict) -> RawScaleForecaster:
    """Wrap a loaded student with the scaler (and covariate stats) from its config.json; eval mode."""
    scaler = config["scaler"]
    return RawScaleForecaster(model.eval(), scaler["mean"], scaler["std"], covariate_stats(config)).eval()


def torch_predict(module: nn.Module, x: Inputs, batch: int = 256, dtype: type = np.float32) -> np.ndarray:
    """Forecasts of a torch module for raw `[N, L, D]` windows (or named inputs: x and covariates, passed by
    keyword) fed as `dtype` (float64 for a float64 module)."""
    out = []

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=dtype))

    with torch.no_grad():
        for lo in range(0, n_rows(x), batch):
            part = take(x, slice(lo, lo + batch))
            if isinstance(part, dict):
                y = module(tensor(part["x"]), **{k: tensor(v) for k, v in part.items() if k != "x"})
            else:
                y = module(tensor(part))
            out.append(y.numpy())
    return np.concatenate(out) if out else np.zeros((0,), dtype)


def example_input(
    lookback: int, n_variates: int, batch: int = 2, config: dict | None = None
) -> tuple[torch.Tensor, ...]:
    """Zero inputs of every graph input in artifact order (config: adds its covariate inputs)."""
    if config is None or not config.get("covariates"):
        return (torch.zeros(batch, lookback, n_variates),)
    tails = input_tails(lookback, int(config["horizon"]), n_variates, config["covariates"])
    return tuple(torch.zeros(batch, *t) for t in tails.values())


def batch_dim_shapes(max_batch: int = 4096, n_inputs: int = 1) -> tuple[dict, ...]:
    """torch.export dynamic_shapes making dim 0 of every input dynamic (one shared batch dimension)."""
    dim = torch.export.Dim("batch", min=1, max=max_batch)
    return tuple({0: dim} for _ in range(n_inputs))


def exportable(module: nn.Module) -> nn.Module:
    """The module the exporters trace: itself for a univariate wrapper, else `PositionalInputs` over it."""
    return PositionalInputs(module) if getattr(module, "roles", ()) else module
