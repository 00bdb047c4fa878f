"""Extension points: one registry shape, one Protocol per kind of extension, one entry-point group.

distilts is extended without editing it: a package declares an entry point in the group
`distilts.plugins` whose object is a function `register(api: PluginAPI)`, e.g. in its pyproject.toml

    [project.entry-points."distilts.plugins"]
    tinymlp = "distilts_tinymlp:register"

    def register(api):
        api.add_student("tinymlp", "distilts_tinymlp.model:TinyMLP")

Kinds (`KINDS`) and what an entry is:
- `student`: "module:Class", a class following `Student` (built as `Class(lookback, horizon, n_variates,
  **keyword_options)`; its keyword-only options become the student's options);
- `teacher`: "module", a module with `DEFAULT_PATH` and `load(path, device) -> Teacher` (`Teacher`);
- `compile`: "module", a builder module of a format (`CompileBuilder`; distilts.compile.backends);
- `backend`: a `distilts.runtime.backends.Backend` (the runtime side of a format: its session module
  follows `Session`, distilts.runtime.backends.base);
- `target`: a `distilts.targets.Target` (a named device choosing format, precision, threads, batch).

Every registry (`Registry`) is a dict that loads the installed plugins on first use, so `import distilts`
never scans entry points and `distilts --help` lists plugin students and teachers among the choices.
Entries are references by name ("module:attr"), so registering imports neither torch nor the plugin's
model code. A plugin that fails to load is skipped with one warning naming it, never a crash.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, Protocol, TypeVar, runtime_checkable

from distilts.errors import DistiltsError

GROUP = "distilts.plugins"
KINDS = ("student", "teacher", "compile", "backend", "target")
V = TypeVar("V")

_REGISTRIES: dict[str, Registry[Any]] = {}
_LOADED = False


class Registry(dict[str, V]):
    """name -> entry for one kind of extension; installed plugins are loaded on first use."""

    def __init__(self, kind: str, entries: dict[str, V]) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown registry kind {kind!r}")
        super().__init__(entries)
        self.kind = kind
        _REGISTRIES[kind] = self

    def _ready(self) -> None:
        if not _LOADED:
            load_plugins()

    def __getitem__(self, name: str) -> V:
        self._ready()
        if not super().__contains__(name):
            raise DistiltsError(
                f"Unknown {self.kind} '{name}'. Use one of: {', '.join(self)}. (A {self.kind} from "
                f"a plugin package needs that package installed: entry point group {GROUP}.)"
            )
        return super().__getitem__(name)

    def __contains__(self, name: object) -> bool:
        self._ready()
        return super().__contains__(name)

    def __iter__(self) -> Iterator[str]:
        self._ready()
        return super().__iter__()

    def __len__(self) -> int:
        self._ready()
        return super().__len__()

    def keys(self):
        self._ready()
        return super().keys()

    def values(self):
        self._ready()
        return super().values()

    def items(self):
        self._ready()
        return super().items()

    def get(self, name: str, default: Any = None) -> Any:
        self._ready()
        return super().get(name, default)

    def add(self, name: str, entry: V) -> None:
        """Register `entry` under `name` (a plugin may not replace a built-in one)."""
        if super().__contains__(name):
            raise DistiltsError(f"a {self.kind} named '{name}' is already registered; choose another name")
        dict.__setitem__(self, name, entry)


class PluginAPI:
    """What a plugin's `register(api)` receives."""

    def __init__(self, plugin: str) -> None:
        self.plugin = plugin

    def add(self, kind: str, name: str, entry: Any) -> None:
        if kind not in _REGISTRIES:
            import importlib

            importlib.import_module(_HOMES[kind])  # the package that holds that registry
        _REGISTRIES[kind].add(name, entry)

    def add_student(self, name: str, ref: str) -> None:
        """A student class, as "module:Class"."""
        self.add("student", name, ref)

    def add_teacher(self, name: str, module: str) -> None:
        """A teacher family module (`DEFAULT_PATH`, `load(path, device)`)."""
        self.add("teacher", name, module)

    def add_format(self, backend: Any, builder_module: str) -> None:
        """A new artifact format: its runtime `Backend` and its compile builder module."""
        self.add("backend", backend.format, backend)
        self.add("compile", backend.format, builder_module)

    def add_target(self, target: Any) -> None:
        """A named deployment target (`distilts.targets.Target`)."""
        self.add("target", target.name, target)


# where each registry lives (imported when a plugin registers into a registry not yet loaded)
_HOMES = {
    "student": "distilts.students",
    "teacher": "distilts.teachers",
    "compile": "distilts.compile.backends",
    "backend": "distilts.runtime.backends",
    "target": "distilts.targets.registry",
}


def load_plugins(warn: Callable[[str], None] | None = None) -> list[str]:
    """Call every installed `distilts.plugins` entry point once; the names of those loaded."""
    global _LOADED
    if _LOADED:
        return []
    _LOADED = True
    warn = warn or (lambda s: print(s, file=sys.stderr))
    loaded = []
    for ep in metadata.entry_points(group=GROUP):
        try:
            ep.load()(PluginAPI(ep.name))
            loaded.append(ep.name)
        except Exception as exc:
            warn(f"warning: distilts plugin '{ep.name}' ({ep.value}) was not loaded: {type(exc).__name__}: {exc}")
    return loaded


# --- the Protocols each kind of extension follows (for type checkers and plugin authors) -----------------
@runtime_checkable
class Student(Protocol):
    """A student: an nn.Module mapping normalized `[B, L, D]` to `[B, H, D]` (a quantile student
    `[B, H, D, Q]`, with `levels`). `represent`/`forward_with_repr`/`repr_dim` feed FTA (optional: a
    student without them trains with --beta 0)."""

    lookback: int
    horizon: int
    n_variates: int

    def __call__(self, x: Any) -> Any: ...


class Teacher(Protocol):
    """A frozen forecaster (distilts.teachers.base.Teacher is the base class families extend)."""

    name: str
    path: str
    checkpoint_hash: str
    d_model: int
    joint: bool
    quantile_levels: tuple[float, ...] | None

    def predict(self, x: Any, horizon: int, hidden: bool = False, quantiles: bool = False) -> Any: ...


class CompileBuilder(Protocol):
    """A compile builder module (distilts.compile.backends): `EXT`, `EXPORT_PASS` and `build(...)`."""

    EXT: str
    EXPORT_PASS: dict[str, Any]

    def build(
        self,
        job: Any,
        module: Any,
        config: dict,
        scratch: Any,
        verify_x: Any,
        ref: Any,
        calib_x: Any,
        fp32_module: Any = None,
    ) -> list[Any]: ...


class Session(Protocol):
    """A runtime backend's loaded model file (distilts.runtime.backends.base.Session)."""

    backend: str

    def run(self, x: Any) -> Any: ...

    @property
    def version(self) -> str: ...
