#!/usr/bin/env bash
# The emulated arm64 device (Raspberry Pi userland: Debian bookworm arm64 Python 3.11 under trixie's
# static qemu-aarch64), built once into ${DISTILTS_ARM64_DIR:-${XDG_CACHE_HOME:-~/.cache}/distilts/aarch64}.
#   scripts/arm64-device.sh build                     # build, or say it is reused
#   scripts/arm64-device.sh run -- forecast ARTIFACT --input window.csv   # any `distilts` command on arm64
#   scripts/arm64-device.sh python -- -c 'import platform; print(platform.machine())'
#   scripts/arm64-device.sh measure ARTIFACT...      # footprint, emulated import / first-forecast time
#   scripts/arm64-device.sh info
# Runs this checkout's src/ (no install on the device side). Needs apt-get + dpkg (Debian/Ubuntu host).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" -m distilts.device.arm64 "$@"
