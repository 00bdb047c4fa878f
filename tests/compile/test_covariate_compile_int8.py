"""int8 artifacts with covariate inputs (issue 28): ONNX, OpenVINO and TFLite candidates calibrated on the named
inputs, verified against the PyTorch student (checks shared with test_covariate_compile.py)."""

from __future__ import annotations

import pytest
from test_covariate_compile import check_artifact


@pytest.mark.parametrize("fmt", ["onnx", "openvino", "tflite"])
def test_int8_artifact_takes_named_inputs_and_matches_the_student(tmp_path_factory, fmt):
    check_artifact(tmp_path_factory, fmt, True)
