"""The C target from a student's layers (mcu.clower -> cgraph -> cemit): MLP, TSMixer, N-HiTS, TiDE, fp32 and int8.

The generated C is compiled natively (ctypes) and for aarch64/armhf (qemu-user) and compared with the
PyTorch student; the graph's float64 reference with the student; students without a lowering are refused.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from distilts.mcu import c_artifact, cemit, cgraph, clower, ctoolchain
from distilts.students.mlp import MLP
from distilts.students.nhits import NHiTS
from distilts.students.tide import TiDE
from distilts.students.tsmixer import TSMixer

L, H, D = 24, 6, 3
CONFIG = {"scaler": {"mean": [1.0, -2.0, 30.0], "std": [0.5, 2.0, 8.0]}}
MEAN, STD = (np.asarray(CONFIG["scaler"][k]) for k in ("mean", "std"))


def _randomized(student: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics, LayerNorm and RevIN affines (fresh ones are identities)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in student.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.normal_(generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
            if isinstance(m, (nn.BatchNorm1d, nn.LayerNorm)) or (type(m).__name__ == "RevIN" and m.affine):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(generator=g)
    return student.eval()


STUDENTS = {
    "mlp": lambda: MLP(L, H, D, d_model=16),
    "mlp-gelu-no-bn": lambda: MLP(L, H, D, d_model=16, activation="gelu", batch_norm=False),
    "tsmixer": lambda: TSMixer(L, H, D, n_block=2, ff_dim=8),
    "tsmixer-layernorm-revin": lambda: TSMixer(
        L, H, D, n_block=1, ff_dim=8, norm_type="L", norm="revin", activation="gelu_tanh"
    ),
    "nhits": lambda: NHiTS(L, H, D, mlp_units=(16, 16), n_pool_kernel_size=(5, 2, 1), n_freq_downsample=(4, 2, 1)),
    "nhits-revin": lambda: NHiTS(
        L, H, D, mlp_units=(16,), n_pool_kernel_size=(4, 1), n_freq_downsample=(3, 1), n_blocks=(1, 1), norm="revin"
    ),
    "tide": lambda: TiDE(L, H, D, hidden_size=16, decoder_output_dim=4, final_decoder_hidden=8),
    "tide-no-embedding": lambda: TiDE(
        L,
        H,
        D,
        hidden_size=16,
        num_layers=3,
        decoder_output_dim=4,
        final_decoder_hidden=8,
        temporal_layer_norm=True,
        variate_embedding=0,
    ),
}


def _windows(n: int = 6) -> np.ndarray:
    z = np.random.default_rng(1).normal(size=(n, L, D)).cumsum(1) * 0.3
    return (z * STD + MEAN).astype(np.float32)


def _reference(student: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return student(torch.tensor((x - MEAN) / STD, dtype=torch.float32)).double().numpy() * STD + MEAN


def _cross_ready() -> bool:
    return all(shutil.which(c.compiler) for c in ctoolchain.CROSS.values())


@pytest.mark.parametrize("name", list(STUDENTS))
def test_graph_reference_equals_the_student(name):
    """The lowering is the student's function: float64 graph vs the float32 student, float32 noise only."""
    torch.manual_seed(0)
    student = _randomized(STUDENTS[name]())
    x = _windows()
    g = clower.lower(student, CONFIG)
    assert np.max(np.abs((g.run(x) - _reference(student, x)) / STD)) < 1e-5


@pytest.mark.parametrize("name", ["mlp", "tsmixer", "tsmixer-layernorm-revin", "nhits-revin", "tide"])
def test_c_fp32_and_int8_match_the_student_on_three_cpus(tmp_path, name):
    if not _cross_ready() and os.environ.get("CI") != "true":
        pytest.skip("cross compilers not installed (scripts/setup.sh installs them)")
    torch.manual_seed(0)
    student = _randomized(STUDENTS[name]())
    x = _windows()
    ref = _reference(student, x)
    model = c_artifact.program(student, CONFIG)
    assert isinstance(model, cgraph.Graph)
    for precision, max_abs, rel_mse in (("fp32", 1e-5, 1e-10), ("int8", 0.3, 2e-3)):
        src = tmp_path / precision
        src.mkdir()
        c_artifact.write_sources(model, precision, src, name)
        checks = c_artifact.verify(src, src, model, x, ref, CONFIG, precision)
        assert set(checks) == {"x86_64", "aarch64", "armhf"}
        assert all(c["max_abs_err"] < max_abs and c["rel_mse"] < rel_mse for c in checks.values()), checks
        assert all(c["max_abs_diff_vs_x86_64"] < 1e-4 for a, c in checks.items() if a != "x86_64"), checks


