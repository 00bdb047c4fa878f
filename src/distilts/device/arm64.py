"""An emulated arm64 device (a Raspberry Pi's userland) to verify artifacts on, built once into a cache.

What it is: Debian bookworm's arm64 Python 3.11 and the libraries it links (the Raspberry Pi OS
base), run by the statically linked `qemu-aarch64` 10.x of Debian trixie's `qemu-user` package
(bookworm's 7.2 segfaults inside onnxruntime's and LiteRT's CPU detection), as
`qemu-aarch64 -L ROOT ROOT/usr/bin/python3.11` (no binfmt, no chroot, no root). Each runtime backend
gets its own aarch64 site-packages (`pip install --target --platform manylinux_..._aarch64`) with the
same versions as this machine's, so a cross-architecture difference is the ISA, not a version.

The .debs come from the Debian archive through `apt-get download` with a private apt configuration
(its own sources, lists and cache inside the build directory): the system's apt state is not touched
and no root is needed beyond what `apt-get download` needs. Needs `apt-get` + `dpkg` (Debian/Ubuntu
hosts) and access to deb.debian.org and PyPI.

    python -m distilts.device.arm64 build          # or scripts/arm64-device.sh build
    python -m distilts.device.arm64 run -- forecast ARTIFACT --input x.csv
    python -m distilts.device.arm64 measure        # footprint / import / first forecast (emulated)

Cache: $DISTILTS_ARM64_DIR, else ${XDG_CACHE_HOME:-~/.cache}/distilts/aarch64 (`cache_dir()`).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import distilts
from distilts.errors import DistiltsError
from distilts.runtime.arch import WHEEL_PLATFORMS
from distilts.runtime.backends import BACKENDS as BACKEND_TABLE
from distilts.runtime.manifest import read_manifest
from distilts.utils import replace_dir, write_json

ARCH = "aarch64"
BACKENDS = tuple(BACKEND_TABLE)
CORE_WHEELS = ("numpy", "click")  # the runtime core; each backend adds its library's wheel (BACKEND_TABLE)
DEBIAN = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# bookworm arm64: python3.11 and everything its stdlib and the backends' wheels link against
ARM64_DEBS = (
    "libc6",
    "libgcc-s1",
    "libstdc++6",
    "libgomp1",
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "zlib1g",
    "libexpat1",
    "libffi8",
    "libssl3",
    "libbz2-1.0",
    "liblzma5",
    "libsqlite3-0",
    "libncursesw6",
    "libtinfo6",
    "libreadline8",
    "libuuid1",
    "libcrypt1",
    "libdb5.3",
    "libnsl2",
    "libtirpc3",
    "libgssapi-krb5-2",
    "libkrb5-3",
    "libk5crypto3",
    "libkrb5support0",
    "libcom-err2",
    "libkeyutils1",
)
# wheel tags a bookworm (glibc 2.36) aarch64 system accepts, newest first
PLATFORMS = (*WHEEL_PLATFORMS["arm64"], "linux_aarch64")
LAYOUT_VERSION = 2


class EmulatorUnavailable(DistiltsError):
    """The emulated arm64 device is not built and cannot be built here (no apt/dpkg, no registry access)."""


def cache_dir() -> Path:
    """Where the device lives: $DISTILTS_ARM64_DIR, else ${XDG_CACHE_HOME:-~/.cache}/distilts/aarch64
    (scripts/arm64-device.sh builds there too: it calls this package)."""
    if os.environ.get("DISTILTS_ARM64_DIR"):
        return Path(os.environ["DISTILTS_ARM64_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "distilts" / ARCH


def wanted_versions(backend: str) -> dict[str, str | None]:
    """The wheels of `backend`'s site-packages, pinned to the versions installed here (None: newest)."""
    out: dict[str, str | None] = {}
    for name in (*CORE_WHEELS, BACKEND_TABLE[backend].distribution):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@dataclass
