"""A distilts student as a teacher (`--teacher student --teacher-path DIR`): teacher-assistant distillation.

A large student that fits one device (say a 12-member MLP ensemble for a Cortex-M7) teaches a smaller
one for a smaller device, as a teacher assistant does (Mirzadeh et al., AAAI 2020, "Improved Knowledge
Distillation via Teacher Assistant"); in an ensemble (`ensemble:student=DIR+statsforecast:AutoETS`) it
is one member among foundation and statistical models. The directory is a `distilts distill` output
(config.json + model.safetensors, read by `students.io.load_student_dir`: no pickles).

Scale: the windows a teacher sees are normalized by the distilling dataset, not by the scale the teacher
student was trained on, so only a student that normalizes each window itself (RevIN, window norm: its
forecast of `a*x + b` is `a*forecast(x) + b`) can teach. `load` checks that property on a probe window and
refuses a student trained with `--no-revin` or `-O norm=none`, naming the fix.

A longer distilling lookback is cut to the teacher's last steps; a shorter horizon takes its first steps.
A univariate teacher student forecasts each variate of a multivariate window on its own. There are no
hidden states (`--beta 0`); a quantile student teaches its levels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from distilts.errors import DistiltsError, ModelDirError
from distilts.students.io import load_student_dir
from distilts.teachers.base import Teacher, TeacherOutput, hash_checkpoint, resolve_device

DEFAULT_PATH = None  # a student trained here: --teacher-path DIR is required
FAMILY = "student"
EQUIVARIANCE_TOL = 1e-3  # relative error of f(a*x + b) against a*f(x) + b on the probe window


class StudentTeacher(Teacher):
    """A trained distilts student in eval mode, forecasting windows `[B, L, D]` in their own scale."""

    name = FAMILY

    def __init__(self, model: torch.nn.Module, config: dict, path: str, device: str, batch_size: int = 1024) -> None:
        self.model = model.eval().to(device)
        self.config = config
        self.batch_size = batch_size
        self.lookback, self.horizon = int(config["lookback"]), int(config["horizon"])
        self.n_variates = int(config["n_variates"])
        levels = getattr(model, "levels", None)
        self.quantile_levels = tuple(float(q) for q in levels) if levels else None
        super().__init__(str(path), hash_checkpoint(path), device, d_model=0)

    def check_window(self, lookback: int, horizon: int) -> None:
        if lookback < self.lookback:
            raise DistiltsError(
                f"The teacher student {self.path} reads {self.lookback} steps, but the windows have {lookback}: "
                f"distil with --lookback {self.lookback} or more (the teacher reads the last {self.lookback})."
            )
        if horizon > self.horizon:
            raise DistiltsError(
                f"The teacher student {self.path} forecasts {self.horizon} steps, but horizon {horizon} was asked "
                f"for: distil with --horizon {self.horizon} or less, or train a teacher for horizon {horizon}."
            )

    def _predict(self, x: np.ndarray, horizon: int, hidden: bool, quantiles: bool) -> TeacherOutput:
        """Forecast `[B, H, D]` (and the quantiles `[B, H, D, Q]`) in the scale of `x`; no hidden states."""
        x = np.asarray(x, dtype=np.float32)
        b, length, d = x.shape
        self.check_window(length, horizon)
        if hidden:
            raise DistiltsError(f"The teacher student {self.path} has no hidden states for FTA: use --beta 0.")
        if d != self.n_variates and self.n_variates != 1:
            raise DistiltsError(
                f"The teacher student {self.path} forecasts {self.n_variates} variates together, but the windows "
                f"have {d}: distil on data with its {self.n_variates} columns, or use a univariate teacher student."
            )
        if quantiles:
            self.require_quantiles()
        windows = x[:, -self.lookback :]
        if d != self.n_variates:  # univariate teacher: each variate on its own
            windows = windows.transpose(0, 2, 1).reshape(b * d, self.lookback, 1)
        out = self._run(windows)[:, :horizon]  # [N, H, V] or [N, H, V, Q]
        if d != self.n_variates:
            out = out[:, :, 0]  # [B*D, H] or [B*D, H, Q]
            out = out.reshape(b, d, horizon, *out.shape[2:]).swapaxes(1, 2)
        if self.quantile_levels is None:
            return TeacherOutput(np.ascontiguousarray(out, dtype=np.float32))
        point = out[..., self.quantile_levels.index(0.5)]
        q = np.ascontiguousarray(out, dtype=np.float32) if quantiles else None
        return TeacherOutput(np.ascontiguousarray(point, dtype=np.float32), None, q)

    def _run(self, windows: np.ndarray) -> np.ndarray:
        outs = []
        with torch.inference_mode():
            for lo in range(0, len(windows), self.batch_size):
                xb = torch.from_numpy(np.ascontiguousarray(windows[lo : lo + self.batch_size])).to(self.device)
                outs.append(self.model(xb).float().cpu().numpy())
        if outs:
            return np.concatenate(outs)
        shape = (0, self.horizon, windows.shape[2]) + ((len(self.quantile_levels),) if self.quantile_levels else ())
        return np.zeros(shape, np.float32)

    @property
    def info(self) -> dict:
        return {**super().info, "student": self.config["student"]["name"], "lookback": self.lookback}


def check_equivariant(teacher: StudentTeacher) -> None:
    """ModelDirError unless the student normalizes each window itself (forecast(a*x + b) = a*forecast(x) + b)."""
    rng = np.random.default_rng(0)
    steps = np.arange(teacher.lookback, dtype=np.float32)
    x = (np.sin(2 * np.pi * steps / 24)[None, :, None] + 0.3 * rng.standard_normal((2, teacher.lookback, 1))).astype(
        np.float32
    ) * np.ones((1, 1, teacher.n_variates), np.float32)
    a, b = 37.0, 500.0
    base = teacher._run(x)
    moved = teacher._run(a * x + b)
    err = float(np.abs(moved - (a * base + b)).max() / (a * (np.abs(base).max() + 1e-6)))
    if not np.isfinite(err) or err > EQUIVARIANCE_TOL:
        raise ModelDirError(
            f"The student in {teacher.path} does not normalize its windows (no RevIN / window norm: trained with "
            "--no-revin or -O norm=none), so its forecasts depend on the scale it was trained on and it cannot "
            "teach windows of another scale. Distil the teacher student with instance normalization (the default)."
        )


def load(path: str, device: str = "auto") -> StudentTeacher:
    """Load the student of a `distilts distill` output directory as a teacher (safetensors only)."""
    local = Path(path).expanduser()
    if not local.is_dir():
        raise ModelDirError(
            f"Teacher student directory {local} does not exist: pass the --out directory of a finished "
            "`distilts distill` run (config.json + model.safetensors)."
        )
    model, config = load_student_dir(local)
    if any(getattr(model, "covariate_dims", ()) or ()):
        raise ModelDirError(
            f"The student in {local} takes covariates; a teacher student forecasts from the target alone. "
            "Use a student distilled without --past/--future/--static columns."
        )
    levels = getattr(model, "levels", None)
    if levels and 0.5 not in levels:
        raise ModelDirError(f"The quantile student in {local} has no 0.5 level to give as its point forecast.")
    teacher = StudentTeacher(model, config, str(local), resolve_device(device))
    check_equivariant(teacher)
    return teacher
