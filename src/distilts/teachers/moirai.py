"""Moirai (uni2ts) teacher: a masked encoder over patches that outputs a mixture distribution.

Point forecast: the median (0.5 quantile, torch.quantile) of `num_samples` (default 100, uni2ts's
default) paths sampled from the predicted mixture; sampling is seeded per call in a forked RNG.
Patch size: fixed (default 32, the size Moirai's paper recommends for hourly and minute data);
uni2ts's "auto" mode would spend part of the window on validation, so it is not used.
Hidden states: the output of the transformer encoder (`module.encoder`, after its final norm),
captured with a forward hook, for the ceil(L / patch_size) context tokens (the horizon's masked
tokens are dropped).
Covariates (Moirai, `predict(covariates=...)`): `MoiraiForecast(feat_dynamic_real_dim=F,
past_feat_dynamic_real_dim=P)` with the known-future columns over lookback + horizon as `feat_dynamic_real`
and the past-only ones as `past_feat_dynamic_real` (all observed); the target's tokens come first, so the
hidden states stay its context tokens. Moirai-2 forecasts univariate.

uni2ts 2.0.0 installed with --no-deps (it pins torch<2.5 / numpy 1) works here for this forward
path; its quirks, handled below: `from_pretrained` prints to stdout and loads non-strictly (a
checkpoint with missing keys would silently keep random weights), and it needs d_model % 64 == 0.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distilts.errors import MissingExtraError, ModelDirError
from distilts.quantiles import DECILES
from distilts.teachers.base import Teacher, hash_checkpoint, resolve_checkpoint, resolve_device, to_numpy
from distilts.teachers.sampling import seeded

DEFAULT_PATH = "Salesforce/moirai-1.1-R-small"

# Published config of Salesforce/moirai-1.1-R-small (its PyTorchModelHubMixin config.json).
SMALL_CONFIG: dict[str, Any] = {
    "attn_dropout_p": 0.0,
    "d_model": 384,
    "distr_output": {
        "_target_": "uni2ts.distribution.mixture.MixtureOutput",
        "components": [
            {"_target_": "uni2ts.distribution.student_t.StudentTOutput"},
            {"_target_": "uni2ts.distribution.normal.NormalFixedScaleOutput", "scale": 0.001},
            {"_target_": "uni2ts.distribution.negative_binomial.NegativeBinomialOutput"},
            {"_target_": "uni2ts.distribution.log_normal.LogNormalOutput"},
        ],
    },
    "dropout_p": 0.0,
    "max_seq_len": 512,
    "num_layers": 6,
    "patch_sizes": [8, 16, 32, 64, 128],
    "scaling": True,
}
TINY = {"d_model": 64, "num_layers": 2}  # uni2ts uses d_model // 64 heads


def import_uni2ts(module: str, what: str) -> Any:
    """`uni2ts.model.<module>` with gluonts' json notice silenced; a clear error when uni2ts is missing."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `json`-module")  # gluonts without orjson
        try:
            return importlib.import_module(f"uni2ts.model.{module}")
        except ImportError as exc:
            raise MissingExtraError(
                getattr(exc, "name", None) or "uni2ts",
                "teachers",
                f"the {what} teacher (uni2ts itself: pip install --no-deps uni2ts)",
            ) from exc


def _uni2ts() -> Any:
    return import_uni2ts("moirai", "Moirai")


