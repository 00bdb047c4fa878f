"""Bare-metal firmware around any generated C artifact, for an emulated Cortex-M board.

The artifact contract (what every C code generator of distilts writes): a header defining
`FORECAST_LOOKBACK`, `FORECAST_HORIZON`, `FORECAST_VARIATES` and declaring
`void forecast(const float *window, float *out)`, plus its C sources. Around it this module writes

- `startup.c`: the vector table and a reset handler that enables the FPU (CPACR), copies `.data`,
  zeroes `.bss`, sets up newlib's semihosting (librdimon) and calls `main`;
- `link.ld`: a linker script with the board profile's flash and SRAM (QEMU does not enforce the
  board's sizes, so the linker must: an artifact that does not fit fails to link, with the overflow);
- `harness.c`: reads raw windows from the host file `windows.bin` through semihosting, times each
  `forecast` with SysTick and prints its outputs as the exact float32 bit patterns in hex;

and builds them with `arm-none-eabi-gcc -std=c99 -ffp-contract=off` for the board's core. Sizes come
from `arm-none-eabi-size` (the whole firmware, and the artifact's own objects) and `-fstack-usage`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from distilts.errors import DistiltsError
from distilts.mcu.ctoolchain import ToolchainUnavailable
from distilts.targets import TARGETS

GCC = "arm-none-eabi-gcc"
SIZE = "arm-none-eabi-size"
APT = "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
CFLAGS = ("-O2", "-std=c99", "-ffp-contract=off", "-Wall", "-Werror", "-ffunction-sections", "-fdata-sections")
STACK_BYTES = 4 * 1024  # stack reserved for the harness and newlib, on top of forecast()'s own frame
HEAP_BYTES = 1024  # newlib's semihosting start-up needs a little heap
CALIB_LOOPS = 1_000_000  # the harness times a 2-instruction loop this often to convert SysTick ticks


@dataclass(frozen=True)
class Board:
    """An emulated Cortex-M board for a `cortex-m*` profile: QEMU machine, core flags, memory map.

    Flash and SRAM lengths are the profile's (distilts.targets), capped at what the board maps there.
    `cpi` (cycles per instruction) and `mhz` give the latency *estimate*; `cpi_source` cites them.
    """

    profile: str
    machine: str
    cpu_flags: tuple[str, ...]
    flash_origin: int
    flash_max_kib: int
    ram_origin: int
    ram_max_kib: int
    mhz: int
    cpi: float
    cpi_source: str

    @property
    def flash_kib(self) -> int:
        return min(TARGETS[self.profile].flash_kib or self.flash_max_kib, self.flash_max_kib)

    @property
    def ram_kib(self) -> int:
        return min(TARGETS[self.profile].sram_kib or self.ram_max_kib, self.ram_max_kib)


_TRM = "Arm Cortex-{} Technical Reference Manual, instruction timing"
BOARDS: dict[str, Board] = {
    b.profile: b
    for b in (
        # mps2-an386: 4 MiB SSRAM1 at 0 (code), 4 MiB SSRAM2/3 at 0x20000000 (data)
        Board(
            "cortex-m4f",
            "mps2-an386",
            ("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"),
            0x0,
            4096,
            0x20000000,
            4096,
            168,
            1.25,
            _TRM.format("M4 (DDI 0439, 3.3.1 and 7.2.3)")
            + ": single-issue, most integer and VFP arithmetic 1 cycle, loads 2 (1 when pipelined), "
            "taken branches 1+P (P = 1..3); 1.25 assumed for load-heavy dot-product loops. "
            "168 MHz = STM32F407. Flash wait states beyond the ART accelerator not modelled.",
        ),
        # mps2-an500: same memory map as AN386, Cortex-M7
        Board(
            "cortex-m7",
            "mps2-an500",
            ("-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard"),
            0x0,
            4096,
            0x20000000,
            4096,
            216,
            0.8,
            _TRM.format("M7 (DDI 0489)")
            + " and Arm's Cortex-M7 product page: 6-stage dual-issue pipeline, up to 2 instructions "
            "per cycle; 0.8 assumed (partial dual issue, loads from TCM/cache). 216 MHz = STM32F746. "
            "Cache misses and flash wait states not modelled.",
        ),
        # mps3-an547 (SSE-300): ITCM 512 KiB at 0, DTCM 512 KiB at 0x20000000
        Board(
            "cortex-m55",
            "mps3-an547",
            ("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"),
            0x0,
            512,
            0x20000000,
            512,
            160,
            1.0,
            _TRM.format("M55 (101051)")
            + ": in-order, 4-stage, mostly single-issue; 1.0 assumed (gcc -O2 may emit Helium "
            "instructions here, each counted once). 160 MHz = Corstone-300 reference clock.",
        ),
    )
}


def tools_missing() -> str | None:
    """None when arm-none-eabi-gcc, its size tool and newlib are installed; else what is missing."""
    missing = [t for t in (GCC, SIZE) if shutil.which(t) is None]
    if not missing and not _newlib_present():
        missing.append("newlib (libnewlib-arm-none-eabi)")
    return ", ".join(missing) or None


def _newlib_present() -> bool:
    res = subprocess.run([GCC, "-print-file-name=librdimon.a"], capture_output=True, text=True)
    return res.returncode == 0 and os.path.isabs(res.stdout.strip())


def require_tools() -> None:
    """Raise ToolchainUnavailable naming the Debian packages when the cross toolchain is missing."""
    if missing := tools_missing():
        raise ToolchainUnavailable(
            f"{missing} not installed, so the C artifact cannot be built as bare-metal firmware. "
            f"Fix: apt-get install --no-install-recommends {APT} (scripts/setup.sh does)."
        )


def linker_script(board: Board, stack_bytes: int = STACK_BYTES) -> str:
    """The board profile's memory map; the linker refuses firmware that does not fit it."""
    return f"""/* generated by distilts for {board.profile} on QEMU {board.machine} */
MEMORY
{{
  FLASH (rx) : ORIGIN = {board.flash_origin:#010x}, LENGTH = {board.flash_kib}K
  RAM (rwx)  : ORIGIN = {board.ram_origin:#010x}, LENGTH = {board.ram_kib}K
}}
ENTRY(Reset_Handler)
SECTIONS
{{
  .text : {{
    KEEP(*(.vectors))
    *(.text*) *(.rodata*)
    KEEP(*(.init)) KEEP(*(.fini))
    . = ALIGN(4);
  }} > FLASH
  .ARM.exidx : {{ *(.ARM.exidx*) }} > FLASH
  .data : {{
    . = ALIGN(4); __data_start = .;
    *(.data*)
    . = ALIGN(4); __data_end = .;
  }} > RAM AT > FLASH
  __data_load = LOADADDR(.data);
  .bss (NOLOAD) : {{
    . = ALIGN(4); __bss_start = .;
    *(.bss*) *(COMMON)
    . = ALIGN(8); __bss_end = .;
  }} > RAM
  .heap (NOLOAD) : {{ end = .; __end__ = .; . += {HEAP_BYTES}; }} > RAM
  .stack (NOLOAD) : {{ . = ALIGN(8); . += {stack_bytes}; }} > RAM
  __stack_top = ORIGIN(RAM) + LENGTH(RAM);
}}
"""


