"""Property-based API fuzz: schemathesis generates requests from openapi.json (valid and invalid ones) against
the live server; no answer may be a 5xx other than the documented 503, and the server answers afterwards."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("schemathesis")

from artifact_factory import artifact  # noqa: E402
from distilts.runtime import Forecaster  # noqa: E402
from distilts.serve.app import ServeOptions, create_app  # noqa: E402
from serve_server import running  # noqa: E402

MIN_CASES = 500


def test_schema_fuzz_has_no_server_errors(tmp_path_factory, tmp_path):
    fc = Forecaster.load(artifact(tmp_path_factory, "onnx"), threads=1)
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    report = tmp_path / "report.json"
    with running(create_app(fc, ServeOptions(max_batch=4, name="m"))) as url:
        res = subprocess.run([st, "run", f"{url}/openapi.json", "--checks", "not_a_server_error", "-n", "60",
                              "--seed", "7", "--max-time", "30", "--phases", "examples,coverage,fuzzing",
                              "--workers", "1", "--no-color",
                              "--report", "json", "--report-json-path", str(report),
                              "--suppress-health-check", "all"],
                             capture_output=True, text=True, timeout=240, cwd=tmp_path)  # its cache goes there
        with urllib.request.urlopen(urllib.request.Request(
                f"{url}/forecast", data=json.dumps({"window": fc.manifest.golden_input[0].tolist()}).encode(),
                headers={"Content-Type": "application/json"}), timeout=30) as r:
            alive = r.status, np.asarray(json.loads(r.read())["forecast"], np.float32)
    tail = res.stdout[-3000:]
    assert res.returncode == 0, tail
    assert alive[0] == 200 and np.array_equal(alive[1], fc.predict(fc.manifest.golden_input[0]))
    cases = _cases(report, res.stdout)
    print(f"schemathesis: {cases} generated cases, 0 failures")
    assert cases >= MIN_CASES, tail


def _cases(report: Path, stdout: str) -> int:
    """Generated test cases, from the JSON report (else the CLI's summary line)."""
    import re

    if report.is_file():
        return int(json.loads(report.read_text())["test_cases"]["generated"])
    m = re.search(r"([\d,]+) generated", stdout)
    return int(m.group(1).replace(",", "")) if m else 0
