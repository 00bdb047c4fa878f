"""Build a student by its registered name; its options and their defaults."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from typing import Any

from torch import nn

from distilts.errors import DistiltsError
from distilts.students import STUDENTS
from distilts.students.covariates import COVARIATE_OPTIONS, refuse_covariates


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
    if "n_future" not in student_options(name):
        refuse_covariates(name, kwargs)
        kwargs = {k: v for k, v in kwargs.items() if k not in COVARIATE_OPTIONS}
    unknown = sorted(set(kwargs) - set(student_options(name)))
    if unknown:
        raise DistiltsError(
            f"Student '{name}' has no option(s) {unknown}; its options are {sorted(student_options(name))}."
        )
    try:
        return cls(int(lookback), int(horizon), int(n_variates), **kwargs)
    except ValueError as exc:
        raise DistiltsError(f"Cannot build student '{name}': {exc}") from None


def parse_option_values(name: str, pairs: Sequence[str]) -> dict[str, Any]:
    """`["key=value", ...]` -> keyword options of student `name`, each value parsed by the type of the
    option's default (bool, int, float, str; a comma-separated list for tuples, lists and None defaults)."""
    options = student_options(name)
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise DistiltsError(f"Student option '{pair}' is not KEY=VALUE (e.g. -O d_model=64).")
        if key not in options:
            raise DistiltsError(f"Student '{name}' has no option '{key}'; its options are {sorted(options)}.")
        out[key] = _parse_value(key, text.strip(), options[key])
    return out


def _parse_value(key: str, text: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if text.lower() not in _BOOLS:
                raise ValueError("expected true or false")
            return _BOOLS[text.lower()]
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, str):
            return text
        if text.lower() in ("none", "null", ""):
            return None
        items = [_number(v.strip()) for v in text.split(",") if v.strip()]
        return (
            items
            if isinstance(default, list) or default is None and len(items) > 1
            else (tuple(items) if isinstance(default, tuple) else items[0])
        )
    except ValueError as exc:
        kind = type(default).__name__
        raise DistiltsError(f"Student option {key}={text!r}: not a valid {kind} ({exc}).") from None


def _number(text: str) -> int | float | str:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def param_count(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
