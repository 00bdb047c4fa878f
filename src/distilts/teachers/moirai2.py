"""Moirai-2 (uni2ts 2.0 `uni2ts.model.moirai2`): a decoder-only transformer over 16-step patches that
outputs quantiles, several patches per step.

Loading: `Moirai2Module.from_pretrained(dir, strict=True)` on a local directory (config.json +
model.safetensors, as its PyTorchModelHubMixin `save_pretrained` writes them) or a hub id.
Point forecast: the 0.5 quantile of `Moirai2Forecast`'s quantile output (its own recursive
multi-quantile decoding past `num_predict_token` patches). Deterministic.
Variates: forecast one by one (`target_dim=1`), as uni2ts's Moirai-2 predictor does ("only
support univariate forecast now").
Hidden states: the transformer's output (`module.encoder`, after its final norm; causal, so
token i has seen patches 0..i) for the ceil(L / patch_size) context patches of the first model call,
captured with a forward hook; the prediction tokens are dropped.
Context: context + horizon patches must fit the model's `max_seq_len` (512 patches = 8192 steps
for Moirai-2.0-R-small); a longer window is refused.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

import torch

from distilts.errors import DistiltsError, ModelDirError
from distilts.teachers.base import hash_checkpoint, resolve_checkpoint, resolve_device
from distilts.teachers.moirai import Uni2tsTeacher, import_uni2ts

DEFAULT_PATH = "Salesforce/moirai-2.0-R-small"

# Published config of Salesforce/moirai-2.0-R-small (benchmarks/teacher-configs/moirai-2.0-r-small.json).
SMALL_CONFIG: dict[str, Any] = {
    "attn_dropout_p": 0.0,
    "d_ff": 1024,
    "d_model": 384,
    "dropout_p": 0.0,
    "max_seq_len": 512,
    "num_layers": 6,
    "num_predict_token": 4,
    "patch_size": 16,
    "quantile_levels": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
    "scaling": True,
}
TINY = {"d_model": 64, "d_ff": 128, "num_layers": 2}  # uni2ts uses d_model // 64 heads


def _moirai2() -> Any:
    return import_uni2ts("moirai2", "Moirai-2")


class Moirai2Teacher(Uni2tsTeacher):
    name = "moirai-2"

    def __init__(self, module: Any, path: str, checkpoint_hash: str, device: str) -> None:
        if 0.5 not in module.quantile_levels:
            raise ModelDirError(f"this Moirai-2 has no 0.5 quantile (quantile_levels {list(module.quantile_levels)}).")
        self.module = module
        super().__init__(path, checkpoint_hash, device, int(module.d_model))
        self.patch_size = int(module.patch_size)
        self._median = list(module.quantile_levels).index(0.5)
        self.quantile_levels = tuple(float(v) for v in module.quantile_levels)
        self._forecasters: dict[tuple[int, int], Any] = {}

    def check_window(self, lookback: int, horizon: int) -> None:
        tokens = math.ceil(lookback / self.patch_size) + math.ceil(horizon / self.patch_size)
        if tokens > self.module.max_seq_len:
            most = (self.module.max_seq_len - math.ceil(horizon / self.patch_size)) * self.patch_size
            raise DistiltsError(
                f"Moirai-2 sees at most {self.module.max_seq_len} patches of {self.patch_size} steps (context + "
                f"horizon, its max_seq_len); --lookback {lookback} with --horizon {horizon} needs {tokens}. "
                f"Use --lookback {max(most, 0)} or less."
            )

    def _forecaster(self, lookback: int, horizon: int) -> Any:
        key = (lookback, horizon)
        if key not in self._forecasters:
            self._forecasters[key] = (
                _moirai2()
                .Moirai2Forecast(
                    module=self.module,
                    prediction_length=horizon,
                    context_length=lookback,
                    target_dim=1,
                    feat_dynamic_real_dim=0,
                    past_feat_dynamic_real_dim=0,
                )
                .to(self.device)
                .eval()
            )  # the LightningModule's own .device places the tensors it builds
        return self._forecasters[key]

    def _point(self, quantiles: torch.Tensor) -> torch.Tensor:
        return quantiles[:, self._median]  # quantiles [N, Q, H]

    def _quantiles(self, quantiles: torch.Tensor) -> torch.Tensor:
        return quantiles.transpose(1, 2)  # [N, H, Q] at its native quantile_levels

    @property
    def info(self) -> dict:
        return {
            **super().info,
            "patch_size": self.patch_size,
            "point": "0.5 quantile (recursive multi-quantile decoding)",
            "hidden": "transformer output for the context patch tokens (causal)",
        }


def load(path: str = DEFAULT_PATH, device: str = "auto") -> Moirai2Teacher:
    """Moirai-2 teacher from a local checkpoint directory (config.json + model.safetensors) or hub id."""
    local = resolve_checkpoint(path, "moirai-2", required=("config.json", "model.safetensors"))
    config = json.loads((local / "config.json").read_text())
    if "quantile_levels" not in config or "patch_size" not in config:
        hint = " It looks like a Moirai 1.x checkpoint: use --teacher moirai." if "patch_sizes" in config else ""
        raise ModelDirError(f"{local}/config.json is not a Moirai-2 (uni2ts Moirai2Module) config.{hint}")
    moirai2 = _moirai2()
    dev = resolve_device(device)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # uni2ts / hub mixin chatter
            module = moirai2.Moirai2Module.from_pretrained(str(local), map_location=dev, strict=True)
    except RuntimeError as exc:  # missing / unexpected keys, wrong shapes
        raise ModelDirError(f"{local} does not match its config.json: {str(exc).splitlines()[0]}") from None
    module.to(dev).eval()
    return Moirai2Teacher(module, path, hash_checkpoint(local), dev)


def save_random_checkpoint(
    directory: str | Path, *, seed: int = 0, tiny: bool = True, config_overrides: dict | None = None
) -> Path:
    """Write a randomly initialised Moirai-2 (config.json + model.safetensors) via save_pretrained.

    Its forecasts are meaningless: it exists to test loading and to time the real shapes (tiny=False).
    """
    moirai2 = _moirai2()
    cfg = {**SMALL_CONFIG, **(TINY if tiny else {}), **(config_overrides or {})}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = moirai2.Moirai2Module(**{**cfg, "quantile_levels": tuple(cfg["quantile_levels"])})
    directory = Path(directory)
    module.save_pretrained(directory)
    return directory
