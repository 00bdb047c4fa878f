"""The one interface every teacher family implements, and what the families share: resolving a
checkpoint (local directory or hub id), hashing its weights once, picking the device, and turning
windows `[B, L, D]` into per-variate series and back.

Hub downloads go through huggingface_hub (its cache and HF_HOME conventions); only safetensors
and config files are fetched, and remote code is never enabled.

No torch at module level: the teacher cache reuses a complete entry (checkpoint resolved and hashed
here) without importing torch; `resolve_device` imports it when a teacher is really loaded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distilts.errors import DistiltsError, ModelDirError
from distilts.utils import read_json, write_json

ALLOW_PATTERNS = ("*.json", "*.safetensors")
WEIGHT_PATTERNS = ("*.safetensors", "config.json")  # the files a checkpoint hash covers


@dataclass
class TeacherOutput:
    forecast: np.ndarray  # [B, H, D] float32, same scale as the input windows
    hidden: np.ndarray | None = None  # [B, D, T_tokens, d_model] float32, or None
    quantiles: np.ndarray | None = None  # [B, H, D, Q] at the teacher's `quantile_levels`, or None


class Teacher:
    """A frozen forecaster of windows `[B, L, D]`.

    A family is channel-independent (`joint = False`: each of the D variates is forecast on its own,
    as B*D univariate series) or joint (`joint = True`: the D variates of a window are one
    multivariate task, as Chronos-2 forecasts them). Either way `predict` returns forecasts
    `[B, H, D]` and hidden states `[B, D, T, d_model]` (one row of tokens per variate). A family
    implements `_forecast` on the series `predict` hands it; one whose model takes the windows as
    they are (PatchTST) overrides `predict` instead.
    """

    name: str  # family name in the registry, e.g. "timemoe"
    path: str  # hub id or local directory it was loaded from
    checkpoint_hash: str  # sha256 over the weight files (keys the cache)
    device: str  # where it runs ("cpu", "cuda")
    d_model: int  # width of the hidden states
    joint: bool = False  # True: the variates of a window are forecast together
    takes_covariates: bool = False  # True: `predict(covariates=...)` reaches the family's package
    call_covariates: dict[str, Any] | None = None  # the covariates of the predict call in progress
    quantile_levels: tuple[float, ...] | None = None  # the levels `predict(quantiles=True)` gives; None: point only

    def __init__(self, path: str, checkpoint_hash: str, device: str, d_model: int) -> None:
        """The state every family shares: where it was loaded from, the hash of its weights (which keys the
        teacher cache), the device it runs on and the width of its hidden states."""
        self.path, self.checkpoint_hash, self.device, self.d_model = str(path), checkpoint_hash, device, int(d_model)

    def predict(
        self,
        x: np.ndarray,
        horizon: int,
        hidden: bool = False,
        quantiles: bool = False,
        covariates: dict[str, np.ndarray] | None = None,
    ) -> TeacherOutput:
        """Forecast `horizon` steps after each window of `x` `[B, L, D]`; optionally hidden states and
        the quantiles at `quantile_levels` (`[B, H, D, Q]`, from the same model call). `covariates`
        (past `[B, L, P]`, future `[B, L + H, F]`, static `[B, S]`) reach a family that `takes_covariates`
        (for this call); the others ignore them (univariate)."""
        self.call_covariates = covariates if self.takes_covariates and covariates else None
        try:
            return self._predict(x, horizon, hidden, quantiles)
        finally:
            self.call_covariates = None

    def _predict(self, x: np.ndarray, horizon: int, hidden: bool, quantiles: bool) -> TeacherOutput:
        b, length, d = x.shape
        self.check_window(length, horizon)
        series = np.ascontiguousarray(np.asarray(x).transpose(0, 2, 1), dtype=np.float32)  # [B, D, L]
        series = series if self.joint else series.reshape(b * d, length)
        q = None
        if quantiles:
            self.require_quantiles()
            point, q, states = self._forecast_quantiles(series, horizon, hidden)
            q = np.ascontiguousarray(np.asarray(q, np.float32).reshape(b, d, horizon, -1).transpose(0, 2, 1, 3))
        else:
            point, states = self._forecast(series, horizon, hidden)
        forecast = np.asarray(point, dtype=np.float32).reshape(b, d, horizon).transpose(0, 2, 1)
        hid = None
        if hidden:
            states = np.asarray(states, dtype=np.float32)
            hid = states.reshape(b, d, states.shape[1], states.shape[2])
        return TeacherOutput(np.ascontiguousarray(forecast), hid, q)

    def require_quantiles(self) -> tuple[float, ...]:
        """The teacher's quantile levels, or a QuantileError naming the probabilistic teachers."""
        from distilts.quantiles import QuantileError

        if not self.quantile_levels:
            raise QuantileError(
                f"The {self.name} teacher ({self.path}) gives point forecasts only, so it cannot teach quantiles. "
                "Use a probabilistic teacher: chronos-bolt, timesfm (0.1 ... 0.9), chronos-2 (21 levels), chronos, "
                "moirai, moirai-2 (quantiles of their samples), or a patchtst trained with `distilts train-teacher "
                "--quantiles deciles`; or train the quantile student on ground truth only (--no-kd --beta 0)."
            )
        return self.quantile_levels

    def _forecast_quantiles(
        self, series: np.ndarray, horizon: int, hidden: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """As `_forecast`, plus the quantiles `[N, H, Q]` at `quantile_levels` (probabilistic families)."""
        self.require_quantiles()
        raise NotImplementedError

    def _forecast(self, series: np.ndarray, horizon: int, hidden: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Point forecasts `[N, H]` and hidden states `[N, T, d_model]` (or None) of the series, one row
        per (window, variate) in that order: `series` is `[B*D, L]`, or `[B, D, L]` for a joint family."""
        raise NotImplementedError

    def check_window(self, lookback: int, horizon: int) -> None:
        """Raise a DistiltsError naming the fix when this teacher cannot take such windows."""

    def hidden_tokens(self, lookback: int) -> int:
        """Number of hidden-state tokens for a window of `lookback` steps (one per step by default)."""
        return lookback

    @property
    def info(self) -> dict:
        return {
            "name": self.name,
            "path": str(self.path),
            "checkpoint_sha256": self.checkpoint_hash,
            "d_model": int(self.d_model),
            "quantile_levels": None if self.quantile_levels is None else list(self.quantile_levels),
        }


class LevelRunTeacher(Teacher):
    """A family whose one `_run(series, horizon, hidden, levels) -> (point, quantiles, states)` serves
    both the point forecast (the 0.5 level) and the quantiles (Chronos, Chronos-2)."""

    def _run(
        self, series: np.ndarray, horizon: int, hidden: bool, levels: list[float]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def _forecast(self, series: np.ndarray, horizon: int, hidden: bool) -> tuple[np.ndarray, np.ndarray | None]:
        point, _, states = self._run(series, horizon, hidden, [0.5])
        return point, states

    def _forecast_quantiles(
        self, series: np.ndarray, horizon: int, hidden: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        return self._run(series, horizon, hidden, list(self.require_quantiles()))


def to_numpy(t: Any) -> np.ndarray:
    """A torch tensor as float32 numpy on the host."""
    return t.float().cpu().numpy()


# --- checkpoints ----------------------------------------------------------------------------------
def resolve_checkpoint(path_or_id: str, family: str, required: tuple[str, ...] = ("config.json",)) -> Path:
    """Local directory for `path_or_id`, downloading a hub id when needed.

    Raises ModelDirError naming the missing file, or explaining how to point --teacher-path at a
    downloaded copy when the hub cannot be reached.
    """
    local = Path(path_or_id).expanduser()
    if local.exists():
        if not local.is_dir():
            raise ModelDirError(
                f"--teacher-path {local} is a file; give the checkpoint directory that holds config.json."
            )
        check_layout(local, family, required)
        return local
    if path_or_id.startswith((".", "/", "~")) or path_or_id.count("/") != 1:
        raise ModelDirError(
            f"Teacher checkpoint '{path_or_id}' is neither an existing directory nor a hub id (owner/name). "
            "Give --teacher-path a local checkpoint directory or a hub id."
        )
    try:
        from huggingface_hub import snapshot_download  # the teachers extra

        downloaded = Path(snapshot_download(path_or_id, allow_patterns=list(ALLOW_PATTERNS)))
    except Exception as exc:  # offline, unknown repo, gated...
        raise ModelDirError(
            f"Could not fetch the {family} checkpoint '{path_or_id}' from the Hugging Face hub "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}). "
            f"If this machine is offline, download it elsewhere (e.g. `hf download {path_or_id} "
            f"--local-dir ./{path_or_id.split('/')[-1]}`), copy the directory here and pass "
            f"--teacher-path ./{path_or_id.split('/')[-1]}."
        ) from None
    check_layout(downloaded, family, required)
    return downloaded


def check_layout(directory: Path, family: str, required: tuple[str, ...]) -> None:
    """ModelDirError unless `directory` has the `required` files and safetensors weights."""
    missing = [name for name in required if not (directory / name).exists()]
    if missing:
        raise ModelDirError(
            f"{directory} is not a {family} checkpoint in the official layout: missing {', '.join(missing)}."
        )
    if not list(directory.glob("*.safetensors")):
        pickles = [p.name for p in directory.glob("*.bin")] + [p.name for p in directory.glob("*.pt*")]
        extra = (
            (f" It has {', '.join(pickles)}: pickled weights are never loaded; convert them to safetensors first.")
            if pickles
            else ""
        )
        raise ModelDirError(f"{directory} has no *.safetensors weights.{extra}")


_HASHES: dict[str, tuple[list, str]] = {}  # resolved directory -> (stamp, sha256), this process


def hash_checkpoint(directory: str | Path, memo: Path | None = None) -> str:
    """sha256 over a checkpoint's weight files (`*.safetensors` and `config.json`: names and bytes,
    sorted by name). Read once per process for unchanged files (same names, sizes, mtimes), and not
    at all when the `memo` JSON file remembers them."""
    directory = Path(directory)
    files = sorted({p for pat in WEIGHT_PATTERNS for p in directory.glob(pat)})
    stamp = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    key = str(directory.resolve())
    if key in _HASHES and _HASHES[key][0] == stamp:
        return _HASHES[key][1]
    saved = {}
    if memo is not None and memo.exists():
        try:
            saved = read_json(memo)
        except ValueError:
            saved = {}
    hit = saved.get(key)
    if hit and hit.get("stamp") == stamp:
        digest = hit["sha256"]
    else:
        h = hashlib.sha256()
        for p in files:
            h.update(p.name.encode())
            with open(p, "rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
        digest = h.hexdigest()
        if memo is not None:
            write_json(memo, {**saved, key: {"stamp": stamp, "sha256": digest}})
    _HASHES[key] = (stamp, digest)
    return digest


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when available else 'cpu'."""
    import torch  # only when a teacher or a student is really placed on a device

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise DistiltsError("--device cuda was asked for but no CUDA device is available. Use --device cpu or auto.")
    return device
