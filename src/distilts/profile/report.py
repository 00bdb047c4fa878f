"""Render a profile report: a text table, profile.json, profile.md and profile.png."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distilts.utils import atomic_write_text, write_json

COLUMNS = [
    "model",
    "backend",
    "params",
    "size",
    "load s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "throughput /s",
    "peak RSS MiB",
    "MSE",
    "MAE",
    "MSE vs teacher",
]


def _num(v, fmt: str = "{:.3g}") -> str:
    return "-" if v is None else fmt.format(v)


def _size(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "-"


def _params(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else str(n)


def rows(report: dict) -> list[list[str]]:
    out = []
    for m in report["models"]:
        lat, acc = m["latency_ms"], m["accuracy"]
        tput = " ".join(f"b{t['batch']}:{t['windows_per_s']:.0f}" for t in m["throughput"])
        vs_t = acc.get("vs_teacher")
        backend = m.get("backend", "")
        if m["kind"] == "artifact":
            backend = f"{backend} {m.get('precision', '')}"
        out.append(
            [
                f"{m['role']}: {m['name']}",
                backend,
                _params(m.get("param_count")),
                _size(m.get("file_size_bytes")),
                _num(m["load_s"], "{:.2f}"),
                _num(lat["p50"]),
                _num(lat["p95"]),
                _num(lat["p99"]),
                tput,
                _num(m["rss_mb"]["peak"], "{:.0f}"),
                _num(acc["vs_truth"]["mse"], "{:.4f}"),
                _num(acc["vs_truth"]["mae"], "{:.4f}"),
                _num(vs_t["mse"], "{:.4f}") if vs_t else "-",
            ]
        )
    return out


def text_table(report: dict) -> str:
    body = rows(report)
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(COLUMNS)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False))  # noqa: E731
    out = [line(COLUMNS), line(["-" * w for w in widths]), *map(line, body)]
    for k, v in report["speedup"].items():
        out.append(f"speedup {k.replace('_', ' ')}: {v:.1f}x (same run)")
    return "\n".join(out)


def markdown(report: dict, png: str | None) -> str:
    d, s = report["data"], report["settings"]
    md = [
        f"# Profile: {report['artifact']['path']}",
        "",
        f"Data: `{d['source']}`, {d['part']} part, {d['windows']} windows (of {d['test_windows_available']}), "
        f"lookback {d['lookback']}, horizon {d['horizon']}, columns {', '.join(d['columns'])}. "
        f"Accuracy on the {d['scale']} scale.",
        "",
        f"Host: {report['host']['platform']}, {report['host']['cpus']} CPUs, Python {report['host']['python']}. "
        f"Threads: {s['threads'] or 'backend default'}; latency = batch 1 after {s['warmup']} warm-up calls; "
        f"throughput batches {s['throughput_batches']}.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    md += ["| " + " | ".join(r) + " |" for r in rows(report)]
    if report["speedup"]:
        md += ["", "Speed-ups (ratio of p50 batch-1 latencies measured in this run):", ""]
        md += [f"- {k.replace('_', ' ')}: **{v:.1f}x**" for k, v in report["speedup"].items()]
    for m in report["models"]:
        if q := m["accuracy"].get("quantiles"):
            iv = q.get("interval") or {}
            md += [
                "",
                f"Quantiles of the artifact (levels {', '.join(f'{v:g}' for v in q['levels'])}): WQL "
                f"{q['wql']:.4f}, MASE of the median {q['mase']:.3f}"
                + (
                    f", {iv['lo']:g}-{iv['hi']:g} interval coverage {iv['coverage']:.1%}, mean width "
                    f"{iv['mean_width']:.3f}, MSIS {iv['msis']:.3f}"
                    if iv
                    else ""
                )
                + f", crossings {q['crossings']}.",
            ]
        if m["accuracy"].get("vs_pytorch_student"):
            a = m["accuracy"]["vs_pytorch_student"]
            md += ["", f"Artifact vs PyTorch student (compile fidelity): MSE {a['mse']:.3g}, MAE {a['mae']:.3g}."]
    md += ["", f"Memory: {report['rss_method']}", ""]
    md += [
        f"- {m['role']}: baseline {_num(m['rss_mb']['baseline'], '{:.0f}')} MiB, peak "
        f"{_num(m['rss_mb']['peak'], '{:.0f}')} MiB"
        for m in report["models"]
    ]
    for note in d.get("notes", []) + report.get("notes", []):
        md += ["", f"Note: {note}"]
    if png:
        md += ["", f"![latency and accuracy]({png})"]
    return "\n".join(md) + "\n"


def plot(report: dict, path: Path) -> Path:
    """Latency (p50 with p95/p99 ticks, log scale) and accuracy (MSE/MAE vs truth) side by side."""
    import matplotlib  # optional (the `plot` extra): write_report notes its absence

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = report["models"]
    names = [m["role"].replace(" (", "\n(") for m in ms]
    x = np.arange(len(ms))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    p50 = [m["latency_ms"]["p50"] for m in ms]
    a1.bar(
        x,
        p50,
        color=[
            "tab:orange" if m["kind"] == "artifact" else "tab:blue" if m["kind"] == "student" else "tab:gray"
            for m in ms
        ],
    )
    a1.scatter(x, [m["latency_ms"]["p95"] for m in ms], marker="_", s=200, color="k", label="p95")
    a1.scatter(x, [m["latency_ms"]["p99"] for m in ms], marker="x", color="k", label="p99")
    a1.set_yscale("log")
    a1.set_xticks(x, names, fontsize=8)
    a1.set_ylabel("batch-1 latency, ms (p50 bar)")
    a1.legend(fontsize=8)
    for i, v in enumerate(p50):
        a1.annotate(f"{v:.3g}", (i, v), ha="center", va="bottom", fontsize=8)
    w = 0.38
    a2.bar(x - w / 2, [m["accuracy"]["vs_truth"]["mse"] for m in ms], w, label="MSE")
    a2.bar(x + w / 2, [m["accuracy"]["vs_truth"]["mae"] for m in ms], w, label="MAE")
    a2.set_xticks(x, names, fontsize=8)
    a2.set_ylabel(f"error vs ground truth ({report['data']['scale'].split(' ')[0]})")
    a2.legend(fontsize=8)
    fig.suptitle(f"{report['artifact']['path']} on {report['data']['windows']} test windows", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(report: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write profile.json, profile.md and (with matplotlib) profile.png into out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    png = None
    try:
        import matplotlib  # noqa: F401

        written["png"] = plot(report, out / "profile.png")
        png = "profile.png"
    except ImportError:
        report.setdefault("notes", []).append(
            'profile.png was not drawn: matplotlib is not installed (pip install "distilts[plot]").'
        )
    write_json(out / "profile.json", report)
    written["json"] = out / "profile.json"
    atomic_write_text(out / "profile.md", markdown(report, png))
    written["md"] = out / "profile.md"
    return written
