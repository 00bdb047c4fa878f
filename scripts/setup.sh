#!/usr/bin/env bash
# Sets up everything from scratch: a virtual environment in .venv with distilts and every extra.
# torch is pinned to the CPU build through constraints.txt; uni2ts is installed without its
# (outdated) pins, its real runtime needs come with the `teachers` extra.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# C compilers for the C artifact: native, and Debian's cross compilers for its aarch64/armhf checks;
# arm-none-eabi-gcc + newlib (semihosting) + qemu-system-arm for its bare-metal Cortex-M checks
need=()
for t in cc:gcc aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu arm-linux-gnueabihf-gcc:gcc-arm-linux-gnueabihf \
  arm-none-eabi-gcc:gcc-arm-none-eabi qemu-system-arm:qemu-system-arm; do
  command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
done
[ -f /usr/lib/arm-none-eabi/newlib/librdimon.a ] || need+=(libnewlib-arm-none-eabi)
# jemalloc: the training commands run under it when present (src/distilts/allocator.py: TSMixer steps 1.6x faster)
{ command -v ldconfig >/dev/null && ldconfig -p | grep libjemalloc.so >/dev/null; } || need+=(libjemalloc2)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && { [ "$(id -u)" = 0 ] || command -v sudo >/dev/null; }; then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
  else
    echo "WARNING: install ${need[*]} (Debian/Ubuntu packages) for the C artifact's checks and faster CPU training" >&2
  fi
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -c constraints.txt -e ".[all]"
.venv/bin/python -m pip install -c constraints.txt --no-deps "uni2ts==2.0.0"
.venv/bin/distilts --version
