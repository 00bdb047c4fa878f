"""`distilts forecast --future FILE --engine ray` (issue 28): the driver lines history and future up, Ray actors
forecast; the output equals the local engine's (Ray's start-up alone takes ~15 s, so apart from the other tests)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from covariate_factory import artifact, long_files, student_dir
from distilts.cli import cli


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    return artifact(tmp_path_factory, "onnx")


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    return student_dir(tmp_path_factory).parent / "data.csv"


def _run(*args):
    return CliRunner().invoke(cli, ["forecast", *map(str, args)])


def test_ray_engine_takes_the_future_frame(art, wide, tmp_path):
    pytest.importorskip("ray.data")
    hist, fut = long_files(wide, tmp_path)
    local, ray_out = tmp_path / "local.csv", tmp_path / "ray.csv"
    assert _run(art, "--data", hist, "--future", fut, "--out", local).exit_code == 0
    res = _run(
        art, "--data", hist, "--future", fut, "--out", ray_out, "--engine", "ray", "--workers", "1", "--batch-size", "1"
    )
    assert res.exit_code == 0, res.output
    assert ray_out.read_text() == local.read_text()
