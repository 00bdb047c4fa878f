"""`distilts bundle`: the artifact, the target's wheels (pip download --platform), an offline install script and a
systemd unit. (Installing it on the emulated arm64 device with no network: benchmarks/bundle_arm64.py.)"""

from __future__ import annotations

from importlib import metadata

import json
import os
import subprocess

import pytest
from click.testing import CliRunner

from artifact_factory import artifact
from distilts.cli import cli


def test_rpi4_bundle_holds_aarch64_wheels_an_offline_installer_and_a_unit(tmp_path_factory, tmp_path):
    art = artifact(tmp_path_factory, "tflite")
    out = tmp_path / "bundle"
    res = CliRunner().invoke(cli, ["bundle", str(art), "--target", "rpi4", "--out", str(out)])
    if res.exit_code != 0 and "pip download" in res.output and not os.environ.get("CI"):
        pytest.skip(f"the target's wheels could not be downloaded here (no package index?): {res.output[-300:]}")
    assert res.exit_code == 0, res.output
    info = json.loads((out / "bundle.json").read_text())
    wheels = info["wheels"]
    for name in ("numpy", "ai_edge_litert", "pydantic_core", "orjson"):
        [w] = [w for w in wheels if w.startswith(name + "-")]
        assert "aarch64" in w and "cp311" in w, w
    assert any(w.startswith(f"distilts-{metadata.version('distilts')}-py3-none-any") for w in wheels)
    assert any(w.startswith("pip-") for w in wheels) and info["extras"] == "serve,tflite"
    assert (out / "artifact" / "manifest.json").read_bytes() == (art / "manifest.json").read_bytes()
    script = (out / "install.sh").read_text()
    assert "--no-index" in script and "--find-links" in script and "-m distilts deploy" in script
    assert subprocess.run(["sh", "-n", str(out / "install.sh")]).returncode == 0
    unit = (out / "distilts.service").read_text()
    assert "ExecStart=@PREFIX@/venv/bin/distilts serve @PREFIX@/store" in unit and "ExecReload=/bin/kill -HUP" in unit


def test_bundle_refuses_an_unknown_target(tmp_path_factory, tmp_path):
    res = CliRunner().invoke(cli, ["bundle", str(artifact(tmp_path_factory, "tflite")), "--target", "pi9",
                                   "--out", str(tmp_path / "b")])
    assert res.exit_code != 0 and "Unknown target 'pi9'" in res.output and not (tmp_path / "b").exists()
