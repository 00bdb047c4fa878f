"""Training checkpoints without pickles: tensors in `state.safetensors`, the rest in `state.json`.

One checkpoint directory (`<run>/checkpoint/`) is replaced atomically after every epoch, so a
killed run always finds a complete checkpoint of its last finished epoch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from distilts.errors import DistiltsError
from distilts.utils import atomic_directory, read_json, write_json

TENSORS = "state.safetensors"
META = "state.json"


def save_checkpoint(directory: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write `tensors` and JSON-able `meta` to `directory` in one atomic step."""
    with atomic_directory(directory) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / TENSORS))
        write_json(tmp / META, meta)


def load_checkpoint(directory: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by `save_checkpoint`."""
    directory = Path(directory)
    if not (directory / META).is_file() or not (directory / TENSORS).is_file():
        raise DistiltsError(
            f"No complete training checkpoint in {directory}: nothing to resume. "
            "Run without --resume to start training."
        )
    return load_file(str(directory / TENSORS)), read_json(directory / META)


def prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def unprefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def optimizer_to_parts(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state dict into tensors (`optimizer.<param>.<key>`) and JSON."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{pid}.{key}"] = value
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_parts(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Inverse of `optimizer_to_parts`: load the state into `opt`."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in unprefixed(tensors, "optimizer").items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