STARTUP_C = r"""/* generated by distilts: vector table and reset handler for a bare-metal Cortex-M */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

extern uint32_t __stack_top, __data_load, __data_start, __data_end, __bss_start, __bss_end;
extern int main(void);
extern void initialise_monitor_handles(void);
void Reset_Handler(void);

/* any fault or unexpected interrupt ends the run (semihosting exit 128 + exception number), never hangs */
static void Default_Handler(void) {
  uint32_t ipsr;
  __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
  _exit(128 + (int)(ipsr & 0x1FFu));
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
  (void (*)(void))&__stack_top, Reset_Handler, Default_Handler, Default_Handler, Default_Handler,
  Default_Handler, Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0, Default_Handler,
  Default_Handler,
};

void Reset_Handler(void) {
  /* CPACR: full access to CP10 and CP11, the FPU (off after reset: the first VFP instruction would fault) */
  *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;
  __asm volatile("dsb\n\tisb" ::: "memory");
  for (uint32_t *s = &__data_load, *d = &__data_start; d < &__data_end;) *d++ = *s++;
  for (uint32_t *d = &__bss_start; d < &__bss_end;) *d++ = 0;
  initialise_monitor_handles();
  exit(main());
}
"""


def harness_c(header: str) -> str:
    """main(): every window of `windows.bin` (semihosting) -> 'T <ticks>' and 'Y <hex float32 bits...>' lines."""
    return r"""/* generated by distilts: feeds the golden windows to forecast() and prints its outputs bit for bit */
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>
#include "%HEADER%"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
#define N_IN (FORECAST_LOOKBACK * FORECAST_VARIATES)
#define N_OUT (FORECAST_HORIZON * FORECAST_VARIATES)
#define CALIB_LOOPS %CALIB%u

static float window[N_IN];
static float out[N_OUT];

static void put(const char *s, int n) { (void)write(1, s, n); }

static void put_hex(char tag, uint32_t v, char end) {
  static const char digits[] = "0123456789abcdef";
  char b[11];
  b[0] = tag;
  for (int i = 0; i < 8; ++i) b[1 + i] = digits[(v >> (28 - 4 * i)) & 0xFu];
  b[9] = end;
  put(b, 10);
}

static int read_full(int fd, void *buf, int n) {
  char *p = buf;
  int got = 0;
  while (got < n) {
    int r = read(fd, p + got, n - got);
    if (r <= 0) break;
    got += r;
  }
  return got;
}

static uint32_t ticks_since(uint32_t t0) { return (t0 - SYST_CVR) & 0xFFFFFFu; }

int main(void) {
  SYST_RVR = 0xFFFFFFu;  /* SysTick: 24-bit down counter on the core clock (virtual time under -icount) */
  SYST_CVR = 0;
  SYST_CSR = 5;
  /* calibration: a loop of exactly 2 instructions per turn gives the ticks per instruction */
  uint32_t n = CALIB_LOOPS, t0 = SYST_CVR;
  __asm volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
  put_hex('C', ticks_since(t0), '\n');
  int fd = open("windows.bin", O_RDONLY);
  if (fd < 0) return 2;
  while (read_full(fd, window, (int)sizeof window) == (int)sizeof window) {
    t0 = SYST_CVR;
    forecast(window, out);
    put_hex('T', ticks_since(t0), '\n');
    for (int i = 0; i < N_OUT; ++i) {
      union { float f; uint32_t u; } v = { out[i] };
      put_hex(i ? ' ' : 'Y', v.u, i == N_OUT - 1 ? '\n' : ' ');
    }
  }
  close(fd);
  return 0;
}
""".replace("%HEADER%", header).replace("%CALIB%", str(CALIB_LOOPS))


