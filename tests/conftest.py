"""Shared fixtures: the ETTh1 file beside the project, small CSV writers, a tiny TimeMoE teacher and
the built-in synthetic dataset (modules that need another teacher define their own `teacher_dir`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ETTH1 = SHARED / "data" / "ETTh1.csv"
TEACHER_CONFIGS = SHARED / "teacher-configs"

# keep CPU tests predictable on small machines
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def etth1_path() -> Path:
    if not ETTH1.exists():
        pytest.skip(f"{ETTH1} not found (the shared ETTh1 copy sits beside the project)")
    return ETTH1


@pytest.fixture
def write_csv(tmp_path):
    """write_csv(text, name='data.csv') -> path"""

    def _write(text: str, name: str = "data.csv") -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p

    return _write


@pytest.fixture(scope="session")
def teacher_dir(tmp_path_factory) -> str:
    """A tiny TimeMoE (official layout; d_model 32, 2 layers; one token per input step)."""
    from distilts.teachers.timemoe import save_random_checkpoint

    return str(save_random_checkpoint(tmp_path_factory.mktemp("timemoe") / "tiny", seed=3))


@pytest.fixture(scope="session")
def dataset():
    """The built-in synthetic series (4 hourly variates, seeded)."""
    from distilts.data import load_dataset

    return load_dataset(None)


@pytest.fixture(scope="session")
def checkpoint_sha256():
    """checkpoint_sha256(dir): the documented checkpoint hash computed here with hashlib, independently
    of the loaders: sha256 over (name, bytes) of `*.safetensors` and `config.json`, sorted by name."""
    import hashlib

    def _hash(directory) -> str:
        files = sorted(
            [*Path(directory).glob("*.safetensors"), *Path(directory).glob("config.json")], key=lambda p: p.name
        )
        assert files, f"no weight files in {directory}"
        h = hashlib.sha256()
        for p in files:
            h.update(p.name.encode() + p.read_bytes())
        return h.hexdigest()

    return _hash
