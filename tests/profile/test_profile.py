"""`distilts profile`: every field in profile.json, the markdown and the plot; teacher comparison."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from artifact_factory import artifact
from distilts.cli import cli

QUICK = ["--windows", "12", "--iters", "20", "--budget", "0.3", "--threads", "1"]


def _check_model(m: dict, batches: list[int]) -> None:
    lat = m["latency_ms"]
    assert lat["batch"] == 1 and lat["warmup"] > 0 and lat["n"] >= 5
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"]
    assert [t["batch"] for t in m["throughput"]] == batches
    assert all(t["windows_per_s"] > 0 for t in m["throughput"])
    assert m["rss_mb"]["peak"] > 0 and m["rss_mb"]["baseline"] > 0
    assert m["load_s"] > 0 and m["file_size_bytes"] > 0 and m["param_count"] > 0
    for k in ("mse", "mae"):
        assert m["accuracy"]["vs_truth"][k] > 0


def test_profile_artifact_only(tmp_path, tmp_path_factory):
    art = artifact(tmp_path_factory, "tflite")
    out = tmp_path / "prof"
    res = CliRunner().invoke(cli, ["profile", str(art), "--out", str(out), *QUICK])
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "profile.json").read_text())
    assert {"data", "host", "settings", "rss_method", "models", "speedup", "artifact"} <= set(rep)
    assert rep["data"]["windows"] == 12 and rep["data"]["part"] == "test"
    m, torch_student = rep["models"]  # the manifest points at the PyTorch student, profiled beside it
    assert m["kind"] == "artifact" and m["backend"] == "tflite" and m["modules"] == ["ai_edge_litert"]
    _check_model(m, [1, 4])  # the artifact's fixed batches
    assert torch_student["kind"] == "student" and "torch" in torch_student["modules"]
    assert torch_student["param_count"] == m["param_count"]
    # the same windows through the fp32 artifact and through the PyTorch student: the same accuracy (the
    # artifact was verified against the student at compile time, rel-MSE <= 1e-6)
    for k in ("mse", "mae"):
        assert m["accuracy"]["vs_truth"][k] == pytest.approx(torch_student["accuracy"]["vs_truth"][k], rel=1e-4)
    assert m["accuracy"]["vs_teacher"] is None
    assert "p50 ms" in res.output and "student (artifact)" in res.output
    md = (out / "profile.md").read_text()
    assert "| student (artifact)" in md and "profile.png" in md and "own fresh Python process" in md
    assert (out / "profile.png").read_bytes()[:4] == b"\x89PNG"


def test_profile_with_teacher(tmp_path, tmp_path_factory):
    chronos = pytest.importorskip("distilts.teachers.chronos")
    try:
        ckpt = chronos.save_random_checkpoint(tmp_path / "bolt", variant="chronos-bolt", seed=1)
    except ImportError as exc:  # the teachers extra is not installed
        pytest.skip(str(exc))
    art = artifact(tmp_path_factory, "onnx")
    out = tmp_path / "prof"
    res = CliRunner().invoke(cli, ["profile", str(art), "--teacher", "chronos-bolt", "--teacher-path", str(ckpt),
                                   "--out", str(out), *QUICK])
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "profile.json").read_text())
    student, _torch_student, teacher = rep["models"]
    assert student["modules"] == ["onnxruntime"]  # the artifact's process never saw torch
    assert "torch" in teacher["modules"]
    for m in (student, teacher):
        _check_model(m, [1, 64])  # dynamic batch: batch 1 and a larger one
    assert student["accuracy"]["vs_teacher"]["mse"] > 0
    sp = rep["speedup"]["teacher_p50_over_artifact_p50"]
    assert sp == pytest.approx(teacher["latency_ms"]["p50"] / student["latency_ms"]["p50"])
    assert "speedup" in res.output


def test_profile_bad_artifact(tmp_path):
    res = CliRunner().invoke(cli, ["profile", str(tmp_path), "--out", str(tmp_path / "p")])
    assert res.exit_code != 0 and "no manifest.json" in res.output
