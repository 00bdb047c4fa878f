"""Covariate inputs of the students that take them (dlinear, tide, tsmixer): sizes and checks.

A covariate student is built with `n_past`, `n_future`, `n_static` (0: none) and takes
`forward(x, past=None, future=None, static=None)`: x `[B, L, D]`, past `[B, L, P]`, future `[B, L + H, F]`
(lookback and horizon), static `[B, S]`, all normalized with the training split's statistics.
"""

from __future__ import annotations

import torch

from distilts.errors import DistiltsError

COVARIATE_OPTIONS = ("n_past", "n_future", "n_static")


def check_covariate_dims(n_past: int, n_future: int, n_static: int) -> tuple[int, int, int]:
    """(P, F, S), or a ValueError for a negative size."""
    dims = (int(n_past), int(n_future), int(n_static))
    if min(dims) < 0:
        raise ValueError(f"n_past, n_future and n_static must be >= 0 (got {dims}).")
    return dims


def covariate_inputs(
    dims: tuple[int, int, int],
    lookback: int,
    past: torch.Tensor | None,
    future: torch.Tensor | None,
    static: torch.Tensor | None,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """The blocks a student was built for (None where its size is 0); a DistiltsError naming a missing
    or wrongly sized one."""
    out: list[torch.Tensor | None] = []
    for name, n, arr, axis in (
        ("past", dims[0], past, 2),
        ("future", dims[1], future, 2),
        ("static", dims[2], static, 1),
    ):
        if n == 0:
            out.append(None)
            continue
        if arr is None:
            raise DistiltsError(f"this student was trained with {n} {name} covariate(s): pass `{name}=`.")
        if arr.shape[axis] != n or (name == "past" and arr.shape[1] != lookback):
            raise DistiltsError(f"{name} covariates have shape {tuple(arr.shape)}; the student takes {n} column(s).")
        out.append(arr)
    return out[0], out[1], out[2]


def refuse_covariates(student: str, kwargs: dict) -> None:
    """A DistiltsError when covariate sizes are given to a student that takes no covariates."""
    given = {k: kwargs[k] for k in COVARIATE_OPTIONS if kwargs.get(k)}
    if given:
        raise DistiltsError(
            f"Student '{student}' takes no covariates ({', '.join(f'{k}={v}' for k, v in given.items())}); "
            "use --student dlinear, tide or tsmixer, or drop the covariate options."
        )
