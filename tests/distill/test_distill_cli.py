"""`distilts distill` and `distilts eval` end to end with a tiny TimeMoE teacher: the student
directory (weights without FTA, config, metrics for student and teacher, card, plots), eval,
FTA with iTransformer, the ablation switches, resume, the config file and bad-input errors.

Runs are kept small (lookback 64, horizon 16, --max-train-windows, a val stride) and share one
teacher cache per module, so the teacher runs over the test windows once per dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from distilts.cli import cli
from distilts.data import load_dataset
from distilts.students import student_options

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

L, H = 64, 16
ETT_COLUMNS = "HUFL,MUFL,OT"
PNG = b"\x89PNG\r\n\x1a\n"
# a tinier TimeMoE than the default tiny one (1 layer, width 16, 2 experts): fast on 2 CPU cores
TINIER = {"num_hidden_layers": 1, "hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2,
          "num_key_value_heads": 2, "num_experts": 2}


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory) -> str:
    from distilts.teachers.timemoe import save_random_checkpoint

    return str(save_random_checkpoint(tmp_path_factory.mktemp("timemoe") / "tinier", config_overrides=TINIER, seed=4))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("cache"))


def distill(out, *extra, teacher=None, cache=None, data=None, check=True):
    args = ["distill", "--lookback", str(L), "--horizon", str(H), "--device", "cpu", "--quiet", "--out", str(out)]
    if teacher:
        args += ["--teacher", "timemoe", "--teacher-path", teacher]
    if cache:
        args += ["--cache-dir", cache]
    if data:
        args += ["--data", str(data), "--columns", ETT_COLUMNS]
    res = CliRunner().invoke(cli, args + [str(a) for a in extra])
    if check:
        assert res.exit_code == 0, res.output
    return res


def read(out, name="config.json") -> dict:
    return json.loads((out / name).read_text())


def student_keys(out) -> set[str]:
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        return set(f.keys())


def test_distill_and_eval_end_to_end_on_etth1(etth1_path, teacher_dir, cache_dir, tmp_path, monkeypatch,
                                              checkpoint_sha256):
    from distilts import teachers
    from distilts.students import build_student, load_student_dir

    out = tmp_path / "dlinear"
    res = distill(out, "--student", "dlinear", "--epochs", 2, "--max-train-windows", 256, "--stride", 8,
                  teacher=teacher_dir, cache=cache_dir, data=etth1_path)
    config, metrics = read(out), read(out, "metrics.json")

    # the directory
    for name in ("model.safetensors", "config.json", "metrics.json", "card.md", "train_log.jsonl",
                 "checkpoint/state.json", "checkpoint/state.safetensors"):
        assert (out / name).is_file(), name
    for png in ("plots/forecast.png", "plots/mse_by_step.png"):
        assert (out / png).read_bytes()[:8] == PNG, png
    assert len((out / "train_log.jsonl").read_text().splitlines()) == 2

    # printed: parameter count, FTA note, the test table
    n_params = config["param_count"]
    assert f"student dlinear: {n_params:,} parameters" in res.output and "not shipped" not in res.output  # no FTA
    assert "Test metrics" in res.output and "teacher (timemoe)" in res.output

    # config.json: architecture, windows, columns, scaler, teacher + hash, data hash, every loss setting
    ds = load_dataset(etth1_path, columns=ETT_COLUMNS.split(","))
    assert config["student"] == {"name": "dlinear", "kwargs": student_options("dlinear")}
    assert (config["lookback"], config["horizon"], config["columns"]) == (L, H, ETT_COLUMNS.split(","))
    np.testing.assert_allclose(config["scaler"]["mean"], ds.scaler.to_dict()["mean"])
    np.testing.assert_allclose(config["scaler"]["std"], ds.scaler.to_dict()["std"])
    assert config["teacher"]["name"] == "timemoe" and config["teacher"]["path"] == str(Path(teacher_dir).resolve())
    assert config["teacher"]["checkpoint_sha256"] == checkpoint_sha256(teacher_dir)
    assert config["data"]["hash"] == ds.data_hash and config["data"]["split_scheme"] == "auto"
    assert config["data"]["split"]["scheme"] == "ett-hourly"
    assert config["loss"]["kd"] is True and config["loss"]["alpha"] == 0.5 and config["loss"]["tau"] == 1.0
    assert config["loss"]["beta"] == 0.0 and config["loss"]["fta"] is None  # FTA off for DLinear by default
    assert "off by default for DLinear" in (out / "card.md").read_text()
    assert config["train"]["max_train_windows"] == 256 and config["train"]["train_stride"] > 1

    # metrics.json: val and test, overall and per step, student and teacher on the same windows
    n_test = len(ds.windows("test", L, H, 1))
    for block in (metrics["test"], metrics["val"], metrics["teacher"]["test"], metrics["teacher"]["val"]):
        assert set(block) >= {"mse", "mae", "mse_by_step", "mae_by_step", "windows"}
        assert len(block["mse_by_step"]) == H and len(block["mae_by_step"]) == H
        assert np.isclose(np.mean(block["mse_by_step"]), block["mse"])
    assert metrics["test"]["windows"] == metrics["teacher"]["test"]["windows"] == n_test
    assert metrics["val"]["windows"] == metrics["teacher"]["val"]["windows"] == len(ds.windows("val", L, H, 8))
    assert metrics["teacher"]["checkpoint_sha256"] == config["teacher"]["checkpoint_sha256"]

    # the weights are the student's own, without FTA, and reproduce the test MSE (normalized scale)
    assert student_keys(out) == set(build_student("dlinear", L, H, 3).state_dict())
    model, _ = load_student_dir(out)
    test_w = ds.windows("test", L, H, 1)
    with torch.no_grad():
        pred = model(torch.from_numpy(test_w.inputs())).numpy()
    assert np.isclose(np.mean((pred - test_w.targets()) ** 2), metrics["test"]["mse"], rtol=1e-5)
    card = (out / "card.md").read_text()
    assert "dlinear" in card and f"{n_params:,} parameters" in card and "| teacher (timemoe) |" in card

    # eval rewrites metrics, plots and card from the teacher cache (the teacher is not run again)
    for name in ("metrics.json", "card.md", "plots/forecast.png", "plots/mse_by_step.png"):
        (out / name).unlink()

    def no_teacher(*a, **k):
        raise AssertionError("eval must take the teacher's forecasts from the cache")

    monkeypatch.setattr(teachers, "load_teacher", no_teacher)
    ev = CliRunner().invoke(cli, ["eval", str(out), "--data", str(etth1_path), "--cache-dir", cache_dir,
                                  "--device", "cpu"])
    assert ev.exit_code == 0, ev.output
    assert "Test metrics" in ev.output and "student (dlinear)" in ev.output and "teacher (timemoe)" in ev.output
    assert f"{metrics['test']['mse']:.4f}" in ev.output and f"{metrics['teacher']['test']['mse']:.4f}" in ev.output
    again = read(out, "metrics.json")
    assert np.isclose(again["test"]["mse"], metrics["test"]["mse"], rtol=1e-6)
    assert again["teacher"]["test"] == metrics["teacher"]["test"]
    assert again["teacher"]["val"] == metrics["teacher"]["val"]
    assert (out / "card.md").exists() and (out / "plots" / "mse_by_step.png").exists()
    as_json = CliRunner().invoke(cli, ["eval", str(out), "--data", str(etth1_path), "--cache-dir", cache_dir,
                                       "--device", "cpu", "--json", "--no-teacher"])
    assert as_json.exit_code == 0 and json.loads(as_json.output)["teacher"] is None


def test_itransformer_with_fta_on_synthetic_data(teacher_dir, cache_dir, tmp_path):
    from distilts.students import build_student

    out = tmp_path / "it"
    kw = {"d_model": 16, "n_heads": 2, "e_layers": 1, "d_ff": 32}
    flags = [a for k, v in kw.items() for a in (f"--{k.replace('_', '-')}", v)]
    res = distill(out, "--student", "itransformer", "--hidden-tokens", 4, "--epochs", 1,
                  "--max-train-windows", 128, "--stride", 8, *flags, teacher=teacher_dir, cache=cache_dir)
    config = read(out)
    assert config["data"]["source"].startswith("synthetic")
    assert config["student"]["kwargs"] == {**student_options("itransformer"), **kw}
    assert config["loss"]["beta"] == 0.3  # the DistilTS FTA weight, on by default for iTransformer
    assert config["loss"]["fta"] == {"d_student": 16, "d_teacher": 16, "n_tokens": 4, "latent": 256, "phi": "GELU",
                                     "block": 128, "bias": False}
    assert student_keys(out) == set(build_student("itransformer", L, H, 4, **kw).state_dict())
    assert f"{config['param_count']:,} parameters" in res.output
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert log[0]["train_fta"] > 0 and log[0]["train_kd"] > 0


@pytest.mark.parametrize("flags, kd, tau, beta, teacher_used", [
    (["--no-kd", "--beta", "0.1"], False, 1.0, 0.1, True),
    (["--tau", "0", "--beta", "0.1"], True, 0.0, 0.1, True),
    (["--beta", "0"], True, 1.0, 0.0, True),
    (["--no-kd", "--beta", "0"], False, 1.0, 0.0, False),
])
def test_ablation_switches_are_recorded(flags, kd, tau, beta, teacher_used, teacher_dir, cache_dir, tmp_path):
    out = tmp_path / "run"
    res = distill(out, *flags, "--epochs", 1, "--max-train-windows", 64, "--stride", 8,
                  teacher=teacher_dir if teacher_used else None, cache=cache_dir)
    config, metrics = read(out), read(out, "metrics.json")
    assert (config["loss"]["kd"], config["loss"]["tau"], config["loss"]["beta"]) == (kd, tau, beta)
    assert (config["loss"]["fta"] is not None) == (beta > 0)
    log = json.loads((out / "train_log.jsonl").read_text().splitlines()[0])
    assert (log["train_kd"] > 0) == kd and (log["train_fta"] > 0) == (beta > 0)
    if teacher_used:
        assert config["teacher"]["name"] == "timemoe" and metrics["teacher"]["name"] == "timemoe"
    else:  # ground truth only: no teacher anywhere
        assert "no teacher is used" in res.output
        assert config["teacher"] is None and metrics["teacher"] is None
        assert "none (trained on ground truth only)" in (out / "card.md").read_text()


def test_killed_run_resumes_to_the_same_weights(teacher_dir, cache_dir, tmp_path):
    from safetensors.torch import load_file

    common = ["--student", "dlinear", "--epochs", 3, "--max-train-windows", 64, "--stride", 8, "--seed", 3]
    distill(tmp_path / "full", *common, teacher=teacher_dir, cache=cache_dir)
    killed = distill(tmp_path / "run", *common, "--stop-after-epoch", 1, teacher=teacher_dir, cache=cache_dir,
                     check=False)
    assert killed.exit_code == 75 and "continue with --resume" in killed.output
    assert not (tmp_path / "run" / "model.safetensors").exists()
    assert len((tmp_path / "run" / "train_log.jsonl").read_text().splitlines()) == 1

    changed = distill(tmp_path / "run", *common, "--lr", "0.01", "--resume", teacher=teacher_dir, cache=cache_dir,
                      check=False)
    assert changed.exit_code == 1
    assert "different settings (train.lr: 0.001 in the checkpoint, 0.01 now)" in changed.output
    assert "Traceback" not in changed.output

    distill(tmp_path / "run", *common, "--resume", teacher=teacher_dir, cache=cache_dir)
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "run" / "train_log.jsonl").read_text() == (tmp_path / "full" / "train_log.jsonl").read_text()

    fresh = distill(tmp_path / "nothing", *common, "--resume", teacher=teacher_dir, cache=cache_dir, check=False)
    assert fresh.exit_code == 1 and "nothing to resume" in fresh.output


def test_config_file_gives_defaults_and_flags_win(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("student: itransformer\nepochs: 2\nd-model: 8\nn_heads: 2\nno-kd: true\nbeta: 0\n"
                   "max-train-windows: 32\nstride: 16\nlr: 0.01\n")
    distill(tmp_path / "out", "--config", cfg, "--epochs", 1)
    config = read(tmp_path / "out")
    assert config["student"] == {"name": "itransformer",
                                 "kwargs": {**student_options("itransformer"), "d_model": 8, "n_heads": 2}}
    assert config["train"]["epochs"] == 1 and config["train"]["lr"] == 0.01 and config["teacher"] is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochz: 3\n")
    res = distill(tmp_path / "x", "--config", bad, check=False)
    assert res.exit_code == 2 and "unknown option 'epochz'" in res.output


def test_bad_input_errors(tmp_path):
    from distilts.teachers.timemoe import save_random_checkpoint

    short = str(save_random_checkpoint(tmp_path / "short", config_overrides={**TINIER, "max_position_embeddings": 70}))
    res = distill(tmp_path / "a", teacher=short, cache=str(tmp_path / "c"), check=False)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "at most 70 time steps" in res.output and "lookback 64 + horizon 16 = 80" in res.output
    assert "--lookback 54" in res.output

    res = distill(tmp_path / "b", "--lookback", 8000, "--no-kd", "--beta", 0, check=False)
    assert res.exit_code == 1 and "too short for lookback 8000" in res.output

    res = distill(tmp_path / "c", "--student", "dlinear", "--d-model", 8, "--no-kd", "--beta", 0, check=False)
    assert res.exit_code == 1 and "--d-model is an option of itransformer" in res.output

    res = CliRunner().invoke(cli, ["eval", str(tmp_path)])
    assert res.exit_code == 1 and "not a student directory" in res.output

    if not torch.cuda.is_available():
        res = distill(tmp_path / "d", "--no-kd", "--beta", 0, "--device", "cuda", check=False)
        assert res.exit_code == 1 and "no CUDA device is available" in res.output and "windows:" not in res.output


def test_eval_checks_the_data_against_the_student(tmp_path):
    out = tmp_path / "gt"
    distill(out, "--no-kd", "--beta", 0, "--epochs", 1, "--max-train-windows", 32, "--stride", 16)
    res = CliRunner().invoke(cli, ["eval", str(out), "--columns", "load,price"])
    assert res.exit_code == 1 and "differ from the student's columns" in res.output
    res = CliRunner().invoke(cli, ["eval", str(out), "--lookback", "96"])
    assert res.exit_code == 1 and "does not match the student's lookback 64" in res.output
    res = CliRunner().invoke(cli, ["eval", str(out), "--device", "cpu"])
    assert res.exit_code == 0 and "student (dlinear)" in res.output and "teacher" not in res.output


def test_notes_for_a_rerun_over_a_checkpoint_and_a_missing_teacher(teacher_dir, cache_dir, tmp_path):
    import shutil

    teacher = tmp_path / "teacher"
    shutil.copytree(teacher_dir, teacher)  # same bytes, same checkpoint hash: the module's cache serves it
    out = tmp_path / "out"
    common = ["--beta", 0, "--epochs", 1, "--max-train-windows", 64, "--stride", 8]
    distill(out, *common, teacher=str(teacher), cache=cache_dir)
    again = distill(out, *common, teacher=str(teacher), cache=cache_dir)
    assert "holds the checkpoint of an earlier run; starting over" in again.output
    shutil.rmtree(teacher)
    res = CliRunner().invoke(cli, ["eval", str(out), "--cache-dir", cache_dir, "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "is not here, so its metrics are left out" in res.output and "teacher (timemoe)" not in res.output
