"""`distilts bundle`: everything a device needs to install and serve an artifact with no network.

    DIR/artifact/          the artifact (as compiled)
    DIR/wheels/            a wheel of this distilts, and the target's wheels of numpy, the backend, the
                           server (fastapi, uvicorn, ...) and pip, from `pip download --platform ...`
    DIR/install.sh         builds a venv with `pip install --no-index --find-links wheels`, deploys the
                           artifact into a model store, writes the systemd unit (--enable installs it)
    DIR/distilts.service   a systemd unit running `distilts serve` on the store (reload: SIGHUP)
    DIR/bundle.json        target, platform tags, python version, every wheel and its size

Built on any machine with pip and access to a package index; installed on the device with none.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from distilts.errors import DistiltsError
from distilts.runtime.arch import WHEEL_PLATFORMS
from distilts.runtime.backends import BACKENDS
from distilts.runtime.manifest import read_manifest
from distilts.utils import atomic_write_text, temp_dir_beside, write_json

PORT = 8000

INSTALL = r"""#!/bin/sh
# Offline install of distilts ({extras}) for {target} from this bundle: no package index is contacted.
#   sh install.sh [PREFIX]            # default /opt/distilts: PREFIX/venv, PREFIX/store, PREFIX/distilts.service
#   sh install.sh PREFIX --enable     # also install and start the systemd unit (as root)
# PYTHON: the interpreter to build the venv with (default python3, {python_version}.x as the wheels were
# chosen for); RUN: a prefix for running the device's binaries (e.g. qemu-aarch64 -L ROOT, to test it emulated).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=${{1:-/opt/distilts}}
PY=${{PYTHON:-python3}}
RUN=${{RUN:-}}
mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)
# Debian's python3 has venv but may lack ensurepip: the venv is made without pip, and pip runs from its wheel
$RUN "$PY" -m venv --without-pip "$PREFIX/venv"
$RUN "$PREFIX/venv/bin/python" "$HERE/wheels/{pip_wheel}/pip" install --quiet --no-index --no-cache-dir \
    --disable-pip-version-check --find-links "$HERE/wheels" "distilts[{extras}]=={version}"
$RUN "$PREFIX/venv/bin/python" -m distilts deploy "$HERE/artifact" --to "$PREFIX/store"
sed "s#@PREFIX@#$PREFIX#g" "$HERE/distilts.service" > "$PREFIX/distilts.service"
echo "installed: $PREFIX/venv/bin/distilts serve $PREFIX/store (unit: $PREFIX/distilts.service)"
if [ "${{2:-}}" = "--enable" ]; then
    cp "$PREFIX/distilts.service" /etc/systemd/system/distilts.service
    systemctl daemon-reload
    systemctl enable --now distilts.service
fi
"""

UNIT = """[Unit]
Description=distilts forecast server ({artifact}, {target})
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=@PREFIX@/venv/bin/distilts serve @PREFIX@/store --host 0.0.0.0 --port {port} --no-access-log
# a new version (`distilts deploy ART --to @PREFIX@/store`) is picked up by itself; SIGHUP re-checks current
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2
DynamicUser=yes
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes

[Install]
WantedBy=multi-user.target
"""


class BundleError(DistiltsError):
    """A bundle cannot be built (unknown target, no wheel of distilts, a wheel missing for the platform)."""


def project_root() -> Path | None:
    """The source checkout this distilts runs from (None when installed from a wheel)."""
    import distilts

    root = Path(distilts.__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def _pip(args: list[str], what: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "pip", *args, "--disable-pip-version-check"], capture_output=True, text=True
    )
    if res.returncode != 0:
        tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-6:])
        raise BundleError(f"{what} failed: {tail}")


def _pins(backend: str) -> list[str]:
    """numpy and the backend at this machine's versions (what the artifact was verified with), when installed."""
    out = []
    for name in ("numpy", BACKENDS[backend].distribution):
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(name)
    return out


def build_bundle(
    artifact_dir: str | Path,
    target: str,
    out_dir: str | Path,
    python_version: str = "3.11",
    wheel: str | Path | None = None,
    log=print,
) -> dict:
    """Write the bundle of `artifact_dir` for `target` into `out_dir` (atomically); returns bundle.json's content."""
    from distilts import __version__
    from distilts.targets import get_target

    t = get_target(target)
    family = "arm64" if t.isa == "arm64" else "x86_64"
    man = read_manifest(artifact_dir)  # checksums: never ship a damaged artifact
    if man.target and man.target.get("name") not in (None, target):
        log(f"note: {artifact_dir} was compiled for {man.target.get('name')}, bundled for {target}")
    extras = f"serve,{man.backend}"
    out = Path(out_dir)
    tmp = temp_dir_beside(out)
    try:
        wheels = tmp / "wheels"
        wheels.mkdir()
        if wheel is None:
            root = project_root()
            if root is None:
                raise BundleError(
                    "This distilts is not a source checkout, so no wheel of it can be built here: "
                    "pass --wheel PATH (a distilts wheel, e.g. from `pip wheel --no-deps .`)."
                )
            log(f"building the distilts {__version__} wheel from {root}")
            _pip(
                ["wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheels), str(root)],
                "pip wheel (distilts)",
            )
        else:
            shutil.copy2(wheel, wheels)
        [own] = list(wheels.glob("distilts-*.whl"))
        plat = [a for p in WHEEL_PLATFORMS[family] for a in ("--platform", p)]
        log(
            f"downloading the {family} wheels for python {python_version}: distilts[{extras}] + "
            f"{', '.join(_pins(man.backend))} + pip"
        )
        _pip(
            [
                "download",
                "--quiet",
                "--dest",
                str(wheels),
                "--only-binary=:all:",
                *plat,
                "--python-version",
                python_version,
                "--implementation",
                "cp",
                f"{own}[{extras}]",
                *_pins(man.backend),
                "pip",
            ],
            f"pip download for {family} / python {python_version}",
        )
        shutil.copytree(artifact_dir, tmp / "artifact")
        [pip_wheel] = [p.name for p in wheels.glob("pip-*.whl")]
        fmt = {
            "extras": extras,
            "target": target,
            "python_version": python_version,
            "pip_wheel": pip_wheel,
            "version": __version__,
            "artifact": Path(artifact_dir).name,
            "port": PORT,
        }
        atomic_write_text(tmp / "install.sh", INSTALL.format(**fmt))
        (tmp / "install.sh").chmod(0o755)
        atomic_write_text(tmp / "distilts.service", UNIT.format(**fmt))
        files = {p.name: p.stat().st_size for p in sorted(wheels.iterdir())}
        info = {
            "target": target,
            "platforms": list(WHEEL_PLATFORMS[family]),
            "python_version": python_version,
            "backend": man.backend,
            "extras": extras,
            "distilts": __version__,
            "wheels": files,
            "bytes": sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file()),
        }
        write_json(tmp / "bundle.json", info)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info
