"""Build a student by its registered name; its options and their defaults."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from torch import nn

from distilts.errors import DistiltsError
from distilts.students import STUDENTS


def student_class(name: str) -> type[nn.Module]:
    """The class registered as `name` (imports its module)."""
    module, attr = STUDENTS[name].split(":")  # an unknown name: the registry's error lists the valid ones
    return getattr(importlib.import_module(module), attr)


def student_options(name: str) -> dict[str, Any]:
    """The keyword options of student `name` with their defaults."""
    sig = inspect.signature(student_class(name).__init__)
    return {p.name: p.default for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}


def build_student(name: str, lookback: int, horizon: int, n_variates: int, **kwargs: Any) -> nn.Module:
    """Build student `name` for `[B, lookback, n_variates] -> [B, horizon, n_variates]`."""
    cls = student_class(name)
    unknown = sorted(set(kwargs) - set(student_options(name)))
    if unknown:
        raise DistiltsError(
            f"Student '{name}' has no option(s) {unknown}; its options are {sorted(student_options(name))}."
        )
    try:
        return cls(int(lookback), int(horizon), int(n_variates), **kwargs)
    except ValueError as exc:
        raise DistiltsError(f"Cannot build student '{name}': {exc}") from None


def param_count(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
