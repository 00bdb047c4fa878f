"""`distilts deploy` and `distilts bundle`: module level imports click only (lazy CLI)."""

from __future__ import annotations

from pathlib import Path

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
    from distilts.deploy.store import Store

    s = Store(Path(store))
    if rollback == (artifact_dir is not None):
        raise click.UsageError("Give an ARTIFACT_DIR to deploy, or --rollback (not both).")
    before = s.current()
    vid = s.rollback() if rollback else s.deploy(artifact_dir)
    what = "rolled back to" if rollback else ("already current:" if vid == before else "deployed")
    click.echo(f"{what} {vid} in {store} (was {before or 'none'})")
