"""Named deployment targets: the table, `distilts targets`, and --target resolution."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from distilts.cli import cli
from distilts.errors import DistiltsError
from distilts.runtime.arch import ISAS
from distilts.runtime.backends import BACKENDS, RunSettings
from distilts.targets import FORMATS, PRECISIONS, TARGETS, resolve_job


def test_every_named_target_resolves_to_a_job_the_toolchain_can_build():
    assert {"rpi4", "rpi5", "x86-server"} <= set(TARGETS)
    for name, t in TARGETS.items():
        job = resolve_job(name)
        assert job.format in FORMATS and job.precision in PRECISIONS and job.isa in (*ISAS, "mcu")
        assert job.dirname == f"{job.format}-{job.precision}-{name}" and job.threads == t.threads >= 1
        assert t.arch == (None if t.isa == "mcu" else "aarch64" if t.isa == "arm64" else "x86_64")
        if job.format in BACKENDS:  # a runtime backend loads it: fixed batches for tflite, any batch otherwise
            assert job.batches == ((t.batch,) if job.format == "tflite" else (None,))
        else:  # below the Pi: one window per call
            assert job.batches == (1,)
        # the runtime accepts the target's settings; batched serving <-> throughput mode
        assert RunSettings(threads=t.threads, mode=t.mode).mode == t.mode and (t.mode == "throughput") == (t.batch > 1)


def test_targets_command_lists_one_line_each():
    res = CliRunner().invoke(cli, ["targets"])
    assert res.exit_code == 0
    for name, t in TARGETS.items():
        [line] = [ln for ln in res.output.splitlines() if ln.startswith(name + " ")]
        assert t.format in line and f"threads={t.threads}" in line and f"batch={t.batch}" in line


def test_formats_resolve_to_dynamic_batch_except_tflite():
    assert resolve_job("onnx").batches == (None,) and resolve_job("onnx").dirname == "onnx-fp32"
    assert resolve_job("openvino", int8=True).dirname == "openvino-int8"
    assert resolve_job("tflite").batches == (1,)
    assert resolve_job("tflite", batches=(8, 1, 8)).batches == (1, 8)


def test_named_targets_choose_format_precision_batch_and_threads():
    job = resolve_job("rpi4")
    assert (job.format, job.precision, job.batches, job.threads) == ("tflite", "int8", (1,), 4)
    assert job.dirname == "tflite-int8-rpi4"
    server = resolve_job("x86-server")
    assert (server.format, server.precision, server.batches) == ("openvino", "fp32", (None,))
    assert resolve_job("rpi5", int8=True).precision == "int8"  # --int8 overrides the target's precision


def test_bad_batch_and_unknown_target():
    with pytest.raises(DistiltsError, match="--batch must be a positive"):
        resolve_job("tflite", batches=(0,))
    with pytest.raises(DistiltsError, match="Unknown target 'pi4'.*distilts targets"):
        resolve_job("pi4")
