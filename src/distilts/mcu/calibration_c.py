"""The online calibration step in C: `distilts_calib_t` and `distilts_calibrate_{init,update,apply}`.

The conformal quantile tracker of distilts.runtime.calibration (docs/runtime.md, "Online calibration"),
written once for every artifact that forecasts quantiles on a device: the C artifact's model.c/model.h
(mcu/quantile_c.py) and the TFLite Micro / Ethos-U `main.cc` (mcu/tflm.py). Same rule, same float32
operations in the same order as the Python `OnlineCalibrator` (so the offsets are bit-identical):
`theta += (lr * std_d) * (tau - (y <= q + theta))`, NaN observations skipped; `apply` adds the offsets and
takes a running maximum over the levels. Forecasts and offsets are laid out `[D][H][Q]`, observations `[H][D]`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from distilts.mcu import cgen
from distilts.runtime.calibration import DEFAULT_LR

PROTOTYPES = """void distilts_calibrate_init(distilts_calib_t *s);  /* all offsets 0 */
/* forecast: what forecast() returned (UNcalibrated) for the window before the H values in observed
 * ([H][D] raw; NaN = not observed yet, skipped; do not build with -ffast-math). */
void distilts_calibrate_update(distilts_calib_t *s, const float *forecast, const float *observed);
/* quantiles [D][H][Q] in place: + offsets, then a running maximum so the levels stay ordered. */
void distilts_calibrate_apply(const distilts_calib_t *s, float *quantiles);
"""


def struct_decl(n_variates: int, horizon: int, n_levels: int) -> str:
    """The state's typedef (plain data: persist it as bytes)."""
    return f"""/* Online calibration (conformal quantile tracker; docs/runtime.md "Online calibration"): one offset per
 * variate, step and level, theta += lr * std_d * (tau - (y <= q + theta)). Plain data: persist it as bytes. */
typedef struct {{
  float offset[{n_variates * horizon * n_levels}];  /* [D={n_variates}][H={horizon}][Q={n_levels}], raw units */
  uint32_t updates;
}} distilts_calib_t;
"""


def source(levels: Sequence[float] | np.ndarray, std: Sequence[float] | np.ndarray, horizon: int) -> str:
    """The constants and the three functions (self-contained macros `DCAL_*`)."""
    D, Q = len(std), len(levels)
    return f"""
#define DCAL_D {D}
#define DCAL_H {int(horizon)}
#define DCAL_Q {Q}
#ifndef DISTILTS_CALIB_LR
#define DISTILTS_CALIB_LR {cgen._c_float(DEFAULT_LR)}
#endif
static const float DCAL_LEVELS[DCAL_Q] = {{
{cgen._floats(np.asarray(levels))}
}};
static const float DCAL_STD[DCAL_D] = {{
{cgen._floats(np.asarray(std))}
}};
{_FUNCTIONS}"""


_FUNCTIONS = r"""
void distilts_calibrate_init(distilts_calib_t *s) {
  for (int i = 0; i < DCAL_D * DCAL_H * DCAL_Q; ++i) s->offset[i] = 0.0f;
  s->updates = 0;
}

void distilts_calibrate_update(distilts_calib_t *s, const float *forecast, const float *observed) {
  for (int d = 0; d < DCAL_D; ++d) {
    const float step = (float)DISTILTS_CALIB_LR * DCAL_STD[d];
    for (int h = 0; h < DCAL_H; ++h) {
      const float y = observed[h * DCAL_D + d];
      if (y != y) continue;  /* NaN: not observed yet */
      for (int j = 0; j < DCAL_Q; ++j) {
        const int i = (d * DCAL_H + h) * DCAL_Q + j;
        const float below = y <= forecast[i] + s->offset[i] ? 1.0f : 0.0f;
        s->offset[i] += step * (DCAL_LEVELS[j] - below);
      }
    }
  }
  s->updates += 1;
}

void distilts_calibrate_apply(const distilts_calib_t *s, float *quantiles) {
  for (int i = 0; i < DCAL_D * DCAL_H; ++i) {
    float *q = quantiles + i * DCAL_Q;
    for (int j = 0; j < DCAL_Q; ++j) {
      q[j] += s->offset[i * DCAL_Q + j];
      if (j > 0 && q[j] < q[j - 1]) q[j] = q[j - 1];
    }
  }
}
"""
