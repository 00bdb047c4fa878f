"""Error types. Every user-facing error says what is wrong and how to fix it."""

from __future__ import annotations


class DistiltsError(Exception):
    """Base class for errors shown to users as a one-paragraph message (no traceback)."""


class DataError(DistiltsError):
    """Input data is missing, malformed or unsuitable (names the file, column or row)."""


class ModelDirError(DistiltsError):
    """A student, teacher or artifact directory is missing files or is inconsistent."""


class ArtifactError(DistiltsError):
    """A compiled artifact is corrupt, tampered with, or computes wrong numbers."""


class MissingExtraError(DistiltsError):
    """An optional dependency is not installed; the message names the pip command."""

    def __init__(self, module: str, extra: str, purpose: str = "") -> None:
        what = f" for {purpose}" if purpose else ""
        super().__init__(
            f"The Python package '{module}' is needed{what} but is not installed. "
            f'Install it with: pip install "distilts[{extra}]"'
        )
        self.module = module
        self.extra = extra


def require(module: str, extra: str, purpose: str = ""):
    """Import and return `module`, or raise MissingExtraError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised via tests with a fake name
        raise MissingExtraError(module, extra, purpose) from exc
