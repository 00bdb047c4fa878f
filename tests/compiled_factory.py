"""Real students and real compiled artifacts for tests (session-cached): `distilts distill` without a
teacher on the built-in synthetic series, then `distilts.compile.pipeline.compile_student`."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from distilts.cli import cli

LOOKBACK, HORIZON = 24, 6
_STUDENTS: dict[str, Path] = {}
_ARTIFACTS: dict[tuple, Path] = {}


def student_dir(tmp_path_factory, name: str = "dlinear", lookback: int = LOOKBACK, horizon: int = HORIZON) -> Path:
    """A tiny trained student (1 epoch, ground truth only) of `name` on the synthetic series."""
    key = f"{name}-{lookback}-{horizon}"
    if key not in _STUDENTS:
        out = tmp_path_factory.mktemp(f"student-{key}") / name
        extra = ["--d-model", "32", "--d-ff", "64", "--e-layers", "1"] if name == "itransformer" else []
        res = CliRunner().invoke(
            cli,
            [
                "distill",
                "--no-kd",
                "--beta",
                "0",
                "--student",
                name,
                "--lookback",
                str(lookback),
                "--horizon",
                str(horizon),
                "--epochs",
                "1",
                "--quiet",
                "--stride",
                "4",
                "--out",
                str(out),
                *extra,
            ],
        )
        assert res.exit_code == 0, res.output
        _STUDENTS[key] = out
    return _STUDENTS[key]


def compiled(
    tmp_path_factory,
    target: str,
    int8: bool = False,
    student: str = "dlinear",
    batches: tuple[int, ...] = (),
    lookback: int = LOOKBACK,
    horizon: int = HORIZON,
) -> Path:
    """The artifact directory of `target` (format or named target) for `student`, compiled once per session."""
    from distilts.compile.pipeline import compile_student
    from distilts.targets import resolve_job

    key = (target, int8, student, batches, lookback, horizon)
    if key not in _ARTIFACTS:
        job = resolve_job(target, int8=int8, batches=batches)
        out = tmp_path_factory.mktemp("artifacts")
        [res] = compile_student(
            student_dir(tmp_path_factory, student, lookback, horizon), [job], out, calib_windows=64, verify_windows=64
        )
        _ARTIFACTS[key] = res.directory
    return _ARTIFACTS[key]
