#!/usr/bin/env bash
# GPU check for issue 15: real-size TimeMoE-50M (published config, random weights) on one GPU.
# Teacher throughput in fp32 and bf16, the cache fill end to end, one distill epoch with AMP (cached
# vs online teacher hidden states). Writes one JSON record; about 5 minutes on an H100, under 10 anywhere.
#
#   scripts/gpu-check.sh [OUT_JSON]            # default benchmarks/runs/gpu-check/gpu-check.json
#   scripts/gpu-check.sh OUT_JSON --quick      # small shapes: the CPU dry run of the same path
#
# Needs a Python with torch (CUDA build on the GPU machine), numpy, safetensors, click, rich and
# platformdirs: $PYTHON, else .venv/bin/python, else python3. Nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
OUT_JSON=${1:-benchmarks/runs/gpu-check/gpu-check.json}
shift || true
"$PY" - <<'PY' || { echo "gpu-check: this Python lacks torch/numpy/safetensors; set PYTHON=..." >&2; exit 2; }
import numpy, safetensors, torch  # noqa: F401
print(f"torch {torch.__version__}, CUDA {'yes: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no (CPU fallback)'}")
PY
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
exec timeout "${GPU_CHECK_TIMEOUT:-570}" "$PY" -m benchmarks.suite.gpu_check --out "$OUT_JSON" "$@"
