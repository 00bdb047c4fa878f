"""TimeMoE in plain PyTorch: official parameter names, strict loading, the reference's maths and its
generate() rollout, on tiny random checkpoints saved in the official layout."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from conftest import TEACHER_CONFIGS  # noqa: E402
from distilts.teachers import timemoe as tm  # noqa: E402
from distilts.errors import ModelDirError  # noqa: E402

OFFICIAL_50M = TEACHER_CONFIGS / "timemoe-50m.json"
B, L, D = 2, 40, 3

# Names of one MoE decoder layer in the reference (TimeMoeDecoderLayer / TimeMoeSparseExpertsLayer).
LAYER0 = {
    "model.layers.0.input_layernorm.weight",
    "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.q_proj.bias",
    "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.k_proj.bias",
    "model.layers.0.self_attn.v_proj.weight", "model.layers.0.self_attn.v_proj.bias",
    "model.layers.0.self_attn.o_proj.weight",
    "model.layers.0.post_attention_layernorm.weight",
    "model.layers.0.ffn_layer.gate.weight",
    *{f"model.layers.0.ffn_layer.experts.{e}.{p}_proj.weight" for e in range(8) for p in ("gate", "up", "down")},
    "model.layers.0.ffn_layer.shared_expert.gate_proj.weight",
    "model.layers.0.ffn_layer.shared_expert.up_proj.weight",
    "model.layers.0.ffn_layer.shared_expert.down_proj.weight",
    "model.layers.0.ffn_layer.shared_expert_gate.weight",
}
TOP = {"model.embed_layer.emb_layer.weight", "model.embed_layer.gate_layer.weight", "model.norm.weight",
       *{f"lm_heads.{j}.out_layer.weight" for j in range(4)}}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tm.save_random_checkpoint(tmp_path_factory.mktemp("timemoe") / "tiny", seed=1)


@pytest.fixture(scope="module")
def teacher(ckpt):
    return tm.load(str(ckpt), "cpu")


def _windows(seed: int = 0, length: int = L) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)[None, :, None]
    return (2 + np.sin(2 * np.pi * t / 12) + 0.3 * rng.normal(size=(B, length, D))).astype(np.float32)


def _normed(x: np.ndarray) -> torch.Tensor:
    """[B, L, D] -> instance-normalised [B*D, L], as the teacher (and the README) does."""
    s = torch.from_numpy(x.transpose(0, 2, 1).reshape(-1, x.shape[1]).copy())
    return (s - s.mean(-1, keepdim=True)) / s.std(-1, keepdim=True)


# --- layout and loading --------------------------------------------------------------------------
def test_checkpoint_uses_the_official_names_and_config_keys(ckpt):
    from safetensors.torch import load_file

    keys = set(load_file(str(ckpt / "model.safetensors")))
    cfg = json.loads((ckpt / "config.json").read_text())
    assert {k for k in keys if k.startswith("model.layers.0.")} == LAYER0
    assert {k for k in keys if not k.startswith("model.layers.")} == TOP
    assert len(keys) == len(TOP) + cfg["num_hidden_layers"] * len(LAYER0)
    assert set(cfg) == set(tm.OFFICIAL_50M_CONFIG)
    assert cfg["model_type"] == "time_moe" and cfg["architectures"] == ["TimeMoeForPrediction"]
    if OFFICIAL_50M.exists():
        assert tm.OFFICIAL_50M_CONFIG == json.loads(OFFICIAL_50M.read_text())


def test_loading_is_strict(ckpt, tmp_path):
    from safetensors.torch import load_file, save_file

    state = load_file(str(ckpt / "model.safetensors"))
    for name, edit in (("missing", lambda s: s.pop("model.norm.weight")),
                       ("unexpected", lambda s: s.__setitem__("model.extra.weight", torch.zeros(1)))):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text((ckpt / "config.json").read_text())
        s = dict(state)
        edit(s)
        save_file(s, str(d / "model.safetensors"))
        with pytest.raises(ModelDirError, match="model.norm.weight" if name == "missing" else "model.extra"):
            tm.load(str(d), "cpu")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "t5"}))
    save_file({"x": torch.zeros(1)}, str(other / "model.safetensors"))
    with pytest.raises(ModelDirError, match="not a TimeMoE checkpoint"):
        tm.load(str(other), "cpu")


def test_teacher_attributes_and_registry(teacher, ckpt, checkpoint_sha256):
    from distilts.teachers import load_teacher

    assert (teacher.name, teacher.path, teacher.d_model) == ("timemoe", str(ckpt), 32)
    assert teacher.checkpoint_hash == checkpoint_sha256(ckpt)
    assert teacher.info["heads"] == [1, 8, 32, 64]
    assert not teacher.model.training
    assert all(p.dtype == torch.float32 for p in teacher.model.parameters())
    assert isinstance(load_teacher("timemoe", str(ckpt), "cpu"), tm.TimeMoETeacher)


def test_bfloat16_checkpoint_loads_as_float32(tmp_path):
    d = tm.save_random_checkpoint(tmp_path / "bf16", config_overrides={"torch_dtype": "bfloat16"}, seed=2)
    t = tm.load(str(d), "cpu")
    assert all(p.dtype == torch.float32 for p in t.model.parameters())
    assert np.isfinite(t.predict(_windows(), 8).forecast).all()


# --- forecasts -----------------------------------------------------------------------------------
@pytest.mark.parametrize("horizon", [1, 6, 96, 100])
def test_forecast_and_hidden_shapes(teacher, horizon):
    out = teacher.predict(_windows(), horizon, hidden=True)
    assert out.forecast.shape == (B, horizon, D) and out.forecast.dtype == np.float32
    assert out.hidden.shape == (B, D, L, 32) and out.hidden.dtype == np.float32
    assert np.isfinite(out.forecast).all() and np.isfinite(out.hidden).all()
    assert teacher.predict(_windows(), horizon).hidden is None


def test_deterministic_batch_independent_and_input_dependent(teacher):
    x = _windows()
    a = teacher.predict(x, 20).forecast
    np.testing.assert_array_equal(a, teacher.predict(x, 20).forecast)
    small = tm.TimeMoETeacher(teacher.model, teacher.path, teacher.checkpoint_hash, "cpu", batch_size=1)
    np.testing.assert_allclose(small.predict(x, 20).forecast, a, atol=1e-5)
    np.testing.assert_allclose(teacher.predict(x[1:], 20).forecast, a[1:], atol=1e-5)
    # instance normalisation: an affine map of the input maps the forecast the same way...
    np.testing.assert_allclose(teacher.predict(3 * x - 1, 20).forecast, 3 * a - 1, rtol=1e-4, atol=1e-4)
    # ...and the pattern matters, not only the level and scale
    y = x[:, ::-1].copy()
    b = teacher.predict(y, 20).forecast
    b = (b - y.mean(1, keepdims=True)) / y.std(1, ddof=1, keepdims=True)
    a = (a - x.mean(1, keepdims=True)) / x.std(1, ddof=1, keepdims=True)
    assert np.abs(a - b).mean() > 1e-2


def test_constant_context_gives_finite_forecast(teacher):
    x = np.full((1, L, 1), 4.25, dtype=np.float32)
    out = teacher.predict(x, 8, hidden=True)
    assert np.isfinite(out.forecast).all() and np.isfinite(out.hidden).all()
    np.testing.assert_allclose(out.forecast, 4.25, atol=1e-3)


def test_head_schedule_mirrors_the_reference(teacher, tmp_path):
    m = teacher.model
    assert m.horizon_length_map == {1: 0, 8: 1, 32: 2, 64: 3}
    cases = {1: [1], 6: [1] * 6, 8: [8], 20: [8, 8, 1, 1, 1, 1], 64: [64], 96: [64, 32], 100: [64, 32] + [1] * 4,
             200: [64, 64, 64, 8]}
    for horizon, steps in cases.items():
        assert m.head_schedule(horizon) == steps, horizon
    coarse = tm.load(str(tm.save_random_checkpoint(tmp_path / "c", config_overrides={"horizon_lengths": [8, 32]})), "cpu")
    assert coarse.model.head_schedule(5) == [8]  # first head longer than needed: its output is cut
    assert coarse.model.head_schedule(20) == [8, 8, 8]
    assert coarse.predict(_windows(), 5).forecast.shape == (B, 5, D)


def test_rollout_appends_predictions_as_tokens(teacher):
    """Long horizons: 64-head, then the 32-head after the 64 predictions are fed back as tokens;
    the cached rollout equals a full recomputation of the longer sequence."""
    x = _windows(3)
    f96, f64 = teacher.predict(x, 96).forecast, teacher.predict(x, 64).forecast
    np.testing.assert_array_equal(f96[:, :64], f64)
    m, s = teacher.model, _normed(x)
    with torch.no_grad():
        first, _ = m.generate(s, 64)
        h, _ = m.model(torch.cat([s, first], dim=1)[..., None])  # no cache: the whole sequence
        nxt = m.lm_heads[m.horizon_length_map[32]](h[:, -1])
    raw = torch.from_numpy(x.transpose(0, 2, 1).reshape(-1, L).copy())
    expect = (nxt * raw.std(-1, keepdim=True) + raw.mean(-1, keepdim=True)).numpy().reshape(B, D, 32)
    np.testing.assert_allclose(f96[:, 64:], expect.transpose(0, 2, 1), atol=1e-4)
    # short horizon: six steps of the 1-step head
    f6, f1 = teacher.predict(x, 6).forecast, teacher.predict(x, 1).forecast
    np.testing.assert_array_equal(f6[:, :1], f1)


# --- the maths, against hand computations --------------------------------------------------------
def test_rmsnorm():
    norm = tm.RMSNorm(4, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.0, 2.0, 0.5, -1.0]))
    x = torch.tensor([[1.0, -2.0, 3.0, 4.0]])
    rms = math.sqrt((1 + 4 + 9 + 16) / 4 + 1e-6)
    expect = torch.tensor([[1 / rms, -4 / rms, 1.5 / rms, -4 / rms]])
    torch.testing.assert_close(norm(x), expect)


def test_rotary_rotates_pairs_of_the_two_halves():
    head_dim, theta = 8, 10000.0
    pos = torch.arange(5)
    cos, sin = tm.rotary_cos_sin(pos, head_dim, theta)
    x = torch.randn(1, 1, 5, head_dim, generator=torch.Generator().manual_seed(0))
    y = tm.apply_rotary(x, cos, sin)
    half = head_dim // 2
    for p in range(5):
        for i in range(half):
            a = p * theta ** (-2 * i / head_dim)
            x1, x2 = x[0, 0, p, i].item(), x[0, 0, p, i + half].item()
            assert y[0, 0, p, i].item() == pytest.approx(x1 * math.cos(a) - x2 * math.sin(a), abs=1e-5)
            assert y[0, 0, p, i + half].item() == pytest.approx(x2 * math.cos(a) + x1 * math.sin(a), abs=1e-5)
    # scores depend on relative position only
    q, k = torch.randn(2, head_dim, generator=torch.Generator().manual_seed(1))
    c, s = tm.rotary_cos_sin(torch.tensor([3, 1, 7, 5]), head_dim, theta)
    r = lambda v, j: tm.apply_rotary(v, c[j], s[j])  # noqa: E731
    assert (r(q, 0) @ r(k, 1)).item() == pytest.approx((r(q, 2) @ r(k, 3)).item(), abs=1e-5)


def _tiny_cfg(**kw) -> tm.TimeMoeConfig:
    base = {**tm.OFFICIAL_50M_CONFIG, **tm.TINY, "num_experts": 3, "num_experts_per_tok": 2, **kw}
    return tm.TimeMoeConfig.from_dict(base)


def test_moe_top2_routing_by_hand():
    torch.manual_seed(0)
    moe = tm.SparseMoE(_tiny_cfg()).eval()
    x = torch.randn(1, 5, 32)
    with torch.no_grad():
        got = moe(x)
        for t in range(5):
            v = x[0, t]
            p = torch.softmax(moe.gate(v), -1)
            top = sorted(range(3), key=lambda e: -p[e].item())[:2]  # no renormalisation of the two weights
            expect = sum(p[e] * moe.experts[e](v) for e in top)
            expect = expect + torch.sigmoid(moe.shared_expert_gate(v)) * moe.shared_expert(v)
            torch.testing.assert_close(got[0, t], expect, atol=1e-5, rtol=1e-5)
    assert moe.experts[0].gate_proj.out_features == 64 // 2 and moe.shared_expert.gate_proj.out_features == 64


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_attention_matches_eager_maths_with_and_without_cache(kv_heads):
    torch.manual_seed(0)
    cfg = _tiny_cfg(num_key_value_heads=kv_heads)
    att = tm.Attention(cfg).eval()
    x = torch.randn(2, 7, 32)
    cos, sin = tm.rotary_cos_sin(torch.arange(7), cfg.head_dim, cfg.rope_theta)
    with torch.no_grad():
        got, _ = att(x, cos, sin)
        hd, nh = cfg.head_dim, cfg.num_attention_heads
        q = tm.apply_rotary(att.q_proj(x).view(2, 7, nh, hd).transpose(1, 2), cos, sin)
        k = tm.apply_rotary(att.k_proj(x).view(2, 7, kv_heads, hd).transpose(1, 2), cos, sin)
        v = att.v_proj(x).view(2, 7, kv_heads, hd).transpose(1, 2)
        k, v = k.repeat_interleave(nh // kv_heads, 1), v.repeat_interleave(nh // kv_heads, 1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
        scores = scores.masked_fill(torch.ones(7, 7, dtype=torch.bool).triu(1), float("-inf"))
        expect = att.o_proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 7, 32))
        torch.testing.assert_close(got, expect, atol=1e-5, rtol=1e-5)
        _, past = att(x[:, :4], cos[:4], sin[:4])
        tail, _ = att(x[:, 4:], cos[4:], sin[4:], past)
        torch.testing.assert_close(tail, got[:, 4:], atol=1e-5, rtol=1e-5)


# --- the published size --------------------------------------------------------------------------
def test_official_50m_config_size_and_one_tiny_forward():
    if not OFFICIAL_50M.exists():
        pytest.skip(f"{OFFICIAL_50M} not found")
    cfg = json.loads(OFFICIAL_50M.read_text())
    # per layer: attention 4*384^2 + 3*384, router 384*8, 8 experts 3*384*768, shared 3*384*1536 + gate 384,
    # 2 norms; plus embedding 2*384, final norm 384, heads 384*(1+8+32+64)
    per_layer = 4 * 384 * 384 + 3 * 384 + 384 * 8 + 8 * 3 * 384 * 768 + 3 * 384 * 1536 + 384 + 2 * 384
    expect = 12 * per_layer + 2 * 384 + 384 + 384 * 105
    assert tm.param_count(cfg) == expect == 113_352_192
    model = tm.build_model(cfg).to_empty(device="cpu")
    tm.init_weights(model, 0.02, torch.Generator().manual_seed(0))
    pred, hidden = model.eval().generate(torch.randn(1, 8), 2)
    assert pred.shape == (1, 2) and hidden.shape == (1, 8, 384) and torch.isfinite(pred).all()


# --- golden numbers from the reference implementation -----------------------------------------------
# Produced once by the reference code (github.com/Time-MoE/Time-MoE modeling_time_moe.py with
# transformers 4.40.1: `generate(normed, max_new_tokens=100)` and `model(normed).last_hidden_state`)
# on the weights of `_formula_state` (no RNG, so the numbers do not depend on torch's generators).
GOLDEN_CFG = {**tm.OFFICIAL_50M_CONFIG, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
              "num_attention_heads": 2, "num_key_value_heads": 2, "num_experts": 4, "torch_dtype": "float32"}
GOLDEN_IDX = [0, 1, 7, 8, 31, 63, 64, 95, 96, 99]  # the 64-, 32- and 1-step heads all contribute
GOLDEN_FORECAST = [[-0.60277, -0.37154, 0.632352, 0.29286, 0.286643, 0.427438, -0.539903, -0.332722, 0.553407,
                    0.555717],
                   [-0.621048, -0.404375, 0.654597, 0.323722, 0.31733, 0.461361, -0.539708, -0.333225, 0.55341,
                    0.55572]]
GOLDEN_HIDDEN_LAST = [[-1.368929, -0.830193, 1.11486, 1.12353, -0.566395, -1.17282],
                      [-1.37813, -0.77252, 1.180515, 1.126076, -0.561347, -1.116979]]


def _formula_state(model) -> dict:
    state = {}
    for i, (name, p) in enumerate(sorted(model.state_dict().items())):
        w = torch.sin(torch.arange(p.numel(), dtype=torch.float64) * 0.7 + i).reshape(p.shape)
        state[name] = (1 + 0.1 * w if name.endswith("norm.weight") else 0.3 * w).float()
    return state


def test_matches_reference_implementation_numbers():
    model = tm.build_model(GOLDEN_CFG, "cpu")
    model.load_state_dict(_formula_state(model), strict=True)
    t = torch.arange(48, dtype=torch.float64)
    ctx = torch.stack([torch.sin(t / 4) + 0.01 * t, torch.cos(t / 7) * (1 + 0.02 * t)]).float()
    normed = (ctx - ctx.mean(-1, keepdim=True)) / ctx.std(-1, keepdim=True)
    pred, hidden = model.eval().generate(normed, 100)
    torch.testing.assert_close(pred[:, GOLDEN_IDX], torch.tensor(GOLDEN_FORECAST), atol=2e-5, rtol=0)
    torch.testing.assert_close(hidden[:, -1, :6], torch.tensor(GOLDEN_HIDDEN_LAST), atol=2e-5, rtol=0)
