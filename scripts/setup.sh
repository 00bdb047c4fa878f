#!/usr/bin/env bash
# Sets up everything from scratch: a virtual environment in .venv with distilts and every extra.
# torch is pinned to the CPU build through constraints.txt; uni2ts is installed without its
# (outdated) pins, its real runtime needs come with the `teachers` extra.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -c constraints.txt -e ".[all]"
.venv/bin/python -m pip install -c constraints.txt --no-deps "uni2ts==2.0.0"
.venv/bin/distilts --version
