"""Benchmark scripts: argument presets, the commands they run, and their table/JSON writers.

The end-to-end `--smoke` runs take well over a minute on a shared 2-core machine (teacher training,
caching and several interpreter start-ups), so they are not run here; the pieces they are built
from are tested on hand-made records instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import accuracy  # noqa: E402
import benchlib  # noqa: E402
import speed  # noqa: E402


def test_markdown_and_text_tables():
    rows = [{"a": "x", "b": 0.123456, "c": None, "d": 12345}, {"a": "y", "b": float("nan"), "c": True, "d": 3}]
    cols = [("a", "name"), ("b", "B"), ("c", "C"), ("d", "D")]
    md = benchlib.markdown_table(rows, cols)
    lines = md.splitlines()
    assert lines[0] == "| name | B | C | D |" and lines[1] == "|---|---:|---:|---:|"
    assert lines[2] == "| x | 0.123 | – | 12,345 |" and "| nan | yes | 3 |" in lines[3]
    txt = benchlib.text_table(rows, cols).splitlines()
    assert len(txt) == 4 and len({len(line) for line in txt}) == 1  # aligned


def test_write_outputs(tmp_path):
    import numpy as np

    benchlib.write_outputs({"x": np.float32(1.5), "p": tmp_path}, "# hi", tmp_path / "a.json", tmp_path / "a.md")
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1.5, "p": str(tmp_path)}
    assert (tmp_path / "a.md").read_text() == "# hi\n"


def test_accuracy_presets_and_commands():
    full = accuracy.parse_args([])
    assert full.lookback == 512 and full.horizons == [96, 192, 336, 720] and full.variants == ["gt", "kd", "hkd"]
    assert full.seeds == [0, 1, 2] and full.tau_sweep == [0, 0.5, 1, 2, 4] and full.beta == 0.3
    assert full.student_variants["itransformer"] == ["gt", "kd", "hkd", "fta", "fta16"]
    quick = accuracy.parse_args(["--quick"])
    assert quick.horizons == [96] and quick.lookback == 96 and quick.work_dir.endswith("accuracy-quick")
    smoke = accuracy.parse_args(["--smoke"])
    assert smoke.students == ["dlinear"] and smoke.epochs == 1 and smoke.seeds == [0]
    cmd = [str(c) for c in accuracy.distill_cmd(full, 192, "itransformer", "hkd", Path("out"), 1)]
    assert cmd[cmd.index("--tau") + 1] == "1.0" and cmd[cmd.index("--beta") + 1] == "0"
    assert cmd[cmd.index("--seed") + 1] == "1"
    assert cmd[cmd.index("--teacher-path") + 1].endswith("patchtst16-etth1-L512-H192")
    gt = [str(c) for c in accuracy.distill_cmd(full, 96, "dlinear", "gt", Path("out"))]
    assert "--no-kd" in gt and gt[gt.index("--beta") + 1] == "0"
    fta = [str(c) for c in accuracy.distill_cmd(full, 96, "itransformer", "fta", Path("out"))]
    assert fta[fta.index("--beta") + 1] == "0.3" and fta[fta.index("--hidden-tokens") + 1] == "0"
    fta16 = [str(c) for c in accuracy.distill_cmd(full, 96, "itransformer", "fta16", Path("out"))]
    assert fta16[fta16.index("--hidden-tokens") + 1] == "16"
    sweep = [str(c) for c in accuracy.distill_cmd(full, 336, "dlinear", "tau0.5", Path("out"))]
    assert sweep[sweep.index("--tau") + 1] == "0.5" and sweep[sweep.index("--beta") + 1] == "0"
    # teach and distill share the cache settings (same cache for every row of a horizon)
    teach = [str(c) for c in accuracy.teach_cmd(full, 96, 0)]
    for flag in ("--cache-dir", "--stride", "--hidden-tokens", "--lookback"):
        assert teach[teach.index(flag) + 1] == fta[fta.index(flag) + 1]
    assert "--hidden" not in [str(c) for c in accuracy.teach_cmd(full, 96, None)]
    with pytest.raises(SystemExit):
        accuracy.parse_args(["--teacher", "timemoe"])  # a real teacher needs --teacher-path


def test_accuracy_cells_seeds_sweep_and_baselines():
    args = accuracy.parse_args(["--horizons", "96", "336", "--student-horizons", "itransformer=96", "--seeds", "0", "1"])
    todo = accuracy.cells(args)
    assert len(todo) == len(set(todo))
    assert {(h, s) for h, s, _, _ in todo} == {(96, "dlinear"), (96, "itransformer"), (336, "dlinear")}
    # the sweep reuses the kd (tau 0) and hkd (tau 1) runs and adds tau 0.5, 2, 4
    assert {v for h, s, v, _ in todo if (h, s) == (336, "dlinear")} == {"gt", "kd", "hkd", "tau0.5", "tau2", "tau4"}
    assert accuracy.hidden_settings(args, 96, todo) == [0, 16] and accuracy.hidden_settings(args, 336, todo) == [None]
    shared = accuracy.parse_args(["--teacher-for", "192=720", "--teacher-for", "336=720"])
    assert accuracy.teacher_dir(shared, 336) == accuracy.teacher_dir(shared, 720) != accuracy.teacher_dir(shared, 96)
    assert [str(c) for c in accuracy.train_teacher_cmd(shared, 192)][-25:].count("720") == 1
    base = accuracy.parse_args(["--baselines", "--seeds", "0"])
    todo = accuracy.cells(base)
    assert {v for _, _, v, _ in todo} == {"gt"} and len(todo) == 8
    dl = [str(c) for c in accuracy.distill_cmd(base, 720, "dlinear", "gt", Path("o"))]
    it = [str(c) for c in accuracy.distill_cmd(base, 336, "itransformer", "gt", Path("o"))]
    assert dl[dl.index("--lookback") + 1] == "336" and dl[dl.index("--lr") + 1] == "0.005" and "--teacher" not in dl
    assert it[it.index("--lookback") + 1] == "96" and it[it.index("--d-model") + 1] == "512"
    assert it[it.index("--lr-schedule") + 1] == "step" and it[it.index("--weight-decay") + 1] == "0"


def test_accuracy_tables():
    args = accuracy.parse_args(["--quick", "--variants", "gt", "hkd", "--seeds", "0", "1"])
    teachers = [{"horizon": 96, "teacher": "patchtst", "test": {"mse": 0.4, "mae": 0.42}, "path": "t",
                 "training": {"params": 1000}, "caches": []}]
    rows = [{"horizon": 96, "student": "dlinear", "variant": v, "seed": s, "mse": m + s / 100, "mae": 0.5,
             "param_count": 10, "distill_wall_s": 1.0} for v, m in (("gt", 0.45), ("hkd", 0.44)) for s in (0, 1)]
    rec = accuracy.record(args, rows, teachers)
    summary = accuracy.summary_rows(rec)
    assert summary[0]["model"] == "teacher (patchtst)" and summary[0]["gt"] == "0.4000"
    assert summary[1]["gt"] == "0.4550 ± 0.0071" and summary[1]["hkd"] == "0.4450 ± 0.0071"
    md = accuracy.markdown(rec)
    assert "| 96 | dlinear | 10 | 2 | 0.4550 ± 0.0071 | 0.4450 ± 0.0071 |" in md
    assert "`--tau 1.0 --beta 0`" in md and "`--no-kd --beta 0`" in md


def test_parse_eval(tmp_path):
    assert accuracy.parse_eval('log line\n{"test": {"mse": 0.5, "mae": 0.4}}', tmp_path) == {"mse": 0.5, "mae": 0.4}
    (tmp_path / "metrics.json").write_text(json.dumps({"test": {"mse": 0.3, "mae": 0.2}}))
    assert accuracy.parse_eval("no json here", tmp_path) == {"mse": 0.3, "mae": 0.2}


def test_speed_presets_and_tables():
    full = speed.parse_args([])
    assert full.formats == ["onnx", "openvino", "tflite"] and full.precisions == ["fp32", "int8"]
    assert "timemoe-50m" in full.teachers and full.batch == 256
    smoke = speed.parse_args(["--smoke"])
    assert smoke.students == ["dlinear"] and smoke.teachers == []
    # speed.py times the PatchTST teacher accuracy.py trained for the same L/H (quick: its quick teacher)
    assert full.patchtst_path == accuracy.teacher_dir(accuracy.parse_args([]), 96).as_posix()
    assert speed.parse_args(["--quick"]).patchtst_path == accuracy.teacher_dir(accuracy.parse_args(["--quick"]), 96).as_posix()
    rows = [
        {"model": "dlinear", "role": "student", "format": "pytorch", "precision": "fp32", "latency_ms_median": 0.2,
         "size_bytes": 2048},
        {"model": "dlinear", "role": "student", "format": "onnx", "precision": "int8", "latency_ms_median": 0.05},
        {"model": "patchtst", "role": "teacher", "format": "pytorch", "precision": "fp32", "latency_ms_median": 5.0},
        {"model": "timemoe-50m", "role": "teacher", "format": "pytorch", "precision": "fp32", "error": "build: x"},
    ]
    sp = speed.pairwise_speedups(rows)
    assert sp["dlinear onnx int8"]["patchtst pytorch"] == pytest.approx(100.0)
    assert sp["dlinear onnx int8"]["dlinear pytorch"] == pytest.approx(4.0) and "timemoe-50m pytorch" not in sp
    rec = {"machine": benchlib.machine_info(), "args": vars(full), "commit": None, "rows": rows,
           "windows": {"lookback": 512, "horizon": 96, "n_variates": 7}, "notes": ["n1"]}
    trows = speed.table_rows(rec)
    assert trows[1]["x_vs_eager"] == pytest.approx(4.0) and trows[1]["x_vs_teacher"] == pytest.approx(100.0)
    assert trows[0]["size_kb"] == 2.0
    md = speed.markdown(rec)
    assert "| dlinear onnx int8 |" in md and "build: x" in md and "random (cost only)" in md


def test_speed_int8_verdict_comes_from_paired_rounds():
    """With paired rounds recorded, the int8-vs-fp32 verdict is theirs, not the rows' one-after-another times."""
    rows = [{"model": "dlinear", "role": "student", "format": "onnx", "precision": p, "latency_ms_median": ms}
            for p, ms in (("fp32", 0.10), ("int8", 0.20))]  # sequential rows: int8 looks 2x slower
    rec = {"args": {"batch": 256}, "rows": rows}
    assert any(c.startswith("int8 no slower") and "MISSED" in c for c in speed.target_checks(rec))
    pairs = [{"model": "dlinear", "format": "onnx", "batch": b, "ratio_paired": r, "verdict": v}
             for b, r, v in ((1, 0.9, "yes"), (256, 1.2, "NO"))]
    checks = speed.target_checks({**rec, "int8_pairs": pairs})
    [verdict] = [c for c in checks if c.startswith("int8 no slower")]
    assert "paired rounds" in verdict and "MISSED: dlinear onnx b=256 int8/fp32 1.20" in verdict and "b=1 " not in verdict
    assert any(c.startswith("Forecaster.predict <= 20 us") for c in checks)


