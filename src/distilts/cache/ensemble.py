"""Teacher ensembles (`--teacher ensemble:A+B+...`): a cache entry derived from its members' cache entries.

Each member (any teacher spec: a TSFM family with its checkpoint, a statsforecast model) is cached on its
own by `fill_teacher_cache` (reused by any other run with that member), always with the val part. The
combination weights are fitted on the val windows, per horizon step and variate: inverse-MSE weights,
`w[m, h, d] = (1 / MSE_m[h, d]) / sum_k (1 / MSE_k[h, d])` (non-negative, summing to 1; no member is
dropped, a member twice as good on a step gets twice the weight there). The entry then holds, for every
part asked, the weighted forecasts and, with quantiles, the member quantiles at their common levels
combined with the same weights and sorted along the levels (so they never cross).

Layout: the entry is an ordinary teacher cache entry (`<part>.forecast.npy`, `<part>.quantiles.npy`,
`<part>.json`, `meta.json` written last), its `meta.json` recording each member (spec, cache entry,
validation MSE/MAE, fallbacks), the weights `[M, H, D]` and the ensemble's own validation scores. The
val part's scores of the ensemble are in-sample for the weights (they were fitted there).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from distilts.errors import DistiltsError
from distilts.teachers.spec import ENSEMBLE_PREFIX, parse_ensemble
from distilts.utils import read_json, write_json

if TYPE_CHECKING:
    from distilts.data import Dataset

COMBINATION = "inverse-mse per horizon step and variate, fitted on the val windows"
BLOCK = 4096  # windows combined at a time


def fill_ensemble_cache(
    dataset: Dataset,
    spec: str,
    teacher_path: str | None,
    lookback: int,
    horizon: int,
    *,
    parts: Sequence[str],
    stride: int,
    quantiles: bool,
    root: Path,
    fill_member: Callable[..., Any],
) -> tuple[Path, dict, bool]:
    """The ensemble's cache entry for these settings as (directory, meta, reused): members cached (or reused)
    first by `fill_member(spec, path, parts)` (`fill_teacher_cache` with this run's settings), weights fitted
    on their val forecasts, then the combined parts written (a part already written is kept)."""
    members = parse_ensemble(spec, teacher_path)
    need = tuple(dict.fromkeys(("val", *parts)))
    caches = [fill_member(m.spec, m.path, need) for m in members]
    name = ENSEMBLE_PREFIX + "+".join(c.info["teacher"] for c in caches)
    settings = {
        "format": caches[0].info["format"],
        "teacher": name,
        "checkpoint_sha256": hashlib.sha256("|".join(c.info["key"] for c in caches).encode()).hexdigest(),
        "data_sha256": dataset.data_hash,
        "lookback": int(lookback),
        "horizon": int(horizon),
        "stride": int(stride),
        "hidden": False,
        "hidden_tokens": None,
        "hidden_dtype": None,
        "combination": COMBINATION,
        **({"quantiles": True} if quantiles else {}),
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    slug = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in f"ensemble-{len(caches)}-{dataset.name}")[:60]
    directory = root / "teacher" / f"{slug}-L{lookback}-H{horizon}-{key[:16]}"
    meta_file = directory / "meta.json"
    meta = read_json(meta_file) if meta_file.exists() else {}
    todo = [p for p in dict.fromkeys(parts) if p not in meta.get("parts", {})]
    if not todo:
        return directory, meta, True

    y_val = dataset.windows("val", lookback, horizon, stride).targets()
    val = [np.asarray(c.forecasts("val"), np.float64) for c in caches]
    weights = inverse_mse_weights(val, y_val)
    levels, picks = common_levels(caches) if quantiles else (None, None)
    directory.mkdir(parents=True, exist_ok=True)
    records = dict(meta.get("parts", {}))
    for part in todo:
        records[part] = _write_part(directory, part, caches, weights, picks)
    combined_val = np.einsum("mnhd,mhd->nhd", np.stack(val), weights)
    member_info = [
        {
            "spec": c.info["teacher"],
            "path": m.path,
            "cache": str(c.directory),
            "checkpoint_sha256": c.info["checkpoint_sha256"],
            "val": scores(v, y_val),
            **({"fallbacks": c.info["fallbacks"]} if c.info.get("fallbacks") else {}),
        }
        for m, c, v in zip(members, caches, val, strict=True)
    ]
    fallbacks = {f"{m['spec']}: {k}": v for m in member_info for k, v in (m.get("fallbacks") or {}).items()}
    teacher_info = {
        "name": name,
        "path": None,
        "checkpoint_sha256": settings["checkpoint_sha256"],
        "d_model": None,
        "quantile_levels": levels,
        "kind": "ensemble",
        "combination": COMBINATION,
        "members": member_info,
        "weights": np.round(weights, 6).tolist(),  # [M, H, D]
        "mean_weights": [round(float(w), 4) for w in weights.mean(axis=(1, 2))],
        "val": scores(combined_val, y_val),
    }
    meta = {
        **settings,
        "key": key,
        "teacher_path": None,
        "data_source": dataset.series.source,
        "columns": list(dataset.columns),
        "teacher_info": teacher_info,
        "parts": records,
        "quantile_levels": levels,
        **({"fallbacks": fallbacks} if fallbacks else {}),
        "created_by": "distilts",
        "completed_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(meta_file, meta)  # last: marks the entry complete
    return directory, meta, False


def inverse_mse_weights(forecasts: Sequence[np.ndarray], y: np.ndarray) -> np.ndarray:
    """Weights `[M, H, D]` proportional to each member's inverse val MSE at every step and variate."""
    mse = np.stack([((np.asarray(f, np.float64) - y) ** 2).mean(axis=0) for f in forecasts])  # [M, H, D]
    inv = 1.0 / np.maximum(mse, 1e-12)
    return inv / inv.sum(axis=0, keepdims=True)


def scores(forecast: np.ndarray, y: np.ndarray) -> dict:
    """MSE and MAE (normalized scale) of val forecasts."""
    err = np.asarray(forecast, np.float64) - y
    return {"mse": round(float((err**2).mean()), 6), "mae": round(float(np.abs(err).mean()), 6)}


def common_levels(caches: Sequence[Any]) -> tuple[list[float], list[list[int]]]:
    """The quantile levels every member has, and each member's indices of them."""
    have = [[round(float(v), 6) for v in c.info.get("quantile_levels") or []] for c in caches]
    common = sorted(set(have[0]).intersection(*have[1:]))
    if 0.5 not in common:
        names = "; ".join(f"{c.info['teacher']}: {h}" for c, h in zip(caches, have, strict=True))
        raise DistiltsError(
            f"The ensemble's members share no quantile levels with the median ({names}): use members with common "
            "levels (statsforecast models give the deciles), or distil a point student (drop --quantiles)."
        )
    return common, [[h.index(v) for v in common] for h in have]


def _write_part(
    directory: Path, part: str, caches: Sequence[Any], weights: np.ndarray, picks: list[list[int]] | None
) -> dict:
    """Combine one part block by block into `<part>.*.npy` (written as .partial, renamed when complete)."""
    f0 = caches[0].forecasts(part)
    n = f0.shape[0]
    kinds = {"forecast": tuple(f0.shape)}
    if picks is not None:
        kinds["quantiles"] = (*f0.shape, len(picks[0]))
    maps = {
        k: np.lib.format.open_memmap(directory / f"{part}.{k}.npy.partial", mode="w+", dtype=np.float32, shape=s)
        for k, s in kinds.items()
    }
    for lo in range(0, n, BLOCK):
        hi = min(n, lo + BLOCK)
        f = [np.asarray(c.forecasts(part)[lo:hi]) for c in caches]
        maps["forecast"][lo:hi] = sum(w * fm for w, fm in zip(weights, f, strict=True))
        if picks is not None:
            q = sum(
                w[..., None] * np.asarray(c.quantiles(part)[lo:hi])[..., p]
                for c, w, p in zip(caches, weights, picks, strict=True)
            )
            maps["quantiles"][lo:hi] = np.sort(q, axis=-1)  # the same weights per level, then sorted: never crossing
    for arr in maps.values():
        arr.flush()
    maps.clear()
    for k in kinds:
        os.replace(directory / f"{part}.{k}.npy.partial", directory / f"{part}.{k}.npy")
    record = {
        "windows": n,
        "forecast_shape": list(kinds["forecast"]),
        "hidden_shape": None,
        "members": [str(c.directory) for c in caches],
        **({"quantiles_shape": list(kinds["quantiles"])} if "quantiles" in kinds else {}),
    }
    write_json(directory / f"{part}.json", record)
    return record
