"""The one write path of every compiled artifact (distilts.compile.scratch.Scratch): a locked scratch
directory that becomes the artifact by an atomic rename after its manifest and check, or disappears."""

from __future__ import annotations

import json

import pytest

from distilts.compile.scratch import OWNER, Scratch


def test_install_writes_the_manifest_checks_then_renames(tmp_path):
    final = tmp_path / "onnx-fp32"
    seen = []
    sc = Scratch.beside(final)
    with sc.discarding() as d:
        (d / "model.onnx").write_bytes(b"x")
        got = sc.install({"format": "distilts-artifact"}, check=lambda p: seen.append(sorted(f.name for f in p.iterdir())))
    assert got == final and seen == [sorted([OWNER, "manifest.json", "model.onnx"])]  # checked before the rename
    assert json.loads((final / "manifest.json").read_text()) == {"format": "distilts-artifact"}
    assert sorted(f.name for f in final.iterdir()) == ["manifest.json", "model.onnx"]
    assert [p.name for p in tmp_path.iterdir()] == ["onnx-fp32"]


def test_a_failed_check_or_step_leaves_nothing_and_keeps_the_old_artifact(tmp_path):
    final = tmp_path / "c-int8"
    final.mkdir()
    (final / "manifest.json").write_text("{}")  # a previous artifact stays in place

    def refuse(path):
        raise RuntimeError("golden self-check failed")

    sc = Scratch.beside(final)
    with pytest.raises(RuntimeError, match="golden"), sc.discarding() as d:
        (d / "model.c").write_text("int x;")
        sc.install({"new": True}, check=refuse)
    sc2 = Scratch.beside(final)
    with pytest.raises(KeyboardInterrupt), sc2.discarding():
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["c-int8"] and (final / "manifest.json").read_text() == "{}"
