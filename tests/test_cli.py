"""The command line: help, version, lazy imports, errors shown without tracebacks."""

from __future__ import annotations

from importlib import metadata

import importlib
import subprocess
import sys

import click
from click.testing import CliRunner

from distilts.cli import COMMANDS, cli


def _real(name: str) -> click.Command:
    module, attr = COMMANDS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def test_help_lists_every_registered_command_with_its_own_help():
    out = CliRunner().invoke(cli, ["--help"], terminal_width=200)
    assert out.exit_code == 0
    listing = out.output.split("Commands:", 1)[1].splitlines()
    rows = [line.split(None, 1) for line in listing if line.startswith("  ") and line.strip()]
    assert [r[0] for r in rows] == list(COMMANDS)  # every registered command, in order, nothing else
    for name, short in rows:
        cmd = _real(name)
        assert isinstance(cmd, click.Command) and cmd.name == name  # the object's own name
        assert cli.get_command(click.Context(cli), name) is cmd
        own = (cmd.help or "").strip().split("\n")[0].rstrip(".")
        assert own and short.strip().startswith(own[:40]), (name, short, own)
    # the stage overview at the top names real commands, and every command but `targets`
    overview = out.output.split("The stages, in order:", 1)[1].split("Options:", 1)[0]
    stages = [line.split()[0] for line in overview.splitlines() if line.startswith("  ") and line.strip()]
    stages = [s for s in stages if s[0].isalpha() and not s[0].isupper()]
    assert set(stages) <= set(COMMANDS) and set(COMMANDS) - set(stages) == {"targets"}, stages


def test_each_command_has_help():
    runner = CliRunner()
    for name in COMMANDS:
        res = runner.invoke(cli, [name, "--help"])
        assert res.exit_code == 0, (name, res.output)
        assert len(res.output.strip()) > 40


def test_version():
    out = CliRunner().invoke(cli, ["--version"])
    assert out.exit_code == 0 and metadata.version("distilts") in out.output


def test_import_and_help_do_not_import_torch():
    code = (
        "import sys, distilts, distilts.data\n"
        "from distilts.cli import cli\n"
        "try:\n    cli(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'onnxruntime', 'openvino', 'pandas', 'numpy') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout, out.stdout


def test_data_error_is_shown_without_traceback(tmp_path):
    # any command that reads data reports DataError as a clean one-line error (exit 1)
    res = subprocess.run(
        [sys.executable, "-m", "distilts.cli", "teach", "--data", str(tmp_path / "missing.csv")],
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
