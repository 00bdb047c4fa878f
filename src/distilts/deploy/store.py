"""A model store: every deployed artifact under `STORE/versions/<id>/`, the served one at `STORE/current`.

    STORE/versions/0001-3f2a9c1e/   an artifact, copied in whole (manifest.json + model files)
    STORE/current -> versions/0002-a71b0d44   a relative symlink, switched by renaming a new link over it
    STORE/history.json             the ids made current, oldest first (what --rollback walks back)

A version's id is its sequence number and the first 8 hex digits of the sha256 of its manifest.json
(which holds every file's sha256), so deploying the same artifact twice reuses its version.
Standard library + the runtime only: this module ships to the device.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from distilts.errors import ArtifactError, DistiltsError
from distilts.utils import read_json, temp_dir_beside, write_json

CURRENT = "current"
VERSIONS = "versions"
HISTORY = "history.json"


class StoreError(DistiltsError):
    """A model store is missing, empty or has no version to roll back to."""


def artifact_digest(artifact_dir: str | Path) -> str:
    """First 8 hex digits of the sha256 of the artifact's manifest.json (its content id)."""
    path = Path(artifact_dir) / "manifest.json"
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    except OSError:
        raise ArtifactError(f"{path} not found: pass a directory written by `distilts compile`.") from None


def is_store(path: str | Path) -> bool:
    """True when `path` is a model store (it has `current` or `versions/`), not a plain artifact."""
    p = Path(path)
    return (p / CURRENT).is_symlink() or (p / VERSIONS).is_dir()


class Store:
    """A model store directory (it need not exist before the first deploy)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def current_link(self) -> Path:
        return self.root / CURRENT

    def current(self) -> str | None:
        """The id `current` points at (None before the first deploy)."""
        try:
            return Path(os.readlink(self.current_link)).name
        except OSError:
            return None

    def current_dir(self) -> Path:
        """The real directory of the current version (resolved once, so a switch later cannot mix files)."""
        vid = self.current()
        if vid is None:
            raise StoreError(
                f"{self.root} has no current version: deploy one with `distilts deploy ARTIFACT --to {self.root}`."
            )
        return self.root / VERSIONS / vid

    def versions(self) -> list[str]:
        d = self.root / VERSIONS
        return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")) if d.is_dir() else []

    def history(self) -> list[str]:
        try:
            return list(read_json(self.root / HISTORY))
        except (OSError, ValueError):
            return []

    def add(self, artifact_dir: str | Path, check: bool = True) -> str:
        """Copy an artifact in as a new version (or find it already there); self-check the copy on this machine.

        A copy that fails its checksums or golden self-check is removed and ArtifactError is raised.
        """
        src = Path(artifact_dir)
        digest = artifact_digest(src)
        for vid in self.versions():
            if vid.endswith(f"-{digest}"):
                if check:
                    _check(self.root / VERSIONS / vid)
                return vid
        vid = f"{len(self.versions()) + 1:04d}-{digest}"
        final = self.root / VERSIONS / vid
        tmp = temp_dir_beside(final)
        try:
            shutil.copytree(src, tmp, dirs_exist_ok=True)
            if check:
                _check(tmp)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return vid

    def switch(self, vid: str) -> None:
        """Point `current` at version `vid` in one atomic step (a new symlink renamed over the old one)."""
        if not (self.root / VERSIONS / vid).is_dir():
            raise StoreError(f"{self.root} has no version {vid!r} (versions: {', '.join(self.versions()) or 'none'}).")
        tmp = self.root / f".{CURRENT}.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(Path(VERSIONS) / vid, tmp)
        os.replace(tmp, self.current_link)
        write_json(self.root / HISTORY, [*self.history(), vid])

    def deploy(self, artifact_dir: str | Path, check: bool = True) -> str:
        """Add the artifact (self-checked) and make it current; returns its id."""
        vid = self.add(artifact_dir, check=check)
        if vid != self.current():
            self.switch(vid)
        return vid

    def rollback(self) -> str:
        """Make the version that was current before this one current again; returns its id."""
        cur, hist = self.current(), self.history()
        while hist and hist[-1] == cur:
            hist.pop()
        prev = next((v for v in reversed(hist) if v != cur and (self.root / VERSIONS / v).is_dir()), None)
        if prev is None:
            raise StoreError(f"{self.root}: no earlier version to roll back to (current: {cur or 'none'}).")
        self.switch(prev)
        # the rolled-back version leaves the history, so a second rollback walks further back
        write_json(self.root / HISTORY, [*hist[: len(hist) - hist[::-1].index(prev)]])
        return prev


def _check(directory: Path) -> None:
    """Checksums + golden self-check of the artifact in `directory` with this machine's runtime."""
    from distilts.runtime.forecaster import Forecaster

    Forecaster.load(directory, threads=1)


def deploy_artifact(artifact_dir: str | Path, store: str | Path) -> tuple[str, str | None]:
    """`distilts deploy ARTIFACT --to STORE`: copy, self-check and make current; (new version id, previous id)."""
    s = Store(store)
    before = s.current()
    return s.deploy(artifact_dir), before


def rollback(store: str | Path) -> tuple[str, str | None]:
    """`distilts deploy --rollback --to STORE`: the version current before this one, current again; (id, previous)."""
    s = Store(store)
    before = s.current()
    return s.rollback(), before
