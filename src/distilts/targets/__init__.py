"""Named deployment targets (rpi4, rpi5, x86-server, ...) and --target resolution. Pure Python."""

from distilts.runtime.backends import MODES
from distilts.targets.registry import (
    FORMATS,
    PRECISIONS,
    TARGETS,
    CompileJob,
    Target,
    UnknownTargetError,
    get_target,
    list_targets,
    resolve_job,
    target_names,
    valid_choices,
)

__all__ = [
    "FORMATS",
    "MODES",
    "PRECISIONS",
    "TARGETS",
    "CompileJob",
    "Target",
    "UnknownTargetError",
    "get_target",
    "list_targets",
    "resolve_job",
    "target_names",
    "valid_choices",
]
