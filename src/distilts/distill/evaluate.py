"""The test protocol: MSE/MAE on normalized values (overall and per forecast step) for the student
and, on the very same windows, the teacher; for quantile forecasts also WQL, MASE of the median,
80% interval coverage / width and MSIS (distilts.metrics); plus the run's plots and model card."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure  # no pyplot: no global backend or figure registry is touched
from torch import nn

from distilts.data.windows import Windows
from distilts.metrics import probabilistic_scores
from distilts.quantiles import format_level, median_index, student_levels


@torch.no_grad()
def predict(model: nn.Module, windows: Windows, batch_size: int = 256, device: str = "cpu") -> np.ndarray:
    """Student forecasts `[N, H, D]` float32 for every window (eval mode, no grad)."""
    was_training = model.training
    model.eval()
    batch = getattr(windows, "covariate_batch", None)
    out = []
    for idx, x, _ in windows.iter_batches(batch_size):
        cov = {} if batch is None else {k: torch.from_numpy(v).to(device) for k, v in batch(idx).items()}
        out.append(model(torch.from_numpy(x).to(device), **cov).float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, windows.horizon, windows.values.shape[1]), np.float32)


def scores(
    pred: np.ndarray, windows: Windows, levels: tuple[float, ...] | None = None, season: int = 1
) -> dict[str, Any]:
    """MSE and MAE overall and per forecast step of `[N, H, D]` forecasts (of the median for
    quantile forecasts `[N, H, D, Q]` at `levels`, which also get `quantiles`: WQL, MASE, interval)."""
    truth = windows.targets()
    point = pred[..., median_index(levels)] if levels is not None else pred
    err = np.asarray(point, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    out = {
        "mse": float(np.mean(err**2)),
        "mae": float(np.mean(np.abs(err))),
        "mse_by_step": np.mean(err**2, axis=(0, 2)).tolist(),
        "mae_by_step": np.mean(np.abs(err), axis=(0, 2)).tolist(),
        "windows": int(len(err)),
    }
    if levels is not None:
        out["quantiles"] = probabilistic_scores(pred, truth, windows.inputs(), levels, season=season)
    return out


def plot_test_window(
    path: str | os.PathLike,
    x: np.ndarray,
    y: np.ndarray,
    student: np.ndarray,
    teacher: np.ndarray | None,
    column: str,
    levels: tuple[float, ...] | None = None,
) -> None:
    """One test window of one variate: history, truth, student (its median and the band between its
    outer levels for quantile forecasts `[H, Q]`) and teacher forecasts."""
    L, H = len(x), len(y)
    fig = Figure(figsize=(9, 3.5))
    ax = fig.subplots()
    ax.plot(np.arange(L), x, color="0.5", lw=1, label="history")
    steps = np.arange(L, L + H)
    ax.plot(steps, y, color="k", lw=1.5, label="truth")
    if levels is not None:
        ax.fill_between(
            steps,
            student[:, 0],
            student[:, -1],
            color="tab:blue",
            alpha=0.25,
            lw=0,
            label=f"student {format_level(levels[0])}-{format_level(levels[-1])}",
        )
        student = student[:, median_index(levels)]
    ax.plot(steps, student, color="tab:blue", lw=1.5, label="student" + (" median" if levels else ""))
    if teacher is not None:
        ax.plot(steps, teacher, color="tab:orange", lw=1.2, ls="--", label="teacher")
    ax.axvline(L - 0.5, color="0.8", lw=1)
    ax.set(title=f"Test window, variate '{column}' (normalized)", xlabel="time step", ylabel="value")
    ax.legend(loc="upper left", fontsize=8)
    _save(fig, path)


def plot_mse_by_step(path: str | os.PathLike, student: list[float], teacher: list[float] | None) -> None:
    """Test MSE at each forecast step, student vs teacher."""
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    steps = np.arange(1, len(student) + 1)
    ax.plot(steps, student, color="tab:blue", label="student")
    if teacher is not None:
        ax.plot(steps, teacher, color="tab:orange", ls="--", label="teacher")
    ax.set(title="Test MSE by forecast step (normalized)", xlabel="forecast step", ylabel="MSE")
    ax.legend(fontsize=8)
    _save(fig, path)


def write_plots(
    directory: Path,
    windows: Windows,
    pred: np.ndarray,
    teacher_pred: np.ndarray | None,
    metrics: dict,
    columns: list[str],
    levels: tuple[float, ...] | None = None,
) -> None:
    """`plots/forecast.png` (the middle test window, last variate) and `plots/mse_by_step.png`."""
    plots = directory / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    i, d = len(windows) // 2, len(columns) - 1
    x, y = windows[i]
    plot_test_window(
        plots / "forecast.png",
        x[:, d],
        y[:, d],
        pred[i, :, d],
        None if teacher_pred is None else teacher_pred[i, :, d],
        columns[d],
        levels,
    )
    teacher = metrics.get("teacher") or {}
    plot_mse_by_step(
        plots / "mse_by_step.png", metrics["test"]["mse_by_step"], (teacher.get("test") or {}).get("mse_by_step")
    )


def _teacher_details(t: dict) -> str:
    """The card's lines on an ensemble's members and weights, and on any fallback forecasts."""
    out = ""
    if t.get("kind") == "statistical" and t.get("season"):
        out += f" Statistical model, season {t['season']}, fitted once per series on its training part."
    if t.get("members"):
        rows = "\n".join(
            f"| {m['spec']} | {m['val']['mse']:.4f} | {m['val']['mae']:.4f} | {w:.3f} |"
            for m, w in zip(t["members"], t.get("mean_weights") or [], strict=False)
        )
        ens = t.get("val") or {}
        out += (
            f"\n\nEnsemble ({t.get('combination')}; the per-step weights are in config.json):\n\n"
            "| member | val MSE | val MAE | mean weight |\n|---|---|---|---|\n"
            f"{rows}\n| ensemble | {ens.get('mse', float('nan')):.4f} | {ens.get('mae', float('nan')):.4f} | |\n"
        )
    if t.get("fallbacks"):
        fb = t["fallbacks"]
        out += (
            f"\n\nFallback forecasts (SeasonalNaive where the model failed) on {len(fb)} series: "
            + "; ".join(f"{k}: {v}" for k, v in list(fb.items())[:10])
            + (" ..." if len(fb) > 10 else "")
            + "\n"
        )
    return out


def covariate_card(cov: dict | None) -> str:
    """The card's covariates paragraph ("" for a univariate student)."""
    if not cov:
        return ""
    cal = cov.get("calendar")
    parts = [f"{role} {', '.join(cov[role])}" for role in ("past", "future", "static") if cov.get(role)]
    text = f"\n**Covariates**: {'; '.join(parts)}"
    if cal:
        text += f" (calendar features {', '.join(cal['features']) or 'none'} from the timestamps"
        text += f", holidays of {cal['country']})" if cal.get("country") and "holiday" in cal["features"] else ")"
    if cov.get("calendar_dropped"):
        text += (
            f"; calendar features {', '.join(cov['calendar_dropped'])} dropped: the training data does not cover "
            "their cycle twice"
        )
    teacher = cov.get("teacher")
    return text + (f". {teacher}" if teacher else "") + "."


