"""The package's import rules, as docs/design.md writes them ("What each package may import"):
every distilts import (module level and inside functions) obeys the table, no import cycle among
distilts modules, every module imports in a fresh interpreter, and the runtime pulls in neither torch
nor a training-side package."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
TRAINING_SIDE = ("teachers", "cache", "students", "distill", "compile", "mcu", "device", "profile")


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the distilts package."""
    out = {}
    for path in sorted((SRC / "distilts").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def package_of(module: str) -> str:
    """'distilts.cache.entry' -> 'distill'; top-level modules are their own package
    ('distilts.errors' -> 'errors'); the package's __init__ is 'distilts'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "distilts"


def imports_of(module: str, source: str | None = None, is_pkg: bool | None = None) -> set[str]:
    """The distilts modules `module` imports anywhere in its source (module level, in functions,
    under TYPE_CHECKING), resolved to the module actually loaded."""
    path = MODULES.get(module)
    is_pkg = path.name == "__init__.py" if is_pkg is None else is_pkg
    source = path.read_text(encoding="utf-8") if source is None else source
    found = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_pkg else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for name in names:
            if name.split(".")[0] != "distilts":
                continue
            while name not in MODULES:
                name = name.rsplit(".", 1)[0]
            found.add(name)
    found.discard(module)
    return found


def allowed_table() -> dict[str, set[str]]:
    """The table of docs/design.md: package -> the other packages it may import."""
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    section = text.split("### What each package may import", 1)[1].split("\n###", 1)[0]
    table = {}
    for line in section.splitlines():
        m = re.match(r"\|\s*`([\w_]+)`\s*\|([^|]*)\|\s*$", line)
        if m:
            table[m.group(1)] = set(re.findall(r"`([\w_]+)`", m.group(2)))
    return table


def test_the_table_covers_every_package():
    table = allowed_table()
    packages = {package_of(m) for m in MODULES}
    assert packages == set(table), (sorted(packages - set(table)), sorted(set(table) - packages))
    for pkg, allowed in table.items():
        assert allowed <= set(table), (pkg, allowed - set(table))
        assert pkg not in allowed


def test_every_import_follows_the_table():
    table = allowed_table()
    bad = []
    for module in MODULES:
        pkg = package_of(module)
        for target in sorted(imports_of(module)):
            other = package_of(target)
            if other != pkg and other not in table[pkg]:
                bad.append(
                    f"{module} imports {target} ({pkg} may import: {', '.join(sorted(table[pkg])) or 'nothing'})"
                )
    assert not bad, "\n".join(bad)


def test_no_import_cycle():
    graph = {m: imports_of(m) for m in MODULES}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            cycle = visit(m)
            assert cycle is None, " -> ".join(cycle)


def _fresh(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_module_imports_in_a_fresh_interpreter():
    code = (
        "import importlib, json, sys\n"
        f"failed = {{}}\nfor m in {sorted(MODULES)!r}:\n"
        "    try:\n        importlib.import_module(m)\n"
        "    except Exception as exc:\n        failed[m] = f'{type(exc).__name__}: {exc}'\n"
        "print(json.dumps(failed))\n"
    )
    assert _fresh(code) == {}


def test_runtime_pulls_in_no_torch_and_no_training_side_package():
    runtime = sorted(m for m in MODULES if package_of(m) == "runtime")
    assert len(runtime) > 5
    code = (
        "import importlib, json, sys\n"
        f"for m in {runtime!r}:\n    importlib.import_module(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers') or "
        f"(m.startswith('distilts.') and m.split('.')[1] in {TRAINING_SIDE!r}))\n"
        "print(json.dumps(bad))\n"
    )
    assert _fresh(code) == []


def test_the_scan_sees_function_level_relative_and_submodule_imports():
    source = (
        "import os\n"
        "def f():\n    from distilts.teachers import base\n"
        "    from . import losses\n"
        "    import distilts.runtime.manifest\n"
        "    from distilts.data import load_dataset\n"
    )
    assert imports_of("distilts.distill.x", source, is_pkg=False) == {
        "distilts.teachers.base",
        "distilts.distill.losses",
        "distilts.runtime.manifest",
        "distilts.data",
    }
