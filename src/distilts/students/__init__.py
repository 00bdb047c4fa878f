"""Student models (normalized `[B, L, D] -> [B, H, D]`) and the student directory format.

Every student exposes `forward(x)`, `represent(x) -> [B, D, d_S]` (the variate-wise features FTA
aligns with the teacher), `forward_with_repr(x) -> (y, h)` and `repr_dim` (= d_S).
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from distilts.errors import DistiltsError
from distilts.students.dlinear import DLinear
from distilts.students.itransformer import ITransformer

STUDENTS: dict[str, type[nn.Module]] = {"dlinear": DLinear, "itransformer": ITransformer}

__all__ = ["STUDENTS", "DLinear", "ITransformer", "build_student", "load_student_dir",
           "param_count", "save_student_dir", "student_options"]


def student_options(name: str) -> dict[str, Any]:
    """The keyword options of student `name` with their defaults."""
    cls = _student_class(name)
    sig = inspect.signature(cls.__init__)
    return {p.name: p.default for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}


def build_student(name: str, lookback: int, horizon: int, n_variates: int, **kwargs: Any) -> nn.Module:
    """Build student `name` for `[B, lookback, n_variates] -> [B, horizon, n_variates]`."""
    cls = _student_class(name)
    unknown = sorted(set(kwargs) - set(student_options(name)))
    if unknown:
        raise DistiltsError(f"Student '{name}' has no option(s) {unknown}; its options are "
                            f"{sorted(student_options(name))}.")
    try:
        return cls(int(lookback), int(horizon), int(n_variates), **kwargs)
    except ValueError as exc:
        raise DistiltsError(f"Cannot build student '{name}': {exc}") from None


def param_count(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def _student_class(name: str) -> type[nn.Module]:
    if name not in STUDENTS:
        raise DistiltsError(f"Unknown student '{name}'. Use one of: {', '.join(STUDENTS)}.")
    return STUDENTS[name]


from distilts.students.io import load_student_dir, save_student_dir  # noqa: E402
