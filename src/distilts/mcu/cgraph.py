"""A small layer IR for the C target, its float64 reference and its memory plan (C99: distilts.mcu.cemit).

A `Graph` is a straight line of ops on 2-D float buffers `[rows, cols]` (row-major), from the raw window
`window [L, D]` to the raw forecast `out [H, D]` (distilts.mcu.clower builds one from a student):

| op | what it does |
|---|---|
| `dense` | `y[r] = W x[r] + b` for every row (W `[O, I]`); fp32, or int8 weights with one scale per output |
| `affine` | `y = x * a + b`, `a`/`b` per row, per column or per element (scaler, RevIN affine, BatchNorm) |
| `norm` | z-score per row, per column or over the whole buffer, `sqrt(var + eps)`; saves the statistics |
| `denorm` | `y = x * std + mean` with the statistics a `norm` saved (RevIN / window normalization undone) |
| `act` | relu, gelu (erf) or gelu_tanh, elementwise |
| `add` / `sub` | elementwise with a second buffer of the same shape (residuals, N-HiTS backcast) |
| `transpose` | `[R, C] -> [C, R]` |
| `maxpool` | per row: the oldest value replicated `pad` times in front, then max over `k` steps, stride `k` |
| `last` | per row: the last column broadcast to `n` columns (N-HiTS' level) |
| `reshape` | the same values as `[R', C']` (free when its input dies there, else a copy) |

int8 (`dense` only; everything else stays float): int8 weights with one scale per output, the input buffer
quantized per tensor at run time (centre and step from its own range, symmetric int8 around the centre),
products accumulated in int32 and rescaled once per output, `sum_i W[o,i] x_i ~= s_o (c rowsum_o + step acc)`,
as distilts.mcu.cgen does for DLinear. The buffers live in one static float arena planned here (first fit
over the values' lifetimes; elementwise ops run in place when their input dies there): RAM = arena + saved
statistics + the int8 scratch, flash = the constants.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

WINDOW, OUT = "window", "out"
ELEMENTWISE = ("affine", "norm", "denorm", "act", "add", "sub", "reshape")  # may run in place
ACTIVATIONS = ("relu", "gelu", "gelu_tanh")


@dataclass
class Op:
    """One op: `kind`, its input value names, its output value name, its constants and parameters."""

    kind: str
    ins: list[str]
    out: str
    params: dict = field(default_factory=dict)


@dataclass
class Graph:
    """The student as ops on named `[rows, cols]` values, raw window `[L, D]` in, raw forecast `[H, D]` out."""

    lookback: int
    horizon: int
    n_variates: int
    name: str
    ops: list[Op] = field(default_factory=list)
    shapes: dict[str, tuple[int, int]] = field(default_factory=dict)
    n_stats: int = 0

    def __post_init__(self) -> None:
        self.shapes[WINDOW] = (self.lookback, self.n_variates)

    # ---- building ----
    def _new(self, shape: tuple[int, int], out: str | None) -> str:
        name = out or f"v{len(self.shapes)}"
        self.shapes[name] = (int(shape[0]), int(shape[1]))
        return name

    def add(self, kind: str, ins: list[str], shape: tuple[int, int], out: str | None = None, **params) -> str:
        """Append an op; returns its output value's name."""
        name = self._new(shape, out)
        self.ops.append(Op(kind, list(ins), name, params))
        return name

    def dense(self, x: str, weight: np.ndarray, bias: np.ndarray | None = None) -> str:
        R, n_in = self.shapes[x]
        w = np.asarray(weight, np.float64)
        if w.shape[1] != n_in:
            raise ValueError(f"dense: weight {w.shape} does not take {n_in} inputs")
        b = None if bias is None else np.asarray(bias, np.float64)
        return self.add("dense", [x], (R, w.shape[0]), weight=w, bias=b)

    def affine(
        self, x: str, scale: np.ndarray | None, shift: np.ndarray | None, along: str, out: str | None = None
    ) -> str:
        """`along`: "row" (one value per row), "col" (per column) or "all" (per element, `[R, C]`)."""
        return self.add(
            "affine",
            [x],
            self.shapes[x],
            out,
            along=along,
            scale=None if scale is None else np.asarray(scale, np.float64).ravel(),
            shift=None if shift is None else np.asarray(shift, np.float64).ravel(),
        )

    def norm(self, x: str, along: str, eps: float) -> tuple[str, int]:
        """z-score `x` per row ("row"), per column ("col") or over everything ("all"); (value, statistics id)."""
        self.n_stats += 1
        return self.add("norm", [x], self.shapes[x], along=along, eps=float(eps), stats=self.n_stats), self.n_stats

    def denorm(self, x: str, stats: int) -> str:
        """`x * std + mean` per row, with the statistics of norm `stats`."""
        return self.add("denorm", [x], self.shapes[x], stats=stats)

    def act(self, x: str, fn: str) -> str:
        if fn not in ACTIVATIONS:
            raise ValueError(f"activation {fn!r} is not one of {ACTIVATIONS}")
        return self.add("act", [x], self.shapes[x], fn=fn)

    def binary(self, kind: str, x: str, y: str) -> str:
        if self.shapes[x] != self.shapes[y]:
            raise ValueError(f"{kind}: shapes {self.shapes[x]} and {self.shapes[y]} differ")
        return self.add(kind, [x, y], self.shapes[x])

    def transpose(self, x: str, out: str | None = None) -> str:
        R, C = self.shapes[x]
        return self.add("transpose", [x], (C, R), out)

    def maxpool(self, x: str, k: int, pad: int) -> str:
        R, C = self.shapes[x]
        return self.add("maxpool", [x], (R, (C + pad) // k), k=int(k), pad=int(pad))

    def reshape(self, x: str, shape: tuple[int, int]) -> str:
        if shape[0] * shape[1] != self.shapes[x][0] * self.shapes[x][1]:
            raise ValueError(f"reshape: {self.shapes[x]} has not {shape[0] * shape[1]} values")
        return self.add("reshape", [x], shape)

    def last(self, x: str, n: int) -> str:
        return self.add("last", [x], (self.shapes[x][0], n))

    def prune(self) -> Graph:
        """Drop the ops whose values nothing reads (e.g. N-HiTS' last backcast); `norm` stays (its statistics)."""
        needed, kept = {OUT}, []
        for op in reversed(self.ops):
            if op.out in needed or op.kind == "norm":
                kept.append(op)
                needed.update(op.ins)
        self.ops = kept[::-1]
        for v in set(self.shapes) - needed - {op.out for op in kept} - {WINDOW}:
            del self.shapes[v]
        return self

    # ---- the float64 reference ----
    def run(self, window: np.ndarray) -> np.ndarray:
        """float64 reference of the C code (fp32 weights): `[B, L, D]` raw -> `[B, H, D]` raw."""
        return np.stack([self._run_one(np.asarray(w, np.float64)) for w in window])

    def _run_one(self, window: np.ndarray) -> np.ndarray:
        vals: dict[str, np.ndarray] = {WINDOW: window}
        stats: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for op in self.ops:
            x, p = vals[op.ins[0]], op.params
            if op.kind == "dense":
                y = x @ p["weight"].T + (0.0 if p["bias"] is None else p["bias"])
            elif op.kind == "affine":
                y = x * _bcast(p["scale"], p["along"], x.shape, 1.0) + _bcast(p["shift"], p["along"], x.shape, 0.0)
            elif op.kind == "norm":
                axis = {"row": 1, "col": 0, "all": None}[p["along"]]
                m = x.mean(axis=axis, keepdims=True)
                s = np.sqrt(((x - m) ** 2).mean(axis=axis, keepdims=True) + p["eps"])
                stats[p["stats"]] = (m.ravel(), s.ravel())
                y = (x - m) / s
            elif op.kind == "denorm":
                m, s = stats[p["stats"]]
                y = x * s[:, None] + m[:, None]
            elif op.kind == "act":
                y = _act(x, p["fn"])
            elif op.kind in ("add", "sub"):
                y = x + vals[op.ins[1]] if op.kind == "add" else x - vals[op.ins[1]]
            elif op.kind == "transpose":
                y = x.T
            elif op.kind == "maxpool":
                xp = np.concatenate([np.repeat(x[:, :1], p["pad"], axis=1), x], axis=1)
                y = xp.reshape(x.shape[0], -1, p["k"]).max(axis=2)
            elif op.kind == "reshape":
                y = x.reshape(self.shapes[op.out])
            elif op.kind == "last":
                y = np.repeat(x[:, -1:], self.shapes[op.out][1], axis=1)
            else:
                raise ValueError(op.kind)
            vals[op.out] = y
        return vals[OUT]


def _bcast(v: np.ndarray | None, along: str, shape: tuple[int, int], default: float):
    if v is None:
        return default
    return {"row": lambda: v[:, None], "col": lambda: v[None, :], "all": lambda: v.reshape(shape)}[along]()


def _act(x: np.ndarray, fn: str) -> np.ndarray:
    if fn == "relu":
        return np.maximum(x, 0.0)
    if fn == "gelu":
        from math import erf

        return x * 0.5 * (1.0 + np.vectorize(erf)(x / np.sqrt(2.0)))
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


# ---- memory plan ----
@dataclass(frozen=True)
class Plan:
    """Arena offsets (floats) of every intermediate value, the arena size and the int8 scratch size."""

    offsets: dict[str, int]
    arena: int
    q_scratch: int
    stats: int  # floats of saved statistics (mean and std)

    def ram_bytes(self) -> int:
        return 4 * (self.arena + self.stats) + self.q_scratch


def plan(g: Graph, precision: str) -> Plan:
    """First-fit offsets over the values' lifetimes; an elementwise op reuses its input's block when it dies."""
    last_use: dict[str, int] = {}
    for i, op in enumerate(g.ops):
        for v in op.ins:
            last_use[v] = i
    live: dict[str, tuple[int, int]] = {}  # name -> (offset, size)
    offsets: dict[str, int] = {}
    arena = 0
    for i, op in enumerate(g.ops):
        size = g.shapes[op.out][0] * g.shapes[op.out][1]
        src = op.ins[0]
        if op.out == OUT:
            pass
        elif op.kind in ELEMENTWISE and src in live and last_use.get(src) == i:
            offsets[op.out] = live[src][0]
            live[op.out] = live.pop(src)
        else:
            off = _first_fit(sorted(live.values()), size)
            offsets[op.out] = off
            live[op.out] = (off, size)
            arena = max(arena, off + size)
        for v in op.ins:
            if last_use.get(v) == i and v in live and v != op.out:
                del live[v]
    q = 0
    if precision == "int8":
        q = max((int(np.prod(g.shapes[op.ins[0]])) for op in g.ops if op.kind == "dense"), default=0)
    stats = sum(2 * n_stats(g, op) for op in g.ops if op.kind == "norm")
    return Plan(offsets, arena, q, stats)


def _first_fit(blocks: list[tuple[int, int]], size: int) -> int:
    at = 0
    for off, n in blocks:
        if off - at >= size:
            return at
        at = max(at, off + n)
    return at


def n_stats(g: Graph, op: Op) -> int:
    R, C = g.shapes[op.ins[0]]
    return {"row": R, "col": C, "all": 1}[op.params["along"]]