def test_speed_compile_command_matches_the_cli(tmp_path):
    """speed.py calls `distilts compile` as documented: OUT/<format>-<precision>/, TFLite at b=1 and b=BATCH."""
    cmd = [str(c) for c in speed.compile_cmd("st", "tflite", "int8", tmp_path, 256)]
    assert cmd[cmd.index("compile") + 1] == "st" and cmd[cmd.index("--target") + 1] == "tflite"
    assert "--int8" in cmd and cmd[cmd.index("--out") + 1] == str(tmp_path)
    assert [cmd[i + 1] for i, c in enumerate(cmd) if c == "--batch"] == ["1", "256"]
    onnx = [str(c) for c in speed.compile_cmd("st", "onnx", "fp32", tmp_path, 256)]
    assert "--int8" not in onnx and "--batch" not in onnx
    from distilts.compile.cli import compile_cmd

    names = {p.name for p in compile_cmd.params}
    assert {"targets", "int8", "batches", "out_dir"} <= names


def test_accuracy_resumes_finished_rows(tmp_path):
    args = accuracy.parse_args(["--quick", "--work-dir", str(tmp_path)])
    done = tmp_path / "students" / "dlinear-L96-H96-gt-s0"
    cell = {"horizon": 96, "student": "dlinear", "variant": "gt", "seed": 0}
    rec = accuracy.record(args, [{**cell, "dir": str(done), "mse": 0.5, "mae": 0.4},
                                 {**cell, "seed": 1, "dir": "x", "error": "boom", "mse": None}],
                          [{"path": "t", "horizon": 96, "test": {"mse": 0.4, "mae": 0.4}}])
    benchlib.write_outputs(rec, "", args.out_json, args.out_md)
    rows, teachers = accuracy.previous_results(args)
    assert list(rows) == [str(done)] and list(teachers) == ["t#H96"]  # failed rows are rerun
    assert accuracy.previous_results(accuracy.parse_args(["--quick", "--work-dir", str(tmp_path), "--fresh"])) == ({}, {})
    other = accuracy.parse_args(["--quick", "--work-dir", str(tmp_path), "--epochs", "7"])
    assert accuracy.previous_results(other) == ({}, {})  # other settings: not mixed in


