"""C artifacts as bare-metal firmware on emulated Cortex-M boards (qemu-system-arm): bits, sizes, instructions."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from distilts.mcu import c_artifact, cgen, ctoolchain, firmware, metal, qemu
from distilts.mcu.ctoolchain import ToolchainUnavailable
from distilts.students.dlinear import DLinear

needs_tools = pytest.mark.skipif(
    metal.unavailable() is not None and os.environ.get("CI") != "true",
    reason="arm-none-eabi-gcc/newlib/qemu-system-arm not installed (scripts/setup.sh installs them)",
)

L, H, D = 512, 96, 7  # the ETTh1 DLinear's shape
CONFIG = {"scaler": {"mean": [float(i) for i in range(D)], "std": [1.0 + i / 4 for i in range(D)]}}


def _windows(n: int = 2) -> np.ndarray:
    z = np.random.default_rng(1).normal(size=(n, L, D)).cumsum(1) * 0.1
    return (z * np.asarray(CONFIG["scaler"]["std"]) + np.asarray(CONFIG["scaler"]["mean"])).astype(np.float32)


def _artifact(tmp_path, precision: str, individual: bool = False):
    torch.manual_seed(0)
    model = c_artifact.linear_model(DLinear(L, H, D, individual=individual, revin=True).eval(), CONFIG)
    src = tmp_path / precision
    src.mkdir()
    c_artifact.write_sources(model, precision, src, "t")
    return model, src


@needs_tools
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_dlinear_on_m4_and_m7_bit_identical_with_sizes_and_instructions(tmp_path, precision):
    model, src = _artifact(tmp_path, precision)
    x = _windows()
    host = ctoolchain.run_shared(ctoolchain.build_shared(src, tmp_path / "lib.so"), x, H)
    out = metal.verify(src, [cgen.SOURCE], cgen.HEADER, x, host, tmp_path / "fw", profiles=("cortex-m4f", "cortex-m7"))
    for profile, e in out["boards"].items():
        assert e["fits"] and e["bit_identical_to_host"] and e["machine"] == firmware.BOARDS[profile].machine
        # the weights are in flash; RAM holds the window and output buffers; limits are the profile's
        assert c_artifact.flash_bytes(model, precision) <= e["artifact_flash_bytes"] < e["flash_bytes"]
        assert e["flash_bytes"] <= e["flash_limit_bytes"] == firmware.BOARDS[profile].flash_kib * 1024
        assert (L + H) * D * 4 < e["ram_bytes"] <= e["ram_limit_bytes"]
        assert e["forecast_stack_bytes"] >= L  # one variate's window (float or int8) on the stack
        # ~ one multiply-add per weight (L*H*D = 344k) plus loads/loop overhead: ~2.1M fp32, ~1.9M int8 measured
        assert 1_000_000 < e["instructions_per_forecast"] < 4_000_000
        est = e["latency_estimate"]
        assert est["estimate"] is True and est["ms"] == pytest.approx(
            e["instructions_per_forecast"] * est["cpi"] / (est["mhz"] * 1e3), rel=1e-3
        )


@needs_tools
def test_does_not_fit_is_reported_with_the_overflow(tmp_path):
    """An individual fp32 DLinear (7 x 96 x 512 floats, 1.4 MB) overflows the M4's 1 MiB flash, fits the M7's 2 MiB."""
    _, src = _artifact(tmp_path, "fp32", individual=True)
    x = _windows(1)
    host = ctoolchain.run_shared(ctoolchain.build_shared(src, tmp_path / "lib.so"), x, H)
    out = metal.verify(src, [cgen.SOURCE], cgen.HEADER, x, host, tmp_path / "fw", profiles=("cortex-m4f", "cortex-m7"))
    m4, m7 = out["boards"]["cortex-m4f"], out["boards"]["cortex-m7"]
    assert not m4["fits"] and m4["overflow_bytes"]["FLASH"] > 300_000 and "int8" in m4["note"]
    assert m7["fits"] and m7["bit_identical_to_host"]


GENERIC_H = """#define FORECAST_LOOKBACK 4
#define FORECAST_HORIZON 2
#define FORECAST_VARIATES 1
void forecast(const float *window, float *out);
"""
# not a DLinear: any artifact with the header contract; its loop runs exactly 2 * 50000 instructions
GENERIC_C = """#include "naive.h"
void forecast(const float *window, float *out) {
  unsigned n = 50000;
  __asm volatile("1: subs %0, %0, #1\\n\\tbne 1b" : "+r"(n) : : "cc");
  out[0] = window[3];
  out[1] = window[3] * 2.0f;
}
"""


@needs_tools
def test_any_artifact_with_the_header_contract_runs_and_its_instructions_are_counted(tmp_path):
    (tmp_path / "naive.h").write_text(GENERIC_H)
    (tmp_path / "naive.c").write_text(GENERIC_C)
    x = np.array([[[1.0], [2.0], [3.0], [4.5]], [[0.0], [0.0], [0.0], [-1.25]]], np.float32)
    host = np.array([[[4.5], [9.0]], [[-1.25], [-2.5]]], np.float32)
    out = metal.verify(tmp_path, ["naive.c"], "naive.h", x, host, tmp_path / "fw", profiles=("cortex-m4f",))
    n = out["boards"]["cortex-m4f"]["instructions_per_forecast"]
    assert 100_000 <= n < 100_000 + 2 * 40 + 20  # the loop, a few more, within one SysTick tick (40 instructions)
    with pytest.raises(metal.NotBitIdentical, match="1 of 4 outputs"):
        metal.verify(
            tmp_path,
            ["naive.c"],
            "naive.h",
            x,
            host * [[[1], [1]], [[1], [1.5]]],
            tmp_path / "fw2",
            profiles=("cortex-m4f",),
        )


def test_linker_script_holds_the_profile_sizes():
    ld = firmware.linker_script(firmware.BOARDS["cortex-m4f"])
    assert "LENGTH = 1024K" in ld and "LENGTH = 192K" in ld
    assert "LENGTH = 2048K" in firmware.linker_script(firmware.BOARDS["cortex-m7"])
    cmd = qemu.command(firmware.BOARDS["cortex-m7"], Path("f.elf"), Path("o.txt"))
    assert "mps2-an500" in cmd and "shift=0,align=off,sleep=off" in cmd


def test_missing_tools_skip_with_a_notice_and_fail_under_ci(tmp_path, monkeypatch):
    monkeypatch.setattr(metal.shutil, "which", lambda name: None)
    monkeypatch.setattr(firmware.shutil, "which", lambda name: None)
    notes = []
    monkeypatch.delenv("CI", raising=False)
    out = metal.verify(tmp_path, ["m.c"], "m.h", np.zeros((1, 4, 1)), np.zeros((1, 2, 1)), tmp_path, notes.append)
    assert "skipped" in out and len(notes) == 1 and "apt-get install" in notes[0]
    monkeypatch.setenv("CI", "true")
    with pytest.raises(ToolchainUnavailable, match="CI=true"):
        metal.verify(tmp_path, ["m.c"], "m.h", np.zeros((1, 4, 1)), np.zeros((1, 2, 1)), tmp_path)


@needs_tools
def test_relative_paths_reach_the_tools_that_run_elsewhere(tmp_path, monkeypatch):
    """`distilts compile STUDENT --target c --out out` with relative paths (was: gcc/QEMU could not find the files)."""
    model, src = _artifact(tmp_path, "fp32")
    x = _windows(1)
    host = ctoolchain.run_shared(ctoolchain.build_shared(src, tmp_path / "lib.so"), x, H)
    monkeypatch.chdir(tmp_path)
    out = metal.verify(Path("fp32"), [cgen.SOURCE], cgen.HEADER, x, host, Path("fw"), profiles=("cortex-m4f",))
    assert out["boards"]["cortex-m4f"]["bit_identical_to_host"]
