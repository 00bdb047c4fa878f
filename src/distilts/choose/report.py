"""What a search leaves: trials.json (every trial), pareto.json (the front among the trials that fit),
pareto.png (accuracy against latency and against flash, budget lines, the choice marked) and card.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distilts.choose.budget import Budget
from distilts.utils import atomic_write_text, write_json

AXES = (("latency_ms", "latency per forecast (ms)"), ("flash_kib", "flash (KiB)"), ("ram_kib", "RAM (KiB)"))


def _fig(record: dict[str, Any], key: str) -> float | None:
    return (record.get("figures") or {}).get(key)


def pareto_front(records: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """The trials that fit and that no other fitting trial beats on validation MSE and every figure in `keys`."""
    pts = [r for r in records if r.get("fits") and r.get("val_mse") is not None]

    def vec(r: dict[str, Any]) -> tuple[float, ...]:
        return (r["val_mse"], *((_fig(r, k) or 0.0) for k in keys))

    def dominated(r: dict[str, Any]) -> bool:
        a = vec(r)
        return any(all(x <= y for x, y in zip(vec(o), a, strict=False)) and vec(o) != a for o in pts if o is not r)

    return sorted((r for r in pts if not dominated(r)), key=lambda r: r["val_mse"])


def choose(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The most accurate trial that fits (validation MSE; the test split is never used to choose)."""
    fits = [r for r in records if r.get("fits") and r.get("val_mse") is not None]
    return min(fits, key=lambda r: r["val_mse"]) if fits else None


