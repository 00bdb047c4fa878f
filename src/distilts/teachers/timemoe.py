"""TimeMoE (Shi et al., ICLR 2025) in plain PyTorch, loading the official checkpoints.

No package provides Time-MoE for transformers 5, so the architecture is written here from the
reference (github.com/Time-MoE/Time-MoE, `time_moe/models/modeling_time_moe.py`, the same code as
the hub repos' remote code). Module and parameter names follow it, so the published
`config.json` + `model.safetensors` (Maple728/TimeMoE-50M, -200M) load with `strict=True`:

    model.embed_layer.{emb_layer,gate_layer}.weight          x -> silu(gate(x)) * emb(x)
    model.layers.N.input_layernorm.weight                     RMSNorm
    model.layers.N.self_attn.{q,k,v}_proj.{weight,bias}       causal attention, rotary (rope_theta)
    model.layers.N.self_attn.o_proj.weight                    (no bias)
    model.layers.N.post_attention_layernorm.weight            RMSNorm
    model.layers.N.ffn_layer.gate.weight                      router: softmax, top-k, no renormalisation
    model.layers.N.ffn_layer.experts.E.{gate,up,down}_proj.weight   SwiGLU, width intermediate/top_k
    model.layers.N.ffn_layer.shared_expert.{gate,up,down}_proj.weight  SwiGLU, width intermediate
    model.layers.N.ffn_layer.shared_expert_gate.weight        sigmoid gate on the shared expert
    model.norm.weight                                         final RMSNorm
    lm_heads.J.out_layer.weight                               one linear head per horizon_lengths[J]

Forecasting mirrors the reference's `generate` (its `TSGenerationMixin` + `forward`):
  - each series is instance-normalised with its context mean and (unbiased) std, as the README does,
    and the forecast is mapped back with the same mean/std;
  - at each step the head is the *largest* of `horizon_lengths` (scanned in config order, stopping
    at the first one longer than what is left) that does not exceed the steps still to forecast,
    or the first head when even that one is longer (its output is then cut). Its whole output at
    the last position is appended as new input tokens and the loop goes on until `horizon` steps
    exist. E.g. heads [1, 8, 32, 64]: H=96 -> 64 + 32, H=100 -> 64 + 32 + 4 x 1, H=6 -> 6 x 1.
  - later steps reuse a key/value cache, like the reference (use_cache=True); the result equals a
    full recomputation up to float rounding.
  - contexts are not cut. The reference computes rotary angles for any position, also past
    max_position_embeddings (4096, the longest sequence the model was trained on); here a window whose
    lookback + horizon exceeds it is refused with a clear error (`check_window`) instead of being
    forecast out of the training range.
Checked against the reference code itself (transformers 4.40.1, eager attention) on random 50M-size
weights (bfloat16, context 512, H=96) and tiny ones (H up to 150, grouped-query attention): forecasts
agree to 5e-7; tests pin golden numbers from that run.
Deliberate differences: attention runs through `F.scaled_dot_product_attention` (same maths as the
reference's eager softmax(QK^T/sqrt(d) + causal mask) V, float rounding aside); compute is float32
(the checkpoints' bfloat16 weights are upcast, as `from_pretrained` does without a dtype); a
(near-)constant context gets std clamped to 1e-5 (the README would divide by zero and give NaN).
Hidden states: the final-norm output of the last decoder layer over the context tokens (one token
per time step), in the normalised space, from the first forward pass.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from distilts.errors import DistiltsError, ModelDirError
from distilts.teachers.base import Teacher, hash_checkpoint, resolve_checkpoint, resolve_device, to_numpy

DEFAULT_PATH = "Maple728/TimeMoE-50M"
STD_FLOOR = 1e-5  # instance-normalisation std floor (constant contexts)

# Published config.json of Maple728/TimeMoE-50M (a copy is in shared/teacher-configs).
OFFICIAL_50M_CONFIG: dict[str, Any] = {
    "_name_or_path": "time_moe_50m",
    "apply_aux_loss": True,
    "architectures": ["TimeMoeForPrediction"],
    "auto_map": {
        "AutoConfig": "configuration_time_moe.TimeMoeConfig",
        "AutoModelForCausalLM": "modeling_time_moe.TimeMoeForPrediction",
    },
    "attention_dropout": 0.0,
    "hidden_act": "silu",
    "hidden_size": 384,
    "horizon_lengths": [1, 8, 32, 64],
    "initializer_range": 0.02,
    "input_size": 1,
    "intermediate_size": 1536,
    "max_position_embeddings": 4096,
    "model_type": "time_moe",
    "num_attention_heads": 12,
    "num_experts": 8,
    "num_experts_per_tok": 2,
    "num_hidden_layers": 12,
    "num_key_value_heads": 12,
    "rms_norm_eps": 1e-06,
    "rope_theta": 10000,
    "router_aux_loss_factor": 0.02,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.40.1",
    "use_cache": True,
    "use_dense": False,
}
# Shrinks the trunk for tests (heads, experts/top-k, and everything else stay official). The larger
# initializer_range makes random forecasts visibly depend on the input.
TINY: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "initializer_range": 0.1,
    "torch_dtype": "float32",
}

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"silu": F.silu, "gelu": F.gelu, "relu": F.relu}


# --- config --------------------------------------------------------------------------------------
@dataclass
class TimeMoeConfig:
    """The fields of config.json the model uses (defaults: the reference's TimeMoeConfig)."""

    input_size: int = 1
    hidden_size: int = 4096
    intermediate_size: int = 22016
    horizon_lengths: list[int] = field(default_factory=lambda: [1])
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int | None = None
    hidden_act: str = "silu"
    num_experts_per_tok: int = 2
    num_experts: int = 1
    max_position_embeddings: int = 32768
    initializer_range: float = 0.02
    rms_norm_eps: float = 1e-6
    use_dense: bool = False
    rope_theta: float = 10000.0
    attention_dropout: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.horizon_lengths, int):
            self.horizon_lengths = [self.horizon_lengths]
        self.horizon_lengths = [int(h) for h in self.horizon_lengths]
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads {self.num_attention_heads}"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act '{self.hidden_act}' is not supported (use one of {list(ACTIVATIONS)})")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TimeMoeConfig:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in known})

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


