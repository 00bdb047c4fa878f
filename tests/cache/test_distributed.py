"""torchrun: a 2-rank (gloo, CPU) teach + distill equals the single-process run; chunk files of a
killed sharded fill are merged on resume; the disk budget; teacher hidden states computed online."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from distilts import teachers
from distilts import distributed
from distilts.cache import fill
from distilts.cache.entry import entry_bytes, fill_teacher_cache
from distilts.errors import DistiltsError

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
L, H, STRIDE, CHUNK, TOKENS = 64, 16, 48, 16, 4
REAL_LOAD = teachers.load_teacher


def _fill(dataset, teacher_dir, cache_dir, **kw):
    kw = {"stride": STRIDE, "batch_size": CHUNK, "device": "cpu", "progress": False, "hidden": True,
          "hidden_tokens": TOKENS, **kw}
    return fill_teacher_cache(dataset, "timemoe", teacher_dir, L, H, cache_dir=cache_dir, **kw)


def _torchrun(args: list[str], env: dict) -> subprocess.CompletedProcess:
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc-per-node=2", "-m", "distilts", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def test_two_ranks_teach_and_distill_equal_one_process(dataset, teacher_dir, tmp_path):
    """`torchrun --nproc-per-node 2 -m distilts teach|distill` (gloo): the sharded cache fills write the
    same files and arrays as one process; DDP (global batch 10 split 5/5, the last batch unevenly),
    stopped after epoch 1 and resumed, ends with the weights of a single-process run."""
    from safetensors.numpy import load_file

    from distilts.cli import cli
    from distilts.data.synthetic import synthetic_series

    series = synthetic_series(n_rows=1200)  # small: the test part is forecast at stride 1
    csv = tmp_path / "small.csv"
    csv.write_text("date," + ",".join(series.columns) + "\n" + "".join(
        f"{d},{','.join(f'{v:.5f}' for v in row)}\n" for d, row in zip(series.dates.astype(str), series.values)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    common = ["--data", str(csv), "--teacher", "timemoe", "--teacher-path", teacher_dir, "--lookback", str(L),
              "--horizon", str(H), "--stride", "8", "--hidden-tokens", str(TOKENS), "--device", "cpu", "--quiet"]
    teach = ["teach", *common, "--hidden", "--parts", "train"]  # the entry distill's FTA reads
    distill = ["distill", *common, "--epochs", "2", "--batch-size", "10", "--lr", "3e-3"]

    c2, s2 = ["--cache-dir", str(tmp_path / "c2")], ["--out", str(tmp_path / "s2")]
    filled = _torchrun([*teach, *c2], env)
    assert filled.returncode == 0, filled.stdout + filled.stderr[-3000:]
    assert filled.stdout.count("torchrun: 2 ranks") == 1 and filled.stdout.count("computed") == 1
    first = _torchrun([*distill, *c2, *s2, "--stop-after-epoch", "1"], env)  # fills val and test (sharded)
    assert first.returncode != 0 and "stopped after epoch 1" in first.stdout, first.stdout + first.stderr[-3000:]
    assert "torchrun: 2 ranks (gloo), global batch 10" in first.stdout
    resumed = _torchrun([*distill, *c2, *s2, "--resume"], env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr[-3000:]
    assert resumed.stdout.count("student directory") == 1  # rank 0 alone reports and writes

    c1 = ["--cache-dir", str(tmp_path / "c1")]
    assert CliRunner().invoke(cli, [*teach, *c1]).exit_code == 0
    one = CliRunner().invoke(cli, [*distill, *c1, "--out", str(tmp_path / "s1")])
    assert one.exit_code == 0, one.output

    entries = sorted(p.name for p in (tmp_path / "c1" / "teacher").iterdir())
    assert entries == sorted(p.name for p in (tmp_path / "c2" / "teacher").iterdir()) and len(entries) == 3
    for name in entries:  # train at stride 8 with hidden states, val at stride 8, test at stride 1
        e1, e2 = tmp_path / "c1" / "teacher" / name, tmp_path / "c2" / "teacher" / name
        assert sorted(p.name for p in e1.iterdir()) == sorted(p.name for p in e2.iterdir())
        for f in e1.glob("*.npy"):
            np.testing.assert_array_equal(np.load(f), np.load(e2 / f.name), err_msg=f.name)
    assert list((tmp_path / "c1" / "teacher").glob("*/train.hidden.npy"))

    w1, w2 = (load_file(str(tmp_path / s / "model.safetensors")) for s in ("s1", "s2"))
    assert w1.keys() == w2.keys()
    for k in w1:
        np.testing.assert_allclose(w1[k], w2[k], rtol=1e-4, atol=1e-6, err_msg=k)
    log1 = (tmp_path / "s1" / "train_log.jsonl").read_text().splitlines()
    log2 = (tmp_path / "s2" / "train_log.jsonl").read_text().splitlines()
    assert len(log1) == len(log2) == 2

    for a, b in zip(map(json.loads, log1), map(json.loads, log2)):  # losses: means over both ranks' windows
        assert a["val_mse"] == pytest.approx(b["val_mse"], rel=1e-5)
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    assert (tmp_path / "s2" / "metrics.json").exists() and (tmp_path / "s2" / "checkpoint").is_dir()


def test_chunk_files_of_a_killed_sharded_fill_are_merged_on_resume(dataset, teacher_dir, tmp_path, monkeypatch):
    """Rank 1 of a 2-rank fill wrote its chunks (1, 3, 5) of the train part, then the job died; one
    process resumes: it computes only the other chunks and the arrays equal a fresh fill."""
    fresh = _fill(dataset, teacher_dir, tmp_path / "fresh", parts=("train",))

    # what rank 1 leaves behind: its chunk files, in the entry's <part>.chunks/ directory
    entry = tmp_path / "killed" / "teacher" / fresh.directory.name
    entry.mkdir(parents=True)
    filler = fill.Filler(dataset, {k: fresh.info[k] for k in ("teacher", "lookback", "horizon", "stride", "hidden",
                                                           "hidden_tokens", "hidden_dtype")},
                     entry, CHUNK, lambda: REAL_LOAD("timemoe", teacher_dir, "cpu"))
    windows = dataset.windows("train", L, H, STRIDE)
    state = {"hidden_shape": filler.shapes(len(windows))["hidden"]}
    cdir = filler.file("train", "chunks")
    cdir.mkdir()
    for c in (1, 3, 5):
        idx = np.arange(c * CHUNK, min(len(windows), (c + 1) * CHUNK))
        fill._write_chunk(cdir, c, filler.compute(windows, idx, "train", state), filler)

    calls = []

    def counting(name, path=None, device="auto"):
        t = REAL_LOAD(name, path, device)
        predict = t.predict
        t.predict = lambda x, horizon, hidden=False: (calls.append(1), predict(x, horizon, hidden))[1]
        return t

    monkeypatch.setattr(teachers, "load_teacher", counting)
    resumed = _fill(dataset, teacher_dir, tmp_path / "killed", parts=("train",))
    assert len(calls) == -(-len(windows) // CHUNK) - 3
    assert not cdir.exists() and sorted(p.name for p in entry.iterdir()) == sorted(
        p.name for p in fresh.directory.iterdir())
    np.testing.assert_array_equal(resumed.forecasts("train"), fresh.forecasts("train"))
    np.testing.assert_array_equal(resumed.hidden("train"), fresh.hidden("train"))


def test_disk_budget_refuses_up_front_with_the_figure(dataset, teacher_dir, tmp_path, monkeypatch):
    from distilts.cli import cli

    n = {p: len(dataset.windows(p, L, H, STRIDE)) for p in ("train", "val", "test")}
    need = sum(entry_bytes(n[p], H, 4, TOKENS, 32)["total"] for p in n)

    def no_predict(*a, **k):
        t = REAL_LOAD(*a, **k)
        t.predict = lambda *a, **k: pytest.fail("the budget must refuse before any teacher call")
        return t

    monkeypatch.setattr(teachers, "load_teacher", no_predict)
    with pytest.raises(DistiltsError, match=rf"would take {need / 1e9:.3g} GB .*more than --max-cache-gb 1e-05"):
        _fill(dataset, teacher_dir, tmp_path, max_cache_gb=1e-5)
    assert not list((tmp_path / "teacher").iterdir())  # nothing left behind
    res = CliRunner().invoke(cli, ["teach", "--teacher", "timemoe", "--teacher-path", teacher_dir, "--lookback",
                                   str(L), "--horizon", str(H), "--stride", str(STRIDE), "--hidden", "--hidden-tokens",
                                   str(TOKENS), "--cache-dir", str(tmp_path), "--max-cache-gb", "0.00001", "--quiet"])
    assert res.exit_code != 0 and "--max-cache-gb" in res.output and "--stride" in res.output


def test_online_hidden_states_equal_the_cached_ones_and_train(dataset, teacher_dir, tmp_path):
    from distilts.distill.online_hidden import OnlineHidden
    from distilts.students import build_student
    from distilts.distill.config import TrainConfig
    from distilts.distill.trainer import TrainData, train

    cache = _fill(dataset, teacher_dir, tmp_path, parts=("train",))
    train_w = dataset.windows("train", L, H, STRIDE)
    online = OnlineHidden(REAL_LOAD("timemoe", teacher_dir, "cpu"), train_w, TOKENS)
    assert online.shape == cache.hidden("train").shape
    idx = np.array([5, 0, 17])
    np.testing.assert_allclose(online[idx], cache.hidden("train")[idx].astype(np.float32), rtol=1e-2, atol=1e-2)
    data = TrainData(train_w, dataset.windows("val", L, H, STRIDE), cache.forecasts("train"), online)
    torch.manual_seed(0)
    result = train(build_student("dlinear", L, H, 4), data, TrainConfig(epochs=1, batch_size=64, beta=0.3, device="cpu"),
                   tmp_path / "run", progress=False)
    assert result.history[0]["train_fta"] > 0 and online.calls == -(-len(train_w) // 64) + 1


def test_batch_sharding_and_rank_seeds():
    idx = np.arange(7)
    assert distributed.shard_batch(idx, distributed.SINGLE) == (idx, 1.0)
    parts = [distributed.shard_batch(idx, distributed.Comm(r, 3)) for r in range(3)]
    assert np.array_equal(np.concatenate([p for p, _ in parts]), idx)
    # DDP averages gradients over ranks: scale_r / world / n_r must be 1 / n for every sample
    for p, s in parts:
        assert s / 3 / len(p) == pytest.approx(1 / 7)
    empty = distributed.shard_batch(np.arange(1), distributed.Comm(1, 2))
    assert len(empty[0]) == 1 and empty[1] == 0.0  # joins the all-reduce, contributes nothing
    assert distributed.rank_seed(42, 0) == 42 and distributed.rank_seed(42, 1) != distributed.rank_seed(42, 2)
