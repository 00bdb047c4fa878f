"""Keep native-library chatter (converter/quantizer logs, progress bars, backend banners) off the terminal.

Standard library only: the runtime uses it too."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def captured() -> Iterator[list[str]]:
    """fds 1/2 (native code included) into a temp file; the list holds its text as one string after the
    block (also when the block raises)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    out: list[str] = []
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield out
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            sink.seek(0)
            out.append(sink.read().decode("utf-8", "replace"))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Send fds 1/2 (native code included) to a temp file; on an exception, replay it on stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    prev_disable = logging.root.manager.disable
    out: list[str] = []
    try:
        with warnings.catch_warnings(), captured() as out:
            warnings.simplefilter("ignore")
            logging.disable(logging.WARNING)
            yield
    except BaseException:
        text = "".join(out)[-4000:]
        if text.strip():
            sys.stderr.write(f"--- converter output (last 4000 characters) ---\n{text}\n---\n")
        raise
    finally:
        logging.disable(prev_disable)