def test_accuracy_student_horizons():
    args = accuracy.parse_args(["--student-horizons", "itransformer=96", "--student-horizons", "dlinear=96,720"])
    assert args.student_horizons == {"itransformer": [96], "dlinear": [96, 720]}
    with pytest.raises(SystemExit):
        accuracy.parse_args(["--student-horizons", "itransformer=x"])


def test_speed_table_vs_real_size_teacher_and_render(tmp_path):
    rows = [{"model": "dlinear", "role": "student", "format": "onnx", "precision": "fp32", "latency_ms_median": 0.5},
            {"model": "patchtst", "role": "teacher", "format": "pytorch", "precision": "fp32",
             "weights": "trained here", "latency_ms_median": 5.0},
            {"model": "timemoe-50m", "role": "teacher", "format": "pytorch", "precision": "fp32",
             "weights": "random (cost only)", "latency_ms_median": 5000.0}]
    rec = {"machine": benchlib.machine_info(), "args": {**vars(speed.parse_args([])), "batch": 64}, "commit": None,
           "rows": rows, "windows": {"lookback": 512, "horizon": 96, "n_variates": 7}, "notes": []}
    trows = speed.table_rows(rec)
    assert trows[0]["x_vs_teacher"] == pytest.approx(10.0) and trows[0]["x_vs_real_teacher"] == pytest.approx(1e4)
    assert ("x_vs_real_teacher", "x faster than timemoe-50m") in speed.columns(rec)
    assert ("throughput_wps", "b=64 windows/s") in speed.columns(rec)
    (tmp_path / "s.json").write_text(json.dumps(rec))
    speed.main(["--render", str(tmp_path / "s.json")])
    assert "x faster than timemoe-50m" in (tmp_path / "s.md").read_text()


