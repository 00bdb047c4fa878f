"""Every student x target pair compiles and verifies, or is refused in one line naming the operator or
limit: never a traceback. The table is walked from the registries (students, formats, named targets),
so a student or target added later is covered without touching this file."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from distilts.cli import cli
from distilts.errors import DistiltsError
from distilts.students import STUDENTS
from distilts.targets import FORMATS, PRECISIONS, TARGETS, resolve_job

L, H = 24, 6
# tiny sizes per student (the table is about operators and limits, not accuracy)
SIZES = {"itransformer": ["--d-model", "16", "--d-ff", "32", "--e-layers", "1", "--n-heads", "2"],
         "mlp": ["-O", "d_model=16"],
         "tsmixer": ["-O", "n_block=1", "-O", "ff_dim=8"],
         "tide": ["-O", "hidden_size=16", "-O", "decoder_output_dim=4", "-O", "final_decoder_hidden=8"],
         "nhits": ["-O", "mlp_units=16,16", "-O", "n_pool_kernel_size=4,2,1", "-O", "n_freq_downsample=3,2,1"],
         "nbeats": ["-O", "n_blocks=2", "-O", "mlp_units=16,16"],
         "ensemble": ["-O", "seeds=2"],
         "patchtst": ["-O", "d_model=8", "-O", "n_heads=2", "-O", "d_ff=16", "-O", "e_layers=1", "-O", "patch_len=8"]}
VARIANTS = {"point": [], "quantiles": ["--quantiles", "0.1,0.5,0.9"]}


def _jobs() -> dict[str, object]:
    """Every format x precision and every named target, deduplicated on what changes the build here (the
    target's instruction set only matters to the emulated-arm64 check, which this table leaves to
    tests/device: rpi4 builds what tflite-int8 builds). ALIASES names the labels that share a build."""
    jobs: dict[tuple, tuple[str, object]] = {}
    specs = [(f, p == "int8") for f in FORMATS for p in PRECISIONS] + [(t, False) for t in TARGETS]
    for spec, int8 in specs:
        label = f"{spec}{'-int8' if int8 else ''}"
        try:
            job = resolve_job(spec, int8=int8)
        except DistiltsError as exc:  # e.g. a format that is int8 only: refused up front, in one line
            jobs[(label,)] = (label, exc)
            continue
        t = job.target
        key = (job.format, job.precision, job.batches, t.sram_kib if t else None, t.flash_kib if t else None,
               t.accelerator if t else None)
        first = jobs.setdefault(key, (label, job))[0]
        if first != label:
            ALIASES.setdefault(first, []).append(label)
    return dict(jobs.values())


ALIASES: dict[str, list[str]] = {}  # label -> the other labels with the same build (their cells: the same verdict)
JOBS = _jobs()


# the quantile variants walk what the quantile head changes: every format in fp32, C, one MCU and one NPU profile
# (the int8 candidates of quantile students on CPUs: tests/compile/test_quantile_compile.py)
QUANTILE_LABELS = {*FORMATS, "c", "cortex-m7", "ethos-u55-128"}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    assert "\n" not in text and "Traceback" not in text, f"not one line: {text!r}"
    return text


def walk_row(name: str, variant: str, root: str) -> dict[str, str]:
    """One student x variant: distil it (tiny), then compile every job; {label: "ok" or "refused: ..."}.
    Runs in a worker process (the rows are independent; two at a time on two cores)."""
    from pathlib import Path

    from distilts.compile.pipeline import compile_student
    from distilts.device import arm64
    from distilts.mcu import metal

    def no_emulator(*_a, **_k):  # arm64 fidelity is tests/device/test_arm64.py's job; here: operators, limits
        raise arm64.EmulatorUnavailable("not used by the student x target table")

    arm64.ensure_device = no_emulator
    # bare-metal runs of the C artifacts on the emulated boards: tests/mcu/test_metal.py's job
    metal.verify = lambda *_a, **_k: {"skipped": "not used by the student x target table"}
    d = Path(root) / f"{name}-{variant}"
    res = CliRunner().invoke(cli, ["distill", "--no-kd", "--beta", "0", "--student", name, "--lookback", str(L),
                                   "--horizon", str(H), "--epochs", "1", "--quiet", "--stride", "8", "--out", str(d),
                                   *SIZES.get(name, []), *VARIANTS[variant]])
    assert res.exit_code == 0, res.output
    row: dict[str, str] = {}
    for label, job in JOBS.items():
        if variant == "quantiles" and label not in QUANTILE_LABELS:
            continue
        if isinstance(job, DistiltsError):
            row[label] = "refused: " + _one_line(job)
            continue
        try:
            [art] = compile_student(d, [job], d.parent / f"{name}-{variant}-art" / label, calib_windows=16,
                                    verify_windows=8)
        except DistiltsError as exc:  # a refusal: one line that names the operator or the limit
            row[label] = "refused: " + _one_line(exc)
            continue
        man = json.loads((art.directory / "manifest.json").read_text())
        assert man["verification"]["passed"] is True, (name, variant, label)
        row[label] = "ok"
    for label, others in ALIASES.items():
        for other in others:
            if label in row and (variant != "quantiles" or other in QUANTILE_LABELS):
                row[other] = row[label]
    return row


@pytest.mark.slow
def test_every_student_target_pair_compiles_or_is_refused_in_one_line(tmp_path):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # distilts' own and installed plugins' students; not a toy another test registered in this process only
    # (tests/covariate_factory.py's covtoy: the worker processes cannot import it)
    names = [n for n in STUDENTS if not str(dict.get(STUDENTS, n, "")).startswith("covariate_factory:")]
    rows = [(name, variant) for name in names for variant in VARIANTS]
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {f"{n}-{v}": pool.submit(walk_row, n, v, str(tmp_path)) for n, v in rows}
        table = {key: f.result() for key, f in futures.items()}
    # what the table must say today (a change here is a change of what the product supports)
    assert table["dlinear-point"]["c"] == "ok" and table["dlinear-point"]["cortex-m7"] == "ok"
    # the C target from the student's layers (distilts.mcu.clower); the rest refused naming the blocking layer
    assert all(table[f"{s}-point"][c] == "ok" for s in ("mlp", "tsmixer", "tide", "nhits", "nbeats")
               for c in ("c", "c-int8"))
    assert "attention" in table["itransformer-point"]["c"] and "Conv1d" in table["patchtst-point"]["c"]
    assert all(table["dlinear-quantiles"][t] == "ok" for t in ("c", "cortex-m7", "ethos-u55-128"))  # intervals on MCUs
    assert table["itransformer-point"]["rpi4"] == "ok"  # full-int8 of a large model: was a traceback
    assert "GELU" in table["itransformer-point"]["tflm"]
    assert all(v == "ok" for s in table for k, v in table[s].items() if k in ("onnx", "openvino", "tflite"))
    print(json.dumps(table, indent=1))
