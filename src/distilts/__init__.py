"""distilts: distil time-series foundation models into tiny CPU/edge forecasters.

The Python API is the command line's own functions (docs/api.md), one per stage:

    load_dataset        the series, its split, scaler and windows         (--data ...)
    load_teacher        a frozen teacher by family name                    (--teacher, --teacher-path)
    train_teacher       `distilts train-teacher` (TeacherTraining)
    fill_teacher_cache  `distilts teach`
    distill_student     `distilts distill` (DistillSpec, TrainConfig)
    evaluate_student    `distilts eval`
    compile_student     `distilts compile` (jobs from resolve_job; targets: get_target, list_targets)
    search              `distilts search`: the most accurate student that fits a device budget
    Forecaster          `distilts forecast` (numpy + one backend, never torch)
    profile_artifact    `distilts profile`

Importing the package is cheap: these names load on first use (PEP 562), so `import distilts`
imports neither torch nor numpy.
"""

from __future__ import annotations

from importlib import metadata

try:  # the version is the package metadata's (pyproject.toml), written nowhere else
    __version__ = metadata.version("distilts")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

from distilts.errors import DistiltsError
from distilts.lazy import lazy_names

# public name -> module that defines it
API = {
    "DataSpec": "distilts.data.spec",
    "load_dataset": "distilts.data.dataset",
    "load_teacher": "distilts.teachers",
    "TeacherTraining": "distilts.distill.config",
    "train_teacher": "distilts.distill.train_teacher",
    "fill_teacher_cache": "distilts.cache.entry",
    "DistillSpec": "distilts.distill.config",
    "TrainConfig": "distilts.distill.config",
    "distill_student": "distilts.distill.run",
    "evaluate_student": "distilts.distill.run",
    "resolve_job": "distilts.targets.registry",
    "get_target": "distilts.targets.registry",
    "list_targets": "distilts.targets.registry",
    "compile_student": "distilts.compile.pipeline",
    "Forecaster": "distilts.runtime.forecaster",
    "profile_artifact": "distilts.profile.profiler",
    "forecast_file": "distilts.batch.panel",
    "forecast_ray": "distilts.batch.ray_engine",
    "serve_artifact": "distilts.serve.server",
    "deploy_artifact": "distilts.deploy.store",
    "rollback": "distilts.deploy.store",
    "build_bundle": "distilts.deploy.bundle",
    "load_plugins": "distilts.plugins",
    "search": "distilts.choose.run",
}

__all__ = ["DistiltsError", "__version__", *API]


__getattr__, __dir__ = lazy_names(__name__, API, globals())