def test_presets_do_not_override_explicit_flags():
    a = accuracy.parse_args(["--quick", "--epochs", "5", "--lookback", "128"])
    assert (a.epochs, a.lookback, a.horizons) == (5, 128, [96])  # the rest of the preset still applies
    s = speed.parse_args(["--smoke", "--windows", "32"])
    assert s.windows == 32 and s.formats == ["onnx"]


def test_scale_projection_is_the_cache_formula():
    import scale

    rows = {(r["dataset"], r["settings"].split(":")[0]): r for r in scale.projection()}
    traffic = rows[("traffic", "distill defaults (FTA on)")]
    n_train = int(17544 * 0.7) - 96 - 512 + 1  # train windows at stride 1 (targets in the train rows)
    assert traffic["hidden_gb"] == pytest.approx(n_train * 862 * 16 * 384 * 2 / 1e9)
    assert traffic["forecast_gb"] == pytest.approx(traffic["windows"] * 96 * 862 * 4 / 1e9)
    assert rows[("traffic", "forecasts only (--teacher-hidden online, or --beta 0)")]["hidden_gb"] == 0
    md = scale.render({"args": {"lookback": 96, "horizon": 24, "chunk": 64, "batch_size": 32}, "rows": [],
                       "projection": scale.projection()})
    assert "| traffic | 862 |" in md


def test_load_benchmark_renders_its_records():
    """benchmarks/serve.py: the committed records render to the RESULTS.md tables (no server started)."""
    import serve as serve_bench

    for name in ("serve.json", "serve-micro-batch.json"):
        md = serve_bench.render(json.loads((BENCH / "results" / name).read_text()))
        assert "| onnx |" in md and "| tflite |" in md and "thread scaling" in md
    assert "micro-batch" in md  # the old record keeps its column
