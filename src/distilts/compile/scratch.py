"""Hidden `.<artifact>.<random>.partial` build directories that a killed compile cannot leave behind for ever.

Each one holds `.owner` (pid, host, start time) and an exclusive `flock` on it while its compile runs;
the kernel drops the lock when the process dies however it dies. A later compile of the same artifact
removes every sibling scratch directory whose lock it can take (its owner is gone), never one whose
lock is held (another live compile). A directory without `.owner` (from a version before this, or
killed in the instant between creating it and writing the owner) counts as stale after STALE_SECONDS.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from distilts.utils import replace_dir, temp_dir_beside, write_json

OWNER = ".owner"
STALE_SECONDS = 3600


class Scratch:
    """A locked scratch directory beside `final` that becomes the artifact: `install()` writes its
    manifest and moves it into place; `discard()` (or an error inside `discarding()`) removes it."""

    def __init__(self, final: Path) -> None:
        self.final = Path(final)
        self.path = temp_dir_beside(final)
        self._fd: int | None = os.open(self.path / OWNER, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        os.write(
            self._fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}).encode()
        )

    def release(self) -> None:
        """Drop the owner file and its lock (the directory is about to become the artifact)."""
        if self._fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path / OWNER)
            os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        self.release()
        shutil.rmtree(self.path, ignore_errors=True)

    @classmethod
    def beside(cls, final: Path, log: Callable[[str], None] = lambda s: None) -> Scratch:
        """A new scratch directory for `final`, after removing those dead compiles left (`clean_stale`)."""
        clean_stale(final, log)
        return cls(final)

    @contextlib.contextmanager
    def discarding(self) -> Iterator[Path]:
        """Yields the directory; any error (or interrupt) inside removes it and propagates."""
        try:
            yield self.path
        except BaseException:
            self.discard()
            raise

    def install(self, manifest: dict, check: Callable[[Path], object] | None = None) -> Path:
        """Write `manifest.json`, run `check` on the finished directory (e.g. the runtime's self-check),
        then move it atomically into place as `final`; returns `final`. On an error call `discard()`."""
        write_json(self.path / "manifest.json", manifest)
        if check is not None:
            check(self.path)
        self.release()
        replace_dir(self.path, self.final)
        return self.final


def clean_stale(final: Path, log: Callable[[str], None] = lambda s: None) -> list[Path]:
    """Remove scratch directories of `final` left by dead compiles; returns what was removed."""
    removed = []
    for d in sorted(final.parent.glob(f".{final.name}.*.partial")):
        if d.is_dir() and _stale(d):
            owner = _read_owner(d)
            shutil.rmtree(d, ignore_errors=True)
            who = f" (pid {owner.get('pid')} on {owner.get('host')})" if owner else ""
            log(f"{final.name}: removed {d.name}, left by a compile that was killed{who}")
            removed.append(d)
    return removed


def _read_owner(d: Path) -> dict:
    with contextlib.suppress(OSError, ValueError):
        return json.loads((d / OWNER).read_text() or "{}")
    return {}


def _stale(d: Path) -> bool:
    try:
        fd = os.open(d / OWNER, os.O_RDWR)
    except FileNotFoundError:
        with contextlib.suppress(FileNotFoundError):
            return time.time() - d.stat().st_mtime > STALE_SECONDS
        return False
    try:
        if os.fstat(fd).st_size == 0:  # created, not yet locked and written by its owner
            return time.time() - d.stat().st_mtime > STALE_SECONDS
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held: a live compile owns it
    finally:
        os.close(fd)  # closing drops the lock we may have taken
    return True
