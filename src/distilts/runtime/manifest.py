"""Read and validate an artifact's `manifest.json` (schema in docs/design.md) and its checksums.

Numpy and the standard library only: this module ships to the device.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distilts.errors import ArtifactError
from distilts.quantiles import QuantileError, validate_levels
from distilts.runtime.arch import host_isa
from distilts.runtime.backends import BACKENDS
from distilts.runtime.inputs import ROLES, Inputs, input_tails
from distilts.utils import sha256_file

FORMAT = "distilts-artifact"
VERSION = 1  # every artifact without covariate inputs (written byte-for-byte as before covariates)
COVARIATE_VERSION = 2  # an artifact with covariate inputs (`covariates`, named inputs, a golden input per name)
SUPPORTED_VERSIONS = (VERSION, COVARIATE_VERSION)
RECOMPILE = "Re-run `distilts compile` to rebuild the artifact."


@dataclass(frozen=True)
class ModelFile:
    """One file of an artifact; `batch` None means a dynamic batch dimension."""

    file: str
    batch: int | None
    sha256: str
    size: int | None
    role: str = "model"  # "weights": OpenVINO's .bin, loaded with its .xml; any other role (sources, the Vela
    # model, reports): a side file, checked by sha256 but not loaded


@dataclass
class Manifest:
    """A validated manifest; `raw` keeps every field as written."""

    directory: Path
    raw: dict[str, Any]
    backend: str
    precision: str
    files: list[ModelFile]
    input_name: str
    output_name: str
    lookback: int
    horizon: int
    columns: list[str]
    freq_seconds: int | None
    scaler_mean: np.ndarray | None
    scaler_std: np.ndarray | None
    golden_input: Inputs
    golden_output: np.ndarray
    atol: float
    rtol: float
    golden_isa: str | None = None  # the instruction set whose golden output was picked (None: the default)
    levels: tuple[float, ...] | None = None  # quantile levels of a probabilistic artifact (output [B, D, H, Q])
    covariates: dict | None = None  # the `covariates` block (columns per role, calendar, stats, inputs); None: none

    @property
    def input_tails(self) -> dict[str, tuple[int, ...]]:
        """{input name: shape of one row} in artifact order (x first; then the covariate inputs)."""
        return input_tails(self.lookback, self.horizon, len(self.columns), self.covariates)

    @property
    def n_variates(self) -> int:
        return len(self.columns)

    @property
    def output_tail(self) -> tuple[int, ...]:
        """Shape of one window's model output: `(H, D)`, or `(D, H, Q)` for a quantile artifact."""
        if self.levels is None:
            return (self.horizon, len(self.columns))
        return (len(self.columns), self.horizon, len(self.levels))

    @property
    def models(self) -> list[ModelFile]:
        """Loadable model files (not weight side-files), smallest fixed batch first, dynamic last."""
        ms = [m for m in self.files if m.role == "model"]
        return sorted(ms, key=lambda m: (m.batch is None, m.batch or 0))

    @property
    def target(self) -> dict | None:
        return self.raw.get("target")

    @property
    def student(self) -> dict:
        return self.raw.get("student") or {}

    @property
    def total_size(self) -> int:
        """Bytes of every listed file."""
        return sum((self.directory / f.file).stat().st_size for f in self.files)

    def path(self, f: ModelFile) -> Path:
        return self.directory / f.file


def _need(d: dict, key: str, where: str, path: Path) -> Any:
    if key not in d:
        raise ArtifactError(f"{path}: manifest field '{where}{key}' is missing. {RECOMPILE}")
    return d[key]