@dataclass(frozen=True)
class Built:
    """A linked firmware: the ELF, and flash/RAM of the whole image and of the artifact's own code and data."""

    elf: Path
    sizes: dict


def _run(argv: list[str], what: str, cwd: Path) -> str:
    res = subprocess.run(argv, capture_output=True, text=True, cwd=cwd)
    if res.returncode != 0:
        raise DistiltsError(f"{what} failed (exit {res.returncode}): {res.stderr.strip()[-1200:]}")
    return res.stdout


def _berkeley(paths: list[Path], cwd: Path) -> dict[str, int]:
    """Summed text/data/bss of `paths` (arm-none-eabi-size, Berkeley format)."""
    out = _run([SIZE, *map(str, paths)], "arm-none-eabi-size", cwd)
    tot = {"text": 0, "data": 0, "bss": 0}
    for line in out.splitlines()[1:]:
        cols = line.split()
        for i, k in enumerate(("text", "data", "bss")):
            tot[k] += int(cols[i])
    return tot


def _stack_of(su: Path, fn: str) -> int | None:
    """Bytes of `fn`'s frame from a gcc -fstack-usage file (None when not listed)."""
    for line in su.read_text().splitlines() if su.exists() else []:
        m = re.match(r".*:" + re.escape(fn) + r"\t(\d+)\t", line)
        if m:
            return int(m.group(1))
    return None


