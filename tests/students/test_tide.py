"""TiDE student: official ETTh1 sizes, residual blocks, channel independence, quantile head, options, distill +
compile through the CLI."""

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
TINY = {"hidden_size": 16, "decoder_output_dim": 4, "final_decoder_hidden": 8, "dropout": 0.1}


def _block(i: int, h: int, o: int, norm: bool = True) -> int:  # Dense(i, h), Dense(h, o), skip Dense(i, o), LayerNorm
    return i * h + h + h * o + o + i * o + o + (2 * o if norm else 0)


def test_official_etth1_defaults_and_size():
    opts = student_options("tide")
    assert {k: opts[k] for k in ("hidden_size", "num_layers", "decoder_output_dim", "final_decoder_hidden", "dropout",
                                 "layer_norm", "variate_embedding")} == {
        "hidden_size": 512, "num_layers": 2, "decoder_output_dim": 32, "final_decoder_hidden": 16, "dropout": 0.5,
        "layer_norm": True, "variate_embedding": 16}
    m = build_student("tide", 720, 96, 7)
    want = (7 * 16 + _block(720 + 16, 512, 512) + _block(512, 512, 32 * 96) + _block(32, 16, 1, norm=False)
            + 720 * 96 + 96)
    assert param_count(m) == want, param_count(m)
    y, h = m.eval().forward_with_repr(torch.randn(2, 720, 7))
    assert y.shape == (2, 96, 7) and h.shape == (2, 7, 512) and m.repr_dim == 512


def test_stacks_follow_the_official_widths():
    one = build_student("tide", 24, 6, 3, num_layers=1, **TINY)  # one width: a single Dense each
    assert isinstance(one.encoder, torch.nn.Linear) and one.decoder.out_features == 4 * 6
    three = build_student("tide", 24, 6, 3, num_layers=3, **TINY)  # three widths: two residual blocks each
    assert len(three.encoder) == 2 and len(three.decoder) == 2 and three.decoder[-1].skip.out_features == 24
    official = build_student("tide", 24, 6, 3, temporal_layer_norm=True, **TINY).eval()
    with torch.no_grad():  # google-research#2133: a LayerNorm over one feature outputs its bias
        out = official.temporal_decoder(torch.randn(5, 3, 6, 4))
    assert torch.allclose(out, official.temporal_decoder.norm.bias.expand_as(out))


def test_official_graph_exports_its_constant_not_a_zero_range_layer_norm():
    """The 1-wide LayerNorm is written as its bias (same values and gradients as nn.LayerNorm(1)): the exported
    graph has no normalization of a zero-range tensor, which LiteRT's int8 path aborted on."""
    torch.manual_seed(0)
    official = build_student("tide", 24, 6, 3, temporal_layer_norm=True, **TINY)
    ref = torch.nn.LayerNorm(1, eps=1e-3)
    ref.load_state_dict(official.temporal_decoder.norm.state_dict())
    x = torch.randn(5, 6, 1, requires_grad=True)
    assert torch.equal(official.temporal_decoder.norm(x), ref(x))
    official.temporal_decoder.norm(x).sum().backward()
    ref(x).sum().backward()
    assert torch.equal(official.temporal_decoder.norm.bias.grad, ref.bias.grad)
    graph = torch.export.export(official.eval(), (torch.randn(1, 24, 3),)).graph_module.code
    n_norms = sum(1 for m in official.modules() if type(m) is torch.nn.LayerNorm)  # encoder's and decoder's blocks
    assert graph.count("aten.layer_norm.default(") == n_norms == 2  # the temporal decoder's is not among them


def test_channel_independent_and_scale_equivariant():
    torch.manual_seed(0)
    m = build_student("tide", 24, 6, 3, variate_embedding=0, **TINY).eval()
    x = torch.randn(4, 24, 3)
    y = m(x)
    x2 = x.clone()
    x2[..., 1] = torch.randn(4, 24)  # another variate's history changes nothing in variate 0's forecast
    assert torch.equal(m(x2)[..., 0], y[..., 0])
    assert torch.allclose(m(x * 10 + 5), y * 10 + 5, atol=1e-3)
    assert torch.allclose(m.represent(x)[:, 0], m.represent(x[..., :1].expand(4, 24, 3))[:, 0])


def test_quantile_head_never_crosses():
    torch.manual_seed(0)
    m = build_student("tide", 24, 6, 3, quantiles=list(DECILES), **TINY).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 3.0)
        y, h = m.forward_with_repr(torch.randn(5, 24, 3) * 10)
    assert y.shape == (5, 6, 3, 9) and h.shape == (5, 3, 16) and m.levels == DECILES
    assert torch.all(torch.diff(y, dim=-1) >= 0) and torch.all(torch.diff(y, dim=-1).sum(-1) > 0)


@pytest.mark.parametrize("kwargs,match", [
    ({"hidden_size": 0}, "sizes must be positive"), ({"variate_embedding": -1}, "variate_embedding >= 0"),
    ({"norm": "batch"}, "norm must be one of"), ({"dropout": -0.1}, "dropout must be in"),
    ({"norm": "revin", "quantiles": [0.1, 0.5, 0.9]}, "use norm=window"),
])
def test_bad_options_are_errors(kwargs, match):
    with pytest.raises(DistiltsError, match=match):
        build_student("tide", 24, 6, 3, **kwargs)


def test_distill_then_compile_onnx_and_tflite_int8(tmp_path):
    out = tmp_path / "s"
    res = CliRunner().invoke(cli, ["distill", "--no-kd", "--beta", "0", "--student", "tide", "-O", "hidden_size=16",
                                   "-O", "decoder_output_dim=4", "-O", "final_decoder_hidden=8", "-O", "norm=revin",
                                   "--lookback", "24", "--horizon", "6", "--epochs", "1", "--stride", "8", "--quiet",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    model, config = load_student_dir(out)
    assert config["student"]["kwargs"]["hidden_size"] == 16 and model.revin.affine and model.repr_dim == 16
    for flags, name in ((["--target", "onnx"], "onnx-fp32"), (["--target", "tflite", "--int8"], "tflite-int8")):
        res = CliRunner().invoke(cli, ["compile", str(out), *flags, "--verify-windows", "8", "--calib-windows", "16",
                                       "--out", str(tmp_path / "a")])
        assert res.exit_code == 0, res.output
        manifest = json.loads((tmp_path / "a" / name / "manifest.json").read_text())
        assert manifest["verification"]["passed"] is True
