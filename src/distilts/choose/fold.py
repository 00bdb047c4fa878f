"""Fold the chosen configuration's seeds into one student.

Trials that trained the same configuration (family, options, lookback, learning rate: backend and precision
only change the artifact) are seeds of one model. For a student whose forecast is linear in its weights
(DLinear without RevIN or a quantile head) the average of their weights IS the average of their forecasts: the
seed ensemble costs nothing on the device. The fold is kept only when it lowers the validation MSE (the test
split is never used to choose); it is recorded in the chosen trial's record under "folded".
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from distilts.choose.trial import trial_dir

WEIGHTS = "model.safetensors"


def seed_group(records: list[dict[str, Any]], chosen: dict[str, Any]) -> list[dict[str, Any]]:
    """The trained trials (val MSE known, not pruned) that share the chosen trial's training configuration."""

    def training(r: dict[str, Any]) -> tuple:
        c = r["candidate"]
        return c["student"], sorted(c["kwargs"].items()), c["lookback"], c["lr"]

    key = training(chosen)
    return [r for r in records if r.get("val_mse") is not None and training(r) == key]


def linear_in_weights(model: torch.nn.Module) -> bool:
    """Whether averaging weights averages forecasts exactly (the student says so: `linear_in_weights`)."""
    return bool(getattr(model, "linear_in_weights", False))


def fold_seeds(
    out: Path, records: list[dict[str, Any]], chosen: dict[str, Any], data: Any, echo
) -> tuple[dict[str, Any], Path | None]:
    """The chosen record, updated when its seeds fold into a better student (by validation MSE), and the
    folded weights file (None: keep the chosen trial's own weights)."""
    from distilts.distill.run import evaluate_student
    from distilts.students.io import load_student_dir

    group = seed_group(records, chosen)
    if len(group) < 2:
        return chosen, None
    src = trial_dir(out, chosen["number"]) / "student"
    model, _config = load_student_dir(src)
    if not linear_in_weights(model):
        echo(
            f"{len(group)} seeds of the chosen configuration; not folded: {chosen['candidate']['student']} "
            "is not linear in its weights, so averaging weights would not average forecasts"
        )
        return chosen, None
    states = [load_file(trial_dir(out, r["number"]) / "student" / WEIGHTS) for r in group]
    folded = {k: torch.stack([s[k].double() for s in states]).mean(0).to(states[0][k].dtype) for k in states[0]}
    work = out / "fold"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(src, work, ignore=shutil.ignore_patterns("checkpoint", "artifacts", "plots"))
    save_file(folded, str(work / WEIGHTS))
    metrics = evaluate_student(work, data, with_teacher=False, write=False, progress=False)
    numbers = [r["number"] for r in group]
    val, test = metrics["val"]["mse"], metrics["test"]["mse"]
    if val >= chosen["val_mse"]:
        echo(f"folding trials {numbers} gives val MSE {val:.4f}, not below the chosen trial's: not folded")
        shutil.rmtree(work, ignore_errors=True)
        return chosen, None
    echo(
        f"folded the chosen configuration's {len(group)} seeds (trials {numbers}) into one student: "
        f"val MSE {chosen['val_mse']:.4f} -> {val:.4f} (exact: the student is linear in its weights)"
    )
    updated = dict(chosen)
    updated["folded"] = {
        "trials": numbers,
        "single": {k: chosen[k] for k in ("val_mse", "val_mae", "test_mse", "test_mae")},
    }
    updated.update(
        val_mse=val,
        val_mae=metrics["val"]["mae"],
        test_mse=test,
        test_mae=metrics["test"]["mae"],
        label=f"{chosen['label']} x{len(group)} seeds folded",
    )
    return updated, work / WEIGHTS
