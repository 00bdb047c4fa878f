"""Shared fixtures: the ETTh1 file beside the project and small CSV writers."""

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
