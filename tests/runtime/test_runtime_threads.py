"""One Forecaster shared by many threads: every result equals the serial one, no exceptions (issue 12)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from artifact_factory import artifact, copy_artifact
from distilts.errors import ArtifactError, DistiltsError
from distilts.runtime import Forecaster

BACKENDS = ["onnx", "openvino", "tflite"]
THREADS, CALLS = 8, 40


@pytest.mark.parametrize("mode", ["latency", "throughput"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_shared_forecaster_many_threads_equals_serial(tmp_path_factory, backend, mode):
    fc = Forecaster.load(artifact(tmp_path_factory, backend), threads=1, mode=mode)
    rng = np.random.default_rng(0)
    base = fc.manifest.golden_input[0]
    # single windows and batches of 3 and 5 (TFLite: padded to / chunked over its batch-1 and batch-4 files)
    inputs = [base + rng.normal(0, 1, ((), (3,), (5,))[i % 3] + base.shape).astype(np.float32) for i in range(12)]
    serial = [fc.predict(x) for x in inputs]
    errors: list[BaseException] = []
    wrong: list[int] = []
    start = threading.Barrier(THREADS)

    def worker(k: int) -> None:
        try:
            start.wait()
            for i in range(CALLS):
                j = (k + i) % len(inputs)
                if not np.array_equal(fc.predict(inputs[j]), serial[j]):
                    wrong.append(j)
        except BaseException as exc:  # noqa: BLE001 - every exception is a failure
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert not wrong, f"{len(wrong)} of {THREADS * CALLS} concurrent results differ from the serial ones"


def test_settings_from_target_and_arguments(tmp_path, tmp_path_factory):
    art = copy_artifact(artifact(tmp_path_factory, "onnx"), tmp_path / "a")
    assert (Forecaster.load(art).threads, Forecaster.load(art).mode) == (1, "latency")  # no target
    man = json.loads((art / "manifest.json").read_text())
    man["target"] = {"name": "t", "threads": 2, "batch": 8, "mode": "throughput"}
    (art / "manifest.json").write_text(json.dumps(man))
    fc = Forecaster.load(art)
    assert (fc.threads, fc.mode) == (2, "throughput")
    fc = Forecaster.load(art, threads=1, mode="latency")
    assert (fc.threads, fc.mode) == (1, "latency")
    with pytest.raises(DistiltsError, match="mode must be one of latency, throughput"):
        Forecaster.load(art, mode="fast")
    man["target"]["mode"] = "turbo"
    (art / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ArtifactError, match="target mode 'turbo'"):
        Forecaster.load(art)