def model_card(config: dict, metrics: dict) -> str:
    """A short Markdown model card for a student directory."""
    s, t, data, loss = config["student"], config.get("teacher"), config.get("data", {}), config.get("loss", {})
    rows = [("student", metrics["test"])]
    if metrics.get("teacher") and metrics["teacher"].get("test"):
        rows.append((f"teacher ({metrics['teacher']['name']})", metrics["teacher"]["test"]))
    table = "\n".join(f"| {name} | {m['mse']:.4f} | {m['mae']:.4f} |" for name, m in rows)
    prob = _quantile_table(rows)
    teacher = (
        f"{t['name']} (`{t.get('path')}`, checkpoint sha256 `{str(t.get('checkpoint_sha256'))[:16]}…`)"
        if t
        else "none (trained on ground truth only)"
    )
    teacher += _teacher_details(t or {})
    kwargs = ", ".join(f"{k}={v}" for k, v in s.get("kwargs", {}).items()) or "defaults"
    split = data.get("split") or {}
    split_text = split
    if isinstance(split, dict):
        split_text = (
            f"{split.get('scheme', '?')} split, rows train {_rows(split.get('train'))}, "
            f"val {_rows(split.get('val'))}, test {_rows(split.get('test'))}"
        )
    terms = ["supervised pinball loss" if loss.get("supervised") == "pinball" else "supervised MSE"]
    if loss.get("kd"):
        kind = {"pinball": "pinball against the teacher's quantiles", "l2": "L2 between the quantile vectors"}
        what = f", {kind.get(loss.get('quantile_kd'), loss.get('quantile_kd'))}" if loss.get("quantile_kd") else ""
        terms.append(f"{loss.get('alpha')} x horizon-weighted KD (tau={loss.get('tau')}{what})")
    if loss.get("fta"):
        n_tok = loss["fta"].get("n_tokens") if isinstance(loss["fta"], dict) else None
        pooled = loss.get("hidden_tokens")
        which = f"all {n_tok} teacher tokens" if not pooled else f"{n_tok} pooled teacher tokens"
        terms.append(f"{loss.get('beta')} x FTA on {which} (training-only; not shipped)")
    elif loss.get("kd") is not None:
        terms.append(
            "no FTA"
            + (
                " (off by default for DLinear, as in the DistilTS scripts; --beta > 0 turns it on)"
                if s["name"] == "dlinear"
                else ""
            )
        )
    levels = loss.get("levels") or student_levels(s)
    limits = (
        "Point forecasts only (no uncertainty). "
        if not levels
        else f"Quantiles at levels {', '.join(f'{v:g}' for v in levels)} (0.5 is the point forecast); "
        "the interval's coverage is measured on the test split above and is not guaranteed elsewhere. "
    )
    intervals = config.get("intervals") or {}
    if intervals.get("val_coverage_after"):
        limits += (
            f"Intervals calibrated by split conformal prediction (CQR) on {intervals['windows']:,} validation "
            "windows: coverage there "
            + ", ".join(
                f"{k} {intervals['val_coverage_before'][k]:.1%} -> {v:.1%}"
                for k, v in intervals["val_coverage_after"].items()
            )
            + ". "
        )
    norm = config.get("normalization")
    norm = f"\n**Instance normalization**: {norm['why']}." if norm else ""
    norm += covariate_card(config.get("covariates"))
    return f"""# {s["name"]} student — L={config["lookback"]}, H={config["horizon"]}

**What**: {s["name"]} forecaster ({kwargs}; {config["param_count"]:,} parameters) mapping the last
{config["lookback"]} steps of {config["n_variates"]} variates ({", ".join(config["columns"])}) to the next
{config["horizon"]} steps, distilled with DistilTS (arXiv 2601.12785).

**Data**: `{data.get("source")}` (sha256 `{str(data.get("hash"))[:16]}…`), {split_text}; inputs are
z-scored with the training-part statistics stored in `config.json`.{norm}

**Teacher**: {teacher}.
**Loss**: {" + ".join(terms)}.

## Test metrics (normalized scale, stride-1 test windows: {metrics["test"]["windows"]})

| model | MSE | MAE |
|---|---|---|
{table}
{prob}
## Intended use
Fast point forecasts on CPUs and edge devices for series like the training data, after
`distilts compile`. Compare with the teacher above before relying on it.

## Limitations
{limits}Fixed lookback, horizon and variates; accuracy is
measured on one dataset's test split and degrades under distribution shift. The teacher's
errors and biases are distilled along with its skill.
"""


