"""allocator.py: which commands re-run under jemalloc, with what environment, and that they still run."""

import os
import subprocess
import sys

from distilts.allocator import MALLOC_CONF, jemalloc_env

LIB = "libjemalloc.so.2"


def test_training_commands_get_jemalloc_preloaded_and_keep_the_rest_of_the_environment() -> None:
    env = jemalloc_env(["distill", "--epochs", "1"], {"PATH": "/bin", "LD_PRELOAD": "libfoo.so"}, LIB)
    assert env == {"PATH": "/bin", "LD_PRELOAD": f"{LIB} libfoo.so", "MALLOC_CONF": MALLOC_CONF}
    assert jemalloc_env(["search"], {"MALLOC_CONF": "narenas:1"}, LIB)["MALLOC_CONF"] == "narenas:1"


def test_nothing_changes_for_other_commands_without_the_library_when_preloaded_or_opted_out() -> None:
    assert jemalloc_env(["forecast"], {}, LIB) is None
    assert jemalloc_env([], {}, LIB) is None
    assert jemalloc_env(["distill"], {}, None) is None
    assert jemalloc_env(["distill"], {"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}, LIB) is None  # no second exec
    assert jemalloc_env(["distill"], {"DISTILTS_JEMALLOC": "0"}, LIB) is None


def test_the_console_entry_still_runs_a_training_command() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "DISTILTS_JEMALLOC")}
    res = subprocess.run([sys.executable, "-m", "distilts", "distill", "--help"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--student" in res.stdout
