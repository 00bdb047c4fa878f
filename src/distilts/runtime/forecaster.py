"""`Forecaster`: load a verified artifact and forecast from raw values (numpy + one backend)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from distilts.calendar import calendar_columns, calendar_features
from distilts.errors import ArtifactError, DataError, DistiltsError
from distilts.runtime.arch import host_isa
from distilts.runtime.backends import MODES, RunSettings, Session, open_session
from distilts.runtime.batching import plan_chunks, run_padded
from distilts.runtime.calibration import DEFAULT_LR, OnlineCalibrator, for_forecaster
from distilts.runtime.inputs import Inputs, as_float32, n_rows, take
from distilts.runtime.manifest import RECOMPILE, Manifest, ModelFile, read_manifest


class Forecaster:
    """A compiled student ready to serve: checksums and the golden self-check have passed.

    `predict` takes raw values (normalization is in the graph) for one window `[L, D]` or a batch
    `[B, L, D]` and returns raw-scale forecasts `[H, D]` / `[B, H, D]`, for any B (the median of a
    quantile artifact); `predict_quantiles` returns every level, `[H, D, Q]` / `[B, H, D, Q]`.
    One Forecaster may be shared by any number of threads (docs/runtime.md, "Threads").
    """

    def __init__(
        self, manifest: Manifest, sessions: dict[int | None, Session], settings: RunSettings, load_seconds: float = 0.0
    ) -> None:
        self.manifest = manifest
        self.sessions = sessions  # batch (None = dynamic) -> session
        self.settings = settings
        self.load_seconds = load_seconds
        self._batches = list(sessions)
        self._one = sessions.get(None) or sessions.get(1)  # takes a single window as it is
        self._window_shape = (self.lookback, len(self.columns))

    @classmethod
    def load(
        cls, artifact_dir: str | Path, threads: int | None = None, mode: str | None = None, verify: bool = True
    ) -> Forecaster:
        """Read the manifest, check every file's sha256, load each model file and run the golden pair.

        threads: backend threads per call; mode: "latency" or "throughput" (docs/runtime.md). Each
        defaults to the manifest target's value, else 1 thread and latency mode.
        verify=False skips the golden self-check (checksums are always checked).
        """
        t0 = time.perf_counter()
        man = read_manifest(artifact_dir)
        settings = run_settings(man, threads, mode)
        sessions: dict[int | None, Session] = {}
        for mf in man.models:
            sessions[mf.batch] = _open(man, mf, settings)
        fc = cls(man, sessions, settings)
        if verify:
            fc.self_check()
        fc.load_seconds = time.perf_counter() - t0
        return fc

    # --- properties -------------------------------------------------------------------------
    @property
    def lookback(self) -> int:
        return self.manifest.lookback

    @property
    def horizon(self) -> int:
        return self.manifest.horizon

    @property
    def columns(self) -> list[str]:
        return self.manifest.columns

    @property
    def threads(self) -> int:
        """Backend threads per call."""
        return self.settings.threads

    @property
    def mode(self) -> str:
        return self.settings.mode

    @property
    def backend(self) -> str:
        return self.manifest.backend

    @property
    def levels(self) -> tuple[float, ...] | None:
        """Quantile levels of a probabilistic artifact (`predict_quantiles`), None for a point one."""
        return self.manifest.levels

    @property
    def batch_sizes(self) -> list[int | None]:
        """Batch sizes of the model files (None = dynamic)."""
        return list(self.sessions)

    # --- checks -----------------------------------------------------------------------------
    def self_check(self) -> None:
        """Run the manifest's golden input through every model file; refuse to serve on a mismatch."""
        man = self.manifest
        for batch, sess in self.sessions.items():
            got = run_padded(sess, man.golden_input)
            want = man.golden_output
            if (
                got.shape != want.shape
                or not np.all(np.isfinite(got))
                or not np.allclose(got, want, atol=man.atol, rtol=man.rtol)
            ):
                err = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("nan")
                name = next(m.file for m in man.models if m.batch == batch)
                raise ArtifactError(
                    f"{man.directory / name}: the {man.backend} backend ({sess.version}) does not reproduce the "
                    f"golden forecast stored in manifest.json (max abs error {err:.3g}, allowed atol {man.atol:g} + "
                    f"rtol {man.rtol:g}). Refusing to serve wrong numbers. This happens when the backend "
                    f"library differs from the one used at compile time (some TFLite runtimes are silently "
                    f"wrong on int8 models). Try the fp32 artifact or another backend, or re-run "
                    f"`distilts compile` with this runtime's version." + _isa_hint(man)
                )

    def check_window(self, values: np.ndarray) -> np.ndarray:
        """Validate raw input and return it as float32 `[B, L, D]` (raises DataError)."""
        x = values if isinstance(values, np.ndarray) else np.asarray(values)
        if x.shape[-2:] != self._window_shape or x.ndim not in (2, 3):
            L, D = self._window_shape
            raise DataError(
                f"Input window has shape {tuple(x.shape)}; the model expects {L} x {D} (lookback x variates) "
                f"for one window or [batch, {L}, {D}] for a batch, columns in this order: "
                f"{', '.join(self.columns)}."
            )
        if x.dtype != np.float32:
            try:
                x = x.astype(np.float32)
            except (TypeError, ValueError):
                raise DataError(f"Input window must be numeric; got dtype {x.dtype}.") from None
        if not np.isfinite(x).all():  # the details only when there is something to report
            bad = ~np.isfinite(x)
            idx = np.argwhere(bad)[0]
            where = f"window {idx[0]}, " if x.ndim == 3 else ""
            raise DataError(
                f"Input window has {int(bad.sum())} NaN/inf value(s) (first at {where}step {idx[-2]}, column "
                f"'{self.columns[idx[-1]]}'). Fill missing values first (e.g. `--fill ffill`)."
            )
        return x[None] if x.ndim == 2 else x

    # --- covariates -------------------------------------------------------------------------
    @property
    def covariates(self) -> dict | None:
        """The manifest's `covariates` block (columns per role, calendar spec, stats, inputs), None without."""
        return self.manifest.covariates

    @property
    def input_columns(self) -> dict[str, list[str]]:
        """{input name: the columns a caller passes} in artifact order: "x" the target columns, "future" the
        known-future columns WITHOUT the calendar ones (generated from `timestamps=`), "past", "static"."""
        cov = self.manifest.covariates or {}
        out = {"x": list(self.columns)}
        for role in self.manifest.input_tails:
            if role != "x":
                cols = list(cov.get(role) or [])
                out[role] = cols[: len(cols) - len(self.calendar_columns)] if role == "future" else cols
        return out

    @property
    def calendar_columns(self) -> list[str]:
        """The calendar columns the Forecaster generates (last in "future"); empty without a calendar."""
        return calendar_columns((self.manifest.covariates or {}).get("calendar"))

    def check_inputs(
        self,
        values: np.ndarray,
        future: np.ndarray | None = None,
        past: np.ndarray | None = None,
        static: np.ndarray | None = None,
        timestamps: np.ndarray | None = None,
    ) -> Inputs:
        """Validate raw inputs: the window `[B, L, D]` alone, or for an artifact with covariates the named
        inputs in artifact order (calendar columns generated from `timestamps`); one-line DataErrors."""
        x = self.check_window(values)
        given = {"past": past, "future": future, "static": static}
        tails = self.manifest.input_tails
        if len(tails) == 1:
            extra = [r for r, v in given.items() if v is not None] + (["timestamps"] if timestamps is not None else [])
            if extra:
                raise DataError(
                    f"This artifact takes no covariates (it was distilled without them), but {', '.join(extra)} "
                    "was given: drop it, or distil a student with covariates and compile that."
                )
            return x
        single = np.ndim(values) == 2
        cols = self.input_columns
        out: dict[str, np.ndarray] = {"x": x}
        for role in tails:
            if role == "x":
                continue
            if role == "future" and self.calendar_columns:
                out[role] = self._future_with_calendar(future, timestamps, single, len(x))
                continue
            out[role] = self._check_block(role, given[role], tails[role], cols[role], single, len(x))
        unused = [r for r, v in given.items() if v is not None and r not in tails]
        if unused:
            raise DataError(
                f"This artifact has no '{unused[0]}' input (its inputs: {', '.join(tails)}): drop {unused[0]}=."
            )
        return out

    def _check_block(self, role: str, a, tail: tuple[int, ...], columns: list[str], single: bool, n: int) -> np.ndarray:
        """One covariate input as float32 `[n, *tail]` (a single window's without the batch axis), else DataError."""
        what = {"past": "lookback", "future": "lookback + horizon", "static": ""}[role]
        dims = " x ".join(map(str, tail))
        expect = (
            f"[{dims}]" + (f" ({what} x columns)" if what else " (columns)") + f", columns in this order: "
            f"{', '.join(columns)}" + ("" if single else f"; with a batch: [{n}, {dims}]")
        )
        if a is None:
            raise DataError(f"Input '{role}' is missing: the model expects {expect}. Pass {role}=.")
        a = np.asarray(a)
        want = tail if single else (n, *tail)
        if a.shape != want:
            raise DataError(f"Input '{role}' has shape {tuple(a.shape)}; the model expects {expect}.")
        try:
            a = a.astype(np.float32, copy=False)
        except (TypeError, ValueError):
            raise DataError(f"Input '{role}' must be numeric; got dtype {a.dtype}.") from None
        if not np.isfinite(a).all():
            idx = np.argwhere(~np.isfinite(a))[0]
            step = f"step {idx[-2]}, " if len(tail) == 2 else ""
            where = ("" if single else f"window {idx[0]}, ") + step
            raise DataError(
                f"Input '{role}' has NaN/inf in covariate '{columns[idx[-1]]}' (first at {where}column "
                f"{idx[-1]}). Covariates are never filled: pass complete values."
            )
        return a[None] if single else a

    def _future_with_calendar(self, future, timestamps, single: bool, n: int) -> np.ndarray:
        """The "future" input: the caller's known-future columns (if any) then the calendar features of
        `timestamps` (`[L + H]` datetime64, or `[B, L + H]`)."""
        steps = self.lookback + self.horizon
        user = self.input_columns["future"]
        if timestamps is None:
            raise DataError(
                f"Input 'timestamps' is missing: this artifact generates the calendar features "
                f"{', '.join(self.calendar_columns)} from the {steps} timestamps of lookback + horizon; pass "
                "timestamps= (datetime64)."
            )
        t = np.asarray(timestamps)
        want = (steps,) if single else (n, steps)
        if t.shape != want or not np.issubdtype(t.dtype, np.datetime64):
            raise DataError(
                f"Input 'timestamps' has shape {tuple(t.shape)} and dtype {t.dtype}; the model expects "
                f"{list(want)} datetime64 values (lookback {self.lookback} + horizon {self.horizon})."
            )
        assert self.manifest.covariates is not None  # timestamps are checked for covariate artifacts only
        spec = self.manifest.covariates["calendar"]
        cal = calendar_features(t.reshape(-1), spec).reshape(*t.shape, -1)
        if user:
            f = self._check_block("future", future, (steps, len(user)), user, single, n)
            return np.concatenate([f, cal if not single else cal[None]], axis=-1)
        if future is not None and np.size(future):
            raise DataError(
                "Input 'future' was given, but this artifact's known-future inputs are all calendar features "
                f"({', '.join(self.calendar_columns)}), generated from timestamps=: drop future=."
            )
        return np.ascontiguousarray(cal if not single else cal[None], np.float32)

    # --- inference --------------------------------------------------------------------------
    def predict(
        self,
        values: np.ndarray,
        future: np.ndarray | None = None,
        past: np.ndarray | None = None,
        static: np.ndarray | None = None,
        timestamps: np.ndarray | None = None,
    ) -> np.ndarray:
        """Raw `[L, D]` -> `[H, D]`, or `[B, L, D]` -> `[B, H, D]` (chunked over the model files' batches);
        the 0.5 level of a quantile artifact. An artifact with covariates also takes, raw: `future`
        `[L + H, F]` (its known-future columns, calendar ones excluded), `past` `[L, P]`, `static` `[S]` (a
        batch: each with a leading `B`) and `timestamps` `[L + H]` when it has calendar features."""
        return self._point(self._run(values, future, past, static, timestamps))

    def predict_quantiles(
        self,
        values: np.ndarray,
        future: np.ndarray | None = None,
        past: np.ndarray | None = None,
        static: np.ndarray | None = None,
        timestamps: np.ndarray | None = None,
    ) -> np.ndarray:
        """Raw `[L, D]` -> `[H, D, Q]`, or `[B, L, D]` -> `[B, H, D, Q]`: the forecast at every level of
        `levels` (sorted; they never cross). A view of the model's `[.., D, H, Q]` output (no copy).
        Covariates as in `predict`."""
        if self.manifest.levels is None:
            raise DistiltsError(
                f"{self.manifest.directory} is a point forecaster (no quantile levels in its "
                "manifest): use predict(), or distil a quantile student (`distilts distill "
                "--quantiles deciles`) and compile that."
            )
        return np.swapaxes(self._run(values, future, past, static, timestamps), -3, -2)

    def calibrator(self, lr: float = DEFAULT_LR) -> OnlineCalibrator:
        """A fresh online calibrator for this quantile artifact: `cal.apply(predict_quantiles(x))` gives
        calibrated levels, `cal.update(q, observed)` moves them as values arrive, `cal.save(path)` /
        `OnlineCalibrator.load(path)` persist it (distilts.runtime.calibration; docs/runtime.md)."""
        return for_forecaster(self, lr)

    def _run(self, values: np.ndarray, future=None, past=None, static=None, timestamps=None) -> np.ndarray:
        if self.manifest.covariates is None and future is None and past is None and static is None:
            x: Inputs = self.check_window(values)  # the univariate fast path, as before covariates
            if timestamps is not None:
                self.check_inputs(values, timestamps=timestamps)  # raises: no covariates here
        else:
            x = self.check_inputs(values, future, past, static, timestamps)
        return self._run_inputs(as_float32(x), np.ndim(values) == 2)

    def predict_inputs(self, inputs: Inputs) -> np.ndarray:
        """`predict` on the model's own inputs, a batch of raw arrays named as the artifact's (`x`, then `past`,
        `future` with its calendar columns, `static`; docs/design.md): what verification on another
        architecture feeds. The 0.5 level of a quantile artifact."""
        return self._point(self._run_inputs(as_float32(inputs), False))

    def _point(self, y: np.ndarray) -> np.ndarray:
        """The model's output as a point forecast: itself, or the 0.5 level of a quantile artifact `[.., H, D]`."""
        if self.manifest.levels is None:
            return y
        return np.ascontiguousarray(np.swapaxes(y[..., self.manifest.levels.index(0.5)], -1, -2))

    def _run_inputs(self, x: Inputs, single: bool) -> np.ndarray:
        n = n_rows(x)
        if n == 1 and self._one is not None:  # the batch-1 fast path
            y = self._one.run(x)
            return y[0] if single else y
        chunks = plan_chunks(n, self._batches)
        if len(chunks) == 1 and chunks[0][2] in (None, n):  # one call, no padding: the session's array is ours
            y = self.sessions[chunks[0][2]].run(x)
            return y[0] if single else y
        out = np.empty((n, *self.manifest.output_tail), dtype=np.float32)
        for lo, hi, batch in chunks:
            out[lo:hi] = run_padded(self.sessions[batch], take(x, slice(lo, hi)))
        return out[0] if single else out


