"""Teacher cache: run a frozen teacher once over every window and keep its outputs on disk.

Layout of one entry, `<root>/teacher/<teacher>-<data>-L<L>-H<H>-<key16>/`:
  <part>.forecast.npy  [N, H, D] float32     (N = len(dataset.windows(part, L, H, stride)))
  <part>.hidden.npy    [N, D, T', d_model]   hidden_dtype (float16 by default), only with hidden=True
  <part>.quantiles.npy [N, H, D, Q] float32  the teacher's quantiles, only with quantiles=True (levels in
                                             meta.json `quantile_levels`; Q = the teacher's native levels)
  <part>.json          the part's record (shapes, teacher info), written when the part is complete
  meta.json            written last: its presence means the parts it lists are complete
While a part fills: <part>.forecast.npy.partial / <part>.hidden.npy.partial (preallocated .npy
memmaps) and <part>.progress.json (finished chunks, rewritten atomically after each chunk is
flushed), so a killed run resumes at the first unfinished chunk.

`key16` hashes everything the numbers depend on: teacher name, checkpoint sha256, data hash,
lookback, horizon, stride, the hidden settings and (only when asked) `quantiles`. Hidden states are reduced to
`hidden_tokens`
tokens by mean-pooling contiguous, near-equal groups of the teacher's tokens (0 = keep all).
`<root>` is `cache_dir`, else $DISTILTS_CACHE_DIR, else platformdirs' user cache dir.
A forecast-only request is also served by a complete entry with hidden states (same teacher, data
and windows), so the teacher never runs twice for the same forecasts.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import platformdirs

from distilts import distributed, teachers
from distilts.cache.config import HIDDEN_DTYPES, HIDDEN_TOKENS, PARTS, TEACH_BATCH
from distilts.cache.ensemble import fill_ensemble_cache
from distilts.cache.fill import Filler, fill_part
from distilts.errors import DistiltsError
from distilts.progress import Bar
from distilts.teachers.base import hash_checkpoint, resolve_checkpoint
from distilts.teachers.spec import StatSpec, check_teacher, is_ensemble, is_statistical, parse_stat, stat_identity
from distilts.utils import read_json, write_json

if TYPE_CHECKING:
    from distilts.data import Dataset

FORMAT_VERSION = 1


@dataclass
class TeacherCache:
    """A complete cache entry; arrays are read-only memory maps aligned with `dataset.windows`."""

    directory: Path
    info: dict
    reused: bool = False

    def forecasts(self, part: str) -> np.ndarray:
        """Teacher point forecasts `[N, H, D]` float32 (normalized scale)."""
        return np.load(self._file(part, "forecast"), mmap_mode="r")

    def quantiles(self, part: str) -> np.ndarray:
        """Teacher quantiles `[N, H, D, Q]` float32 at `info["quantile_levels"]` (normalized scale)."""
        if not self.info.get("quantiles"):
            raise DistiltsError(
                f"The teacher cache at {self.directory} holds no quantiles: rerun `distilts teach` with --quantiles."
            )
        return np.load(self._file(part, "quantiles"), mmap_mode="r")

    def hidden(self, part: str) -> np.ndarray:
        """Pooled teacher hidden states `[N, D, T', d_model]`."""
        if not self.info.get("hidden"):
            raise DistiltsError(
                f"The teacher cache at {self.directory} holds no hidden states: rerun `distilts teach` with --hidden."
            )
        return np.load(self._file(part, "hidden"), mmap_mode="r")

    @property
    def parts(self) -> list[str]:
        return list(self.info.get("parts", {}))

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())

    def _file(self, part: str, kind: str) -> Path:
        if part not in self.info.get("parts", {}):
            raise DistiltsError(
                f"The teacher cache at {self.directory} has no '{part}' part (it has "
                f"{', '.join(self.parts) or 'none'}). Run `distilts teach` for that part."
            )
        return self.directory / f"{part}.{kind}.npy"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where teacher caches live: `cache_dir`, else $DISTILTS_CACHE_DIR, else the user cache dir."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get("DISTILTS_CACHE_DIR"):
        return Path(os.environ["DISTILTS_CACHE_DIR"]).expanduser()
    return Path(platformdirs.user_cache_dir("distilts"))


def teacher_covariates(dataset: Dataset, teacher_name: str) -> dict:
    """`{"covariates": {role: columns}}` (the columns the teacher forecasts with, by the roles its family takes) for
    a family that takes covariates on data that has them; {} otherwise (it forecasts the target windows alone)."""
    cov = getattr(dataset, "covariates", None)
    roles = teachers.COVARIATE_TEACHERS.get(teacher_name, ())
    if cov is None or not any(cov.dims[("past", "future", "static").index(r)] for r in roles):
        return {}
    return {"covariates": {r: getattr(cov, f"{r}_columns") for r in roles}}


def fill_teacher_cache(
    dataset: Dataset,
    teacher_name: str,
    teacher_path: str | None,
    lookback: int,
    horizon: int,
    *,
    parts: Sequence[str] = PARTS,
    stride: int = 1,
    hidden: bool = False,
    hidden_tokens: int = HIDDEN_TOKENS,
    hidden_dtype: str = HIDDEN_DTYPES[0],
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = TEACH_BATCH,
    device: str = "auto",
    progress: bool = True,
    max_cache_gb: float | None = None,
    quantiles: bool = False,
) -> TeacherCache:
    """`distilts teach`: the teacher cache for these settings, computing (or resuming) whatever is missing.

    A complete entry is returned without loading the teacher. `max_cache_gb` refuses, before any
    window is computed, a fill whose entry would exceed that many GB (10^9 bytes). Under torchrun
    the fill is shared out by chunk across the ranks (`distilts.cache.fill`).
    """
    _validate(parts, stride, hidden_tokens, hidden_dtype, batch_size)
    check_teacher(teacher_name)
    if is_ensemble(teacher_name):
        if hidden:
            raise DistiltsError(f"The {teacher_name} teacher has no hidden states: drop --hidden (and use --beta 0).")

        def fill_member(spec: str, path: str | None, member_parts: Sequence[str]) -> TeacherCache:
            return fill_teacher_cache(
                dataset,
                spec,
                path,
                lookback,
                horizon,
                parts=member_parts,
                stride=stride,
                cache_dir=cache_dir,
                batch_size=batch_size,
                device=device,
                progress=progress,
                max_cache_gb=max_cache_gb,
                quantiles=quantiles,
            )

        directory, meta, reused = fill_ensemble_cache(
            dataset,
            teacher_name,
            teacher_path,
            lookback,
            horizon,
            parts=parts,
            stride=stride,
            quantiles=quantiles,
            root=cache_root(cache_dir),
            fill_member=fill_member,
        )
        return TeacherCache(directory, meta, reused=reused)
    root = cache_root(cache_dir)
    if is_statistical(teacher_name):
        if hidden:
            raise DistiltsError(
                f"The {teacher_name} teacher is a statistical model without hidden states: drop --hidden "
                "(and use --beta 0: FTA needs a neural teacher)."
            )
        stat = parse_stat(teacher_name)
        teacher_name, path, checkpoint = stat.name, None, stat_identity(stat)

        def load():
            return teachers.load_statistical(teacher_name + _run_options(stat))
    else:
        path = str(teacher_path) if teacher_path else teachers.default_path(teacher_name)
        local = resolve_checkpoint(path, teacher_name)
        checkpoint = hash_checkpoint(local, memo=root / "checkpoint-hashes.json")

        def load():
            return teachers.load_teacher(teacher_name, str(local), device)

    settings = {
        "format": FORMAT_VERSION,
        "teacher": teacher_name,
        "checkpoint_sha256": checkpoint,
        "data_sha256": dataset.data_hash,
        "lookback": int(lookback),
        "horizon": int(horizon),
        "stride": int(stride),
        "hidden": bool(hidden),
        "hidden_tokens": int(hidden_tokens) if hidden else None,
        "hidden_dtype": hidden_dtype if hidden else None,
        **({"quantiles": True} if quantiles else {}),  # absent for point entries (their keys stay as they were)
        **teacher_covariates(dataset, teacher_name),  # absent without covariates
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    directory = root / "teacher" / f"{_slug(teacher_name)}-{_slug(dataset.name)}-L{lookback}-H{horizon}-{key[:16]}"
    meta_file = directory / "meta.json"
    meta = read_json(meta_file) if meta_file.exists() else {}
    todo = [p for p in dict.fromkeys(parts) if p not in meta.get("parts", {})]
    if not todo:
        return TeacherCache(directory, meta, reused=True)
    if not hidden and not quantiles and (sibling := _entry_with_hidden(directory, settings, parts)) is not None:
        return sibling  # forecasts are the same with or without hidden states

    comm = distributed.current()
    directory.mkdir(parents=True, exist_ok=True)
    filler = Filler(dataset, settings, directory, batch_size, load)
    records = dict(meta.get("parts", {}))
    try:
        filler.check_budget(todo, records, max_cache_gb)
        with Bar(progress and comm.is_main) as bar:
            for part in todo:
                records[part] = fill_part(filler, part, bar, comm)
    except BaseException:
        with contextlib.suppress(OSError):  # e.g. the teacher refused the window: leave no empty entry
            if comm.is_main and not any(directory.iterdir()):
                directory.rmdir()
        raise
    finally:
        filler.close()
    teacher_info = next((r["teacher"] for r in records.values() if r.get("teacher")), None)
    fallbacks = {k: v for r in records.values() for k, v in (r.get("fallbacks") or {}).items()}
    meta = {
        **settings,
        "key": key,
        "teacher_path": path,
        "data_source": dataset.series.source,
        "columns": list(dataset.columns),
        "teacher_info": teacher_info,
        "parts": records,
        "quantile_levels": (teacher_info or {}).get("quantile_levels") if quantiles else None,
        **({"fallbacks": fallbacks} if fallbacks else {}),
        "created_by": "distilts",
        "completed_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if comm.is_main:
        write_json(meta_file, meta)  # last: marks the entry complete
    comm.barrier()
    return TeacherCache(directory, meta, reused=False)


def _run_options(stat: StatSpec) -> str:
    """The run options (n_jobs, address) back on the canonical name: how the fill runs, not its numbers."""
    opts = stat.run_options
    return f"{'&' if '?' in stat.name else '?'}{opts[1:]}" if opts else ""


def entry_bytes(
    windows: int, horizon: int, n_vars: int, hidden_tokens: int = 0, d_model: int = 0, hidden_dtype: str = "float16"
) -> dict[str, int]:
    """Bytes on disk of one cache part: forecasts `[N, H, D]` float32 and hidden `[N, D, T', d]`
    (`hidden_tokens` = T' kept; 0 = no hidden states). The .npy headers add 128 bytes each."""
    forecast = windows * horizon * n_vars * 4
    hidden = windows * n_vars * hidden_tokens * d_model * np.dtype(hidden_dtype).itemsize
    return {"forecast": forecast, "hidden": hidden, "total": forecast + hidden}


def _entry_with_hidden(directory: Path, settings: dict, parts: Sequence[str]) -> TeacherCache | None:
    """A complete entry with hidden states (any hidden settings) that has `parts` under otherwise
    equal settings: it serves a forecast-only request (e.g. `distilts eval`, or a KD-only run after
    `distilts teach --hidden`) without running the teacher again."""
    prefix = directory.name[:-16]  # <teacher>-<data>-L<L>-H<H>-
    same = {k: v for k, v in settings.items() if not k.startswith("hidden")}
    for meta_file in sorted(directory.parent.glob(f"{prefix}*/meta.json")):
        try:
            meta = read_json(meta_file)
        except (OSError, ValueError):
            continue
        if (
            meta.get("hidden")
            and all(meta.get(k) == v for k, v in same.items())
            and all(p in meta.get("parts", {}) for p in parts)
        ):
            return TeacherCache(meta_file.parent, meta, reused=True)
    return None


def _validate(parts: Sequence[str], stride: int, hidden_tokens: int, hidden_dtype: str, batch_size: int) -> None:
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise DistiltsError(f"Unknown split part(s) {bad}: use some of {', '.join(PARTS)}.")
    if stride < 1 or batch_size < 1:
        raise DistiltsError(f"--stride and --batch-size must be at least 1 (got {stride}, {batch_size}).")
    if hidden_tokens < 0:
        raise DistiltsError(f"--hidden-tokens must be 0 (keep all) or positive (got {hidden_tokens}).")
    if hidden_dtype not in HIDDEN_DTYPES:
        raise DistiltsError(f"hidden_dtype must be one of {', '.join(HIDDEN_DTYPES)} (got {hidden_dtype}).")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:40] or "data"