def read_manifest(artifact_dir: str | Path, verify_checksums: bool = True) -> Manifest:
    """Parse `artifact_dir/manifest.json`, check its fields and (by default) every file's sha256."""
    directory = Path(artifact_dir)
    mpath = directory / "manifest.json"
    if not directory.is_dir():
        raise ArtifactError(
            f"Artifact directory not found: {directory}. Pass a directory written by `distilts compile`."
        )
    if not mpath.exists():
        found = sorted(p.parent.name for p in directory.glob("*/manifest.json"))
        hint = f" It holds artifacts: {', '.join(found)} - pass one of those." if found else f" {RECOMPILE}"
        raise ArtifactError(f"{directory} has no manifest.json, so it is not a distilts artifact.{hint}")
    try:
        raw = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{mpath} is not valid JSON ({exc}). {RECOMPILE}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ArtifactError(f"{mpath}: 'format' is not '{FORMAT}', so this is not a distilts artifact.")
    version = raw.get("version")
    if version not in SUPPORTED_VERSIONS:
        raise ArtifactError(
            f"{mpath}: manifest version {version!r} is not supported by this runtime (it reads versions "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}). Upgrade distilts on this machine or re-compile with a "
            "matching version."
        )
    covariates = _covariates(raw, mpath)
    backend = _need(raw, "backend", "", mpath)
    if backend == "c":
        raise ArtifactError(
            f"{mpath}: this is a C source artifact (`--target c`): build model.c with a C compiler "
            'and call forecast() (docs/compile.md, "The C artifact"); the Python runtime does not load it.'
        )
    if backend not in BACKENDS:
        raise ArtifactError(f"{mpath}: unknown backend '{backend}' (known: {', '.join(BACKENDS)}).")
    norm = raw.get("normalization", "in-graph")
    if norm != "in-graph":
        raise ArtifactError(f"{mpath}: normalization '{norm}' is not supported (only 'in-graph'). {RECOMPILE}")

    files = []
    for i, m in enumerate(_need(raw, "models", "", mpath) or []):
        name = _need(m, "file", f"models[{i}].", mpath)
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ArtifactError(f"{mpath}: model file '{name}' must be a plain name inside the artifact directory.")
        batch = m.get("batch")
        if batch is not None and (not isinstance(batch, int) or batch < 1):
            raise ArtifactError(f"{mpath}: models[{i}].batch must be null or a positive integer, not {batch!r}.")
        files.append(
            ModelFile(
                name,
                batch,
                _need(m, "sha256", f"models[{i}].", mpath),
                m.get("size"),
                m.get("role") or ("weights" if name.endswith(".bin") else "model"),
            )
        )
    if not [f for f in files if f.role == "model"]:
        raise ArtifactError(f"{mpath}: 'models' lists no model file. {RECOMPILE}")

    lookback = int(_need(raw, "lookback", "", mpath))
    horizon = int(_need(raw, "horizon", "", mpath))
    columns = [str(c) for c in _need(raw, "columns", "", mpath)]
    inp, out = _need(raw, "input", "", mpath), _need(raw, "output", "", mpath)
    levels = _levels(raw, mpath)
    out_tail = [horizon, len(columns)] if levels is None else [len(columns), horizon, len(levels)]
    for label, spec, tail in (("input", inp, [lookback, len(columns)]), ("output", out, out_tail)):
        shape = list(spec.get("shape") or [])
        if len(shape) != len(tail) + 1 or shape[1:] != tail:
            raise ArtifactError(
                f"{mpath}: {label} shape {shape} does not match [batch, {', '.join(map(str, tail))}] "
                f"(lookback/horizon, {len(columns)} columns"
                + (", quantile levels" if levels and label == "output" else "")
                + f"). {RECOMPILE}"
            )

    golden = _need(raw, "golden", "", mpath)
    g_in_raw = _need(golden, "input", "golden.", mpath)
    g_out = np.asarray(_need(golden, "output", "golden.", mpath), dtype=np.float32)
    golden_isa = host_isa() if golden.get("isa") == host_isa() else None
    if golden_isa is None and host_isa() in (golden.get("by_isa") or {}):  # verified on this CPU's ISA too
        golden_isa = host_isa()
        g_out = np.asarray(golden["by_isa"][golden_isa], dtype=np.float32)
    tails = input_tails(lookback, horizon, len(columns), covariates)
    g_in = _golden_inputs(g_in_raw, tails, mpath)
    if g_out.ndim == len(out_tail):
        g_out = g_out[None]
    x_in = g_in["x"] if isinstance(g_in, dict) else g_in
    if x_in.shape[1:] != (lookback, len(columns)) or list(g_out.shape[1:]) != out_tail:
        raise ArtifactError(
            f"{mpath}: golden input/output shapes {x_in.shape}/{g_out.shape} do not match lookback "
            f"{lookback}, horizon {horizon}, {len(columns)} columns. {RECOMPILE}"
        )
    scaler = raw.get("scaler") or {}
    mean = np.asarray(scaler["mean"], dtype=np.float64) if "mean" in scaler else None
    std = np.asarray(scaler["std"], dtype=np.float64) if "std" in scaler else None

    man = Manifest(
        directory=directory,
        raw=raw,
        backend=backend,
        precision=str(raw.get("precision", "fp32")),
        files=files,
        input_name=str(inp.get("name", "x")),
        output_name=str(out.get("name", "y")),
        lookback=lookback,
        horizon=horizon,
        columns=columns,
        freq_seconds=raw.get("freq_seconds"),
        scaler_mean=mean,
        scaler_std=std,
        golden_input=g_in,
        golden_output=g_out,
        atol=float(golden.get("atol", 1e-4)),
        rtol=float(golden.get("rtol", 1e-3)),
        golden_isa=golden_isa,
        levels=levels,
        covariates=covariates,
    )
    if verify_checksums:
        verify_files(man)
    return man


