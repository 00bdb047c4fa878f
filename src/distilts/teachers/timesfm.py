"""TimesFM-2.5 (the `timesfm` package 3.x, PyTorch): a decoder-only transformer over 32-step patches
with a 128-step point head and a quantile head.

Loading: `TimesFM_2p5_200M_torch.from_pretrained(dir, torch_compile=False)` on a local directory
(model.safetensors + config.json, as the package's `save_pretrained` writes them) or a hub id.
A TimesFM-2.5 checkpoint carries no architecture (the package hard-codes the 200M definition and
its config.json only holds loader flags), so the definition is read from the weights' shapes
(safetensors header: widths, layers, head size); for the released checkpoint that is exactly the
package's `TimesFM_2p5_200M_Definition` and its own classes are used unchanged. A smaller set of
shapes (tests) gets a subclass of the package's module with that definition; weights are loaded by
the package's `load_checkpoint` (strict) either way.
Point forecast: the package's `forecast()` point output (quantile channel 5 = the 0.5 quantile of the
point head, flip-averaged) with the model card's ForecastConfig (normalize_inputs,
use_continuous_quantile_head, force_flip_invariance, fix_quantile_crossing) except
`infer_is_positive=False`: the windows are z-scored, so "all values >= 0" carries no meaning and
must not clip a forecast. Deterministic.
Variates: forecast one by one (TimesFM is univariate).
Hidden states: the transformer stack's output (`output_embeddings` of the module's forward) for the
ceil(L / 32) context patches of the prefill call on the input (not the sign-flipped call),
captured with a forward hook.
Context: max_context (L rounded up to 32) + horizon (rounded up to 128) must fit the model's
context_limit (16384); a longer window is refused.
Covariates (`predict(covariates=...)`): the package's `forecast_with_covariates` ("xreg + timesfm": an
in-context linear regression on the covariates, then TimesFM on its residuals) with the known-future
columns over lookback + horizon as dynamic numerical covariates and the static ones as static numerical
covariates; past-only columns have no TimesFM input (it needs their horizon values). Hidden states are then
those of the residual series' prefill.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open

from distilts.errors import DistiltsError, MissingExtraError, ModelDirError
from distilts.quantiles import DECILES
from distilts.teachers.base import Teacher, hash_checkpoint, resolve_checkpoint, resolve_device, to_numpy

DEFAULT_PATH = "google/timesfm-2.5-200m-pytorch"
WEIGHTS = "model.safetensors"
TINY = {"model_dims": 32, "hidden_dims": 32, "num_heads": 4, "num_layers": 2}


def _package() -> tuple[Any, Any, Any]:
    """(timesfm, the 2.5 torch module, the 2.5 base module)"""
    try:
        import timesfm
        from timesfm.timesfm_2p5 import timesfm_2p5_base, timesfm_2p5_torch
    except ImportError as exc:
        raise MissingExtraError(getattr(exc, "name", None) or "timesfm", "teachers", "the TimesFM teacher") from exc
    return timesfm, timesfm_2p5_torch, timesfm_2p5_base


# --- the architecture, read from / written to the weights' shapes -------------------------------
def definition_from_shapes(shapes: dict[str, tuple[int, ...]]) -> Any:
    """The package's TimesFM-2.5 definition with the widths, depth and head size of these weights."""
    _, _, base = _package()
    official = base.TimesFM_2p5_200M_Definition()
    layer_ids = {int(m.group(1)) for k in shapes if (m := re.match(r"stacked_xf\.(\d+)\.", k))}
    try:
        tok_h, tok_in = shapes["tokenizer.hidden_layer.weight"]
        tok_out = shapes["tokenizer.output_layer.weight"][0]
        ff_hidden = shapes["stacked_xf.0.ff0.weight"][0]
        head_dim = shapes["stacked_xf.0.attn.per_dim_scale.per_dim_scale"][0]
        heads = {
            name: (shapes[f"{name}.hidden_layer.weight"], shapes[f"{name}.output_layer.weight"][0])
            for name in ("output_projection_point", "output_projection_quantiles")
        }
    except (KeyError, ValueError) as exc:
        raise ModelDirError(f"these weights are not a TimesFM-2.5 model (no tensor {exc}).") from None
    layers = len(layer_ids)
    q = len(official.quantiles) + 1
    xf = official.stacked_transformers.transformer
    return dataclasses.replace(
        official,
        input_patch_len=tok_in // 2,
        output_patch_len=heads["output_projection_point"][1] // q,
        output_quantile_len=heads["output_projection_quantiles"][1] // q,
        tokenizer=dataclasses.replace(official.tokenizer, input_dims=tok_in, hidden_dims=tok_h, output_dims=tok_out),
        stacked_transformers=dataclasses.replace(
            official.stacked_transformers,
            num_layers=layers,
            transformer=dataclasses.replace(
                xf, model_dims=tok_out, hidden_dims=ff_hidden, num_heads=tok_out // head_dim
            ),
        ),
        **{
            name: dataclasses.replace(getattr(official, name), input_dims=w[1], hidden_dims=w[0], output_dims=out)
            for name, (w, out) in heads.items()
        },
    )