class Device:
    """A built emulated arm64 device: qemu binary, arm64 root, one site-packages per backend."""

    home: Path
    info: dict

    @property
    def qemu(self) -> Path:
        return self.home / "qemu-aarch64"

    @property
    def root(self) -> Path:
        return self.home / "root"

    def site(self, backend: str) -> Path:
        return self.home / "site" / backend

    def backends(self) -> list[str]:
        return [b for b in BACKENDS if b in self.info.get("sites", {})]

    def command(self, args: list[str], backends: list[str] | None = None) -> tuple[list[str], dict[str, str]]:
        """argv + env that run `python3.11 ARGS` on the device with distilts (this checkout) importable."""
        src = Path(distilts.__file__).resolve().parent.parent
        sites = [str(self.site(b)) for b in (backends or self.backends())]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LD_", "VIRTUAL_ENV"))}
        env.update(
            PYTHONPATH=os.pathsep.join([str(src), *sites]),
            PYTHONNOUSERSITE="1",
            PYTHONDONTWRITEBYTECODE="1",
            QEMU_LD_PREFIX=str(self.root),
        )
        return [str(self.qemu), "-L", str(self.root), str(self.root / "usr/bin/python3.11"), *args], env

    def run(
        self, args: list[str], backends: list[str] | None = None, timeout: float | None = None, capture: bool = True
    ) -> subprocess.CompletedProcess:
        argv, env = self.command(args, backends)
        return subprocess.run(argv, env=env, capture_output=capture, text=True, timeout=timeout)

    def describe(self) -> str:
        v = self.info.get("versions", {})
        return (
            f"emulated arm64 device at {self.home} (qemu-aarch64 {v.get('qemu', '?')}, Debian bookworm "
            f"python {v.get('python', '?')}; backends: {', '.join(self.backends())})"
        )


def find_device(backends: list[str] | tuple[str, ...] = ()) -> Device | None:
    """The built device if it is complete and has the backends asked for (with this machine's versions)."""
    home = cache_dir()
    try:
        info = json.loads((home / "device.json").read_text())
    except (OSError, ValueError):
        return None
    if info.get("layout") != LAYOUT_VERSION or not (home / "qemu-aarch64").is_file():
        return None
    dev = Device(home, info)
    for b in backends:
        if info.get("sites", {}).get(b) != wanted_versions(b):
            return None
    return dev


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build(
    backends: list[str] | tuple[str, ...] = BACKENDS, log: Callable[[str], None] = print, force: bool = False
) -> Device:
    """Build the device (or the site-packages it lacks) into cache_dir(); reuse what is there.

    Raises EmulatorUnavailable with the reason when apt/dpkg/pip or the registries are not reachable.
    """
    home = cache_dir()
    with _locked(home):
        info = {}
        with contextlib.suppress(OSError, ValueError):
            info = json.loads((home / "device.json").read_text())
        if force or info.get("layout") != LAYOUT_VERSION or not (home / "qemu-aarch64").is_file():
            t0 = time.perf_counter()
            log(
                f"building the emulated arm64 device in {home} (Debian bookworm arm64 + trixie qemu-aarch64, "
                "about 80 MB of .debs; once)"
            )
            info = _build_base(home, log)
            info["build_seconds"] = {"base": round(time.perf_counter() - t0, 1)}
            _write_info(home, info)
        sites = info.setdefault("sites", {})
        for b in backends:
            pins = wanted_versions(b)
            if sites.get(b) == pins and (home / "site" / b).is_dir():
                continue
            t0 = time.perf_counter()
            log(
                f"installing aarch64 wheels for the {b} backend: "
                + ", ".join(f"{k}=={v}" if v else k for k, v in pins.items())
            )
            _install_site(home / "site" / b, pins)
            sites[b] = pins
            info.setdefault("build_seconds", {})[b] = round(time.perf_counter() - t0, 1)
            _write_info(home, info)
        return Device(home, info)


def ensure_device(backends: list[str] | tuple[str, ...], log: Callable[[str], None] = print) -> Device:
    """The device with `backends`: reused when built (says so), else built now."""
    dev = find_device(backends)
    if dev is not None:
        log(f"reusing the {dev.describe()}")
        return dev
    return build(backends, log)


