"""Quantile levels (distilts.quantiles) and the probabilistic metrics (distilts.metrics), by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from distilts import metrics
from distilts.quantiles import CHRONOS2, DECILES, QuantileError, column_name, median_index, missing_levels, parse_levels


def test_parse_named_and_listed_levels():
    assert parse_levels("deciles") == DECILES == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    assert parse_levels("chronos-2") == CHRONOS2 and len(CHRONOS2) == 21 and CHRONOS2[0] == 0.01
    assert parse_levels(" 0.1, 0.5,0.9 ") == (0.1, 0.5, 0.9)
    assert parse_levels([0.25, 0.5, 0.75]) == (0.25, 0.5, 0.75)
    assert parse_levels("0.1,0.9", require_median=False) == (0.1, 0.9)
    assert median_index(DECILES) == 4 and median_index(CHRONOS2) == 10


@pytest.mark.parametrize(
    "spec, words",
    [
        ("0,0.5,0.9", "strictly between 0 and 1"),
        ("0.1,0.5,1.2", "strictly between 0 and 1"),
        ("0.9,0.5,0.1", "increasing order"),
        ("0.1,0.5,0.5,0.9", "repeated"),
        ("0.1,0.9", "lack the median"),
        ("a,b", "Cannot read"),
        ("", "No quantile levels"),
        ("decile", "Cannot read"),
    ],
)
def test_bad_levels_name_the_fix(spec, words):
    with pytest.raises(QuantileError, match=words):
        parse_levels(spec)


def test_missing_levels_and_column_names():
    assert missing_levels((0.05, 0.1, 0.5), DECILES) == [0.05]
    assert missing_levels(DECILES, CHRONOS2) == []
    assert column_name("OT", 0.1) == "OT_q0.1" and column_name("OT", 0.05) == "OT_q0.05"


# one window, 2 steps, 1 variate, levels 0.1/0.5/0.9; lookback [0, 1, 3]
LEVELS = (0.1, 0.5, 0.9)
Q = np.array([[[[0.0, 1.0, 2.0]], [[2.0, 2.5, 4.0]]]])  # [1, 2, 1, 3]
Y = np.array([[[1.0], [3.0]]])
X = np.array([[[0.0], [1.0], [3.0]]])


def test_wql_by_hand():
    # pinball sums per level: 0.1 -> 0.1 + 0.1, 0.5 -> 0 + 0.25, 0.9 -> 0.1 + 0.1; sum |y| = 4
    assert math.isclose(metrics.wql(Q, Y, LEVELS), np.mean([2 * 0.2 / 4, 2 * 0.25 / 4, 2 * 0.2 / 4]))
    # a perfect point forecast at every level: only the spread is charged
    assert metrics.wql(np.repeat(Y[..., None], 3, -1), Y, LEVELS) == 0.0


def test_mase_coverage_width_msis_by_hand():
    # in-sample naive (m = 1) MAE: (1 + 2) / 2 = 1.5; median errors 0 and 0.5
    assert math.isclose(metrics.mase(Q[..., 1], Y, X), 0.25 / 1.5)
    s = metrics.probabilistic_scores(Q, Y, X, LEVELS)
    assert s["interval"]["coverage"] == 1.0 and s["interval"]["mean_width"] == 2.0
    assert math.isclose(s["interval"]["msis"], 2.0 / 1.5)
    assert s["crossings"] == 0
    y_out = np.array([[[1.0], [5.0]]])  # step 2 above the upper bound 4 by 1: 2 + 2 / 0.2 * 1 = 12
    s = metrics.probabilistic_scores(Q, y_out, X, LEVELS)
    assert s["interval"]["coverage"] == 0.5
    assert math.isclose(s["interval"]["msis"], (2 + 12) / 2 / 1.5)
    # seasonal scale: m = 2 -> |3 - 0| = 3
    assert math.isclose(metrics.mase(Q[..., 1], Y, X, season=2), 0.25 / 3)


def test_crossings_are_counted_and_seasonality():
    crossed = Q.copy()
    crossed[0, 1, 0, 0] = 3.0  # level 0.1 above the median at step 2
    assert metrics.crossings(crossed) == 1
    assert metrics.seasonality(3600) == 24 and metrics.seasonality(None) == 1 and metrics.seasonality(7) == 1
