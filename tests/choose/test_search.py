"""`distilts search`: budgets, a search that resumes after a kill without repeating a finished trial, the
reports and best/ it leaves, and a budget nothing fits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from distilts.choose.budget import Budget, BudgetError, parse_quantity
from distilts.cli import cli
from distilts.targets import get_target

# a tiny search: synthetic series, lookback 24, horizon 6, one epoch per trial, the M4F's TFLite Micro path
ARGS = ["search", "--target", "cortex-m4f", "--max-flash-kib", "64", "--max-ram-kib", "32", "--horizon", "6",
        "--lookback-max", "24", "--epochs", "1", "--stride", "8", "--student", "dlinear", "--student", "mlp"]


@pytest.mark.parametrize(
    "text,kind,value", [("0.5", "time", 0.5), ("500us", "time", 0.5), ("2 ms", "time", 2.0), ("1s", "time", 1000.0),
                        ("256", "size", 256.0), ("1MiB", "size", 1024.0), ("2048B", "size", 2.0)]
)
def test_quantities_take_units(text, kind, value):
    assert parse_quantity(text, kind, "--flag") == pytest.approx(value)


@pytest.mark.parametrize(
    "latency,flash,target,match",
    [("-1", None, "rpi4", "must be positive"), ("3 parsecs", None, "rpi4", "unknown unit 'parsecs'"),
     (None, "256", "rpi4", "has no flash or SRAM limit"), (None, "4MiB", "cortex-m4f", "more than cortex-m4f has"),
     ("fast", None, "rpi4", "not a number")],
)
def test_bad_budgets_are_one_line_errors(latency, flash, target, match):
    with pytest.raises(BudgetError, match=match) as info:
        Budget.parse(latency, flash).check_target(get_target(target))
    assert "\n" not in str(info.value)


def test_bad_budget_on_the_command_line(tmp_path):
    res = CliRunner().invoke(cli, ["search", "--target", "rpi4", "--max-ram-kib", "64", "--out", str(tmp_path / "s")])
    assert res.exit_code != 0 and "has no flash or SRAM limit" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "s" / "study.db").exists()


def _records(out: Path) -> dict[int, float]:
    return {int(p.parent.name): p.stat().st_mtime_ns for p in (out / "trials").glob("*/record.json")}


@pytest.mark.slow
def test_killed_search_resumes_without_repeating_a_finished_trial(tmp_path):
    out = tmp_path / "search"
    cmd = [sys.executable, "-m", "distilts", *ARGS, "--trials", "2", "--out", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 300
    while len(_records(out)) < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-search: at least one trial finished, the next one running
    proc.wait()
    before = _records(out)
    assert before, proc.stdout.read().decode()[-2000:] if proc.stdout else ""
    assert (out / "search.lock").exists()  # left by the killed run: the next one takes it over

    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "resuming" in res.stdout
    after = _records(out)
    assert {n: after[n] for n in before} == before  # finished trials were not run again
    trials = json.loads((out / "trials.json").read_text())["trials"]
    assert len(trials) >= 2 and all(t["status"] in ("fits", "over budget", "refused", "pruned") for t in trials)
    pareto = json.loads((out / "pareto.json").read_text())
    assert pareto["chosen"] is not None and pareto["front"]
    chosen = next(t for t in trials if t["number"] == pareto["chosen"])
    assert chosen["fits"] and chosen["figures"]["flash_kib"] <= 64 and chosen["figures"]["ram_kib"] <= 32
    best = out / "best"
    manifest = json.loads((best / "artifacts" / "cortex-m4f" / "manifest.json").read_text())
    assert manifest["verification"]["passed"] and manifest["target"]["name"] == "cortex-m4f"
    assert (best / "config.json").is_file() and (out / "pareto.png").stat().st_size > 1000
    card = (out / "card.md").read_text()
    assert "## Chosen" in card and "flash <= 64 KiB" in card and not (out / "search.lock").exists()


def test_a_budget_nothing_fits_ends_with_the_smallest_trials_figures(tmp_path):
    out = tmp_path / "tiny"
    res = CliRunner().invoke(cli, [*ARGS[:3], "--max-flash-kib", "0.05", *ARGS[5:], "--trials", "2", "--out", str(out)])
    assert res.exit_code != 0
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("Error: No trial met the budget.") and "The smallest trial" in last and "KiB" in last
    assert (out / "card.md").is_file() and "## Nothing fits" in (out / "card.md").read_text()
    trials = json.loads((out / "trials.json").read_text())["trials"]
    assert len(trials) == 2 and all(t["status"] == "rejected" for t in trials)  # the cost model: never trained
    assert not (out / "best").exists()


def test_compile_on_a_device_a_student_does_not_fit_suggests_search(tmp_path):
    student = tmp_path / "big"
    res = CliRunner().invoke(cli, ["distill", "--no-kd", "--beta", "0", "--student", "mlp", "-O", "d_model=2048",
                                   "--lookback", "512", "--horizon", "12", "--epochs", "1", "--stride", "64",
                                   "--quiet", "--out", str(student)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["compile", str(student), "--target", "cortex-m4f"])
    assert res.exit_code != 0
    last = res.output.strip().splitlines()[-1]
    assert "does not fit cortex-m4f" in last and "flash: needs" in last
    assert "`distilts search --target cortex-m4f" in last
