"""`distilts.search`: give it data, a teacher and a device; get the most accurate student that fits.

Order: check the budget against the target -> build the space -> fill the teacher cache once per
lookback (shared by every trial) -> run the study (here, in `jobs` processes, or as Ray tasks) ->
trials.json, pareto.json/png, card.md -> `best/`: the chosen student directory with its artifact compiled
for the target itself and verified (emulated arm64 for a Pi).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from pathlib import Path
from typing import Any

from distilts.choose.budget import Budget
from distilts.choose.report import card, choose, write_reports
from distilts.choose.settings import SearchSettings
from distilts.choose.space import Space, build_space
from distilts.errors import DistiltsError
from distilts.targets import get_target

LOCK = "search.lock"


class NothingFits(DistiltsError):
    """The search ended and no trial met the budget (the card holds the smallest trial's figures)."""


def search(
    data: Any = None,
    *,
    target: str,
    out: str | os.PathLike,
    horizon: int = 96,
    lookback_max: int = 512,
    teacher: str | None = None,
    teacher_path: str | None = None,
    max_latency_ms: Any = None,
    max_flash_kib: Any = None,
    max_ram_kib: Any = None,
    trials: int = 40,
    timeout_min: float | None = None,
    jobs: int = 1,
    address: str | None = None,
    students: tuple[str, ...] = (),
    epochs: int = 8,
    stride: int = 2,
    seed: int = 0,
    cache_dir: str | None = None,
    max_train_windows: int | None = None,
    echo=print,
) -> dict[str, Any]:
    """Search students for `target` under the budget; returns the chosen trial's record (raises NothingFits,
    after writing the reports, when no trial fits). Resumes the search a killed run left in `out`."""
    budget = Budget.parse(max_latency_ms, max_flash_kib, max_ram_kib)
    tgt = get_target(target)
    budget.check_target(tgt)
    if trials < 1 or jobs < 1:
        raise DistiltsError("--trials and --jobs must be at least 1.")
    settings = SearchSettings(
        out=str(Path(out).resolve()),
        target=tgt.name,
        horizon=horizon,
        lookback_max=lookback_max,
        data=data,
        teacher=teacher,
        teacher_path=teacher_path,
        budget=budget,
        trials=trials,
        timeout_min=timeout_min,
        jobs=jobs,
        address=address,
        students=tuple(students),
        epochs=epochs,
        stride=stride,
        seed=seed,
        cache_dir=cache_dir,
        max_train_windows=max_train_windows,
    )
    outdir = Path(settings.out)
    outdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with _lock(outdir):
        dataset = settings.data.load()
        n_variates = len(dataset.columns)
        space = build_space(tgt, lookback_max, settings.students)
        notes: list[str] = []
        space = _prefill_teacher(settings, space, dataset, notes, echo)
        _check_same_search(outdir, settings)
        from distilts.choose.study import finished, open_study, requeue_interrupted

        study = open_study(settings)
        retried = requeue_interrupted(study)
        done = finished(study)
        if done or retried:
            echo(
                f"resuming {outdir}: {done} trial(s) finished"
                + (f", {retried} interrupted one(s) run again" if retried else "")
            )
        echo(
            f"searching {', '.join(space.families)} for {tgt.name} ({budget.describe()}): {trials} trials, "
            f"{jobs} job(s){' on Ray ' + address if address else ''}"
        )
        _run_workers(settings, space, n_variates)
        wall = _searched_wall(outdir, time.perf_counter() - start, ran=finished(study) > done)
    return _finish(settings, space, notes, wall, echo)


def _searched_wall(outdir: Path, this_run_s: float, ran: bool) -> float:
    """Wall seconds spent searching, summed over the runs of a resumed search (a run that only re-reports
    adds nothing)."""
    from distilts.utils import read_json

    path = outdir / "trials.json"
    before = float(read_json(path).get("wall_s", 0.0)) if path.exists() else 0.0
    return before + this_run_s if ran or not before else before


def _prefill_teacher(settings: SearchSettings, space: Space, dataset: Any, notes: list[str], echo) -> Space:
    """Fill the teacher cache once per lookback; drop the lookbacks the teacher cannot take."""
    if settings.teacher is None:
        return space
    from distilts.distill.config import DistillSpec, TrainConfig
    from distilts.distill.run import teacher_outputs

    kept = []
    for lookback in space.lookbacks:
        spec = DistillSpec(
            student="dlinear",
            teacher=settings.teacher,
            teacher_path=settings.teacher_path,
            data=settings.data,
            lookback=lookback,
            horizon=settings.horizon,
            stride=settings.stride,
            cache_dir=settings.cache_dir,
            max_train_windows=settings.max_train_windows,
            train=TrainConfig(alpha=settings.alpha, kd=True, beta=0.0),
        )
        try:
            echo(f"teacher cache: {settings.teacher} at lookback {lookback} (filled once, shared by every trial)")
            teacher_outputs(dataset, spec, progress=True, train_stride=spec.train_stride(dataset))
            kept.append(lookback)
        except DistiltsError as exc:
            notes.append(f"lookback {lookback} left out: the teacher cannot take it ({str(exc).split('. ')[0]}).")
            echo(f"note: {notes[-1]}")
    if not kept:
        raise DistiltsError(
            f"Teacher {settings.teacher} takes none of the lookbacks {list(space.lookbacks)}; "
            "set --lookback-max to the teacher's context length."
        )
    space.lookbacks = tuple(kept)
    return space


def _check_same_search(outdir: Path, settings: SearchSettings) -> None:
    """Resuming: the directory's study must be the same search (the budget may change: it is re-judged)."""
    from distilts.utils import read_json, write_json

    path = outdir / "search.json"
    now = json.loads(json.dumps(settings.record()))  # tuples as the file holds them (lists)
    keys = (
        "target",
        "horizon",
        "lookback_max",
        "data",
        "teacher",
        "teacher_path",
        "students",
        "epochs",
        "stride",
        "seed",
    )
    if path.exists():
        before = read_json(path)
        diff = [k for k in keys if before.get(k) != now.get(k)]
        if diff:
            raise DistiltsError(
                f"{outdir} holds a search with other settings ({', '.join(diff)}): resume it with the same "
                "settings, or pass another --out."
            )
    write_json(path, now)


def _run_workers(settings: SearchSettings, space: Space, n_variates: int) -> None:
    from distilts.choose.study import work, worker_process

    cpus = os.cpu_count() or 1
    threads = max(1, cpus // settings.jobs)
    if settings.address:
        from distilts.errors import require

        ray = require("ray", "ray", "distilts search --address")
        ray.init(address=settings.address, include_dashboard=False, log_to_driver=True, ignore_reinit_error=True)
        remote = ray.remote(num_cpus=1)(worker_process)
        ray.get([remote.remote(settings, space, n_variates, 1, i) for i in range(settings.jobs)])
        return
    if settings.jobs == 1:
        work(settings, space, n_variates, threads)
        return
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=worker_process, args=(settings, space, n_variates, threads, i)) for i in range(settings.jobs)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        raise DistiltsError(
            f"{len(failed)} search worker(s) ended with an error (exit codes {failed}); "
            "run the same command again to resume."
        )


def _finish(settings: SearchSettings, space: Space, notes: list[str], wall_s: float, echo) -> dict[str, Any]:
    from distilts.choose.trial import read_records

    outdir = Path(settings.out)
    records = read_records(outdir)
    for r in records:  # the budget may have changed since a trial ran: judge every trial by this one
        if r.get("figures") and r["status"] in ("fits", "over budget"):
            over = settings.budget.violations(r["figures"])
            r["status"], r["reason"], r["fits"] = (
                ("over budget", "; ".join(over), False) if over else ("fits", None, True)
            )
    chosen = choose(records)
    weights = None
    if chosen is not None:
        from distilts.choose.fold import fold_seeds

        chosen, weights = fold_seeds(outdir, records, chosen, settings.data, echo)
    record = settings.record()
    write_reports(outdir, records, settings.budget, record, space.describe(), chosen, wall_s)
    if chosen is not None:
        _best_dir(settings, chosen, weights, echo)
    text = card(outdir, records, settings.budget, record, space.describe(), chosen, wall_s, notes)
    if chosen is None:
        raise NothingFits(
            text.split("## Nothing fits", 1)[1].split("\n## ")[0].strip().replace("\n", " ") + f" (reports in {outdir})"
        )
    shutil.copy2(outdir / "card.md", outdir / "best" / "search-card.md")
    echo(
        f"chosen: {chosen['label']} (val MSE {chosen['val_mse']:.4f}, test MSE {chosen['test_mse']:.4f}); "
        f"best student and artifact in {outdir / 'best'}"
    )
    return chosen


def _best_dir(settings: SearchSettings, chosen: dict[str, Any], weights: Path | None, echo) -> None:
    """`best/`: the chosen student directory (with the folded seeds' `weights` when given, re-scored), and its
    artifact compiled for the target at `artifacts/<target>/`."""
    from distilts.choose.space import Candidate
    from distilts.choose.trial import compile_job, trial_dir
    from distilts.compile.pipeline import compile_student
    from distilts.utils import temp_dir_beside

    outdir = Path(settings.out)
    best = outdir / "best"
    src = trial_dir(outdir, chosen["number"]) / "student"
    tmp = temp_dir_beside(best)
    try:
        shutil.copytree(src, tmp / "student", ignore=shutil.ignore_patterns("checkpoint", "artifacts"))
        student = tmp / "student"
        if weights is not None:
            from distilts.distill.run import evaluate_student

            shutil.copy2(weights, student / weights.name)
            evaluate_student(student, settings.data, write=True, progress=False, cache_dir=settings.cache_dir)
            shutil.rmtree(weights.parent, ignore_errors=True)
        tgt = get_target(settings.target)
        job = compile_job(Candidate(**chosen["candidate"]), tgt, final=True)
        echo(f"compiling the chosen student for {tgt.name} ({job.format} {job.precision}), verified")
        compile_student(student, [job], student / "artifacts", data=settings.data, log=echo)
        (student / "artifacts" / job.dirname).rename(student / "artifacts" / tgt.name)
        if best.exists():
            shutil.rmtree(best)
        os.replace(student, best)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _lock:
    """One search per directory at a time; a lock left by a killed search is taken over."""

    def __init__(self, outdir: Path) -> None:
        self.path = outdir / LOCK

    def __enter__(self) -> None:
        if self.path.exists():
            try:
                pid = int(self.path.read_text().strip() or 0)
            except ValueError:
                pid = 0
            if pid and pid != os.getpid() and _alive(pid):
                raise DistiltsError(
                    f"Another search (pid {pid}) is running in {self.path.parent}; wait for it or pass another --out."
                )
        self.path.write_text(str(os.getpid()))

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
