"""The compile stage: student directory -> verified ONNX / OpenVINO IR / TFLite artifacts."""

DEFAULT_CALIB_WINDOWS = 256  # train windows that calibrate int8 activation ranges
DEFAULT_VERIFY_WINDOWS = 256  # held-out test windows every artifact is checked on