def run_settings(man: Manifest, threads: int | None = None, mode: str | None = None) -> RunSettings:
    """Threads and mode: the arguments, else the manifest target's `threads`/`mode`, else 1 and latency."""
    target = man.target or {}
    if mode is None:
        mode = target.get("mode") or "latency"
        if mode not in MODES:
            raise ArtifactError(
                f"{man.directory / 'manifest.json'}: target mode {mode!r} is unknown to this "
                f"runtime (known: {', '.join(MODES)}). Pass mode= explicitly or upgrade distilts."
            )
    elif mode not in MODES:
        raise DistiltsError(f"mode must be one of {', '.join(MODES)}, not {mode!r}.")
    if threads is None:
        threads = int(target.get("threads") or 1)
    if int(threads) < 1:
        raise DistiltsError(f"threads must be a positive integer, not {threads!r}.")
    return RunSettings(threads=int(threads), mode=mode)


def _open(man: Manifest, mf: ModelFile, settings: RunSettings) -> Session:
    try:
        return open_session(
            man.backend,
            man.path(mf),
            batch=mf.batch,
            input_name=man.input_name,
            output_name=man.output_name,
            settings=settings,
        )
    except DistiltsError:  # MissingExtraError names the extra to install
        raise
    except Exception as exc:  # the backend cannot parse or compile the file
        raise ArtifactError(f"{man.path(mf)}: the {man.backend} backend cannot load it ({exc}). {RECOMPILE}") from exc


def _isa_hint(man: Manifest) -> str:
    """When the artifact was never verified on this CPU's instruction set, say so and how to fix it."""
    golden = man.raw.get("golden") or {}
    verified = [i for i in [golden.get("isa"), *(golden.get("by_isa") or {})] if i]
    if man.golden_isa is not None or not verified:
        return ""
    return (
        f" It was verified on {', '.join(verified)} only and this CPU is {host_isa()}: compile it for this "
        "CPU (on it, or `--verify-on aarch64` for arm64; `--target x86-edge` for x86 without VNNI)."
    )
