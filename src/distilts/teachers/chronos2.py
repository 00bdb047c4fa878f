"""Chronos-2 (encoder-only, quantile heads, group attention across variates) via chronos-forecasting 2.x.

Loading: `Chronos2Pipeline.from_pretrained(dir, dtype=float32, use_safetensors=True)` on a local
directory (config.json + model.safetensors, as `Chronos2Model.save_pretrained` writes them) or a
hub id; never remote code.
Point forecast: the 0.5 quantile from the pipeline's own `predict_quantiles` (Chronos-2 is trained
on 21 quantiles, 0.5 among them; its pipeline also returns it as the "mean"). Deterministic. Past
`max_output_patches * output_patch_size` steps (1024 for amazon/chronos-2) the pipeline's own
long-horizon rollout is used.
Multivariate: by default the D variates of a window are ONE task (the pipeline's 3-D input
`[B, D, L]`): the model's group attention mixes them, as Chronos-2 forecasts a multivariate series.
`multivariate=False` forecasts each variate on its own (`[B*D, 1, L]`).
Hidden states: the encoder's last hidden state (after its final layer norm) for the
ceil(L / patch) context patches of the forecast call (captured with a forward hook, so --hidden
costs no extra model call); the [REG] token and the future-patch tokens are dropped.
Context: a lookback longer than the model's `context_length` (8192) is refused (the pipeline would
silently cut it).
Covariates (`predict(covariates=...)`): the pipeline's dict inputs, one per task: `target`, `past_covariates`
(past-only columns and the lookback of the known-future ones) and `future_covariates` (the known-future
columns over the horizon), as `predict_df(df, future_df=...)` builds them. Static covariates have no
Chronos-2 input and are left out. Hidden states keep the target rows of each task's group (its covariates
follow the targets in the group).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from chronos import Chronos2Pipeline
from chronos.chronos2 import Chronos2Model
from chronos.chronos2.config import Chronos2CoreConfig

from distilts.errors import DistiltsError, ModelDirError
from distilts.teachers.base import LevelRunTeacher, hash_checkpoint, resolve_checkpoint, resolve_device, to_numpy
from distilts.teachers.chronos import _quiet

DEFAULT_PATH = "amazon/chronos-2"

# Published config of amazon/chronos-2 (119.5M parameters; benchmarks/teacher-configs/chronos-2.json).
QUANTILES_21 = [
    0.01,
    0.05,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.35,
    0.4,
    0.45,
    0.5,
    0.55,
    0.6,
    0.65,
    0.7,
    0.75,
    0.8,
    0.85,
    0.9,
    0.95,
    0.99,
]
BASE_CONFIG: dict[str, Any] = {
    "architectures": ["Chronos2Model"],
    "chronos_pipeline_class": "Chronos2Pipeline",
    "chronos_config": {
        "context_length": 8192,
        "input_patch_size": 16,
        "input_patch_stride": 16,
        "max_output_patches": 64,
        "output_patch_size": 16,
        "quantiles": QUANTILES_21,
        "time_encoding_scale": 8192,
        "use_arcsinh": True,
        "use_reg_token": True,
    },
    "d_ff": 3072,
    "d_kv": 64,
    "d_model": 768,
    "dense_act_fn": "relu",
    "dropout_rate": 0.1,
    "feed_forward_proj": "relu",
    "initializer_factor": 0.05,
    "is_gated_act": False,
    "layer_norm_epsilon": 1e-6,
    "model_type": "t5",
    "num_heads": 12,
    "num_layers": 12,
    "pad_token_id": 0,
    "reg_token_id": 1,
    "rope_theta": 10000.0,
    "torch_dtype": "float32",
    "use_cache": True,
    "vocab_size": 2,
}
TINY = {"d_model": 32, "d_ff": 64, "d_kv": 8, "num_heads": 4, "num_layers": 2}


class Chronos2Teacher(LevelRunTeacher):
    name = "chronos-2"
    takes_covariates = True

    def __init__(
        self, pipeline: Any, path: str, checkpoint_hash: str, device: str, *, multivariate: bool = True
    ) -> None:
        self.pipeline = pipeline
        self.joint = multivariate  # the D variates of a window as one task (the pipeline's 3-D input)
        self.config = pipeline.model.chronos_config
        super().__init__(path, checkpoint_hash, device, int(pipeline.model.config.d_model))
        self.quantile_levels = tuple(float(v) for v in self.config.quantiles)  # its 21 heads

    def check_window(self, lookback: int, horizon: int) -> None:
        if lookback > self.config.context_length:
            raise DistiltsError(
                f"Chronos-2 takes at most {self.config.context_length} context steps (this checkpoint's "
                f"context_length); --lookback {lookback} is longer. "
                f"Use --lookback {self.config.context_length} or less."
            )

    def hidden_tokens(self, lookback: int) -> int:
        return math.ceil(min(lookback, self.config.context_length) / self.config.input_patch_size)

    def _run(
        self, series: np.ndarray, horizon: int, hidden: bool, levels: list[float]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        length = series.shape[-1]
        tasks = torch.from_numpy(series if self.joint else series.reshape(-1, 1, length))  # [tasks, variates, L]
        n = tasks.shape[0] * tasks.shape[1]
        inputs, n_cov = self.covariate_inputs(tasks, length)
        captured: list[torch.Tensor] = []
        encoder = self.pipeline.model.encoder
        hook = (
            encoder.register_forward_hook(lambda _m, _i, out: captured.append(out.last_hidden_state))
            if hidden
            else None
        )
        try:
            with torch.inference_mode(), _quiet():
                # batch_size = all B*D series: one first model call whose rows are (window, variate) in order
                quantiles, _ = self.pipeline.predict_quantiles(
                    inputs, prediction_length=horizon, quantile_levels=levels, batch_size=n + n_cov * len(tasks)
                )
        finally:
            if hook is not None:
                hook.remove()
        q = torch.stack(list(quantiles)).reshape(n, horizon, len(levels))
        point = q[..., levels.index(0.5)]
        states = None
        if hidden:  # the first model call's rows are (task, group member) in order; its first tokens the context
            h = captured[0][:, : self.hidden_tokens(length)]
            if n_cov:  # keep each group's target rows (its covariates follow them)
                h = h.reshape(len(tasks), tasks.shape[1] + n_cov, *h.shape[1:])[:, : tasks.shape[1]].flatten(0, 1)
            states = to_numpy(h)
        return to_numpy(point), to_numpy(q), states

    def covariate_inputs(self, tasks: torch.Tensor, length: int) -> tuple[Any, int]:
        """The pipeline's input for `tasks [T, V, L]` and the number of covariates per task: the tensor itself
        without covariates, else one dict per task (covariates repeated for each variate's task)."""
        cov = self.call_covariates
        if not cov or ("past" not in cov and "future" not in cov):
            return tasks, 0
        past, future = cov.get("past"), cov.get("future")
        blocks = [a for a in (past, future) if a is not None]
        per_window = tasks.shape[0] // len(blocks[0])
        inputs: list[dict[str, Any]] = []
        for i in range(tasks.shape[0]):
            w = i // per_window  # the window of task i (per-variate mode: D tasks per window)
            past_cov = {} if past is None else {f"past_{j}": past[w, :, j] for j in range(past.shape[2])}
            fut = {}
            if future is not None:
                past_cov |= {f"future_{j}": future[w, :length, j] for j in range(future.shape[2])}
                fut = {f"future_{j}": future[w, length:, j] for j in range(future.shape[2])}
            inputs.append({"target": tasks[i], "past_covariates": past_cov, "future_covariates": fut})
        return inputs, len(inputs[0]["past_covariates"])

    @property
    def info(self) -> dict:
        return {
            **super().info,
            "multivariate": self.joint,
            "point": "0.5 quantile head"
            + (" (variates of a window forecast jointly)" if self.joint else " (each variate on its own)"),
            "hidden": "encoder last hidden state, one token per 16-step context patch ([REG], future dropped)",
        }


def load(path: str = DEFAULT_PATH, device: str = "auto", *, multivariate: bool = True) -> Chronos2Teacher:
    """Chronos-2 teacher from a local checkpoint directory (config.json + model.safetensors) or hub id."""
    local = resolve_checkpoint(path, "chronos-2", required=("config.json",))
    config = json.loads((local / "config.json").read_text())
    pipeline_class = config.get("chronos_pipeline_class")
    if "chronos_config" not in config:
        raise ModelDirError(f"{local}/config.json has no chronos_config: this is not a Chronos-2 checkpoint.")
    if pipeline_class != "Chronos2Pipeline" or config.get("architectures", [None])[0] != "Chronos2Model":
        other = {"ChronosBoltPipeline": "chronos-bolt", "ChronosPipeline": "chronos", None: "chronos"}.get(
            pipeline_class
        )
        hint = f" Use --teacher {other}." if other else ""
        raise ModelDirError(
            f"{local} is a {pipeline_class or 'ChronosPipeline'} checkpoint, not a Chronos-2 one.{hint}"
        )
    dev = resolve_device(device)
    with _quiet():
        pipeline = Chronos2Pipeline.from_pretrained(str(local), dtype=torch.float32, use_safetensors=True)
    pipeline.model.to(dev).eval()
    return Chronos2Teacher(pipeline, path, hash_checkpoint(local), dev, multivariate=multivariate)


def checkpoint_config(tiny: bool = True, overrides: dict | None = None) -> dict:
    """config.json contents: amazon/chronos-2's, or its tiny trunk (the patching/quantiles stay official)."""
    cfg = copy.deepcopy(BASE_CONFIG)
    if tiny:
        cfg.update(TINY)
    for key, value in (overrides or {}).items():
        if key == "chronos_config":
            cfg["chronos_config"].update(value)
        else:
            cfg[key] = value
    return cfg


def save_random_checkpoint(
    directory: str | Path, *, seed: int = 0, tiny: bool = True, config_overrides: dict | None = None
) -> Path:
    """Write a randomly initialised Chronos-2 (config.json + model.safetensors) via save_pretrained.

    Its forecasts are meaningless: it exists to test loading and to time the real shapes (tiny=False).
    """
    cfg = checkpoint_config(tiny, config_overrides)
    directory = Path(directory)
    with torch.random.fork_rng(devices=[]), _quiet():
        torch.manual_seed(seed)
        model = Chronos2Model(Chronos2CoreConfig(**cfg))
        model.save_pretrained(directory, safe_serialization=True)
    return directory