def _wrapper_class(definition: Any) -> Any:
    """The package's wrapper class for `definition` (itself for the released 200M definition)."""
    _, tfm, base = _package()
    if definition == base.TimesFM_2p5_200M_Definition():
        return tfm.TimesFM_2p5_200M_torch
    module_cls = type("TimesFM_2p5_torch_module", (tfm.TimesFM_2p5_200M_torch_module,), {"config": definition})

    released: Any = tfm.TimesFM_2p5_200M_torch  # a class of the package, found at run time

    class TimesFM25(released):  # only the module's size differs
        def __init__(self, torch_compile: bool = False, config: dict | None = None, **_: Any) -> None:
            self.model = module_cls()
            self.torch_compile = torch_compile
            if config is not None:
                self._hub_mixin_config = config

    return TimesFM25


class TimesFMTeacher(Teacher):
    name = "timesfm"

    def __init__(self, wrapper: Any, path: str, checkpoint_hash: str, device: str) -> None:
        self.wrapper = wrapper
        self.module = wrapper.model
        super().__init__(path, checkpoint_hash, device, int(self.module.md))
        self.patch = int(self.module.p)

    def _max_context(self, lookback: int) -> int:
        return math.ceil(lookback / self.patch) * self.patch

    def check_window(self, lookback: int, horizon: int) -> None:
        limit = self.module.config.context_limit
        need = self._max_context(lookback) + math.ceil(horizon / self.module.o) * self.module.o
        if need > limit:
            most = (limit - math.ceil(horizon / self.module.o) * self.module.o) // self.patch * self.patch
            raise DistiltsError(
                f"TimesFM-2.5 takes context + horizon up to {limit} steps (context rounded up to {self.patch}, horizon "
                f"to {self.module.o}); --lookback {lookback} with --horizon {horizon} needs {need}. "
                f"Use --lookback {max(most, 0)} or less."
            )

    def hidden_tokens(self, lookback: int) -> int:
        return self._max_context(lookback) // self.patch

    quantile_levels = DECILES  # the quantile head's channels 1..9
    takes_covariates = True  # forecast_with_covariates: known-future and static covariates

    def _forecast(self, series: np.ndarray, horizon: int, hidden: bool) -> tuple[np.ndarray, np.ndarray | None]:
        point, _, states = self._forecast_quantiles(series, horizon, hidden)
        return point, states

    def _forecast_quantiles(
        self, series: np.ndarray, horizon: int, hidden: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Point forecast, quantiles 0.1 ... 0.9 (channels 1..9 of `forecast()`'s quantile output; channel 0
        is the mean) and hidden states, from one `forecast()` call."""
        timesfm, _, _ = _package()
        n, length = series.shape
        series = series.astype(np.float64)
        covariates = self.xreg_covariates(n, length)
        # the model card's settings but infer_is_positive; one batch of all B*D series (compile is cheap)
        self.wrapper.compile(
            timesfm.ForecastConfig(
                max_context=self._max_context(length),
                max_horizon=horizon,
                per_core_batch_size=n,
                normalize_inputs=True,
                use_continuous_quantile_head=True,
                force_flip_invariance=True,
                infer_is_positive=False,
                fix_quantile_crossing=True,
                return_backcast=bool(covariates),  # forecast_with_covariates reads the backcast
            )
        )
        captured: list[torch.Tensor] = []
        hook = (
            self.module.register_forward_hook(lambda _m, _i, out: captured.append(out[0][1])) if hidden else None
        )  # ((in, out_emb, ...), caches)
        try:
            with torch.inference_mode():
                if covariates:  # the package's in-context regression, then TimesFM on its residuals
                    point, quantiles = self.wrapper.forecast_with_covariates(
                        inputs=list(series), xreg_mode="xreg + timesfm", **covariates
                    )
                else:
                    point, quantiles = self.wrapper.forecast(horizon=horizon, inputs=list(series))
        finally:
            if hook is not None:
                hook.remove()
        states = to_numpy(captured[0][:n, -self.hidden_tokens(length) :]) if hidden else None  # prefill of the input
        # [:horizon]: with static covariates only, forecast_with_covariates returns the compiled (rounded) horizon
        q = np.asarray(quantiles, dtype=np.float32)[:n, :horizon, 1 : 1 + len(self.quantile_levels)]
        return np.asarray(point, dtype=np.float32)[:n, :horizon], q, states

    def xreg_covariates(self, n: int, length: int) -> dict:
        """`forecast_with_covariates`' keyword arguments for `n` series (B windows x D variates, window-major) from
        this call's covariates: the known-future columns over lookback + horizon (dynamic numerical) and the
        static ones; {} without them (past-only columns have no TimesFM input: it needs their horizon values)."""
        cov = self.call_covariates or {}
        future, static = cov.get("future"), cov.get("static")
        if future is None and static is None:
            return {}
        blocks = [a for a in (future, static) if a is not None]
        b = len(blocks[0])
        window = np.arange(n) // (n // b)
        out: dict = {}
        if future is not None:
            out["dynamic_numerical_covariates"] = {
                f"future_{j}": [future[w, :, j].astype(np.float64) for w in window] for j in range(future.shape[2])
            }
        if static is not None:
            out["static_numerical_covariates"] = {
                f"static_{j}": [float(static[w, j]) for w in window] for j in range(static.shape[1])
            }
        return out

    @property
    def info(self) -> dict:
        return {
            **super().info,
            "point": "forecast() point output (0.5 quantile channel, flip-invariant)",
            "hidden": "transformer stack output for the 32-step context patches",
            "forecast_config": "model card's, infer_is_positive=False",
        }


def _weight_shapes(file: Path) -> dict[str, tuple[int, ...]]:
    with safe_open(str(file), framework="pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def load(path: str = DEFAULT_PATH, device: str = "auto") -> TimesFMTeacher:
    """TimesFM-2.5 teacher from a local checkpoint directory (model.safetensors [+ config.json]) or hub id."""
    local = resolve_checkpoint(path, "timesfm", required=(WEIGHTS,))
    try:  # the architecture is in the weights (config.json only holds loader flags)
        definition = definition_from_shapes(_weight_shapes(local / WEIGHTS))
    except ModelDirError as exc:
        raise ModelDirError(f"{local}/{WEIGHTS}: {exc}") from None
    dev = resolve_device(device)
    try:  # the package's loader (safetensors load_file + strict load_state_dict); no torch.compile
        wrapper = _wrapper_class(definition).from_pretrained(str(local), torch_compile=False)
    except RuntimeError as exc:
        raise ModelDirError(f"{local}/{WEIGHTS} is not a TimesFM-2.5 model: {str(exc).splitlines()[0]}") from None
    wrapper.model.device = torch.device(dev)  # the package picks cuda:0 whenever it exists
    wrapper.model.to(dev).eval()
    return TimesFMTeacher(wrapper, path, hash_checkpoint(local), dev)


def save_random_checkpoint(
    directory: str | Path, *, seed: int = 0, tiny: bool = True, config_overrides: dict | None = None
) -> Path:
    """Write a randomly initialised TimesFM-2.5 (model.safetensors + config.json) via save_pretrained.

    tiny=False is the released 200M architecture. Its forecasts are meaningless: it exists to test
    loading and to time the real shapes. `config_overrides` (the other families' knob) is refused: the
    package defines TimesFM-2.5 by one dataclass, not a config file.
    """
    if config_overrides:
        raise ValueError("TimesFM-2.5 takes no config_overrides: use tiny=True or the released definition")
    _, _, base = _package()
    definition = base.TimesFM_2p5_200M_Definition()
    if tiny:
        xf = definition.stacked_transformers
        md, hid = TINY["model_dims"], TINY["hidden_dims"]
        definition = dataclasses.replace(
            definition,
            tokenizer=dataclasses.replace(definition.tokenizer, hidden_dims=hid, output_dims=md),
            stacked_transformers=dataclasses.replace(
                xf,
                num_layers=TINY["num_layers"],
                transformer=dataclasses.replace(
                    xf.transformer, model_dims=md, hidden_dims=hid, num_heads=TINY["num_heads"]
                ),
            ),
            output_projection_point=dataclasses.replace(
                definition.output_projection_point, input_dims=md, hidden_dims=hid
            ),
            output_projection_quantiles=dataclasses.replace(
                definition.output_projection_quantiles, input_dims=md, hidden_dims=hid
            ),
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wrapper = _wrapper_class(definition)(torch_compile=False)
        _randomize(wrapper.model)
    directory = Path(directory)
    wrapper.save_pretrained(directory)
    return directory


def _randomize(module: torch.nn.Module) -> None:
    """The package's RMSNorm scales start at zero (the trained values replace them), which would turn
    every attention and feed-forward block of a random model into a no-op: draw them around 1."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("_ln.scale"):
                p.normal_(1.0, 0.1)
