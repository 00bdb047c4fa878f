"""A model's inputs: one array `x [B, L, D]` (univariate artifacts) or, for an artifact with covariates, a dict of
named arrays in the artifact's input order: "x", then the present ones of "past" `[B, L, P]`, "future"
`[B, L+H, F]` and "static" `[B, S]` (docs/design.md, "Artifact directory"). Numpy only: ships to devices.

Every helper takes either form, so the padding, chunking and verification code has one path.
"""

from __future__ import annotations

import numpy as np

ROLES = ("past", "future", "static")  # covariate inputs, in artifact order after "x"
Inputs = np.ndarray | dict[str, np.ndarray]


def window_only(inputs: Inputs) -> np.ndarray:
    """The window `x` of a univariate path (passes, full int8, microcontrollers: refused with covariates earlier)."""
    if isinstance(inputs, dict):
        raise TypeError("named covariate inputs reached a path that takes one window (a missing refusal)")
    return inputs


def n_rows(inputs: Inputs) -> int:
    """The batch size (rows of the first input)."""
    return len(inputs["x"]) if isinstance(inputs, dict) else len(inputs)


def take(inputs: Inputs, index) -> Inputs:
    """Rows `index` (slice, array or list) of every input."""
    if isinstance(inputs, dict):
        return {k: v[index] for k, v in inputs.items()}
    return inputs[index]


def pad_rows(inputs: Inputs, batch: int) -> Inputs:
    """`inputs` padded up to `batch` rows with copies of the last row (fixed-batch model files)."""

    def pad(a: np.ndarray) -> np.ndarray:
        n = len(a)
        return a if n >= batch else np.concatenate([a, np.repeat(a[-1:], batch - n, axis=0)])

    return {k: pad(v) for k, v in inputs.items()} if isinstance(inputs, dict) else pad(inputs)


def repeat_first(inputs: Inputs, n: int) -> Inputs:
    """The first row repeated `n` times (a timing call at a fixed batch)."""
    if isinstance(inputs, dict):
        return {k: np.repeat(v[:1], n, axis=0) for k, v in inputs.items()}
    return np.repeat(inputs[:1], n, axis=0)


def as_float32(inputs: Inputs) -> Inputs:
    """Contiguous float32 copies (or the arrays themselves when they already are)."""
    if isinstance(inputs, dict):
        return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in inputs.items()}
    return np.ascontiguousarray(inputs, dtype=np.float32)


def concat(parts: list[Inputs]) -> Inputs:
    """Rows of several input batches, one after the other."""
    if parts and isinstance(parts[0], dict):
        dicts = [p for p in parts if isinstance(p, dict)]
        return {k: np.concatenate([p[k] for p in dicts]) for k in dicts[0]}
    return np.concatenate([window_only(p) for p in parts])


def input_tails(lookback: int, horizon: int, n_variates: int, covariates: dict | None) -> dict[str, tuple[int, ...]]:
    """{input name: shape of one row} in artifact order: x `(L, D)`, past `(L, P)`, future `(L + H, F)`,
    static `(S,)`; only the roles with at least one column (covariates: the config's `covariates` block)."""
    tails: dict[str, tuple[int, ...]] = {"x": (lookback, n_variates)}
    cov = covariates or {}
    for role, tail in (("past", (lookback,)), ("future", (lookback + horizon,)), ("static", ())):
        n = len(cov.get(role) or [])
        if n:
            tails[role] = (*tail, n)
    return tails
