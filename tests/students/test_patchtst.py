"""PatchTST as a student: shapes, the official ETTh1 defaults and size, the export-friendly patching and
BatchNorm against the official operations, option errors, and a 1-epoch distil + compile (ONNX, TFLite
int8) through the CLI."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from distilts.cli import cli
from distilts.errors import DistiltsError
from distilts.students import build_student, param_count, student_options
from distilts.students.patchtst import TokenBatchNorm, n_patches

torch.set_num_threads(1)
TINY = {"d_model": 8, "n_heads": 2, "d_ff": 16, "e_layers": 2}


@pytest.mark.parametrize("quantiles", [None, [0.1, 0.5, 0.9]])
def test_shapes_repr_and_quantiles_never_cross(quantiles):
    torch.manual_seed(0)
    m = build_student("patchtst", 48, 12, 3, quantiles=quantiles, **TINY).eval()
    P = n_patches(48, 16, 8)  # (48 - 16) // 8 + 1, + 1 for the end padding
    if quantiles:
        with torch.no_grad():
            m.quantile_head.gaps.weight.normal_(0, 3.0)
    x = torch.randn(5, 48, 3) * 4
    y, h = m.forward_with_repr(x)
    assert P == 6 and m.n_patches == P
    assert y.shape == ((5, 12, 3) if quantiles is None else (5, 12, 3, 3))
    assert h.shape == (5, 3, 8 * P) and m.repr_dim == 8 * P
    assert torch.equal(m(x), y) and torch.equal(m.represent(x), h)
    if quantiles:
        assert m.levels == (0.1, 0.5, 0.9) and bool((y.diff(dim=-1) >= 0).all())


def test_official_etth1_defaults_and_size():
    """scripts/PatchTST/etth1.sh and run_longExp.py: patch 16, stride 8, end padding, 3 layers, 4 heads,
    d_model 16, d_ff 128, dropout 0.3, head dropout 0, GELU, RevIN without affine, residual attention."""
    assert student_options("patchtst") == {
        "patch_len": 16, "stride": 8, "padding_patch": "end", "d_model": 16, "n_heads": 4, "e_layers": 3,
        "d_ff": 128, "dropout": 0.3, "head_dropout": 0.0, "activation": "gelu", "res_attention": True,
        "norm": "window", "quantiles": None, "quantile_rank": 8}
    m = build_student("patchtst", 336, 96, 7)
    P, d = 42, 16  # (336 - 16) // 8 + 1 + 1
    layer = 4 * (d * d + d) + (d * 128 + 128) + (128 * d + d) + 2 * 2 * d  # attention, FF, two BatchNorms
    want = (16 * d + d) + P * d + 3 * layer + (P * d * 96 + 96)  # embedding, positions, encoder, flatten head
    assert m.n_patches == P and param_count(m) == want, f"PatchTST ETTh1 at L=336, H=96: {param_count(m):,} parameters"
    assert not list(m.revin.parameters())  # RevIN without affine (the official affine=0)


@pytest.mark.parametrize("patch_len,stride,padding", [(16, 8, "end"), (12, 5, "end"), (8, 8, "none")])
def test_conv_embedding_is_the_official_unfold_then_linear(patch_len, stride, padding):
    torch.manual_seed(0)
    m = build_student("patchtst", 48, 12, 3, patch_len=patch_len, stride=stride, padding_patch=padding, **TINY)
    z = torch.randn(2, 3, 48)
    if padding == "end":
        z = torch.nn.ReplicationPad1d((0, stride))(z)
    patches = z.unfold(-1, patch_len, stride)  # [B, D, P, patch_len]: the official patching
    w = m.embed.weight.squeeze(1)  # [d_model, patch_len]: the official W_P Linear's weight
    official = patches @ w.t() + m.embed.bias
    ours = m.embed(z.reshape(-1, 1, z.shape[-1])).transpose(1, 2).reshape(2, 3, -1, 8)
    assert official.shape[2] == m.n_patches and torch.allclose(ours, official, atol=1e-6)


def test_token_batchnorm_is_the_official_transposed_batchnorm():
    torch.manual_seed(0)
    ours = TokenBatchNorm(8)
    official = torch.nn.BatchNorm1d(8)
    x = torch.randn(5, 6, 8) * 3 + 1
    assert torch.allclose(ours(x), official(x.transpose(1, 2)).transpose(1, 2), atol=1e-5)  # training statistics
    assert torch.allclose(ours.norm.running_mean, official.running_mean, atol=1e-6)


def test_window_norm_is_scale_equivariant():
    torch.manual_seed(0)
    m = build_student("patchtst", 48, 12, 3, **TINY).eval()
    x = torch.randn(2, 48, 3)
    assert torch.allclose(m(x * 10 + 5), m(x) * 10 + 5, atol=1e-3)


@pytest.mark.parametrize("kwargs,match", [
    ({"patch_len": 64}, "at most the lookback"),
    ({"d_model": 10, "n_heads": 4}, "divisible"),
    ({"activation": "swish"}, "activation must be one of"),
    ({"padding_patch": "start"}, "padding_patch must be one of"),
    ({"norm": "revin", "quantiles": [0.1, 0.5, 0.9]}, "not supported with quantiles"),
])
def test_bad_options_are_errors(kwargs, match):
    with pytest.raises(DistiltsError, match=match):
        build_student("patchtst", 48, 12, 3, **kwargs)


def test_torch_export_dynamic_batch():
    m = build_student("patchtst", 48, 12, 3, activation="gelu_tanh", **TINY).eval()
    ep = torch.export.export(m, (torch.randn(2, 48, 3),), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    x = torch.randn(7, 48, 3)
    assert torch.allclose(ep.module()(x), m(x), atol=1e-5)


@pytest.mark.slow
def test_distill_then_compile_onnx_and_tflite_int8(tmp_path):
    out = tmp_path / "patchtst"
    res = CliRunner().invoke(cli, ["distill", "--no-kd", "--beta", "0", "--student", "patchtst", "-O", "d_model=8",
                                   "-O", "n_heads=2", "-O", "d_ff=16", "-O", "e_layers=1", "-O", "patch_len=8",
                                   "--lookback", "24", "--horizon", "6", "--epochs", "1", "--stride", "8", "--quiet",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    for flags in (["--target", "onnx"], ["--target", "tflite", "--int8", "--calib-windows", "16"]):
        res = CliRunner().invoke(cli, ["compile", str(out), *flags, "--verify-windows", "8",
                                       "--out", str(tmp_path / "a")])
        assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["onnx-fp32", "tflite-int8"]
