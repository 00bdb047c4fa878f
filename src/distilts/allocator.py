"""Train on CPU under jemalloc when it is installed: the training commands re-run themselves with it preloaded.

On glibc, an allocation above the mmap threshold (at most 32 MiB) is a fresh `mmap` each time, so each
such tensor is page-faulted and zeroed by the kernel on first touch and unmapped when freed. TSMixer's
feature-mixing activations at the paper's ETTh1 settings (`[32, 512, 512]` float32, 33.5 MB) are such
tensors, a dozen a step: measured on this 2-core machine, a training step took 0.80 s under glibc and
0.39 s under jemalloc configured to keep freed pages (`dirty_decay_ms:-1`), which reuses them instead.

`distilts distill`, `search`, `train-teacher` and `teach` therefore re-execute themselves once, before any
work, with `LD_PRELOAD` naming jemalloc (Debian/Ubuntu: `apt-get install libjemalloc2`; scripts/setup.sh
installs it) and `MALLOC_CONF` (a user's own is kept). Nothing changes where jemalloc is absent, off Linux,
when it is already preloaded, or with `DISTILTS_JEMALLOC=0`. Results do not depend on the allocator.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Mapping, Sequence

TRAINING_COMMANDS = ("distill", "search", "train-teacher", "teach")
# keep freed pages for reuse instead of returning them to the kernel (training's peak memory stays mapped)
MALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
OPT_OUT = "DISTILTS_JEMALLOC"


def jemalloc_env(argv: Sequence[str], environ: Mapping[str, str], library: str | None) -> dict[str, str] | None:
    """The environment to re-run `distilts ARGV` under jemalloc `library`, or None to run as is."""
    preload = environ.get("LD_PRELOAD", "")
    if (
        library is None
        or not argv
        or argv[0] not in TRAINING_COMMANDS
        or environ.get(OPT_OUT, "1") == "0"
        or "jemalloc" in preload
    ):
        return None
    env = dict(environ)
    env["LD_PRELOAD"] = f"{library} {preload}".strip()
    env.setdefault("MALLOC_CONF", MALLOC_CONF)
    return env


def reexec_under_jemalloc(argv: Sequence[str]) -> None:
    """Replace this process by `python -m distilts ARGV` under jemalloc when `jemalloc_env` says so."""
    if not sys.platform.startswith("linux") or not argv or argv[0] not in TRAINING_COMMANDS:
        return  # before the library lookup (it runs ldconfig): other commands start as fast as before
    env = jemalloc_env(argv, os.environ, ctypes.util.find_library("jemalloc"))
    if env is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "distilts", *argv], env)