def test_int8_holds_int8_weights_smaller_flash_and_ram_is_planned():
    torch.manual_seed(0)
    g = clower.lower(_randomized(STUDENTS["tsmixer"]()), CONFIG)
    src8, flash8 = cemit.source(g, cgraph.plan(g, "int8"), "int8")
    src32, flash32 = cemit.source(g, cgraph.plan(g, "fp32"), "fp32")
    assert "static const int8_t" in src8 and "k_dense_f32" not in src8 and "int8_t" not in src32
    assert flash8 < 0.6 * flash32
    p = cgraph.plan(g, "fp32")
    every_value = sum(r * c for v, (r, c) in g.shapes.items() if v not in (cgraph.WINDOW, cgraph.OUT))
    assert 0 < p.arena < every_value / 3  # buffers reused: the arena holds a few values, not all of them
    assert cgraph.plan(g, "int8").ram_bytes() == p.ram_bytes() + max(L * D, L * 8)  # + the int8 scratch


def test_plan_never_overlaps_live_values():
    """No op writes over a value still to be read (except in place, over its own dying input)."""
    torch.manual_seed(0)
    g = clower.lower(_randomized(STUDENTS["nhits"]()), CONFIG)
    p = cgraph.plan(g, "fp32")
    last = {v: i for i, op in enumerate(g.ops) for v in op.ins}
    first = {op.out: i for i, op in enumerate(g.ops)}
    span = {v: (p.offsets[v], p.offsets[v] + g.shapes[v][0] * g.shapes[v][1]) for v in p.offsets}
    for v, (a0, a1) in span.items():
        for w, (b0, b1) in span.items():
            if v < w and a0 < b1 and b0 < a1:  # same memory: their lifetimes may only touch
                assert last.get(v, first[v]) <= first[w] or last.get(w, first[w]) <= first[v], (v, w)


@pytest.mark.parametrize(
    "make,layer",
    [
        (
            lambda: __import__("distilts.students.itransformer", fromlist=["x"]).ITransformer(
                L, H, D, d_model=8, n_heads=2, e_layers=1, d_ff=8
            ),
            "attention",
        ),
        (
            lambda: __import__("distilts.students.patchtst", fromlist=["x"]).PatchTST(
                L, H, D, d_model=8, n_heads=2, d_ff=16, e_layers=1, patch_len=8
            ),
            "Conv1d",
        ),
        (lambda: MLP(L, H, D, d_model=8, quantiles=(0.1, 0.5, 0.9)), "quantile"),
    ],
)
def test_students_without_a_lowering_are_refused_in_one_line(make, layer):
    with pytest.raises(c_artifact.NotFoldable, match=layer) as exc:
        c_artifact.program(make().eval(), CONFIG)
    assert "\n" not in str(exc.value)


def test_compile_c_target_of_an_mlp_student(tmp_path_factory):
    """`distilts compile --target c --int8` on a trained MLP: sources, manifest with flash and RAM, the lowering."""
    if not _cross_ready() and os.environ.get("CI") != "true":
        pytest.skip("cross compilers not installed (scripts/setup.sh installs them)")
    import json

    from compiled_factory import compiled

    art = compiled(tmp_path_factory, "c", int8=True, student="mlp")
    assert {"main.c", "manifest.json", "model.c", "model.h"} <= {p.name for p in art.iterdir()}
    man = json.loads((art / "manifest.json").read_text())
    assert man["passes"][0]["name"] == "c-lower" and man["verification"]["passed"] is True
    assert man["verification"]["rel_mse"] < 2e-2 and set(man["architectures"]) == {"x86_64", "aarch64", "armhf"}
    c = man["c"]
    assert c["flash_bytes"] > 24 * 512 and 0 < c["ram_bytes"] < c["flash_bytes"]  # int8 weights of Linear(L, 512)
    assert f"FORECAST_RAM_BYTES {c['ram_bytes']}" in (art / "model.h").read_text()
    boards = man["bare_metal"].get("boards", {})  # {"skipped": why} without the Cortex-M tools
    assert all(b["bit_identical_to_host"] for b in boards.values() if b["fits"])
    assert "skipped" in man["bare_metal"] or any(b["fits"] for b in boards.values())


@pytest.mark.parametrize("name", ["mlp", "mlp-gelu-no-bn", "tsmixer-layernorm-revin", "nhits", "tide"])
def test_bare_metal_cortex_m_bit_identical_to_host(tmp_path, name):
    """The generated C as firmware on an emulated Cortex-M4 (distilts.mcu.metal): the host build's bits."""
    metal = pytest.importorskip("distilts.mcu.metal")
    if (why := metal.unavailable()) and os.environ.get("CI") != "true":
        pytest.skip(f"{why} not installed (scripts/setup.sh installs them)")
    torch.manual_seed(0)
    student = _randomized(STUDENTS[name]())
    x = _windows(4)
    model = c_artifact.program(student, CONFIG)
    for precision in ("fp32", "int8"):
        src = tmp_path / precision
        src.mkdir()
        c_artifact.write_sources(model, precision, src, name)
        host = ctoolchain.run_shared(ctoolchain.build_shared(src, src / "lib.so"), x, H)
        res = metal.verify(src, ["model.c"], "model.h", x, host, src / "metal", profiles=("cortex-m4f",))
        board = res["boards"]["cortex-m4f"]
        assert board["fits"] and board["bit_identical_to_host"] and board["instructions_per_forecast"] > 0
