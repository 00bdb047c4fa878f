"""Names of a package that load on first use (PEP 562): importing the package stays cheap (no numpy, no torch).

__getattr__, __dir__ = lazy_names(__name__, {"Forecaster": "forecaster", ...}, globals())
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_names(
    package: str, names: dict[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(`__getattr__`, `__dir__`) for `package`: each name of `names` is read from its module (a submodule of
    `package`, or an absolute `distilts.` module name) on first use."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(
            importlib.import_module(module if module.startswith("distilts") else f"{package}.{module}"), name
        )

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
