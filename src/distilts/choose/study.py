"""The Optuna study of a search: multi-objective TPE (validation MSE, the budgeted cost) with the budget as
a constraint, stored in SQLite in the output directory so that a killed search resumes, shared by
`--jobs` worker processes or Ray tasks (each runs trials until the study holds `--trials` finished ones).

Pruning: Optuna cannot prune multi-objective trials through `trial.report`, so the epoch hook applies
the median rule itself: after `PRUNE_WARMUP` epochs a trial whose validation MSE is worse than the median
of the finished trials' at the same epoch (at least `PRUNE_MIN_TRIALS` of them) stops there.
"""

from __future__ import annotations

import math
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from distilts.choose.report import figures_text
from distilts.choose.settings import STUDY_FILE, STUDY_NAME, SearchSettings
from distilts.choose.space import Space
from distilts.choose.trial import Pruned, run_trial, trial_dir
from distilts.errors import DistiltsError
from distilts.utils import write_json

PRUNE_WARMUP = 2
PRUNE_MIN_TRIALS = 4
PENALTY = 1e3  # objective values of a trial that gave no accuracy (rejected, refused, failed)
DONE = (TrialState.COMPLETE, TrialState.PRUNED)


def storage_url(out: str | Path) -> str:
    return f"sqlite:///{Path(out).resolve() / STUDY_FILE}"


def open_study(settings: SearchSettings, worker: int = 0) -> optuna.Study:
    """Create the study in `settings.out`, or load the one a killed search left there. Each worker's sampler
    gets its own seed, moved on by the trials already in the study (so neither parallel workers nor a
    resumed search draw the same candidates again)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(storage_url(settings.out), engine_kwargs={"connect_args": {"timeout": 120}})
    try:
        existing = len(optuna.load_study(study_name=STUDY_NAME, storage=storage).trials)
    except KeyError:
        existing = 0
    sampler = optuna.samplers.TPESampler(
        seed=settings.seed + 7919 * worker + existing, n_startup_trials=min(10, max(4, settings.trials // 4))
    )
    return optuna.create_study(
        study_name=STUDY_NAME,
        storage=storage,
        sampler=sampler,
        directions=["minimize", "minimize"],
        load_if_exists=True,
    )


def requeue_interrupted(study: optuna.Study) -> int:
    """Trials left RUNNING by a killed search: marked failed, and their parameters queued to run again."""
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
        n += 1
    return n


def finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=DONE))


def cost_of(record: dict[str, Any], settings: SearchSettings) -> float:
    """The second objective: the budgeted resource (latency if budgeted, else flash, else RAM, else latency)."""
    figures = record.get("figures") or record.get("estimate") or {}
    b = settings.budget
    for key, limit in (("latency_ms", b.latency_ms), ("flash_kib", b.flash_kib), ("ram_kib", b.ram_kib)):
        if limit is not None and figures.get(key) is not None:
            return float(figures[key])
    return float(figures.get("latency_ms") or figures.get("flash_kib") or PENALTY)


def _violation(record: dict[str, Any], settings: SearchSettings) -> float:
    """> 0 when the trial does not fit: the largest relative excess over a limit (1 when it has no figures)."""
    if record["status"] == "fits":
        return 0.0
    figures = record.get("figures") or record.get("estimate") or {}
    excess = [
        figures[k] / limit - 1.0
        for k, limit in (
            ("latency_ms", settings.budget.latency_ms),
            ("flash_kib", settings.budget.flash_kib),
            ("ram_kib", settings.budget.ram_kib),
        )
        if limit is not None and figures.get(k) is not None and figures[k] > limit
    ]
    return max(excess) if excess else 1.0


class Objective:
    """Runs one trial per call; prints one line per trial (n of N, its figures, the best that fits so far)."""

    def __init__(self, settings: SearchSettings, space: Space, n_variates: int, echo=print) -> None:
        self.settings, self.space, self.n_variates, self.echo = settings, space, n_variates, echo

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        candidate = self.space.sample(trial)
        curves = [
            t.user_attrs["curve"]
            for t in trial.study.get_trials(deepcopy=False, states=DONE)
            if "curve" in t.user_attrs
        ]
        curve: list[float] = []

        def on_epoch(epoch: int, rec: dict) -> None:
            curve.append(float(rec["val_mse"]))
            trial.set_user_attr("curve", curve)
            peers = sorted(c[epoch] for c in curves if len(c) > epoch)
            if epoch + 1 >= PRUNE_WARMUP and len(peers) >= PRUNE_MIN_TRIALS and curve[-1] > peers[len(peers) // 2]:
                raise Pruned(
                    f"val MSE {curve[-1]:.4f} after epoch {epoch + 1} > the median {peers[len(peers) // 2]:.4f}"
                )

        try:
            record = run_trial(self.settings, candidate, trial.number, self.n_variates, on_epoch=on_epoch)
        except Pruned as exc:
            record = {
                "number": trial.number,
                "label": candidate.label(),
                "status": "pruned",
                "reason": str(exc),
                "fits": False,
                "curve": curve,
            }
            write_json(trial_dir(self.settings.out, trial.number) / "record.json", record)
            self._line(trial.number, record)
            raise optuna.TrialPruned(str(exc)) from None
        except (DistiltsError, RuntimeError, ValueError) as exc:  # one failing candidate never ends the search
            record = {
                "number": trial.number,
                "label": candidate.label(),
                "status": "error",
                "fits": False,
                "reason": f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300] if str(exc) else ''}",
                "traceback": traceback.format_exc()[-2000:],
            }
            write_json(trial_dir(self.settings.out, trial.number) / "record.json", record)
        trial.set_user_attr("status", record["status"])
        trial.set_constraint("budget", _violation(record, self.settings))  # > 0: infeasible (TPE's constraint)
        self._line(trial.number, record)
        val = record.get("val_mse")
        return (float(val) if val is not None and math.isfinite(val) else PENALTY, cost_of(record, self.settings))

    def _line(self, number: int, record: dict[str, Any]) -> None:
        val = f"val MSE {record['val_mse']:.4f}, " if record.get("val_mse") is not None else ""
        verdict = record["status"] + (f" ({record['reason']})" if record.get("reason") else "")
        self.echo(
            f"[trial {number + 1}/{self.settings.trials}] {record['label']}: {val}{figures_text(record)} -> {verdict}"
        )


def work(settings: SearchSettings, space: Space, n_variates: int, threads: int, worker: int = 0) -> None:
    """One worker: run trials until the study holds `settings.trials` finished ones (or the timeout)."""
    import torch

    torch.set_num_threads(max(1, threads))
    study = open_study(settings, worker)
    timeout = None if settings.timeout_min is None else settings.timeout_min * 60
    study.optimize(
        Objective(settings, space, n_variates, echo=_echo),
        timeout=timeout,
        callbacks=[optuna.study.MaxTrialsCallback(settings.trials, states=DONE)],
        catch=(),
    )


def _die_with_parent() -> None:
    """Linux: a worker is killed when the search process dies (a killed search leaves no trial running)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _echo(line: str) -> None:
    print(f"{line}", flush=True)


def worker_process(settings: SearchSettings, space: Space, n_variates: int, threads: int, worker: int = 0) -> None:
    """Entry point of a `--jobs` worker process (spawned: a fresh interpreter) or Ray task."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    _die_with_parent()
    work(settings, space, n_variates, threads, worker)
