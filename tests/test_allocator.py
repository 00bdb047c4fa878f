"""allocator.py: which commands re-run under jemalloc, with what environment, and that they still run."""

import os
import subprocess
import sys

from distilts.allocator import MALLOC_CONF, jemalloc_env

LIB = "libjemalloc.so.2"


def found() -> str:
    return LIB


def not_looked_up() -> str:
    raise AssertionError("the library is looked up only for a command that may re-run")


def test_training_commands_get_jemalloc_preloaded_and_keep_the_rest_of_the_environment() -> None:
    env = jemalloc_env(["distill", "--epochs", "1"], {"PATH": "/bin", "LD_PRELOAD": "libfoo.so"}, found)
    assert env == {"PATH": "/bin", "LD_PRELOAD": f"{LIB} libfoo.so", "MALLOC_CONF": MALLOC_CONF}
    assert jemalloc_env(["search"], {"MALLOC_CONF": "narenas:1"}, found)["MALLOC_CONF"] == "narenas:1"


def test_nothing_changes_for_other_commands_without_the_library_when_preloaded_or_opted_out() -> None:
    assert jemalloc_env(["forecast"], {}, not_looked_up) is None
    assert jemalloc_env([], {}, not_looked_up) is None
    assert jemalloc_env(["distill"], {}, lambda: None) is None
    preloaded = {"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}
    assert jemalloc_env(["distill"], preloaded, not_looked_up) is None  # no second exec
    assert jemalloc_env(["distill"], {"DISTILTS_JEMALLOC": "0"}, not_looked_up) is None


def test_the_console_entry_still_runs_a_training_command() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "DISTILTS_JEMALLOC")}
    res = subprocess.run([sys.executable, "-m", "distilts", "distill", "--help"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--student" in res.stdout
