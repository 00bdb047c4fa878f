"""Students as distilts.mcu.cgraph graphs: the layers of MLP, TSMixer, N-HiTS / N-BEATS and TiDE, in float64.

Each lowering walks the student's own modules (eval mode: BatchNorm with its running statistics, dropout
off) and writes the same function as ops on `[rows, cols]` buffers, with the scaler around it: raw window
-> `(x - mean) / std` -> student -> `y * std + mean` -> raw forecast. BatchNorm becomes an affine op
(`gamma / sqrt(var + eps)`, `beta - mean * that`): its per-variate (MLP) or per-(step, variate) (TSMixer)
statistics cannot be folded into a Dense whose weights all variates share without multiplying them by D.
Students without a lowering are refused in one line naming the layer that blocks them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from distilts.errors import DistiltsError
from distilts.mcu.cgraph import OUT, WINDOW, Graph


class NotLowerable(DistiltsError):
    """The student has a layer the C target's IR does not have."""


def _np(t: Any) -> np.ndarray:
    return t.detach().double().cpu().numpy()


def _act_name(m: nn.Module) -> str:
    if isinstance(m, nn.ReLU):
        return "relu"
    if isinstance(m, nn.GELU):
        return "gelu_tanh" if m.approximate == "tanh" else "gelu"
    raise NotLowerable(f"The C target has no {type(m).__name__} activation (it has ReLU, GELU and GELU-tanh).")


def _bn_affine(bn: Any) -> tuple[np.ndarray, np.ndarray]:
    """Eval BatchNorm as `x * a + c`."""
    a = _np(bn.weight) / np.sqrt(_np(bn.running_var) + bn.eps)
    return a, _np(bn.bias) - _np(bn.running_mean) * a


def _dense(g: Graph, x: str, lin: nn.Linear) -> str:
    return g.dense(x, _np(lin.weight), None if lin.bias is None else _np(lin.bias))


def _revin_in(g: Graph, x: str, revin: Any, along: str) -> tuple[str, int | None]:
    """RevIN / window normalization of `x` per variate (`along` the variate axis' kind); (value, stats id)."""
    if revin is None:
        return x, None
    x, stats = g.norm(x, along, revin.eps)
    if revin.affine:
        x = g.affine(x, _np(revin.weight), _np(revin.bias), along)
    return x, stats


def _revin_out(g: Graph, y: str, revin: Any, stats: int | None) -> str:
    """RevIN undone on `y [D, H]` (per row)."""
    if revin is None:
        return y
    if revin.affine:
        inv = 1.0 / (_np(revin.weight) + revin.eps * revin.eps)
        y = g.affine(y, inv, -_np(revin.bias) * inv, "row")
    assert stats is not None
    return g.denorm(y, stats)


def _frame(student: Any, config: dict, name: str, body: Callable[[Graph, str], str], variates_first: bool) -> Graph:
    """The scaler around `body` (normalized window -> normalized `[D, H]`) and the output transpose.

    `variates_first`: `body` takes the window as `[D, L]` (transposed before the scaler, which then runs in
    place: one window-sized buffer less), else as `[L, D]`."""
    mean = np.asarray(config["scaler"]["mean"], np.float64)
    std = np.asarray(config["scaler"]["std"], np.float64)
    g = Graph(student.lookback, student.horizon, student.n_variates, name)
    if variates_first:
        z = g.affine(g.transpose(WINDOW), 1.0 / std, -mean / std, "row")
    else:
        z = g.affine(WINDOW, 1.0 / std, -mean / std, "col")
    y = body(g, z)
    y = g.affine(y, std, mean, "row")
    g.transpose(y, out=OUT)
    return g.prune()


def _mlp(student: Any, g: Graph, z: str) -> str:
    x, stats = _revin_in(g, z, student.revin, "row")  # [D, L]
    h = _dense(g, x, student.hidden)
    if isinstance(student.norm, nn.BatchNorm1d):
        h = g.affine(h, *_bn_affine(student.norm), "row")
    h = g.act(h, _act_name(student.act))
    y = _dense(g, h, student.out)
    if getattr(student, "skip", None) is not None:  # the linear path of the window
        y = g.binary("add", y, _dense(g, x, student.skip))
    return _revin_out(g, y, student.revin, stats)


def _block_norm(g: Graph, x: str, norm: Any) -> str:
    if isinstance(norm, nn.LayerNorm):
        x, _ = g.norm(x, "all", norm.eps)
        w = None if norm.weight is None else _np(norm.weight)
        return g.affine(x, w, None if norm.bias is None else _np(norm.bias), "all")
    return g.affine(x, *_bn_affine(norm), "all")  # StepBatchNorm: one statistic per (step, variate)


def _tsmixer(student: Any, g: Graph, z: str) -> str:
    x, stats = _revin_in(g, z, student.revin, "col")  # [L, D]
    for block in student.blocks:
        act = _act_name(block.act)
        t = g.transpose(g.act(_dense(g, g.transpose(_block_norm(g, x, block.time_norm)), block.time_mix), act))
        x = g.binary("add", x, t)
        f = g.act(_dense(g, _block_norm(g, x, block.feature_norm), block.feature_in), act)
        x = g.binary("add", x, _dense(g, f, block.feature_out))
    return _revin_out(g, _dense(g, g.transpose(x), student.head), student.revin, stats)


