"""Edge fidelity on arm64: artifacts compiled here are verified on, and forecast the same on, an emulated
Raspberry Pi (Debian bookworm arm64 Python under qemu-aarch64, scripts/arm64-device.sh); int8 per ISA;
stale compile scratch directories."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from compiled_factory import student_dir
from distilts.targets import TARGETS, resolve_job

FORMATS = ("onnx", "openvino", "tflite")


@pytest.fixture(scope="module")
def device():
    from distilts.device import arm64

    dev = arm64.find_device(arm64.BACKENDS)
    if dev is None and arm64.find_device() is not None:
        # built (e.g. by the quickstart's rpi4 compile, which adds only the tflite site-packages): add the others
        dev = arm64.build(arm64.BACKENDS, log=lambda s: None)
    if dev is None:
        why = (f"the emulated arm64 device is not built in {arm64.cache_dir()}: run "
               "`scripts/arm64-device.sh build` (.ci/run does, once; later runs reuse it)")
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return dev


def _compile_all(tmp_path_factory, student: str, **kw):
    from distilts.compile.pipeline import compile_student

    jobs = [resolve_job(f, int8=p == "int8") for f in FORMATS for p in ("fp32", "int8")]
    out = tmp_path_factory.mktemp(f"arm64-{student}")
    return compile_student(student_dir(tmp_path_factory, student), jobs, out, calib_windows=32,
                           verify_windows=32, **kw)


@pytest.mark.slow
def test_every_artifact_verified_on_aarch64_and_forecasts_the_same_there(tmp_path_factory, device):
    """DLinear and iTransformer, each format x precision: compile --verify-on aarch64, then ONE emulated
    process loads every artifact (golden self-check for arm64) and forecasts; equal to x86 within tolerance."""
    from distilts.device import arm64
    from distilts.runtime import Forecaster

    arts = [r.directory for s in ("dlinear", "itransformer") for r in _compile_all(tmp_path_factory, s,
                                                                                     verify_on=("aarch64",))]
    assert len(arts) == 12
    tmp = Path(tempfile.mkdtemp(dir=arts[0].parent.parent))
    tasks, want = [], {}
    for i, a in enumerate(arts):
        man = json.loads((a / "manifest.json").read_text())
        assert man["architectures"]["aarch64"]["verified"] is True, (a.name, man["architectures"])
        assert man["architectures"]["aarch64"]["emulated"].startswith("qemu-aarch64")
        assert "arm64" in man["golden"]["by_isa"]
        fc = Forecaster.load(a)
        x = np.concatenate([fc.manifest.golden_input, fc.manifest.golden_input[:, ::-1] * 1.01])
        np.save(tmp / f"x{i}.npy", x)
        want[str(a)] = (fc.predict(x), fc.manifest.scaler_std, man["precision"])
        tasks.append({"id": str(a), "kind": "artifact", "dir": str(a), "x": str(tmp / f"x{i}.npy"),
                      "out": str(tmp / f"y{i}.npy")})
    res = arm64.run_tasks(device, tasks, list(arm64.BACKENDS))
    assert res["machine"] == "aarch64"
    for i, t in enumerate(tasks):
        r = res["tasks"][t["id"]]
        assert r["ok"], (t["id"], r)
        assert r["golden_isa"] == "arm64"  # the self-check used arm64's own golden output
        y86, std, precision = want[t["id"]]
        diff = np.abs(np.load(t["out"]) - y86) / std
        assert diff.max() <= 1e-3, (t["id"], precision, float(diff.max()))


def test_a_target_failing_on_its_architecture_is_not_written(tmp_path_factory, monkeypatch):
    """jetson-cpu (arm64): a failing aarch64 check refuses the artifact with the arch, the error and a fix."""
    from distilts.compile import crossarch
    from distilts.compile.pipeline import compile_student
    from distilts.errors import ArtifactError

    def failing(pending, verify_x, ref, config, log):
        rec = {"verified": False, "emulated": "qemu-aarch64 test", "rel_mse": 0.5, "max_abs_err": 3.0,
               "runtime": "onnxruntime x"}
        return {p.key: {c: crossarch.ArchCheck("aarch64", rec, required=True) for c in p.candidates} for p in pending}

    monkeypatch.setattr(crossarch, "check_all", failing)
    out = tmp_path_factory.mktemp("refused")
    with pytest.raises(ArtifactError, match=r"architecture aarch64.*rel-MSE 0\.5.*not written.*Fix:"):
        compile_student(student_dir(tmp_path_factory), [resolve_job("jetson-cpu")], out, verify_windows=8)
    assert list(out.iterdir()) == []  # neither the artifact nor its scratch directory


def test_no_emulator_marks_the_artifact_unverified_on_arm64(tmp_path_factory, monkeypatch):
    from distilts.device import arm64
    from distilts.compile.pipeline import compile_student

    def unavailable(backends, log):
        raise arm64.EmulatorUnavailable("no registry access (test)")

    monkeypatch.setattr(arm64, "ensure_device", unavailable)
    logs: list[str] = []
    [res] = compile_student(student_dir(tmp_path_factory), [resolve_job("jetson-cpu")],
                            tmp_path_factory.mktemp("unverified"), verify_windows=8, log=logs.append)
    rec = res.manifest["architectures"]["aarch64"]
    assert rec["verified"] is False and "no registry access" in rec["reason"]
    assert any("not verified on aarch64" in s for s in logs)


@pytest.mark.parametrize("spec", ["x86-edge", "onnx"])
def test_int8_settings_follow_the_targets_isa(tmp_path_factory, tmp_path, monkeypatch, spec):
    """x86-edge (no VNNI) gets reduced-range int8 weights; an int8 job without a target follows this CPU."""
    from distilts.compile.backends import onnx
    from distilts.compile.pipeline import compile_student
    from distilts.runtime.arch import host_isa, saturates_int8

    seen = {}

    def capture(fp32_path, out_dir, calib, reduce_range=False):
        seen["reduce_range"] = reduce_range
        raise KeyboardInterrupt  # stop before quantizing: the setting is what this test checks

    monkeypatch.setattr(onnx, "int8_candidates", capture)
    with pytest.raises(KeyboardInterrupt):
        compile_student(student_dir(tmp_path_factory), [resolve_job(spec, int8=True)], tmp_path, calib_windows=4,
                        verify_windows=4)
    isa = TARGETS[spec].isa if spec in TARGETS else host_isa()
    assert seen["reduce_range"] is saturates_int8(isa) and (spec != "x86-edge" or seen["reduce_range"])
    assert list(tmp_path.iterdir()) == []  # an interrupted compile leaves nothing behind


def test_runtime_picks_the_golden_output_of_its_own_isa(tmp_path):
    from distilts.runtime.arch import host_isa
    from distilts.runtime.manifest import read_manifest

    man = {"format": "distilts-artifact", "version": 1, "backend": "onnx", "precision": "int8",
           "models": [{"file": "model.onnx", "batch": None, "sha256": "x"}], "lookback": 2, "horizon": 1,
           "columns": ["a"], "input": {"shape": [None, 2, 1]}, "output": {"shape": [None, 1, 1]},
           "golden": {"input": [[[0.0], [1.0]]], "output": [[[5.0]]],
                      "by_isa": {host_isa(): [[[7.0]]], "some-other-isa": [[[9.0]]]}}}
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    m = read_manifest(tmp_path, verify_checksums=False)
    assert m.golden_isa == host_isa() and float(m.golden_output.ravel()[0]) == 7.0
    man["golden"]["by_isa"] = {"some-other-isa": [[[9.0]]]}
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    m = read_manifest(tmp_path, verify_checksums=False)
    assert m.golden_isa is None and float(m.golden_output.ravel()[0]) == 5.0  # never verified here: default
    man["golden"]["isa"] = host_isa()  # compiled on this ISA: golden.output is its own
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    m = read_manifest(tmp_path, verify_checksums=False)
    assert m.golden_isa == host_isa() and float(m.golden_output.ravel()[0]) == 5.0


def test_rerun_removes_a_killed_compiles_scratch_dir_but_not_a_live_one(tmp_path):
    from distilts.compile.scratch import OWNER, Scratch, clean_stale

    final = tmp_path / "onnx-fp32"
    dead = Scratch(final)
    dead._fd and os.close(dead._fd)  # the process that held it died: its lock is gone
    dead._fd = None
    live = Scratch(final)  # another compile, still running
    legacy = tmp_path / ".onnx-fp32.abc.partial"  # left by an older version: no owner file, old
    legacy.mkdir()
    os.utime(legacy, (0, 0))
    removed = clean_stale(final)
    assert sorted(removed) == sorted([dead.path, legacy])
    assert live.path.is_dir() and (live.path / OWNER).is_file()
    live.discard()
    assert not live.path.exists()


@pytest.mark.slow
def test_covariate_artifacts_verified_on_aarch64_with_their_named_inputs(tmp_path_factory, device):
    """A student with past, future (+ calendar) and static inputs: compiled for rpi4 (TFLite int8, verified on the
    emulated Pi) and ONNX fp32 --verify-on aarch64; the device forecasts its named inputs as x86 does."""
    import covariate_factory
    from distilts.compile.pipeline import compile_student
    from distilts.device import arm64
    from distilts.runtime import Forecaster

    jobs = [resolve_job("rpi4"), resolve_job("onnx")]
    out = tmp_path_factory.mktemp("arm64-cov")
    arts = compile_student(covariate_factory.student_dir(tmp_path_factory), jobs, out, calib_windows=32,
                           verify_windows=16, verify_on=("aarch64",))
    tmp = Path(tempfile.mkdtemp(dir=out))
    tasks, want = [], {}
    for i, art in enumerate(arts):
        man = json.loads((art.directory / "manifest.json").read_text())
        assert man["architectures"]["aarch64"]["verified"] is True, (art.directory.name, man["architectures"])
        fc = Forecaster.load(art.directory)
        inputs = fc.manifest.golden_input
        assert isinstance(inputs, dict) and {"x", "past", "future", "static"} <= set(inputs)
        np.savez(tmp / f"x{i}.npz", **inputs)
        want[str(art.directory)] = (fc.predict_inputs(inputs), fc.manifest.scaler_std)
        tasks.append({"id": str(art.directory), "kind": "artifact", "dir": str(art.directory),
                      "x": str(tmp / f"x{i}.npz"), "out": str(tmp / f"y{i}.npy")})
    res = arm64.run_tasks(device, tasks, list(arm64.BACKENDS))
    for t in tasks:
        r = res["tasks"][t["id"]]
        assert r["ok"], (t["id"], r)
        y86, std = want[t["id"]]
        assert np.abs(np.load(t["out"]) - y86).max() / std.min() <= 1e-3, t["id"]
