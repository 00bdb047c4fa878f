"""Resolve a teacher checkpoint: a local directory in the official layout, or a hub id.

Hub downloads go through huggingface_hub (its cache and HF_HOME conventions); only safetensors
and config files are fetched, and remote code is never enabled.
"""

from __future__ import annotations

from pathlib import Path

from distilts.errors import ModelDirError

ALLOW_PATTERNS = ("*.json", "*.safetensors")


def resolve_checkpoint(path_or_id: str, family: str, required: tuple[str, ...] = ("config.json",)) -> Path:
    """Local directory for `path_or_id`, downloading a hub id when needed.

    Raises ModelDirError naming the missing file, or explaining how to point --teacher-path at a
    downloaded copy when the hub cannot be reached.
    """
    local = Path(path_or_id).expanduser()
    if local.exists():
        if not local.is_dir():
            raise ModelDirError(f"--teacher-path {local} is a file; give the checkpoint directory that holds config.json.")
        _check_layout(local, family, required)
        return local
    if path_or_id.startswith((".", "/", "~")) or path_or_id.count("/") != 1:
        raise ModelDirError(
            f"Teacher checkpoint '{path_or_id}' is neither an existing directory nor a hub id (owner/name). "
            "Give --teacher-path a local checkpoint directory or a hub id."
        )
    try:
        from huggingface_hub import snapshot_download

        downloaded = Path(snapshot_download(path_or_id, allow_patterns=list(ALLOW_PATTERNS)))
    except Exception as exc:  # offline, unknown repo, gated...
        raise ModelDirError(
            f"Could not fetch the {family} checkpoint '{path_or_id}' from the Hugging Face hub "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}). "
            f"If this machine is offline, download it elsewhere (e.g. `hf download {path_or_id} "
            f"--local-dir ./{path_or_id.split('/')[-1]}`), copy the directory here and pass "
            f"--teacher-path ./{path_or_id.split('/')[-1]}."
        ) from None
    _check_layout(downloaded, family, required)
    return downloaded


def _check_layout(directory: Path, family: str, required: tuple[str, ...]) -> None:
    missing = [name for name in required if not (directory / name).exists()]
    if missing:
        raise ModelDirError(
            f"{directory} is not a {family} checkpoint in the official layout: missing {', '.join(missing)}."
        )
    if not list(directory.glob("*.safetensors")):
        pickles = [p.name for p in directory.glob("*.bin")] + [p.name for p in directory.glob("*.pt*")]
        extra = (f" It has {', '.join(pickles)}: pickled weights are never loaded; convert them to safetensors "
                 "first.") if pickles else ""
        raise ModelDirError(f"{directory} has no *.safetensors weights.{extra}")
