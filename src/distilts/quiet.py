"""Keep native-library chatter (converter/quantizer logs, progress bars, backend banners) off the terminal.

Standard library only: the runtime uses it too."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from typing import Iterator


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Send fds 1/2 (native code included) to a temp file; on an exception, replay it on stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    prev_disable = logging.root.manager.disable
    with tempfile.TemporaryFile(mode="w+b") as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            logging.disable(prev_disable)
            if failed:
                sink.seek(0)
                text = sink.read().decode("utf-8", "replace")[-4000:]
                if text.strip():
                    sys.stderr.write(f"--- converter output (last 4000 characters) ---\n{text}\n---\n")