def build(board: Board, src: Path, sources: list[str], header: str, work: Path) -> Built:
    """Compile the artifact's `sources` (in `src`) with the harness for `board` into `work`/firmware.elf.

    Raises DoesNotFit (with the linker's overflow) when the image exceeds the profile's flash or SRAM.
    """
    require_tools()
    src, work = src.resolve(), work.resolve()  # the compiler runs in `work`: relative paths would miss
    work.mkdir(parents=True, exist_ok=True)
    (work / "startup.c").write_text(STARTUP_C)
    (work / "harness.c").write_text(harness_c(header))
    flags = [GCC, *board.cpu_flags, *CFLAGS, f"-I{src}"]
    objs = []
    for c in [*(src / s for s in sources), work / "startup.c", work / "harness.c"]:
        obj = work / (c.stem + ".o")
        extra = ["-fstack-usage"] if c.parent == src else []
        _run([*flags, *extra, "-c", str(c), "-o", str(obj)], f"arm-none-eabi-gcc {c.name} ({board.profile})", work)
        objs.append(obj)
    stack = sum(filter(None, (_stack_of(work / (Path(s).stem + ".su"), "forecast") for s in sources)))
    stack_reserved = STACK_BYTES + (stack + 7) // 8 * 8
    (work / "link.ld").write_text(linker_script(board, stack_reserved))
    elf = work / "firmware.elf"
    link = [
        *flags,
        "-nostartfiles",
        "--specs=nano.specs",
        "--specs=rdimon.specs",
        "-T",
        str(work / "link.ld"),
        "-Wl,--gc-sections",
        f"-Wl,-Map={work / 'firmware.map'}",
        *map(str, objs),
        "-lm",
        "-o",
        str(elf),
    ]
    res = subprocess.run(link, capture_output=True, text=True, cwd=work)
    if res.returncode != 0:
        over = re.findall(r"region `(\w+)' overflowed by (\d+) bytes", res.stderr)
        if over:
            raise DoesNotFit(board, {r: int(b) for r, b in over})
        raise DistiltsError(f"Linking the {board.profile} firmware failed: {res.stderr.strip()[-1200:]}")
    fw = _berkeley([elf], work)
    own = _berkeley(objs[: len(sources)], work)
    sizes = {
        "flash_bytes": fw["text"] + fw["data"],
        "ram_bytes": fw["data"] + fw["bss"],
        "flash_limit_bytes": board.flash_kib * 1024,
        "ram_limit_bytes": board.ram_kib * 1024,
        "artifact_flash_bytes": own["text"] + own["data"],
        "artifact_ram_bytes": own["data"] + own["bss"],
        "forecast_stack_bytes": stack or None,
        "how": "arm-none-eabi-size of firmware.elf (RAM includes the window/output buffers, "
        f"{HEAP_BYTES} B heap and {stack_reserved} B stack reserved) and of the artifact's objects; "
        "forecast's frame from gcc -fstack-usage",
    }
    return Built(elf, sizes)


class DoesNotFit(DistiltsError):
    """The firmware exceeds the board profile's flash or SRAM (the linker refused it)."""

    def __init__(self, board: Board, overflow: dict[str, int]):
        self.board, self.overflow = board, overflow
        what = ", ".join(f"{r} by {b} bytes" for r, b in overflow.items())
        t = TARGETS[board.profile]
        capped = (
            "" if board.flash_kib == t.flash_kib else f"; QEMU {board.machine} maps less than its {t.flash_kib} KiB"
        )
        super().__init__(
            f"The C artifact does not fit {board.profile} ({board.flash_kib} KiB flash, {board.ram_kib} KiB SRAM"
            f"{capped}): "
            f"the linker overflowed {what}. Fix: a smaller student (shorter lookback/horizon, shared weights) "
            "or int8 precision."
        )


def compiler_version() -> str:
    out = subprocess.run([GCC, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0].strip() if out else GCC