def _nhits(student: Any, g: Graph, z: str) -> str:
    residual, stats = _revin_in(g, z, student.revin, "row")  # [D, L]
    forecast = g.last(residual, student.horizon)
    L = student.lookback
    for block in student.blocks:
        h = residual
        if block.pool is not None or block.pad:
            h = g.maxpool(h, block.pool.kernel_size if block.pool is not None else 1, block.pad)
        for layer in block.mlp:
            if isinstance(layer, nn.Linear):
                h = _dense(g, h, layer)
            elif not isinstance(layer, nn.Dropout):
                h = g.act(h, _act_name(layer))
        w, b = _np(block.theta.weight), _np(block.theta.bias)
        K = block.n_knots
        backcast = g.dense(h, w[:L], b[:L])
        knots = g.dense(h, w[L : L + K], b[L : L + K])
        if block.interp is not None:
            knots = g.dense(knots, _np(block.interp).T)
        residual = g.binary("sub", residual, backcast)
        forecast = g.binary("add", forecast, knots)
    return _revin_out(g, forecast, student.revin, stats)


def _tide_linear(g: Graph, x: str, lin: nn.Linear, extra: np.ndarray | None) -> str:
    """`lin` on `[x, extra]` per row: `extra [R, e]` constant (TiDE's variate embedding) folded into a shift."""
    if extra is None:
        return _dense(g, x, lin)
    w, b = _np(lin.weight), _np(lin.bias)
    n = w.shape[1] - extra.shape[1]
    return g.affine(g.dense(x, w[:, :n]), None, extra @ w[:, n:].T + b, "all")


def _tide_stack(g: Graph, x: str, stack: Any, extra: np.ndarray | None = None) -> str:
    if isinstance(stack, nn.Linear):
        return _tide_linear(g, x, stack, extra)
    for block in stack:
        lin_in, act, lin_out = block.hidden[0], block.hidden[1], block.hidden[2]
        h = _dense(g, g.act(_tide_linear(g, x, lin_in, extra), _act_name(act)), lin_out)
        x = g.binary("add", h, _tide_linear(g, x, block.skip, extra))
        if isinstance(block.norm, nn.LayerNorm):
            x, _ = g.norm(x, "row", block.norm.eps)
            x = g.affine(x, _np(block.norm.weight), _np(block.norm.bias), "col")
        extra = None
    return x


def _tide(student: Any, g: Graph, z: str) -> str:
    x, stats = _revin_in(g, z, student.revin, "row")  # [D, L]
    emb = None if student.variate_embedding is None else _np(student.variate_embedding)
    h = _tide_stack(g, x, student.encoder, emb)
    decoded = _tide_stack(g, h, student.decoder)  # [D, H * p]
    D, H = student.n_variates, student.horizon
    t = _tide_stack(g, g.reshape(decoded, (D * H, student.decoder_output_dim)), [student.temporal_decoder])
    out = g.binary("add", g.reshape(t, (D, H)), _dense(g, x, student.residual))
    return _revin_out(g, out, student.revin, stats)


LOWERINGS: dict[str, Callable[[Any, Graph, str], str]] = {
    "MLP": _mlp,
    "TSMixer": _tsmixer,
    "NHiTS": _nhits,
    "NBEATS": _nhits,
    "TiDE": _tide,
}
SUPPORTED_LAYERS = (nn.Linear, nn.ReLU, nn.GELU, nn.BatchNorm1d, nn.LayerNorm, nn.Dropout, nn.Identity, nn.MaxPool1d)


def lower(student: nn.Module, config: dict) -> Graph:
    """The student (eval) and its scaler as a Graph, or NotLowerable naming the layer that blocks it."""
    cls = type(student).__name__
    if getattr(student, "quantile_head", None) is not None:
        raise NotLowerable(
            f"The C target does not support quantile students yet ({cls} has a non-crossing quantile head): "
            "compile it to onnx/openvino/tflite, or distil a point-forecast student (no --quantiles) for C."
        )
    if cls not in LOWERINGS:
        raise NotLowerable(
            f"The C target cannot lower {cls}: its {_blocking_layer(student)} has no C kernel here (C takes "
            f"DLinear, {', '.join(LOWERINGS)}). Compile it to tflite/onnx, or distil one of those students."
        )
    with torch.no_grad():
        return _frame(student, config, cls, lambda g, z: LOWERINGS[cls](student, g, z), cls != "TSMixer")


def _blocking_layer(student: nn.Module) -> str:
    """The first leaf layer outside SUPPORTED_LAYERS (else the module's own forward)."""
    for name, m in student.named_modules():
        if next(m.children(), None) is None and not isinstance(m, SUPPORTED_LAYERS) and type(m).__name__ != "RevIN":
            return f"{type(m).__name__} layer `{name}`"
        if type(m).__name__ in ("Attention", "MultiheadAttention"):
            return f"softmax attention `{name}`"
    return f"{type(student).__name__}.forward (operators outside the C IR)"
