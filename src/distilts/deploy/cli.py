"""`distilts deploy` and `distilts bundle`: module level imports click only (lazy CLI)."""

from __future__ import annotations

import click


@click.command(name="deploy")
@click.argument("artifact_dir", required=False, type=click.Path(file_okay=False))
@click.option("--to", "store", required=True, type=click.Path(file_okay=False), help="The model store directory.")
@click.option("--rollback", is_flag=True, help="Make the version that was current before this one current again.")
def deploy(artifact_dir: str | None, store: str, rollback: bool) -> None:
    """Copy an artifact into a model store, self-check it here, then make it current (atomically).

    \b
    STORE/versions/<id>/  each deployed artifact; STORE/current -> the one served
    A server started with `distilts serve STORE` picks the new version up (or on SIGHUP), self-checks
    it beside the old one and swaps; a version that fails its check is refused (here or there).
    """
    from distilts.deploy.store import deploy_artifact
    from distilts.deploy.store import rollback as roll_back

    if rollback == (artifact_dir is not None):
        raise click.UsageError("Give an ARTIFACT_DIR to deploy, or --rollback (not both).")
    vid, before = roll_back(store) if rollback or artifact_dir is None else deploy_artifact(artifact_dir, store)
    what = "rolled back to" if rollback else ("already current:" if vid == before else "deployed")
    click.echo(f"{what} {vid} in {store} (was {before or 'none'})")


@click.command(name="bundle")
@click.argument("artifact_dir", type=click.Path(file_okay=False))
@click.option(
    "--target", required=True, help="The device: rpi4, rpi5, jetson-cpu, x86-edge, x86-server (`distilts targets`)."
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The bundle directory to write.")
@click.option(
    "--python-version",
    default="3.11",
    show_default=True,
    help="The device's Python (Raspberry Pi OS bookworm: 3.11); the wheels are chosen for it.",
)
@click.option(
    "--wheel",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="A distilts wheel to ship (default: built from this source checkout).",
)
def bundle(artifact_dir: str, target: str, out: str, python_version: str, wheel: str | None) -> None:
    """Write an offline install bundle for a device: the artifact, wheels for the target's platform, an
    install script (no network: pip --no-index --find-links) and a systemd unit serving the artifact.

    \b
    On the device:  sh DIR/install.sh /opt/distilts [--enable]
    (needs only python3 with venv; pip comes from the bundle's wheel)
    """
    from distilts.deploy.bundle import build_bundle

    info = build_bundle(artifact_dir, target, out, python_version, wheel, log=lambda s: click.echo(s, err=True))
    click.echo(
        f"wrote {out}: {len(info['wheels'])} wheels, {info['bytes'] / 2**20:.1f} MiB "
        f"({target}, python {python_version}, distilts[{info['extras']}]); on the device: sh {out}/install.sh"
    )
