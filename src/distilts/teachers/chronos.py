"""Chronos (T5 tokens, sampled) and Chronos-Bolt (patches, quantile heads) via chronos-forecasting.

Point forecast: the 0.5 quantile from the pipeline's own `predict_quantiles`; quantiles
(`predict(quantiles=True)`): the same call at 0.1 ... 0.9 (Bolt: its native quantile heads; T5: the
empirical quantiles of the `num_samples` sampled paths, sample count in `info`).
  - Chronos-T5: the median of `num_samples` (default 20) sampled paths, linearly interpolated
    between the middle two (torch.quantile); sampling is seeded per call (`seed`, default 0) in a
    forked RNG, so equal input batches give equal forecasts and the global RNG is untouched.
  - Chronos-Bolt: the 0.5 quantile head (deterministic). Past the model's 64-step head, the
    pipeline's own rollout (each quantile fed back, quantiles of the 9x9 paths) is used.
Hidden states: the encoder's last hidden state (`pipeline.embed`), one token per context step
(T5, the EOS token dropped) or per 16-step patch (Bolt, the [REG] token dropped); contexts longer
than the model's context length are cut to their last `context_length` steps, as the pipeline does.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from chronos import BaseChronosPipeline
from chronos.chronos_bolt import ChronosBoltModelForForecasting
from transformers import T5Config, T5ForConditionalGeneration
from transformers.utils import logging as hf_logging

from distilts.errors import ModelDirError
from distilts.quantiles import DECILES
from distilts.teachers.base import LevelRunTeacher, hash_checkpoint, resolve_checkpoint, resolve_device, to_numpy
from distilts.teachers.sampling import seeded

DEFAULT_T5 = "amazon/chronos-t5-small"
DEFAULT_BOLT = "amazon/chronos-bolt-small"

# Published config of amazon/chronos-t5-small (a copy is in shared/teacher-configs).
T5_SMALL_CONFIG: dict[str, Any] = {
    "architectures": ["T5ForConditionalGeneration"],
    "d_ff": 2048,
    "d_kv": 64,
    "d_model": 512,
    "decoder_start_token_id": 0,
    "dense_act_fn": "relu",
    "dropout_rate": 0.1,
    "eos_token_id": 1,
    "feed_forward_proj": "relu",
    "initializer_factor": 0.05,
    "is_encoder_decoder": True,
    "is_gated_act": False,
    "layer_norm_epsilon": 1e-6,
    "model_type": "t5",
    "n_positions": 512,
    "num_decoder_layers": 6,
    "num_heads": 8,
    "num_layers": 6,
    "pad_token_id": 0,
    "relative_attention_max_distance": 128,
    "relative_attention_num_buckets": 32,
    "torch_dtype": "float32",
    "use_cache": True,
    "vocab_size": 4096,
    "chronos_config": {
        "tokenizer_class": "MeanScaleUniformBins",
        "tokenizer_kwargs": {"low_limit": -15.0, "high_limit": 15.0},
        "n_tokens": 4096,
        "n_special_tokens": 2,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "use_eos_token": True,
        "model_type": "seq2seq",
        "context_length": 512,
        "prediction_length": 64,
        "num_samples": 20,
        "temperature": 1.0,
        "top_k": 50,
        "top_p": 1.0,
    },
}
# The layout of amazon/chronos-bolt-small's config (T5 trunk + chronos_config for patches/quantiles).
BOLT_SMALL_CONFIG: dict[str, Any] = {
    **{k: v for k, v in T5_SMALL_CONFIG.items() if k != "chronos_config"},
    "architectures": ["ChronosBoltModelForForecasting"],
    "chronos_pipeline_class": "ChronosBoltPipeline",
    "classifier_dropout": 0.0,
    "reg_token_id": 1,
    "vocab_size": 2,
    "chronos_config": {
        "context_length": 2048,
        "input_patch_size": 16,
        "input_patch_stride": 16,
        "prediction_length": 64,
        "quantiles": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        "use_reg_token": True,
    },
}
# Shrinks the trunk for tests (the value vocabulary / patching stay official).
TINY_TRUNK = {"d_model": 32, "d_ff": 64, "d_kv": 8, "num_heads": 4, "num_layers": 2, "num_decoder_layers": 2}


class ChronosTeacher(LevelRunTeacher):
    """Shared part of both Chronos families (channel-independent): point forecast and hidden states."""

    def __init__(self, name: str, pipeline: Any, path: str, checkpoint_hash: str, device: str, seed: int = 0) -> None:
        self.name = name
        self.pipeline = pipeline
        self.seed = seed
        self.config = pipeline.inner_model.config
        super().__init__(path, checkpoint_hash, device, int(self.config.d_model))

    # --- family specifics -------------------------------------------------------------------
    quantile_levels = DECILES  # Bolt's nine heads; T5: empirical quantiles of its samples

    def _quantiles(self, series: torch.Tensor, horizon: int, levels: list[float]) -> torch.Tensor:
        """[N, L] -> [N, H, Q] at `levels` (the pipeline's own `predict_quantiles`)."""
        quantiles, _ = self.pipeline.predict_quantiles(series, prediction_length=horizon, quantile_levels=levels)
        return quantiles

    def _drop_special(self, emb: torch.Tensor) -> torch.Tensor:
        """Keep only the tokens that stand for context steps/patches."""
        raise NotImplementedError

    # --- the Teacher interface ----------------------------------------------------------------
    def _run(
        self, series: np.ndarray, horizon: int, hidden: bool, levels: list[float]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        s = torch.from_numpy(series)
        with torch.inference_mode(), _quiet(), seeded(self.seed, self.device):  # same seed: same samples
            q = self._quantiles(s, horizon, levels)
            emb = self._drop_special(self.pipeline.embed(s)[0]) if hidden else None
        return to_numpy(q[..., levels.index(0.5)]), to_numpy(q), None if emb is None else to_numpy(emb)

    @property
    def info(self) -> dict:
        return {**super().info, "seed": self.seed}


class ChronosT5Teacher(ChronosTeacher):
    def __init__(self, *args: Any, num_samples: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.chronos_config = self.pipeline.model.config
        self.num_samples = int(num_samples or self.chronos_config.num_samples)

    def _quantiles(self, series: torch.Tensor, horizon: int, levels: list[float]) -> torch.Tensor:
        quantiles, _ = self.pipeline.predict_quantiles(
            series, prediction_length=horizon, quantile_levels=levels, num_samples=self.num_samples
        )
        return quantiles

    def _drop_special(self, emb: torch.Tensor) -> torch.Tensor:
        return emb[:, :-1] if self.chronos_config.use_eos_token else emb

    def hidden_tokens(self, lookback: int) -> int:
        return min(lookback, self.chronos_config.context_length)

    @property
    def info(self) -> dict:
        return {
            **super().info,
            "point": f"median (0.5 quantile) of {self.num_samples} sampled paths",
            "quantiles": f"empirical quantiles of {self.num_samples} sampled paths",
            "num_samples": self.num_samples,
            "hidden": "encoder last hidden state, one token per context step (EOS dropped)",
        }


class ChronosBoltTeacher(ChronosTeacher):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.chronos_config = self.pipeline.model.chronos_config
        self.quantile_levels = tuple(float(v) for v in self.chronos_config.quantiles)  # its native heads

    def _drop_special(self, emb: torch.Tensor) -> torch.Tensor:
        return emb[:, :-1] if self.chronos_config.use_reg_token else emb

    def hidden_tokens(self, lookback: int) -> int:
        c = self.chronos_config
        n = math.ceil(min(lookback, c.context_length) / c.input_patch_size) * c.input_patch_size
        return (n - c.input_patch_size) // c.input_patch_stride + 1

    @property
    def info(self) -> dict:
        return {
            **super().info,
            "point": "0.5 quantile head",
            "hidden": "encoder last hidden state, one token per input patch ([REG] dropped)",
        }


# --- loading -------------------------------------------------------------------------------------
def _load(path: str, device: str, family: str) -> tuple[Any, Path, str]:
    local = resolve_checkpoint(path, family)
    config = json.loads((local / "config.json").read_text())
    if "chronos_config" not in config and "chronos_pipeline_class" not in config:
        raise ModelDirError(f"{local}/config.json has no chronos_config: this is not a Chronos checkpoint.")
    pipeline_class = config.get("chronos_pipeline_class", "ChronosPipeline")
    want = "ChronosBoltPipeline" if family == "chronos-bolt" else "ChronosPipeline"
    if pipeline_class != want:
        other = {
            "ChronosBoltPipeline": "chronos-bolt",
            "ChronosPipeline": "chronos",
            "Chronos2Pipeline": "chronos-2",
        }.get(pipeline_class)
        hint = f" Use --teacher {other}." if other else " Only Chronos (T5), Chronos-Bolt and Chronos-2 are supported."
        raise ModelDirError(f"{local} is a {pipeline_class} checkpoint, not a {family} one.{hint}")
    if family == "chronos" and config["chronos_config"].get("model_type", "seq2seq") != "seq2seq":
        raise ModelDirError(f"{local} is a causal Chronos model; only the seq2seq (T5) models are supported.")
    dev = resolve_device(device)
    with _quiet():
        # local directory, safetensors only, never remote code; float32 so caches are reproducible
        hf_logging.disable_progress_bar()  # no "Loading weights" bar on every load
        pipeline = BaseChronosPipeline.from_pretrained(str(local), dtype=torch.float32, use_safetensors=True)
    pipeline.inner_model.to(dev).eval()
    return pipeline, local, dev


def load_t5(
    path: str = DEFAULT_T5, device: str = "auto", *, num_samples: int | None = None, seed: int = 0
) -> ChronosT5Teacher:
    """Chronos (T5) teacher from a local checkpoint directory or hub id."""
    pipeline, local, dev = _load(path, device, "chronos")
    return ChronosT5Teacher("chronos", pipeline, path, hash_checkpoint(local), dev, seed=seed, num_samples=num_samples)


def load_bolt(path: str = DEFAULT_BOLT, device: str = "auto", *, seed: int = 0) -> ChronosBoltTeacher:
    """Chronos-Bolt teacher from a local checkpoint directory or hub id."""
    pipeline, local, dev = _load(path, device, "chronos-bolt")
    return ChronosBoltTeacher("chronos-bolt", pipeline, path, hash_checkpoint(local), dev, seed=seed)


VARIANTS = {"chronos": (DEFAULT_T5, load_t5), "chronos-bolt": (DEFAULT_BOLT, load_bolt)}


# --- random checkpoints in the official layout (tests, honest timing) ------------------------------
def checkpoint_config(family: str = "chronos", tiny: bool = True, overrides: dict | None = None) -> dict:
    """config.json contents for `family`: the published small model's, or its tiny trunk."""
    if family not in VARIANTS:
        raise ValueError(f"family must be one of {list(VARIANTS)}")
    cfg = copy.deepcopy(BOLT_SMALL_CONFIG if family == "chronos-bolt" else T5_SMALL_CONFIG)
    if tiny:
        cfg.update(TINY_TRUNK)
    for key, value in (overrides or {}).items():
        if key == "chronos_config":
            cfg["chronos_config"].update(value)
        else:
            cfg[key] = value
    return cfg


def save_random_checkpoint(
    directory: str | Path,
    *,
    seed: int = 0,
    tiny: bool = True,
    config_overrides: dict | None = None,
    variant: str = "chronos",
) -> Path:
    """Write a randomly initialised `variant` checkpoint (config.json + model.safetensors) to `directory`.

    Its forecasts are meaningless: it exists to test loading and to time the real shapes (tiny=False).
    """
    directory = Path(directory)
    cfg = checkpoint_config(variant, tiny, config_overrides)
    cls = ChronosBoltModelForForecasting if variant == "chronos-bolt" else T5ForConditionalGeneration
    with torch.random.fork_rng(devices=[]), _quiet():
        torch.manual_seed(seed)
        model = cls(T5Config(**cfg))
        model.save_pretrained(directory, safe_serialization=True)
    return directory


# --- helpers ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the long-horizon advice and transformers' load/progress chatter."""
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    loggers = [
        logging.getLogger(n) for n in ("transformers", *[k for k in logging.root.manager.loggerDict if "chronos" in k])
    ]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="We recommend keeping prediction length")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=False):
            lg.setLevel(level)
        if bars:
            hf_logging.enable_progress_bar()
