"""TSMixer student: official blocks and sizes, norms, quantile head, options, distill + compile through the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from distilts.cli import cli
from distilts.errors import DistiltsError
from distilts.quantiles import DECILES
from distilts.students import build_student, load_student_dir, param_count, student_options

torch.set_num_threads(1)
TINY = {"n_block": 2, "ff_dim": 8, "dropout": 0.1}


def test_official_etth1_defaults_and_size():
    assert {k: v for k, v in student_options("tsmixer").items() if k not in ("quantiles", "quantile_rank")} == {
        "n_block": 6, "ff_dim": 512, "dropout": 0.9, "norm_type": "B", "activation": "relu", "norm": "window",
        "n_past": 0, "n_future": 0, "n_static": 0, "hidden": 64}  # the last four: TSMixer-Ext (covariates)
    m = build_student("tsmixer", 512, 96, 7)
    # per block: 2 batch norms (2 x L x D x 2), time Dense(L, L), feature Dense(D, 512) + Dense(512, D);
    # then the head Dense(L, H)
    block = 2 * 2 * 512 * 7 + 512 * 512 + 512 + 7 * 512 + 512 + 512 * 7 + 7
    assert param_count(m) == 6 * block + 512 * 96 + 96, param_count(m)
    y, h = m.eval().forward_with_repr(torch.randn(2, 512, 7))
    assert y.shape == (2, 96, 7) and h.shape == (2, 7, 512) and m.repr_dim == 512


@pytest.mark.parametrize("norm_type", ["B", "L"])
def test_block_norms_are_the_keras_ones(norm_type):
    m = build_student("tsmixer", 24, 6, 3, norm_type=norm_type, **TINY)
    norm = m.blocks[0].time_norm
    if norm_type == "B":  # one statistic per (step, variate), Keras epsilon and momentum 0.99
        assert norm.num_features == 24 * 3 and norm.eps == 1e-3 and norm.momentum == 0.01
    else:  # over time and variates together
        assert tuple(norm.normalized_shape) == (24, 3) and norm.eps == 1e-3
    assert torch.all(m.head.bias == 0)  # Keras Dense init: zero biases


def test_batch_of_one_trains_and_window_norm_is_scale_equivariant():
    torch.manual_seed(0)
    m = build_student("tsmixer", 24, 6, 3, **TINY)
    m.train()(torch.randn(1, 24, 3)).sum().backward()  # the last partial batch of an epoch may hold one window
    m.eval()
    x = torch.randn(4, 24, 3)
    assert torch.allclose(m(x * 10 + 5), m(x) * 10 + 5, atol=1e-3)


def test_quantile_head_never_crosses():
    torch.manual_seed(0)
    m = build_student("tsmixer", 24, 6, 3, quantiles=list(DECILES), **TINY).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 3.0)
        y, h = m.forward_with_repr(torch.randn(5, 24, 3) * 10)
    assert y.shape == (5, 6, 3, 9) and h.shape == (5, 3, 24) and m.levels == DECILES
    assert torch.all(torch.diff(y, dim=-1) >= 0) and torch.all(torch.diff(y, dim=-1).sum(-1) > 0)


@pytest.mark.parametrize("kwargs,match", [
    ({"norm_type": "G"}, "norm_type must be"), ({"activation": "swish"}, "activation must be one of"),
    ({"norm": "batch"}, "norm must be one of"), ({"dropout": 1.0}, "dropout must be in"),
    ({"norm": "revin", "quantiles": [0.1, 0.5, 0.9]}, "use norm=window"),
])
def test_bad_options_are_errors(kwargs, match):
    with pytest.raises(DistiltsError, match=match):
        build_student("tsmixer", 24, 6, 3, **kwargs)


def test_distill_then_compile_onnx_and_tflite_int8(tmp_path):
    out = tmp_path / "s"
    res = CliRunner().invoke(cli, ["distill", "--no-kd", "--beta", "0", "--student", "tsmixer", "-O", "n_block=1",
                                   "-O", "ff_dim=8", "-O", "activation=gelu_tanh", "-O", "norm=revin", "--lookback",
                                   "24", "--horizon", "6", "--epochs", "1", "--stride", "8", "--quiet", "--out",
                                   str(out)])
    assert res.exit_code == 0, res.output
    model, config = load_student_dir(out)
    assert config["student"]["kwargs"]["ff_dim"] == 8 and model.revin.affine and len(model.blocks) == 1
    for flags, name in ((["--target", "onnx"], "onnx-fp32"), (["--target", "tflite", "--int8"], "tflite-int8")):
        res = CliRunner().invoke(cli, ["compile", str(out), *flags, "--verify-windows", "8", "--calib-windows", "16",
                                       "--out", str(tmp_path / "a")])
        assert res.exit_code == 0, res.output
        manifest = json.loads((tmp_path / "a" / name / "manifest.json").read_text())
        assert manifest["verification"]["passed"] is True
