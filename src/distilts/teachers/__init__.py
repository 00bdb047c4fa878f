"""Teacher registry: one door (`load_teacher`) to every family.

A family module exposes `DEFAULT_PATH` (a hub id) and `load(path, device) -> Teacher`. A module
that serves several names (chronos: `chronos` and `chronos-bolt`) instead exposes
`VARIANTS = {name: (default_path, loader)}`. Modules are imported only when their family is
used, so importing this package does not import torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from distilts.errors import DistiltsError, MissingExtraError
from distilts.teachers.registry import TEACHERS
from distilts.teachers.spec import is_ensemble, is_statistical

if TYPE_CHECKING:
    from distilts.teachers.base import Teacher

# families that forecast with covariates through their own package (Teacher.predict(covariates=...)), and the
# roles each takes; the others forecast the target windows alone (univariate) and the student's card says so
COVARIATE_TEACHERS = {"chronos-2": ("past", "future"), "timesfm": ("future", "static"), "moirai": ("past", "future")}

__all__ = ["COVARIATE_TEACHERS", "TEACHERS", "default_path", "load_statistical", "load_teacher"]


def _check_name(name: str) -> None:
    TEACHERS[name]  # an unknown name: the registry's error lists the valid ones


def _entry(name: str) -> tuple[str | None, Callable[..., Teacher]]:
    """(default path, loader) of a registered family; imports its module."""
    _check_name(name)
    try:
        module = importlib.import_module(TEACHERS[name])
    except ModuleNotFoundError as exc:
        if exc.name == TEACHERS[name]:
            raise DistiltsError(f"The '{name}' teacher is not available in this version of distilts.") from None
        raise MissingExtraError(exc.name or "?", "teachers", f"the {name} teacher") from exc
    variants = getattr(module, "VARIANTS", None)
    if variants is not None:
        return variants[name]
    return getattr(module, "DEFAULT_PATH", None), module.load


def default_path(name: str) -> str:
    """The checkpoint a family loads when no --teacher-path is given."""
    path, _ = _entry(name)
    if not path:
        raise DistiltsError(f"The '{name}' teacher has no default checkpoint: pass --teacher-path DIR.")
    return path


def load_statistical(spec: str) -> Teacher:
    """The statsforecast teacher of `statsforecast:MODEL[?options]` (docs/teachers.md)."""
    try:
        from distilts.teachers import statistical
    except ModuleNotFoundError as exc:
        raise MissingExtraError(exc.name or "statsforecast", "statistical", f"the {spec} teacher") from None
    return statistical.load(spec)


def load_teacher(name: str, path: str | None = None, device: str = "auto") -> Teacher:
    """Load teacher family `name` from `path` (local directory or hub id; default: the family's
    published checkpoint) onto `device` ('auto', 'cpu' or 'cuda'); `statsforecast:MODEL` specs too.
    An `ensemble:...` exists only as a teacher cache entry (`distilts.cache.ensemble`)."""
    if is_statistical(name):
        return load_statistical(name)
    if is_ensemble(name):
        raise DistiltsError(
            f"The {name} teacher is a combination of cached member forecasts: it runs through the teacher cache "
            "(`distilts teach` / `distilts distill`), not as a loaded model (and has no hidden states: use --beta 0)."
        )
    default, loader = _entry(name)
    path = path or default
    if not path:
        raise DistiltsError(f"The '{name}' teacher has no default checkpoint: pass --teacher-path DIR.")
    return loader(str(path), device)
