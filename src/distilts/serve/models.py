"""The version being served, and swapping it for a new one (hot reload) without dropping a request.

A request takes `holder.current` once and uses that `Served` to the end, so requests in flight finish
on the version they started with. `ModelHolder.reload` loads and self-checks the new version beside the
old one (the old one keeps serving meanwhile) and swaps the reference only when the check passed; a
version that fails is refused, recorded, and not retried until `current` changes again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from distilts.deploy.store import Store, artifact_digest, is_store
from distilts.runtime.batching import run_padded
from distilts.runtime.forecaster import Forecaster

log = logging.getLogger("distilts.serve")
INLINE_S = 0.0005  # requests estimated below this much predict time run on the event loop (no thread hop)


@dataclass
class Served:
    """One loaded, self-checked version."""

    version: str
    fc: Forecaster
    window_s: float  # measured predict time of one window (batch 1)
    loaded_at: float = field(default_factory=time.time)


def load_served(directory: Path, version: str, threads: int | None, mode: str | None) -> Served:
    """Load (checksums + golden self-check) and time one batch-1 call."""
    return _timed(version, Forecaster.load(directory, threads=threads, mode=mode))


def _timed(version: str, fc: Forecaster) -> Served:
    golden = fc.manifest.golden_input
    if isinstance(golden, dict):  # covariate inputs (calendar columns included): time the model file's call
        sess = next(iter(fc.sessions.values()))

        def call() -> None:
            run_padded(sess, golden)
    else:

        def call() -> None:
            fc.predict(golden[0])

    call()
    t0 = time.perf_counter()
    for _ in range(5):
        call()
    return Served(version, fc, (time.perf_counter() - t0) / 5)


class ModelHolder:
    """Serves a plain artifact directory, or a model store's `current` (reloadable)."""

    def __init__(
        self, path: str | Path, threads: int | None = None, mode: str | None = None, loaded: Served | None = None
    ) -> None:
        self.path = Path(path)
        self.store = Store(self.path) if is_store(self.path) else None
        self.threads, self.mode = threads, mode
        self._lock = threading.Lock()
        self.reloads = {"loaded": 0, "refused": 0}
        self.refused: dict[str, str] = {}  # version -> why it was refused
        self._skip: str | None = None  # the last refused version: not retried until current changes (or SIGHUP)
        self.on_swap: list = []  # callbacks(new, old) run after a swap
        self.current = loaded or self._load(*self._target())

    @classmethod
    def of(cls, fc: Forecaster) -> ModelHolder:
        """A holder of an already loaded Forecaster (a plain artifact: not reloadable)."""
        return cls(
            fc.manifest.directory, fc.threads, fc.mode, loaded=_timed(artifact_digest(fc.manifest.directory), fc)
        )

    def _target(self) -> tuple[Path, str]:
        if self.store is None:
            return self.path, artifact_digest(self.path)
        directory = self.store.current_dir()
        return directory, directory.name

    def _load(self, directory: Path, version: str) -> Served:
        return load_served(directory, version, self.threads, self.mode)

    def reload(self, force: bool = False) -> str:
        """Load current if it changed; returns "unchanged", "loaded" or "refused: <why>".

        force: retry the version refused last (SIGHUP does), otherwise it is skipped until current changes."""
        with self._lock:
            try:
                directory, version = self._target()
            except Exception as exc:
                return self._refuse("?", exc)
            if version == self.current.version or (version == self._skip and not force):
                return "unchanged"
            self._skip = None
            try:
                new = self._load(directory, version)
            except Exception as exc:
                return self._refuse(version, exc)
            old, self.current = self.current, new
            self.reloads["loaded"] += 1
            log.warning("distilts serve: now serving version %s (was %s)", new.version, old.version)
            for cb in self.on_swap:
                cb(new, old)
            return "loaded"

    def _refuse(self, version: str, exc: Exception) -> str:
        self.refused[version] = str(exc)
        self._skip = version
        self.reloads["refused"] += 1
        log.error("distilts serve: refused version %s, still serving %s: %s", version, self.current.version, exc)
        return f"refused: {exc}"

    def watch(self, stop: threading.Event, interval: float = 0.5) -> threading.Thread | None:
        """Poll the store's `current` link every `interval` s in a daemon thread; reload when it changes."""
        if self.store is None:
            return None

        store = self.store

        def loop() -> None:
            while not stop.wait(interval):
                if store.current() != self.current.version:
                    self.reload()

        t = threading.Thread(target=loop, name="distilts-watch", daemon=True)
        t.start()
        return t
