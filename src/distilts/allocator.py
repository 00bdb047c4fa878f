"""Train on CPU under jemalloc when it is installed: the training commands re-run themselves with it preloaded.

On glibc, an allocation above the mmap threshold (at most 32 MiB) is a fresh `mmap` each time, so each
such tensor is page-faulted and zeroed by the kernel on first touch and unmapped when freed. TSMixer's
feature-mixing activations at the paper's ETTh1 settings (`[32, 512, 512]` float32, 33.5 MB) are such
tensors, a dozen a step: on this 2-core machine a training step takes 678 ms under glibc and 428 ms under
jemalloc configured to keep freed pages (`dirty_decay_ms:-1`), which reuses them instead
(`python -m benchmarks run train_step --preset full`).

`distilts distill`, `search`, `train-teacher` and `teach` therefore re-execute themselves once, before any
work, with `LD_PRELOAD` naming jemalloc (Debian/Ubuntu: `apt-get install libjemalloc2`; scripts/setup.sh
installs it) and `MALLOC_CONF` (a user's own is kept). Nothing changes where jemalloc is absent, off Linux,
when it is already preloaded, or with `DISTILTS_JEMALLOC=0`. Results do not depend on the allocator.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Callable, Mapping, Sequence

TRAINING_COMMANDS = ("distill", "search", "train-teacher", "teach")
# keep freed pages for reuse instead of returning them to the kernel (training's peak memory stays mapped)
MALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
OPT_OUT = "DISTILTS_JEMALLOC"


def jemalloc_env(
    argv: Sequence[str], environ: Mapping[str, str], find_library: Callable[[], str | None]
) -> dict[str, str] | None:
    """The environment to re-run `distilts ARGV` under jemalloc, or None to run as is.

    `find_library` (it runs ldconfig) is called last, only for a training command that may re-run."""
    preload = environ.get("LD_PRELOAD", "")
    if not argv or argv[0] not in TRAINING_COMMANDS or environ.get(OPT_OUT, "1") == "0" or "jemalloc" in preload:
        return None
    library = find_library()
    if library is None:
        return None
    env = dict(environ)
    env["LD_PRELOAD"] = f"{library} {preload}".strip()
    env.setdefault("MALLOC_CONF", MALLOC_CONF)
    return env


def reexec_under_jemalloc(argv: Sequence[str]) -> None:
    """Replace this process by `python -m distilts ARGV` under jemalloc when `jemalloc_env` says so."""
    if not sys.platform.startswith("linux"):
        return
    env = jemalloc_env(argv, os.environ, lambda: ctypes.util.find_library("jemalloc"))
    if env is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "distilts", *argv], env)
