"""A plugin package adds a student through the `distilts.plugins` entry-point group: `distilts distill
--student NAME` trains it and `distilts compile` exports and verifies it, without a line of distilts changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from distilts import plugins
from distilts.errors import DistiltsError

PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "distilts-tinymlp"
version = "0.0.1"

[project.entry-points."distilts.plugins"]
tinymlp = "distilts_tinymlp:register"
"""
INIT = """
def register(api):
    api.add_student("tinymlp", "distilts_tinymlp.model:TinyMLP")
"""
MODEL = '''
import torch
from torch import nn


class TinyMLP(nn.Module):
    """One hidden layer over the lookback, shared by the variates."""

    def __init__(self, lookback, horizon, n_variates, *, hidden: int = 16):
        super().__init__()
        self.lookback, self.horizon, self.n_variates = lookback, horizon, n_variates
        self.net = nn.Sequential(nn.Linear(lookback, hidden), nn.ReLU(), nn.Linear(hidden, horizon))

    def forward(self, x):  # [B, L, D] -> [B, H, D]
        return self.net(x.transpose(1, 2)).transpose(1, 2)
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The plugin package, pip-installed (its entry point metadata included) into a directory."""
    src = tmp_path_factory.mktemp("plugin-src")
    (src / "pyproject.toml").write_text(PYPROJECT)
    pkg = src / "distilts_tinymlp"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(INIT))
    (pkg / "model.py").write_text(textwrap.dedent(MODEL))
    site = tmp_path_factory.mktemp("plugin-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    return site


def _distilts(args: list[str], site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "distilts", *map(str, args)], capture_output=True, text=True, env=env)


@pytest.mark.slow
def test_a_plugin_student_is_distilled_and_compiled_from_the_cli(plugin_site, tmp_path):
    listed = _distilts(["distill", "--help"], plugin_site)
    assert "tinymlp" in listed.stdout
    student = tmp_path / "student"
    res = _distilts(
        [
            "distill",
            "--student",
            "tinymlp",
            "--no-kd",
            "--beta",
            "0",
            "--lookback",
            "24",
            "--horizon",
            "6",
            "--epochs",
            "1",
            "--stride",
            "4",
            "--quiet",
            "--device",
            "cpu",
            "--out",
            student,
        ],
        plugin_site,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    config = json.loads((student / "config.json").read_text())
    assert config["student"] == {"name": "tinymlp", "kwargs": {"hidden": 16}}
    res = _distilts(["compile", student, "--target", "onnx", "--out", tmp_path / "art"], plugin_site)
    assert res.returncode == 0, res.stderr[-2000:]
    manifest = json.loads((tmp_path / "art" / "onnx-fp32" / "manifest.json").read_text())
    assert manifest["student"]["name"] == "tinymlp" and manifest["verification"]["passed"]
    # without the plugin installed, the student directory names what is missing, in one line
    gone = _distilts(["compile", student, "--target", "onnx", "--out", tmp_path / "art2"], tmp_path)
    assert gone.returncode != 0 and "Unknown student 'tinymlp'" in gone.stderr and "plugin" in gone.stderr
    assert "Traceback" not in gone.stderr


def test_a_broken_plugin_warns_and_distilts_goes_on(monkeypatch):
    class Broken:
        name, value = "broken", "nowhere:register"

        def load(self):
            raise ImportError("No module named 'nowhere'")

    monkeypatch.setattr(plugins, "_LOADED", False)
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: [Broken()])
    warnings: list[str] = []
    assert plugins.load_plugins(warnings.append) == []
    assert warnings == [
        "warning: distilts plugin 'broken' (nowhere:register) was not loaded: ImportError: No module named 'nowhere'"
    ]


def test_a_plugin_cannot_replace_a_builtin_and_unknown_names_say_how_to_fix():
    from distilts.students import STUDENTS

    with pytest.raises(DistiltsError, match="already registered"):
        plugins.PluginAPI("x").add_student("dlinear", "x:Y")
    with pytest.raises(DistiltsError, match="Unknown student 'nope'.*dlinear.*entry point group distilts.plugins"):
        STUDENTS["nope"]
