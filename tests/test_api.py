"""The Python API (docs/api.md): `import distilts` stays light, every name resolves, no name shadows a
subpackage, each command calls its API function, and the documented example runs."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import distilts
from distilts.cli import cli
from distilts.errors import DistiltsError

ROOT = Path(__file__).resolve().parents[1]


def test_import_distilts_imports_neither_torch_nor_numpy():
    code = (
        "import json, sys, distilts\n"
        "heavy = [m for m in ('torch', 'numpy', 'pandas', 'transformers') if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'dir': dir(distilts)}))\n"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert out["heavy"] == []
    assert set(distilts.API) <= set(out["dir"])


@pytest.mark.parametrize("name", sorted(distilts.API))
def test_every_api_name_resolves_and_shadows_no_subpackage(name):
    obj = getattr(distilts, name)
    assert obj is getattr(importlib.import_module(distilts.API[name]), name)
    assert obj.__doc__, f"{name} has no docstring"
    assert importlib.util.find_spec(f"distilts.{name}") is None, f"distilts.{name} is also a module"
    with pytest.raises(AttributeError):
        distilts.no_such_name  # noqa: B018


# command line -> (module the command calls into, API function)
CALLS = [
    (["train-teacher", "--out", "{tmp}/t"], "distilts.distill.train_teacher", "train_teacher"),
    (["teach", "--teacher", "timemoe"], "distilts.cache.entry", "fill_teacher_cache"),
    (["distill", "--out", "{tmp}/s"], "distilts.distill.run", "distill_student"),
    (["eval", "{tmp}/s"], "distilts.distill.run", "evaluate_student"),
    (["compile", "{tmp}/s", "--target", "onnx"], "distilts.compile.pipeline", "compile_student"),
    (["profile", "{tmp}/a"], "distilts.profile.profiler", "profile_artifact"),
    (["search", "--target", "rpi4", "--out", "{tmp}/q"], "distilts.choose.run", "search"),
]


@pytest.mark.parametrize("args,module,name", CALLS, ids=[c[0][0] for c in CALLS])
def test_each_command_calls_its_api_function(args, module, name, tmp_path, monkeypatch):
    assert getattr(distilts, name) is getattr(importlib.import_module(module), name)

    def called(*a, **k):
        raise DistiltsError(f"API {name} CALLED")

    monkeypatch.setattr(importlib.import_module(module), name, called)
    res = CliRunner().invoke(cli, [a.format(tmp=tmp_path) for a in args])
    assert f"API {name} CALLED" in res.output, res.output


def test_targets_command_lists_list_targets():
    out = CliRunner().invoke(cli, ["targets"]).output
    assert [line.split()[0] for line in out.splitlines()[1 : len(distilts.list_targets()) + 1]] == [
        t.name for t in distilts.list_targets()
    ]


@pytest.mark.slow
def test_the_documented_example_runs(tmp_path):
    pytest.importorskip("onnxruntime")
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "student test MSE" in out.stdout and "(24, 4)" in out.stdout


def _documented_calls() -> list[tuple[str, list[str]]]:
    """(public name, parameter names) of every `distilts.NAME(...)` call in docs/api.md's table."""
    import re

    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    table = text[text.index("| command | function | arguments |") : text.index("\n\n", text.index("| command |"))]
    calls = []
    for name, args in re.findall(r"distilts\.(\w+(?:\.\w+)?)\(([^)]*)\)", table):
        params = [a.split("=")[0].strip() for a in args.split(",") if a.strip() and "..." not in a]
        calls.append((name, [p for p in params if re.fullmatch(r"[a-z_]+", p) and not p.startswith('"')]))
    return calls


def test_the_api_doc_names_real_functions_and_parameters():
    import inspect

    import distilts

    calls = _documented_calls()
    assert len(calls) > 15
    for name, params in calls:
        obj = distilts
        for part in name.split("."):
            obj = getattr(obj, part)  # AttributeError: the doc names something the code does not have
        accepted = set(inspect.signature(obj).parameters)
        assert set(params) <= accepted, (name, sorted(set(params) - accepted))
    documented = {n.split(".")[0] for n, _ in calls}
    assert set(distilts.API) <= documented | {"DistillSpec", "TrainConfig", "TeacherTraining"}, sorted(
        set(distilts.API) - documented
    )
