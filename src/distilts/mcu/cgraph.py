"""A small layer IR for the C target, its float64 reference, its memory plan and its C99 emitter.

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

import re
from dataclasses import dataclass, field

import numpy as np

from distilts.mcu.cgen import _c_float, _floats, _ints, quantize_weights

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
    n_stats = sum(2 * _n_stats(g, op) for op in g.ops if op.kind == "norm")
    return Plan(offsets, arena, q, n_stats)


def _first_fit(blocks: list[tuple[int, int]], size: int) -> int:
    at = 0
    for off, n in blocks:
        if off - at >= size:
            return at
        at = max(at, off + n)
    return at


def _n_stats(g: Graph, op: Op) -> int:
    R, C = g.shapes[op.ins[0]]
    return {"row": R, "col": C, "all": 1}[op.params["along"]]


# ---- C emitter ----
def header(g: Graph, p: Plan, precision: str) -> str:
    """model.h: the entry point and the sizes (the same macros as the DLinear artifact's)."""
    return f"""/* {g.name}: generated by distilts (compile --target c), {precision}. Dependency-free C99. */
#ifndef DISTILTS_MODEL_H
#define DISTILTS_MODEL_H
#ifdef __cplusplus
extern "C" {{
#endif

#define FORECAST_LOOKBACK {g.lookback}  /* L: time steps in a window */
#define FORECAST_HORIZON {g.horizon}   /* H: time steps forecast */
#define FORECAST_VARIATES {g.n_variates}   /* D: variates (columns) */
#define FORECAST_RAM_BYTES {p.ram_bytes()}  /* static scratch (arena, statistics, int8 scratch) */

/* window: L x D raw values, row-major (time step, then variate), oldest first.
 * out: H x D raw forecasts, same layout. No heap; static scratch, so not reentrant. */
void forecast(const float *window, float *out);

#ifdef __cplusplus
}}
#endif
#endif
"""


_KERNELS = r"""
static void k_dense_f32(const float *x, float *y, int R, int I, int O, const float *W, const float *b) {
  for (int r = 0; r < R; ++r)
    for (int o = 0; o < O; ++o) {
      const float *w = W + (size_t)o * I, *xr = x + (size_t)r * I;
      float acc = 0.0f;
      for (int i = 0; i < I; ++i) acc += w[i] * xr[i];
      y[(size_t)r * O + o] = b ? acc + b[o] : acc;
    }
}

static void k_dense_i8(const float *x, float *y, int R, int I, int O, const int8_t *W, const float *sw,
                       const int32_t *rowsum, const float *b, int8_t *q) {
  const size_t n = (size_t)R * I;
  float lo = x[0], hi = x[0];
  for (size_t i = 1; i < n; ++i) { lo = x[i] < lo ? x[i] : lo; hi = x[i] > hi ? x[i] : hi; }
  const float c = 0.5f * (lo + hi), half = 0.5f * (hi - lo);
  const float step = half > 0.0f ? half / 127.0f : 1.0f, inv = 1.0f / step;
  for (size_t i = 0; i < n; ++i) {
    float v = (x[i] - c) * inv;
    int v8 = (int)(v + (v >= 0.0f ? 0.5f : -0.5f));
    q[i] = (int8_t)(v8 > 127 ? 127 : (v8 < -127 ? -127 : v8));
  }
  for (int r = 0; r < R; ++r)
    for (int o = 0; o < O; ++o) {
      const int8_t *w = W + (size_t)o * I, *qr = q + (size_t)r * I;
      int32_t acc = 0;
      for (int i = 0; i < I; ++i) acc += (int32_t)w[i] * (int32_t)qr[i];
      float v = sw[o] * (step * (float)acc + c * (float)rowsum[o]);
      y[(size_t)r * O + o] = b ? v + b[o] : v;
    }
}

static size_t at(along_t a, int r, int c, int C) {
  return a == ALONG_ROW ? (size_t)r : a == ALONG_COL ? (size_t)c : (size_t)r * C + c;
}
static void k_affine(const float *x, float *y, int R, int C, along_t a, const float *scale, const float *shift) {
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      size_t i = (size_t)r * C + c, k = at(a, r, c, C);
      float v = scale ? x[i] * scale[k] : x[i];
      y[i] = shift ? v + shift[k] : v;
    }
}

/* groups of n values, group g at g * gstride, its values estride apart */
static void k_norm(const float *x, float *y, int groups, int n, int gstride, int estride, float eps, float *mean,
                   float *sd) {
  for (int g = 0; g < groups; ++g) {
    const float *xg = x + (size_t)g * gstride;
    float *yg = y + (size_t)g * gstride;
    float m = 0.0f, v = 0.0f;
    for (int i = 0; i < n; ++i) m += xg[(size_t)i * estride];
    m /= (float)n;
    for (int i = 0; i < n; ++i) { float d = xg[(size_t)i * estride] - m; v += d * d; }
    float s = sqrtf(v / (float)n + eps);
    for (int i = 0; i < n; ++i) yg[(size_t)i * estride] = (xg[(size_t)i * estride] - m) / s;
    mean[g] = m;
    sd[g] = s;
  }
}

static void k_denorm(const float *x, float *y, int R, int C, const float *mean, const float *sd) {
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) y[(size_t)r * C + c] = x[(size_t)r * C + c] * sd[r] + mean[r];
}

/* exp, erf and tanh from + - * / and exact bit assembly only, so every C99 platform without FMA
 * contraction gives the same bits (libm's erff/expf differ between glibc and newlib) */
static float k_exp(float x) {
  union { float f; uint32_t u; } s;
  x = x > 88.0f ? 88.0f : (x < -87.0f ? -87.0f : x);
  float kf = x * 1.44269504f;
  int k = (int)(kf + (kf >= 0.0f ? 0.5f : -0.5f));
  float r = (x - (float)k * 0.693145752f) - (float)k * 1.42860677e-6f; /* Cody-Waite split of ln 2 */
  float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.66666672e-1f + r * (4.16666679e-2f + r * (8.33333377e-3f +
            r * 1.38888892e-3f)))));
  s.u = (uint32_t)(k + 127) << 23;
  return p * s.f;
}
static float k_erf(float x) { /* Numerical Recipes' erfc, fractional error < 1.2e-7 */
  float z = x < 0.0f ? -x : x, t = 1.0f / (1.0f + 0.5f * z);
  float y = t * k_exp(-z * z - 1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f +
            t * (-0.18628806f + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f +
            t * 0.17087277f)))))))));
  return x >= 0.0f ? 1.0f - y : y - 1.0f;
}
static float k_tanh(float x) { return 1.0f - 2.0f / (k_exp(2.0f * x) + 1.0f); }
static void k_act(const float *x, float *y, size_t n, int fn) {
  for (size_t i = 0; i < n; ++i) {
    float v = x[i];
    if (fn == 0) y[i] = v > 0.0f ? v : 0.0f;
    else if (fn == 1) y[i] = 0.5f * v * (1.0f + k_erf(v * 0.70710678118654752f));
    else y[i] = 0.5f * v * (1.0f + k_tanh(0.79788456080286536f * (v + 0.044715f * v * v * v)));
  }
}

static void k_add(const float *x, const float *z, float *y, size_t n, float sign) {
  for (size_t i = 0; i < n; ++i) y[i] = x[i] + sign * z[i];
}

static void k_transpose(const float *x, float *y, int R, int C) {
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) y[(size_t)c * R + r] = x[(size_t)r * C + c];
}

static void k_maxpool(const float *x, float *y, int R, int C, int k, int pad) {
  const int n = (C + pad) / k;
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < n; ++j) {
      float m = x[(size_t)r * C + (j * k - pad < 0 ? 0 : j * k - pad)];
      for (int t = j * k; t < (j + 1) * k; ++t) {
        float v = x[(size_t)r * C + (t - pad < 0 ? 0 : t - pad)];
        m = v > m ? v : m;
      }
      y[(size_t)r * n + j] = m;
    }
}

static void k_copy(const float *x, float *y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = x[i];
}

static void k_last(const float *x, float *y, int R, int C, int n) {
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < n; ++j) y[(size_t)r * n + j] = x[(size_t)r * C + C - 1];
}
"""


def _kernels() -> dict[str, str]:
    """The kernels of _KERNELS by function name (a kernel goes into model.c only when an op calls it)."""
    out: dict[str, str] = {}
    for chunk in _KERNELS.strip().split("\n\n"):
        found = re.search(r"static void (k_\w+)\(", chunk)
        assert found is not None, chunk
        name = found.group(1)
        out[name] = (out.get(name, "") + "\n" + chunk).strip() + "\n"
    return out


_ALONG = {"row": "ALONG_ROW", "col": "ALONG_COL", "all": "ALONG_ALL"}


class _Consts:
    """The constant arrays of model.c and their bytes (flash)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.bytes = 0

    def floats(self, a: np.ndarray | None) -> str:
        if a is None:
            return "0"
        name = f"K{len(self.lines)}"
        self.lines.append(f"static const float {name}[{a.size}] = {{\n{_floats(a)}\n}};")
        self.bytes += 4 * a.size
        return name

    def ints(self, a: np.ndarray, ctype: str, width: int) -> str:
        name = f"K{len(self.lines)}"
        self.lines.append(f"static const {ctype} {name}[{a.size}] = {{\n{_ints(a)}\n}};")
        self.bytes += width * a.size
        return name


def source(g: Graph, p: Plan, precision: str) -> tuple[str, int]:
    """(model.c, flash bytes of its constants) for `precision` ('fp32' | 'int8')."""
    k = _Consts()
    body: list[str] = []
    stat_sizes = {op.params["stats"]: _n_stats(g, op) for op in g.ops if op.kind == "norm"}

    def ptr(v: str) -> str:
        return v if v in (WINDOW, OUT) else f"(ARENA + {p.offsets[v]})"

    for op in g.ops:
        (R, C), x, y, q = g.shapes[op.ins[0]], ptr(op.ins[0]), ptr(op.out), op.params
        if op.kind == "dense":
            n_out = g.shapes[op.out][1]
            b = k.floats(q["bias"])
            if precision == "fp32":
                body.append(f"k_dense_f32({x}, {y}, {R}, {C}, {n_out}, {k.floats(q['weight'])}, {b});")
            else:
                wq, ws = quantize_weights(q["weight"])
                rs = wq.astype(np.int32).sum(-1)
                body.append(
                    f"k_dense_i8({x}, {y}, {R}, {C}, {n_out}, {k.ints(wq, 'int8_t', 1)}, {k.floats(ws)}, "
                    f"{k.ints(rs, 'int32_t', 4)}, {b}, Q);"
                )
        elif op.kind == "affine":
            body.append(
                f"k_affine({x}, {y}, {R}, {C}, {_ALONG[q['along']]}, {k.floats(q['scale'])}, {k.floats(q['shift'])});"
            )
        elif op.kind == "norm":
            groups, n, gs, es = {"row": (R, C, C, 1), "col": (C, R, 1, C), "all": (1, R * C, 0, 1)}[q["along"]]
            s = q["stats"]
            body.append(f"k_norm({x}, {y}, {groups}, {n}, {gs}, {es}, {_c_float(q['eps'])}, MEAN{s}, SD{s});")
        elif op.kind == "denorm":
            s = q["stats"]
            body.append(f"k_denorm({x}, {y}, {R}, {C}, MEAN{s}, SD{s});")
        elif op.kind == "act":
            body.append(f"k_act({x}, {y}, {R * C}, {ACTIVATIONS.index(q['fn'])});")
        elif op.kind in ("add", "sub"):
            sign = "1.0f" if op.kind == "add" else "-1.0f"
            body.append(f"k_add({x}, {ptr(op.ins[1])}, {y}, {R * C}, {sign});")
        elif op.kind == "transpose":
            body.append(f"k_transpose({x}, {y}, {R}, {C});")
        elif op.kind == "maxpool":
            body.append(f"k_maxpool({x}, {y}, {R}, {C}, {q['k']}, {q['pad']});")
        elif op.kind == "reshape" and x != y:
            body.append(f"k_copy({x}, {y}, {R * C});")
        elif op.kind == "last":
            body.append(f"k_last({x}, {y}, {R}, {C}, {g.shapes[op.out][1]});")
    lines = [
        f"/* {g.name}: generated by distilts (compile --target c), {precision}: {len(g.ops)} ops "
        f"({', '.join(sorted({o.kind for o in g.ops}))}). */",
        '#include "model.h"',
        "#include <math.h>",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        f"static float ARENA[{max(p.arena, 1)}];",
        *(f"static float MEAN{s}[{n}], SD{s}[{n}];" for s, n in stat_sizes.items()),
    ]
    if precision == "int8":
        lines.append(f"static int8_t Q[{max(p.q_scratch, 1)}];")
    lines += k.lines
    lines.append("typedef enum { ALONG_ROW, ALONG_COL, ALONG_ALL } along_t;")
    lines += [code for name, code in _kernels().items() if any(b.startswith(name + "(") for b in body)]
    lines.append("void forecast(const float *window, float *out) {")
    lines += [f"  {b}" for b in body]
    lines.append("}")
    return "\n".join(lines) + "\n", k.bytes