# --- building blocks -----------------------------------------------------------------------------
class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight, computed in float32."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rotary_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin `[T, head_dim]` for integer `positions` `[T]` (frequencies repeated over both halves)."""
    inv_freq = 1.0 / (
        theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=positions.device).float() / head_dim)
    )
    angles = torch.outer(positions.float(), inv_freq)
    emb = torch.cat((angles, angles), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) over the two halves of the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate `x` `[N, heads, T, head_dim]` by the angles of its positions."""
    return x * cos.to(x.dtype) + rotate_half(x) * sin.to(x.dtype)


class InputEmbedding(nn.Module):
    """Gated point embedding: silu(gate_layer(x)) * emb_layer(x)."""

    def __init__(self, cfg: TimeMoeConfig) -> None:
        super().__init__()
        self.emb_layer = nn.Linear(cfg.input_size, cfg.hidden_size, bias=False)
        self.gate_layer = nn.Linear(cfg.input_size, cfg.hidden_size, bias=False)
        self.act = ACTIVATIONS[cfg.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.gate_layer(x)) * self.emb_layer(x)


KV = tuple[torch.Tensor, torch.Tensor]


class Attention(nn.Module):
    """Causal multi-head attention with rotary positions; q/k/v have biases, o does not."""

    def __init__(self, cfg: TimeMoeConfig) -> None:
        super().__init__()
        self.n_heads, self.head_dim = cfg.num_attention_heads, cfg.head_dim
        self.n_kv: int = cfg.num_key_value_heads or cfg.num_attention_heads  # None: one kv head per q head
        self.q_proj = nn.Linear(cfg.hidden_size, self.n_heads * self.head_dim, bias=True)
        self.k_proj = nn.Linear(cfg.hidden_size, self.n_kv * self.head_dim, bias=True)
        self.v_proj = nn.Linear(cfg.hidden_size, self.n_kv * self.head_dim, bias=True)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, cfg.hidden_size, bias=False)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, past: KV | None = None
    ) -> tuple[torch.Tensor, KV]:
        """x `[N, T, C]` at the positions of cos/sin; `past` holds earlier keys/values (rotated)."""
        n, t, _ = x.shape
        q = self.q_proj(x).view(n, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(n, t, self.n_kv, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(n, t, self.n_kv, self.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if past is not None:
            k, v = torch.cat((past[0], k), dim=2), torch.cat((past[1], v), dim=2)
        present = (k, v)
        if self.n_kv != self.n_heads:  # grouped-query attention: each kv head serves a block of q heads
            k = k.repeat_interleave(self.n_heads // self.n_kv, dim=1)
            v = v.repeat_interleave(self.n_heads // self.n_kv, dim=1)
        s = k.shape[2]
        if s == t:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # new tokens at positions s-t .. s-1 see every key up to their own position
            mask = torch.ones(t, s, dtype=torch.bool, device=x.device).tril(diagonal=s - t)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o_proj(y.transpose(1, 2).reshape(n, t, -1)), present


class GatedMLP(nn.Module):
    """SwiGLU block down(act(gate(x)) * up(x)) (the reference's TimeMoeTemporalBlock)."""

    def __init__(self, dim: int, hidden: int, act: str) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)
        self.act = ACTIVATIONS[act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class SparseMoE(nn.Module):
    """Top-k routed experts (softmax weights, not renormalised) plus a sigmoid-gated shared expert."""

    def __init__(self, cfg: TimeMoeConfig) -> None:
        super().__init__()
        self.top_k, self.n_experts = cfg.num_experts_per_tok, cfg.num_experts
        self.gate = nn.Linear(cfg.hidden_size, cfg.num_experts, bias=False)
        expert_width = cfg.intermediate_size // cfg.num_experts_per_tok
        self.experts = nn.ModuleList(
            GatedMLP(cfg.hidden_size, expert_width, cfg.hidden_act) for _ in range(cfg.num_experts)
        )
        self.shared_expert = GatedMLP(cfg.hidden_size, cfg.intermediate_size, cfg.hidden_act)
        self.shared_expert_gate = nn.Linear(cfg.hidden_size, 1, bias=False)

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x `[M, C]` -> (weights `[M, k]`, expert ids `[M, k]`), best first."""
        probs = F.softmax(self.gate(x), dim=-1, dtype=torch.float32)
        weights, experts = torch.topk(probs, self.top_k, dim=-1)
        return weights.to(x.dtype), experts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        weights, experts = self.route(x)
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            token, slot = torch.where(experts == e)
            if token.numel():
                out.index_add_(0, token, expert(x[token]) * weights[token, slot, None])
        out = out + torch.sigmoid(self.shared_expert_gate(x)) * self.shared_expert(x)
        return out.reshape(shape)


class DecoderLayer(nn.Module):
    """Pre-norm block: x + attn(norm(x)), then h + ffn(norm(h))."""

    def __init__(self, cfg: TimeMoeConfig) -> None:
        super().__init__()
        self.self_attn = Attention(cfg)
        self.ffn_layer = (
            GatedMLP(cfg.hidden_size, cfg.intermediate_size, cfg.hidden_act) if cfg.use_dense else SparseMoE(cfg)
        )
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, past: KV | None = None
    ) -> tuple[torch.Tensor, KV]:
        a, present = self.self_attn(self.input_layernorm(x), cos, sin, past)
        x = x + a
        return x + self.ffn_layer(self.post_attention_layernorm(x)), present


class TimeMoeModel(nn.Module):
    """Embedding, decoder layers and the final norm (the reference's `model.` prefix)."""

    def __init__(self, cfg: TimeMoeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_layer = InputEmbedding(cfg)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, tokens: torch.Tensor, cache: list[KV] | None = None) -> tuple[torch.Tensor, list[KV]]:
        """tokens `[N, T, input_size]` following the `cache`d ones -> (normed hidden `[N, T, C]`, new cache)."""
        start = cache[0][0].shape[2] if cache else 0
        positions = torch.arange(start, start + tokens.shape[1], device=tokens.device)
        cos, sin = rotary_cos_sin(positions, self.cfg.head_dim, self.cfg.rope_theta)
        h = self.embed_layer(tokens)
        new_cache = []
        for i, layer in enumerate(self.layers):
            h, kv = layer(h, cos, sin, cache[i] if cache else None)
            new_cache.append(kv)
        return self.norm(h), new_cache


class OutputLayer(nn.Module):
    """Linear head predicting `horizon_length` future points from one token."""

    def __init__(self, hidden_size: int, horizon_length: int, input_size: int = 1) -> None:
        super().__init__()
        self.out_layer = nn.Linear(hidden_size, input_size * horizon_length, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_layer(x)


class TimeMoeForPrediction(nn.Module):
    """Decoder + multi-resolution heads; `generate` is the reference's autoregressive rollout."""

    def __init__(self, cfg: TimeMoeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = TimeMoeModel(cfg)
        self.lm_heads = nn.ModuleList(OutputLayer(cfg.hidden_size, h, cfg.input_size) for h in cfg.horizon_lengths)
        self.horizon_length_map = {h: i for i, h in enumerate(cfg.horizon_lengths)}

    def head_for(self, remaining: int) -> int:
        """Head length the reference uses with `remaining` steps left to forecast."""
        chosen = self.cfg.horizon_lengths[0]
        for h in self.cfg.horizon_lengths[1:]:
            if h > remaining:
                break
            chosen = h
        return chosen

    def head_schedule(self, horizon: int) -> list[int]:
        """Head lengths used, step by step, to forecast `horizon` points."""
        steps, done = [], 0
        while done < horizon:
            steps.append(self.head_for(horizon - done))
            done += min(steps[-1], horizon - done)
        return steps

    @torch.no_grad()
    def generate(self, context: torch.Tensor, horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised context `[N, L]` (input_size 1) -> (forecast `[N, horizon]`, context hidden `[N, L, C]`)."""
        hidden, cache = self.model(context[..., None])
        context_hidden, last, parts, done = hidden, hidden[:, -1], [], 0
        for head_len in self.head_schedule(horizon):
            take = min(head_len, horizon - done)
            step = self.lm_heads[self.horizon_length_map[head_len]](last)[:, :take]
            parts.append(step)
            done += take
            if done < horizon:  # append the predictions as new tokens and continue from the cache
                hidden, cache = self.model(step[..., None], cache)
                last = hidden[:, -1]
        return torch.cat(parts, dim=1), context_hidden


# --- weights -------------------------------------------------------------------------------------
def build_model(config: dict[str, Any], device: str | torch.device = "meta") -> TimeMoeForPrediction:
    """The module tree for a config.json dict; parameters uninitialised on `device` (meta: no memory)."""
    with torch.device(device):
        return TimeMoeForPrediction(TimeMoeConfig.from_dict(config))


def init_weights(model: TimeMoeForPrediction, std: float, generator: torch.Generator | None = None) -> None:
    """The reference's init: linear weights ~ N(0, std), biases 0, norm weights 1."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.weight.normal_(0.0, std, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, RMSNorm):
                m.weight.fill_(1.0)


def read_weights(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of the checkpoint's *.safetensors files (never pickles)."""
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise ModelDirError(f"{directory} has no *.safetensors weights.")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    return state


def load_model(directory: str | Path, device: str = "cpu") -> TimeMoeForPrediction:
    """Build from config.json, load the safetensors strictly, float32, eval mode, on `device`."""
    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text())
    if config.get("model_type", "time_moe") != "time_moe":
        raise ModelDirError(
            f"{directory}/config.json has model_type '{config.get('model_type')}', not time_moe: "
            "this is not a TimeMoE checkpoint."
        )
    if int(config.get("input_size", 1)) != 1:
        raise ModelDirError(f"{directory}: only univariate TimeMoE checkpoints (input_size 1) are supported.")
    model = build_model(config)
    try:
        model.load_state_dict(read_weights(directory), strict=True, assign=True)
    except RuntimeError as exc:
        raise ModelDirError(
            f"{directory}/model.safetensors does not match its config.json as a TimeMoE "
            f"checkpoint: {str(exc).splitlines()[-1].strip()}"
        ) from None
    return model.float().to(device).eval()


def save_random_checkpoint(
    directory: str | Path,
    *,
    seed: int = 0,
    tiny: bool = True,
    config_overrides: dict | None = None,
    base_config: dict | None = None,
) -> Path:
    """Write a randomly initialised TimeMoE (config.json + model.safetensors) in the official layout.

    The config is `base_config` (default: the published 50M one), shrunk by TINY when `tiny`, then
    `config_overrides`; weights are stored in its `torch_dtype`. Forecasts are meaningless: it exists
    to test loading and to time real shapes (pass the official config as overrides, or tiny=False).
    """
    cfg = copy.deepcopy(base_config or OFFICIAL_50M_CONFIG)
    cfg.update(TINY if tiny else {})
    cfg.update(copy.deepcopy(config_overrides or {}))
    model = build_model(cfg).to_empty(device="cpu")
    init_weights(model, float(cfg.get("initializer_range", 0.02)), torch.Generator().manual_seed(seed))
    dtype = getattr(torch, str(cfg.get("torch_dtype", "float32")))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    state = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    return directory


# --- the teacher ---------------------------------------------------------------------------------
class TimeMoETeacher(Teacher):
    """Channel-independent TimeMoE: each variate of each window is one instance-normalised series."""

    name = "timemoe"

    def __init__(
        self, model: TimeMoeForPrediction, path: str, checkpoint_hash: str, device: str, batch_size: int = 32
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        super().__init__(path, checkpoint_hash, device, model.cfg.hidden_size)

    def check_window(self, lookback: int, horizon: int) -> None:
        """Context plus forecast must fit the positions the model was trained on (4096 for the
        published checkpoints): the rollout feeds every forecast step back in as a token."""
        limit = int(self.model.cfg.max_position_embeddings)
        if lookback + horizon > limit:
            raise DistiltsError(
                f"The TimeMoE teacher at {self.path} takes at most {limit} time steps in all "
                f"(max_position_embeddings in its config.json): lookback {lookback} + horizon {horizon} = "
                f"{lookback + horizon} is too long. Use --lookback {max(1, limit - horizon)} or less."
            )

    def _forecast(self, series: np.ndarray, horizon: int, hidden: bool) -> tuple[np.ndarray, np.ndarray | None]:
        forecasts, hiddens = [], []
        with torch.inference_mode():
            for chunk in torch.from_numpy(series).split(self.batch_size):
                s = chunk.to(self.device)
                mean = s.mean(dim=-1, keepdim=True)
                std = s.std(dim=-1, keepdim=True).nan_to_num(0.0).clamp_min(STD_FLOOR)
                pred, hid = self.model.generate((s - mean) / std, horizon)
                forecasts.append((pred * std + mean).float().cpu())
                if hidden:
                    hiddens.append(hid.float().cpu())
        return to_numpy(torch.cat(forecasts)), to_numpy(torch.cat(hiddens)) if hidden else None

    @property
    def info(self) -> dict:
        heads = self.model.cfg.horizon_lengths
        return {
            **super().info,
            "heads": list(heads),
            "point": "reference generate(): instance-normalised context, largest head <= steps left, "
            "predictions appended as tokens",
            "hidden": "final-norm output of the last decoder layer, one token per context step",
        }


def load(path: str | None = None, device: str = "auto", batch_size: int = 32) -> TimeMoETeacher:
    """TimeMoE teacher from a local checkpoint directory or hub id (default: Maple728/TimeMoE-50M)."""
    path = path or DEFAULT_PATH
    local = resolve_checkpoint(path, "timemoe", ("config.json",))
    dev = resolve_device(device)
    model = load_model(local, dev)
    return TimeMoETeacher(model, path, hash_checkpoint(local), dev, batch_size=batch_size)


def param_count(config: dict[str, Any]) -> int:
    """Number of parameters of the model a config.json describes (built on the meta device)."""
    return sum(p.numel() for p in build_model(config).parameters())


__all__ = [
    "DEFAULT_PATH",
    "TimeMoeConfig",
    "TimeMoeForPrediction",
    "TimeMoETeacher",
    "load",
    "load_model",
    "save_random_checkpoint",
    "param_count",
]