def _write_info(home: Path, info: dict) -> None:
    write_json(home / "device.json", info)


def _need_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise EmulatorUnavailable(
            f"Cannot build the emulated arm64 device: `{name}` is not on PATH (it needs a "
            "Debian/Ubuntu host with apt-get and dpkg)."
        )
    return path


def _sh(argv: list[str], what: str, cwd: Path | None = None) -> str:
    res = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-6:])
        raise EmulatorUnavailable(
            f"Cannot build the emulated arm64 device: {what} failed ({tail}). It needs "
            f"access to {DEBIAN} and PyPI; check the network or proxy and run "
            "`scripts/arm64-device.sh build` again."
        )
    return res.stdout


def _apt_download(work: Path, packages: list[str], log: Callable[[str], None]) -> list[Path]:
    """`apt-get download PACKAGES` with a private configuration inside `work` (bookworm arm64, trixie amd64)."""
    apt = _need_tool("apt-get")
    if not Path(KEYRING).is_file():
        raise EmulatorUnavailable(
            f"Cannot build the emulated arm64 device: {KEYRING} is missing (apt-get install debian-archive-keyring)."
        )
    a = work / "apt"
    for d in ("lists/partial", "cache/archives/partial", "etc/parts", "debs"):
        (a / d).mkdir(parents=True)
    (a / "status").touch()
    (a / "etc/sources.list").write_text(
        f"deb [arch=arm64 signed-by={KEYRING}] {DEBIAN} bookworm main\n"
        f"deb [arch=amd64 signed-by={KEYRING}] {DEBIAN} trixie main\n"
    )
    opts = [
        f"-oDir::Etc::SourceList={a}/etc/sources.list",
        f"-oDir::Etc::SourceParts={a}/etc/parts",
        f"-oDir::Etc::Preferences={a}/etc/none",
        f"-oDir::Etc::PreferencesParts={a}/etc/parts",
        f"-oDir::State::Lists={a}/lists",
        f"-oDir::Cache={a}/cache",
        f"-oDir::State::Status={a}/status",
        "-oAPT::Architectures::=arm64",
        "-oAPT::Architectures::=amd64",
        "-oDebug::NoLocking=1",
        "-oAPT::Sandbox::User=root",
        "-qq",
    ]
    log("  apt-get update (private lists: bookworm arm64, trixie amd64)")
    _sh([apt, *opts, "update"], "apt-get update")
    log(f"  apt-get download: {', '.join(packages[:3])}{' ...' if len(packages) > 3 else ''}")
    _sh([apt, *opts, "download", *packages], "apt-get download", cwd=a / "debs")
    return sorted((a / "debs").glob("*.deb"))


# statically linked user-mode emulators kept from trixie's qemu-user: arm64 (the device), x86 without VNNI
# (`qemu-x86_64 -cpu Haswell`, benchmarks/int8_isa.py) and 32-bit armhf (the C artifact's armhf check)
QEMU_BINARIES = ("qemu-aarch64", "qemu-x86_64", "qemu-arm")


def qemu_binary(name: str, log: Callable[[str], None] = print) -> Path:
    """A static trixie `qemu-<arch>` user emulator in the device cache, fetched alone when the cache lacks it."""
    home = cache_dir()
    if (home / name).is_file():
        return home / name
    if name not in QEMU_BINARIES:
        raise EmulatorUnavailable(f"No {name} in trixie's qemu-user here: use one of {', '.join(QEMU_BINARIES)}.")
    dpkg = _need_tool("dpkg")
    with _locked(home):
        if not (home / name).is_file():
            work = Path(tempfile.mkdtemp(prefix=".qemu-", dir=home))
            try:
                log(f"fetching {name} (Debian trixie qemu-user) into {home}")
                deb = _apt_download(work, ["qemu-user"], log)[0]
                _sh([dpkg, "-x", str(deb), str(work / "x")], f"dpkg -x {deb.name}")
                os.replace(work / "x/usr/bin" / name, home / name)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return home / name