class Uni2tsTeacher(Teacher):
    """What Moirai and Moirai-2 share: a uni2ts forecaster per (lookback, horizon) over univariate
    series (`target_dim=1`), and the hidden states of `module.encoder` for the context patches."""

    module: Any
    device: str
    patch_size: int

    def _forecaster(self, lookback: int, horizon: int) -> Any:
        """The family's uni2ts `...Forecast` module for these windows (cached)."""
        raise NotImplementedError

    def _point(self, output: torch.Tensor) -> torch.Tensor:
        """`[N, H]` point forecast from the forecaster's output."""
        raise NotImplementedError

    def _quantiles(self, output: torch.Tensor) -> torch.Tensor:
        """`[N, H, Q]` quantiles at `quantile_levels` from the forecaster's output."""
        raise NotImplementedError

    def _sampling(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def hidden_tokens(self, lookback: int) -> int:
        return math.ceil(lookback / self.patch_size)

    def _forecast(self, series: np.ndarray, horizon: int, hidden: bool) -> tuple[np.ndarray, np.ndarray | None]:
        output, states = self._run(series, horizon, hidden)
        return to_numpy(self._point(output)), states

    def _forecast_quantiles(
        self, series: np.ndarray, horizon: int, hidden: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        output, states = self._run(series, horizon, hidden)
        return to_numpy(self._point(output)), to_numpy(self._quantiles(output)), states

    def _run(self, series: np.ndarray, horizon: int, hidden: bool) -> tuple[torch.Tensor, np.ndarray | None]:
        length = series.shape[1]
        target = torch.from_numpy(series[..., None]).to(self.device)  # [N, L, 1]
        features = self.dynamic_features(series.shape[0])
        dims = tuple(
            int(features[k].shape[-1]) if k in features else 0 for k in ("feat_dynamic_real", "past_feat_dynamic_real")
        )
        forecaster = self._forecaster(length, horizon, *dims) if any(dims) else self._forecaster(length, horizon)
        captured: list[torch.Tensor] = []
        hook = self.module.encoder.register_forward_hook(lambda _m, _i, out: captured.append(out)) if hidden else None
        try:
            with torch.inference_mode(), self._sampling():
                output = forecaster(
                    past_target=target,
                    past_observed_target=torch.ones_like(target, dtype=torch.bool),
                    past_is_pad=torch.zeros(target.shape[:2], dtype=torch.bool, device=self.device),
                    **features,
                )
        finally:
            if hook is not None:
                hook.remove()
        return output, to_numpy(captured[0][:, : self.hidden_tokens(length)]) if hidden else None

    def dynamic_features(self, n: int) -> dict[str, torch.Tensor]:
        """uni2ts' `feat_dynamic_real` (known-future, `[N, L + H, F]`) and `past_feat_dynamic_real` (past-only,
        `[N, L, P]`) with their observed masks, for `n` series (B windows x D variates, window-major), from this
        call's covariates; {} without them."""
        cov = self.call_covariates or {}
        out: dict[str, torch.Tensor] = {}
        for role, name in (("future", "feat_dynamic_real"), ("past", "past_feat_dynamic_real")):
            block = cov.get(role)
            if block is None:
                continue
            window = np.arange(n) // (n // len(block))
            values = torch.from_numpy(np.ascontiguousarray(block[window], dtype=np.float32)).to(self.device)
            out[name] = values
            observed = "observed_feat_dynamic_real" if role == "future" else "past_observed_feat_dynamic_real"
            out[observed] = torch.ones_like(values, dtype=torch.bool)
        return out


class MoiraiTeacher(Uni2tsTeacher):
    name = "moirai"
    takes_covariates = True  # feat_dynamic_real (known-future) and past_feat_dynamic_real (past-only)

    def __init__(
        self,
        module: Any,
        path: str,
        checkpoint_hash: str,
        device: str,
        *,
        patch_size: int = 32,
        num_samples: int = 100,
        seed: int = 0,
    ) -> None:
        if patch_size not in module.patch_sizes:
            raise ModelDirError(f"patch size {patch_size} is not one of this Moirai's {list(module.patch_sizes)}.")
        self.module = module
        super().__init__(path, checkpoint_hash, device, int(module.d_model))
        self.patch_size = patch_size
        self.num_samples = num_samples
        self.seed = seed
        self._forecasters: dict[tuple[int, int, int, int], Any] = {}

    def _forecaster(self, lookback: int, horizon: int, n_future: int = 0, n_past: int = 0) -> Any:
        key = (lookback, horizon, n_future, n_past)
        if key not in self._forecasters:
            self._forecasters[key] = (
                _uni2ts()
                .MoiraiForecast(
                    module=self.module,
                    prediction_length=horizon,
                    context_length=lookback,
                    patch_size=self.patch_size,
                    num_samples=self.num_samples,
                    target_dim=1,
                    feat_dynamic_real_dim=n_future,
                    past_feat_dynamic_real_dim=n_past,
                )
                .eval()
            )
        return self._forecasters[key]

    def _sampling(self) -> contextlib.AbstractContextManager:
        return seeded(self.seed, self.device)

    quantile_levels = DECILES  # empirical quantiles of the sampled paths

    def _point(self, samples: torch.Tensor) -> torch.Tensor:
        return torch.quantile(samples.float(), 0.5, dim=1)  # samples [N, S, H]

    def _quantiles(self, samples: torch.Tensor) -> torch.Tensor:
        levels = torch.tensor(self.quantile_levels, dtype=torch.float32, device=samples.device)
        return torch.quantile(samples.float(), levels, dim=1).permute(1, 2, 0)  # [Q, N, H] -> [N, H, Q]

    @property
    def info(self) -> dict:
        return {
            **super().info,
            "patch_size": self.patch_size,
            "num_samples": self.num_samples,
            "seed": self.seed,
            "point": f"median (0.5 quantile) of {self.num_samples} sampled paths",
            "quantiles": f"empirical quantiles of {self.num_samples} sampled paths",
            "hidden": "encoder output for the context patch tokens",
        }


def load(
    path: str = DEFAULT_PATH, device: str = "auto", *, patch_size: int = 32, num_samples: int = 100, seed: int = 0
) -> MoiraiTeacher:
    """Moirai teacher from a local checkpoint directory (config.json + model.safetensors) or hub id."""
    local = resolve_checkpoint(path, "moirai", required=("config.json", "model.safetensors"))
    config = json.loads((local / "config.json").read_text())
    if "distr_output" not in config or "patch_sizes" not in config:
        raise ModelDirError(f"{local}/config.json is not a Moirai (uni2ts MoiraiModule) config.")
    moirai = _uni2ts()
    dev = resolve_device(device)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # uni2ts prints "Loading weights from local directory"
            module = moirai.MoiraiModule.from_pretrained(str(local), map_location=dev, strict=True)
    except RuntimeError as exc:  # missing / unexpected keys
        raise ModelDirError(f"{local} does not match its config.json: {str(exc).splitlines()[0]}") from None
    module.to(dev).eval()
    return MoiraiTeacher(
        module, path, hash_checkpoint(local), dev, patch_size=patch_size, num_samples=num_samples, seed=seed
    )


def save_random_checkpoint(
    directory: str | Path, *, seed: int = 0, tiny: bool = True, config_overrides: dict | None = None
) -> Path:
    """Write a randomly initialised Moirai (config.json + model.safetensors) via save_pretrained.

    Its forecasts are meaningless: it exists to test loading and to time the real shapes (tiny=False).
    """
    moirai = _uni2ts()
    from uni2ts.model.moirai.module import decode_distr_output

    cfg = {**SMALL_CONFIG, **(TINY if tiny else {}), **(config_overrides or {})}
    kwargs = {**cfg, "distr_output": decode_distr_output(cfg["distr_output"]), "patch_sizes": tuple(cfg["patch_sizes"])}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = moirai.MoiraiModule(**kwargs)
    directory = Path(directory)
    module.save_pretrained(directory)
    return directory