def _covariates(raw: dict, mpath: Path) -> dict | None:
    """The `covariates` block of an artifact with covariate inputs (version 2), checked; None without one."""
    cov = raw.get("covariates")
    if cov is None:
        return None
    if raw.get("version") != COVARIATE_VERSION or not isinstance(cov, dict):
        raise ArtifactError(f"{mpath}: 'covariates' needs manifest version {COVARIATE_VERSION}. {RECOMPILE}")
    for role in ROLES:
        cols = cov.get(role) or []
        if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
            raise ArtifactError(f"{mpath}: covariates.{role} must be a list of column names. {RECOMPILE}")
    cal = cov.get("calendar")
    if cal is not None and not isinstance(cal, dict):
        raise ArtifactError(f"{mpath}: covariates.calendar must be an object or null. {RECOMPILE}")
    return cov


def _golden_inputs(g_in_raw: Any, tails: dict[str, tuple[int, ...]], mpath: Path) -> Inputs:
    """The golden input: one array `[1, L, D]`, or {name: array} for an artifact with covariate inputs."""
    if len(tails) == 1:
        g = np.asarray(g_in_raw, dtype=np.float32)
        return g[None] if g.ndim == 2 else g
    if not isinstance(g_in_raw, dict) or list(g_in_raw) != list(tails):
        got = list(g_in_raw) if isinstance(g_in_raw, dict) else "one array"
        raise ArtifactError(f"{mpath}: golden.input must hold the inputs {list(tails)}, not {got}. {RECOMPILE}")
    out = {}
    for name, tail in tails.items():
        a = np.asarray(g_in_raw[name], dtype=np.float32)
        a = a[None] if a.ndim == len(tail) else a
        if a.shape[1:] != tail:
            raise ArtifactError(
                f"{mpath}: golden.input.{name} has shape {a.shape}, not [1, {', '.join(map(str, tail))}]. {RECOMPILE}"
            )
        out[name] = a
    return out


def _levels(raw: dict, mpath: Path) -> tuple[float, ...] | None:
    """The `quantiles.levels` of a probabilistic artifact (sorted, in (0, 1), with 0.5), else None."""
    spec = raw.get("quantiles")
    if spec is None:
        return None
    try:
        return validate_levels(spec.get("levels") or [])
    except (QuantileError, AttributeError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{mpath}: 'quantiles' is malformed ({exc}). {RECOMPILE}") from None


def verify_files(man: Manifest) -> None:
    """Every listed file exists and has the sha256 the manifest records; else ArtifactError naming it."""
    for f in man.files:
        p = man.path(f)
        if not p.is_file():
            raise ArtifactError(f"Artifact file {p} is missing (listed in manifest.json). {RECOMPILE}")
        digest = sha256_file(p)
        if digest != f.sha256:
            raise ArtifactError(
                f"Checksum mismatch for {p}: sha256 is {digest[:16]}..., manifest.json says "
                f"{str(f.sha256)[:16]}... The file was modified or corrupted. {RECOMPILE}"
            )