def best_unbudgeted(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The most accurate trained trial, fitting or not: what the budget is measured against."""
    trained = [r for r in records if r.get("val_mse") is not None]
    return min(trained, key=lambda r: r["val_mse"]) if trained else None


def smallest(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The trial with the smallest figures (latency, then flash, then RAM), for a budget nothing fits."""
    with_figs = [r for r in records if r.get("figures") or r.get("estimate")]

    def key(r: dict[str, Any]) -> tuple[float, ...]:
        f = r.get("figures") or r.get("estimate") or {}
        return tuple(float(f[k]) if f.get(k) is not None else float("inf") for k, _ in AXES)

    return min(with_figs, key=key) if with_figs else None


def plot(records: list[dict[str, Any]], budget: Budget, chosen: dict[str, Any] | None, path: Path, title: str) -> None:
    """Validation MSE against latency and against flash: every trained trial, the front, budget lines, the choice."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_keys = [k for k in ("latency_ms", "flash_kib") if any(_fig(r, k) is not None for r in records)] or [
        "flash_kib"
    ]
    fig, axes = plt.subplots(1, len(axes_keys), figsize=(6 * len(axes_keys), 4.5), squeeze=False)
    for ax, key in zip(axes[0], axes_keys, strict=False):
        label = dict(AXES)[key]
        pts = [r for r in records if r.get("val_mse") is not None and _fig(r, key) is not None]
        for status, style in (("fits", dict(c="tab:blue", alpha=0.8)), (None, dict(c="0.6", alpha=0.6))):
            sel = [r for r in pts if (r.get("fits") if status else not r.get("fits"))]
            ax.scatter(
                [_fig(r, key) for r in sel],
                [r["val_mse"] for r in sel],
                s=22,
                label="fits the budget" if status else "over budget / refused",
                **style,
            )
        front = sorted(pareto_front(records, (key,)), key=lambda r: _fig(r, key) or 0.0)
        if front:
            ax.step([_fig(r, key) for r in front], [r["val_mse"] for r in front], where="post", c="tab:blue", lw=1)
        limit = getattr(budget, key)
        if limit is not None:
            ax.axvline(limit, c="tab:red", ls="--", lw=1, label=f"budget {limit:g}")
        if chosen is not None and _fig(chosen, key) is not None:
            ax.scatter(
                [_fig(chosen, key)],
                [chosen["val_mse"]],
                marker="*",
                s=220,
                c="tab:orange",
                zorder=5,
                label=f"chosen: {chosen['candidate']['student']}",
            )
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("validation MSE (normalized)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def write_reports(
    out: Path,
    records: list[dict[str, Any]],
    budget: Budget,
    settings: dict[str, Any],
    space: dict[str, Any],
    chosen: dict[str, Any] | None,
    wall_s: float,
) -> None:
    """trials.json, pareto.json and pareto.png in `out`."""
    slim = [{k: v for k, v in r.items() if k != "traceback"} for r in records]
    write_json(out / "trials.json", {"settings": settings, "space": space, "wall_s": wall_s, "trials": slim})
    keys = tuple(k for k, _ in AXES if any(_fig(r, k) is not None for r in records))
    front = pareto_front(records, keys)
    write_json(
        out / "pareto.json",
        {
            "objectives": ["val_mse", *keys],
            "budget": budget.__dict__,
            "chosen": None if chosen is None else chosen["number"],
            "chosen_record": None if chosen is None else {k: v for k, v in chosen.items() if k != "traceback"},
            "front": [
                {k: r.get(k) for k in ("number", "label", "candidate", "val_mse", "test_mse", "figures")} for r in front
            ],
        },
    )
    title = f"distilts search: {settings['target']}, {budget.describe()}, {len(records)} trials"
    plot(records, budget, chosen, out / "pareto.png", title)


def figures_text(r: dict[str, Any]) -> str:
    """A trial's figures (measured, else estimated) on one line: '0.012 ms, flash 196.4 KiB, RAM 9.0 KiB'."""
    f = r.get("figures") or r.get("estimate") or {}
    parts = []
    if f.get("latency_ms") is not None:
        parts.append(f"{f['latency_ms']:.3f} ms")
    if f.get("flash_kib") is not None:
        parts.append(f"flash {f['flash_kib']:.1f} KiB")
    if f.get("ram_kib") is not None:
        parts.append(f"RAM {f['ram_kib']:.1f} KiB")
    return ", ".join(parts) or "no figures"


def card(
    out: Path,
    records: list[dict[str, Any]],
    budget: Budget,
    settings: dict[str, Any],
    space: dict[str, Any],
    chosen: dict[str, Any] | None,
    wall_s: float,
    notes: list[str],
) -> str:
    """card.md of the search (in `out`, and in `out/best` when something fits)."""
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    lines = [
        f"# distilts search: {settings['target']}",
        "",
        f"- budget: {budget.describe()}",
        f"- data: {settings['data'] or 'synthetic'}; horizon {settings['horizon']}; lookback up to "
        f"{settings['lookback_max']}; teacher: {settings['teacher'] or 'none (ground truth only)'}",
        f"- searched: {', '.join(space['families'])}; lookbacks {space['lookbacks']}; backends {space['backends']}; "
        f"precisions {space['precisions']}" + (f"; fixed for the target {space['fixed']}" if space["fixed"] else ""),
        f"- trials: {len(records)} ({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}); "
        f"{wall_s / 60:.1f} min wall, {len(records) / max(wall_s, 1e-9) * 3600:.1f} trials per hour",
        "- chosen on validation MSE among the trials that fit; test MSE reported, never used to choose",
        *(f"- note: {n}" for n in notes),
        "",
    ]
    best = best_unbudgeted(records)
    if chosen is None:
        small = smallest(records)
        lines += ["## Nothing fits", "", "No trial met the budget."]
        if small is not None:
            lines.append(
                f"The smallest trial, {small['label']}: {figures_text(small)} ({small['status']}"
                + (f": {small['reason']}" if small.get("reason") else "")
                + ")."
            )
        lines.append("Raise the budget, or search longer (--trials) or smaller students (--lookback-max).")
    else:
        lines += [
            "## Chosen",
            "",
            f"{chosen['label']}: val MSE {chosen['val_mse']:.4f}, **test MSE {chosen['test_mse']:.4f}** "
            f"(MAE {chosen['test_mae']:.4f}), {chosen['params']:,} parameters, {figures_text(chosen)}",
            *(
                [
                    f"Folded: the configuration's {len(chosen['folded']['trials'])} seeds (trials "
                    f"{', '.join(map(str, chosen['folded']['trials']))}) averaged into one student of the same size "
                    "(exact: its forecast is linear in its weights); the chosen trial alone had val MSE "
                    f"{chosen['folded']['single']['val_mse']:.4f}, "
                    f"test MSE {chosen['folded']['single']['test_mse']:.4f}."
                ]
                if chosen.get("folded")
                else []
            ),
            *(
                [f"(latency {chosen['figures']['latency_kind']})"]
                if (chosen.get("figures") or {}).get("latency_kind")
                else []
            ),
            "",
        ]
        if best is not None and best is not chosen:
            cost = (chosen["test_mse"] - best["test_mse"]) / best["test_mse"] * 100
            lines.append(
                f"What the budget cost: the most accurate trial with no budget, {best['label']} "
                f"({figures_text(best)}), has test MSE {best['test_mse']:.4f}: the chosen one is {cost:+.1f}%."
            )
        elif best is chosen:
            lines.append("The budget cost nothing: the chosen trial is also the most accurate one searched.")
    lines += [
        "",
        "## Trials",
        "",
        "| # | candidate | val MSE | test MSE | figures | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for r in records:
        val = f"{r['val_mse']:.4f}" if r.get("val_mse") is not None else ""
        test = f"{r['test_mse']:.4f}" if r.get("test_mse") is not None else ""
        verdict = r["status"] + (f": {r['reason']}" if r.get("reason") else "")
        lines.append(f"| {r['number']} | {r['label']} | {val} | {test} | {figures_text(r)} | {verdict[:160]} |")
    text = "\n".join(lines) + "\n"
    atomic_write_text(out / "card.md", text)
    return text
