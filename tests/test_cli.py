"""The command line: help, version, lazy imports, errors shown without tracebacks."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from distilts.cli import COMMANDS, cli

EXPECTED = {"distill", "compile", "forecast", "profile", "eval", "targets", "teach"}


def test_help_lists_every_stage():
    out = CliRunner().invoke(cli, ["--help"])
    assert out.exit_code == 0
    for name in EXPECTED:
        assert f"  {name}" in out.output
    assert EXPECTED <= set(COMMANDS)


def test_each_command_has_help():
    runner = CliRunner()
    for name in COMMANDS:
        res = runner.invoke(cli, [name, "--help"])
        assert res.exit_code == 0, (name, res.output)
        assert len(res.output.strip()) > 40


def test_version():
    out = CliRunner().invoke(cli, ["--version"])
    assert out.exit_code == 0 and "0.1.0" in out.output


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
        capture_output=True, text=True,
    )
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
