"""The student directory: `model.safetensors` (weights only) + `config.json` (see docs/design.md).

Writes go to a temp directory beside the target; files are then renamed into place with
`config.json` last (and removed first), so a reader never sees new weights with an old config.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from distilts.errors import DistiltsError, ModelDirError
from distilts.students.quantile import apply_widening
from distilts.students.registry import build_student, param_count, student_options
from distilts.utils import temp_dir_beside, write_json

FORMAT = "distilts-student"
VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
REQUIRED = ("student", "lookback", "horizon", "n_variates")


def save_student_dir(directory: str | os.PathLike, model: nn.Module, config: dict[str, Any]) -> Path:
    """Write `model`'s weights and `config` (plus format, version, param_count) to `directory`.

    `config` must hold `student: {name, kwargs}`, `lookback`, `horizon`, `n_variates`; other files
    already in `directory` (metrics, plots, checkpoints) are left alone.
    """
    missing = [k for k in REQUIRED if k not in config]
    if missing:
        raise ModelDirError(f"Student config is missing {missing}; it needs {list(REQUIRED)}.")
    config = {"format": FORMAT, "version": VERSION, **config, "param_count": param_count(model)}
    config["student"] = resolved_spec(config["student"])
    config["format"], config["version"] = FORMAT, VERSION
    directory = Path(directory)
    tmp = temp_dir_beside(directory)
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        write_json(tmp / CONFIG, config)
        if not directory.exists():
            os.replace(tmp, directory)
            return directory
        (directory / CONFIG).unlink(missing_ok=True)
        os.replace(tmp / WEIGHTS, directory / WEIGHTS)
        os.replace(tmp / CONFIG, directory / CONFIG)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def read_student_config(directory: str | os.PathLike) -> dict[str, Any]:
    """Read and check `config.json` of a student directory (no torch model is built)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelDirError(f"{directory} is not a directory. Pass the output directory of `distilts distill`.")
    path = directory / CONFIG
    if not path.is_file():
        raise ModelDirError(
            f"{directory} has no {CONFIG}, so it is not a student directory (or training "
            "did not finish). Pass the output directory of a finished `distilts distill` run."
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelDirError(f"{path} is not valid JSON ({exc}). Re-run `distilts distill` to rewrite it.") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        got = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ModelDirError(
            f"{path} has format {got!r}, not {FORMAT!r}: {directory} is not a distilts "
            "student directory (a compiled artifact or a teacher?)."
        )
    if config.get("version") != VERSION:
        raise ModelDirError(
            f"{path} is student format version {config.get('version')!r}; this distilts "
            f"reads version {VERSION}. Re-run `distilts distill` with this version."
        )
    missing = [k for k in REQUIRED if k not in config]
    if missing or not isinstance(config["student"], dict) or "name" not in config["student"]:
        raise ModelDirError(f"{path} is missing {missing or ['student.name']}. Re-run `distilts distill`.")
    return config


def load_student_dir(directory: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the student from `config.json`, check and load its weights; eval mode."""
    directory = Path(directory)
    config = read_student_config(directory)
    weights = directory / WEIGHTS
    if not weights.is_file():
        raise ModelDirError(f"{directory} has a config.json but no {WEIGHTS}. Re-run `distilts distill`.")
    spec = config["student"]
    try:
        model = build_student(
            spec["name"],
            config["lookback"],
            config["horizon"],
            config["n_variates"],
            **spec.get("kwargs", {}),
        )
    except DistiltsError as exc:
        raise ModelDirError(
            f"{directory / CONFIG} describes a student that cannot be built: {exc} (a directory written by an "
            "older distilts, or by a plugin not installed here): re-run `distilts distill`."
        ) from None
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelDirError(
            f"{weights} is not a readable safetensors file ({exc}). Re-run `distilts distill`."
        ) from None
    _check_weights(model, state, weights)
    model.load_state_dict(state, strict=True)
    apply_widening(model, config)  # the intervals' calibration lives in config.json, not in the weights
    return model.eval(), config


def resolved_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """`{name, kwargs}` with every option of the student recorded (defaults filled in), so a
    directory keeps meaning the same model when a default changes."""
    return {**spec, "kwargs": {**student_options(spec["name"]), **spec.get("kwargs", {})}}


def _check_weights(model: nn.Module, state: dict, weights: Path) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    problems = []
    if missing := sorted(set(expected) - set(got)):
        problems.append(f"missing tensors {missing[:5]}")
    if extra := sorted(set(got) - set(expected)):
        problems.append(f"unexpected tensors {extra[:5]}")
    shapes = [
        f"{k}: file {got[k]} vs config {expected[k]}" for k in sorted(set(got) & set(expected)) if got[k] != expected[k]
    ]
    if shapes:
        problems.append("shape mismatch " + "; ".join(shapes[:5]))
    if problems:
        raise ModelDirError(
            f"{weights} does not match the architecture in config.json ({', '.join(problems)}). "
            "The weights and the config come from different runs; re-run `distilts distill`."
        )