def _quantile_table(rows: list[tuple[str, dict]]) -> str:
    """The probabilistic metrics of the rows that have them, as a Markdown table (or "")."""
    lines = []
    for name, m in rows:
        q = m.get("quantiles")
        if not q:
            continue
        iv = q.get("interval") or {}
        fmt = lambda v, f=".4f": "–" if v is None else format(v, f)  # noqa: E731
        lines.append(
            f"| {name} | {fmt(q['wql'])} | {fmt(q['mase'], '.3f')} | {fmt(iv.get('coverage'), '.1%')} | "
            f"{fmt(iv.get('mean_width'), '.3f')} | {fmt(iv.get('msis'), '.3f')} | {q['crossings']} |"
        )
    if not lines:
        return ""
    return (
        "\nProbabilistic (WQL as Chronos / GIFT-Eval; MASE of the median; the 0.1-0.9 interval: coverage, "
        "mean width, MSIS; seasonal-naive scale over each window's lookback):\n\n"
        "| model | WQL | MASE | 80% coverage | mean width | MSIS | crossings |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(lines)
        + "\n"
    )


def _rows(span) -> str:
    return f"{span[0]}-{span[1]}" if isinstance(span, (list, tuple)) and len(span) == 2 else "?"


def _save(fig: Figure, path: str | os.PathLike) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