def _build_base(home: Path, log: Callable[[str], None]) -> dict:
    """arm64 root (bookworm .debs, dpkg -x) + static qemu-aarch64 (trixie qemu-user); returns device info."""
    dpkg = _need_tool("dpkg")
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=home))
    try:
        debs = _apt_download(work, ["qemu-user", *(f"{p}:arm64" for p in ARM64_DEBS)], log)
        stage = work / "stage"
        (stage / "root").mkdir(parents=True)
        qx = work / "qemu-x"
        for deb in debs:
            dest = qx if deb.name.startswith("qemu-user_") else stage / "root"
            _sh([dpkg, "-x", str(deb), str(dest)], f"dpkg -x {deb.name}")
        for name in QEMU_BINARIES:
            shutil.move(str(qx / "usr/bin" / name), stage / name)
        qemu_version = _sh([str(stage / "qemu-aarch64"), "--version"], "qemu-aarch64 --version").split()[2]
        py = subprocess.run(
            [
                str(stage / "qemu-aarch64"),
                "-L",
                str(stage / "root"),
                str(stage / "root/usr/bin/python3.11"),
                "-c",
                "import platform; print(platform.machine(), platform.python_version())",
            ],
            capture_output=True,
            text=True,
        )
        if py.returncode != 0 or not py.stdout.startswith("aarch64"):
            raise EmulatorUnavailable(f"The emulated arm64 python does not start: {py.stderr.strip()[-400:]}")
        for name in ("root", *QEMU_BINARIES):
            if (home / name).exists():
                shutil.rmtree(home / name) if (home / name).is_dir() else (home / name).unlink()
            os.replace(stage / name, home / name)
        shutil.rmtree(home / "site", ignore_errors=True)
        return {
            "layout": LAYOUT_VERSION,
            "arch": ARCH,
            "versions": {"qemu": qemu_version, "python": py.stdout.split()[1], "debian": "bookworm"},
            "debs": [d.name for d in debs],
            "sites": {},
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _install_site(dest: Path, pins: dict[str, str | None]) -> None:
    """aarch64 wheels (this interpreter's pip, --platform/--target) into `dest`, swapped in when complete."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        plat = [a for p in PLATFORMS for a in ("--platform", p)]
        reqs = [f"{k}=={v}" if v else k for k, v in pins.items()]
        _sh(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--no-compile",
                "--target",
                str(tmp),
                *plat,
                "--only-binary=:all:",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
                *reqs,
            ],
            "pip install (aarch64 wheels) " + " ".join(reqs),
        )
        shutil.rmtree(tmp / "bin", ignore_errors=True)  # console scripts for the wrong interpreter
        replace_dir(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_tasks(dev: Device, tasks: list[dict], backends: list[str], timeout: float = 1800) -> dict:
    """Run `arm64_worker` tasks in ONE emulated process; returns its result dict (see arm64_worker)."""
    with tempfile.TemporaryDirectory(prefix="distilts-arm64-") as d:
        req = Path(d) / "request.json"
        req.write_text(json.dumps({"tasks": tasks}))
        res = dev.run(["-m", "distilts.device.worker", str(req)], backends, timeout=timeout)
        out = req.with_suffix(".result.json")
        if res.returncode != 0 or not out.is_file():
            tail = "\n".join((res.stderr or res.stdout or "").strip().splitlines()[-8:])
            raise EmulatorUnavailable(f"The emulated arm64 runtime crashed (exit {res.returncode}): {tail}")
        return json.loads(out.read_text())


_PROBE = """
import json, sys, time
c0, t0 = time.process_time(), time.perf_counter()
import numpy as np
from distilts.runtime import Forecaster
from distilts.runtime.backends import BACKENDS
from distilts.runtime.manifest import read_manifest
import importlib
art = sys.argv[1]
man = read_manifest(art)
importlib.import_module(BACKENDS[man.backend].library)
c1, t1 = time.process_time(), time.perf_counter()
fc = Forecaster.load(art)
fc.predict(man.golden_input[0])
c2, t2 = time.process_time(), time.perf_counter()
print(json.dumps({"backend": man.backend, "precision": man.precision, "import_s": t1 - t0, "import_cpu_s": c1 - c0,
                  "first_forecast_s": t2 - t1, "first_forecast_cpu_s": c2 - c1}))
"""


def site_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def measure(dev: Device, artifacts: list[str]) -> dict:
    """Footprint per backend site-packages and, per artifact, emulated import time and first-forecast time
    (Forecaster.load with checksums + golden self-check, then one forecast); wall and CPU seconds."""
    out: dict = {"device": dev.describe(), "sites": {}, "artifacts": {}}
    for b in dev.backends():
        top = {}
        for p in dev.site(b).iterdir():
            if p.is_dir() and not p.name.endswith((".dist-info", "__pycache__")):
                top[p.name] = site_size(p)
        out["sites"][b] = {
            "bytes": site_size(dev.site(b)),
            "largest": dict(sorted(top.items(), key=lambda kv: -kv[1])[:5]),
        }
    for art in artifacts:
        backend = read_manifest(art, verify_checksums=False).backend
        t0 = time.perf_counter()
        res = dev.run(["-c", _PROBE, art], [backend])
        wall = time.perf_counter() - t0
        if res.returncode != 0:
            raise DistiltsError(f"{art} failed on the emulated arm64 device: {res.stderr.strip()[-600:]}")
        rec = json.loads(res.stdout.strip().splitlines()[-1])
        rec["process_wall_s"] = wall
        out["artifacts"][str(art)] = rec
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI: build | info | run -- ARGS | python -- ARGS | measure ARTIFACT... (see the module docstring)."""
    ap = argparse.ArgumentParser(
        prog="python -m distilts.device.arm64",
        description="The emulated arm64 device (Debian bookworm arm64 under qemu-aarch64).",
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build it once (or reuse it) in the cache directory")
    b.add_argument("--force", action="store_true", help="rebuild from scratch")
    b.add_argument("--backend", action="append", choices=BACKENDS, help="backends to install (default: all)")
    sub.add_parser("info", help="where it is and what it holds")
    r = sub.add_parser("run", help="run `python -m distilts ARGS` on it")
    r.add_argument("args", nargs=argparse.REMAINDER)
    p = sub.add_parser("python", help="run `python3.11 ARGS` on it")
    p.add_argument("args", nargs=argparse.REMAINDER)
    m = sub.add_parser("measure", help="footprint, emulated import and first-forecast time")
    m.add_argument("artifacts", nargs="*")
    m.add_argument("--json", help="also write the figures here")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["run"], ["python"]):  # everything after the subcommand goes to the device untouched
        a = argparse.Namespace(cmd=argv[0], args=argv[2:] if argv[1:2] == ["--"] else argv[1:])
    else:
        a = ap.parse_args(argv)
    log = lambda s: print(s, file=sys.stderr)  # noqa: E731
    try:
        if a.cmd == "build":
            t0 = time.perf_counter()
            dev = find_device(a.backend or BACKENDS) if not a.force else None
            if dev is not None:
                log(f"reusing the {dev.describe()} (built {dev.info.get('built_at')}; --force rebuilds)")
            else:
                dev = build(a.backend or BACKENDS, log, force=a.force)
                log(f"built the {dev.describe()} in {time.perf_counter() - t0:.0f} s")
            return 0
        if a.cmd == "info":
            dev = find_device()
            print(json.dumps(dev.info, indent=2) if dev else f"not built (would live in {cache_dir()})")
            return 0 if dev else 1
        dev = find_device()
        if dev is None:
            raise EmulatorUnavailable(
                f"The emulated arm64 device is not built (cache {cache_dir()}). Build it "
                "with `scripts/arm64-device.sh build`."
            )
        if a.cmd in ("run", "python"):
            argv2, env = dev.command((["-m", "distilts"] if a.cmd == "run" else []) + a.args)
            return subprocess.call(argv2, env=env)
        res = measure(dev, a.artifacts)
        print(json.dumps(res, indent=2))
        if a.json:
            write_json(a.json, res)
        return 0
    except DistiltsError as exc:
        log(f"Error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
