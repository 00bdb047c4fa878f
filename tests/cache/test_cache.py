"""Teacher cache (with a tiny TimeMoE): fill, reuse without loading the teacher, resume after a kill,
the teach command."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from distilts import teachers
from distilts.cache.entry import cache_root, fill_teacher_cache
from distilts.cache.fill import pool_tokens
from distilts.errors import DistiltsError

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

L, H, STRIDE, BATCH = 64, 16, 48, 16
TEACHER = "timemoe"
REAL_LOAD = teachers.load_teacher


class Counting:
    """Loads the real teacher and counts its predict calls; optionally dies after `fail_after` calls."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.loads = 0
        self.calls = 0
        self.fail_after = fail_after

    def __call__(self, name, path=None, device="auto"):
        self.loads += 1
        teacher = REAL_LOAD(name, path, device)
        predict = teacher.predict

        def counted(x, horizon, hidden=False):
            if self.fail_after is not None and self.calls >= self.fail_after:
                raise KeyboardInterrupt("simulated kill")
            self.calls += 1
            return predict(x, horizon, hidden)

        teacher.predict = counted
        return teacher


def _fill(dataset, teacher_dir, cache_dir, **kw):
    kw = {"stride": STRIDE, "batch_size": BATCH, "device": "cpu", "progress": False, **kw}
    return fill_teacher_cache(dataset, TEACHER, teacher_dir, L, H, cache_dir=cache_dir, **kw)


def _n_chunks(dataset, parts=("train", "val", "test")) -> int:
    return sum(-(-len(dataset.windows(p, L, H, STRIDE)) // BATCH) for p in parts)


def test_fill_aligns_with_windows_then_reuses_without_teacher(dataset, teacher_dir, tmp_path, monkeypatch):
    cache = _fill(dataset, teacher_dir, tmp_path, hidden=True, hidden_tokens=2)
    assert not cache.reused
    d = dataset.normalized.shape[1]
    teacher = teachers.load_teacher(TEACHER, teacher_dir, "cpu")
    for part in ("train", "val", "test"):
        win = dataset.windows(part, L, H, STRIDE)
        f, hid = cache.forecasts(part), cache.hidden(part)
        assert f.shape == (len(win), H, d) and f.dtype == np.float32
        assert hid.shape == (len(win), d, 2, teacher.d_model) and hid.dtype == np.float16
        idx = np.arange(min(BATCH, len(win)))  # the first chunk, recomputed by hand
        out = teacher.predict(win.batch(idx)[0], H, hidden=True)
        np.testing.assert_allclose(f[idx], out.forecast, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(hid[idx], pool_tokens(out.hidden, 2), rtol=1e-2, atol=1e-2)
    files = sorted(p.name for p in cache.directory.iterdir())
    assert "meta.json" in files and not [f for f in files if f.endswith((".partial", ".progress.json"))]
    assert cache.info["teacher_info"]["name"] == TEACHER and cache.info["hidden_tokens"] == 2

    def no_teacher(*a, **k):
        raise AssertionError("a complete cache must not load the teacher")

    monkeypatch.setattr(teachers, "load_teacher", no_teacher)
    again = _fill(dataset, teacher_dir, tmp_path, hidden=True, hidden_tokens=2)
    assert again.reused and again.directory == cache.directory
    np.testing.assert_array_equal(again.forecasts("test"), cache.forecasts("test"))


def test_settings_key_the_entry(dataset, teacher_dir, tmp_path):
    a = _fill(dataset, teacher_dir, tmp_path, parts=("test",))
    b = _fill(dataset, teacher_dir, tmp_path, parts=("test",), stride=STRIDE * 2)
    assert a.directory != b.directory and len(b.forecasts("test")) < len(a.forecasts("test"))
    with pytest.raises(DistiltsError, match="no hidden states"):
        a.hidden("test")
    with pytest.raises(DistiltsError, match="has no 'train' part"):
        a.forecasts("train")


def test_resume_after_kill_computes_only_remaining_chunks(dataset, teacher_dir, tmp_path, monkeypatch):
    dying = Counting(fail_after=3)
    monkeypatch.setattr(teachers, "load_teacher", dying)
    with pytest.raises(KeyboardInterrupt):
        _fill(dataset, teacher_dir, tmp_path / "a", hidden=True, hidden_tokens=4)
    entry = next((tmp_path / "a" / "teacher").iterdir())
    assert not (entry / "meta.json").exists()  # incomplete: no marker
    assert (entry / "train.progress.json").exists() and (entry / "train.forecast.npy.partial").exists()

    resumed = Counting()
    monkeypatch.setattr(teachers, "load_teacher", resumed)
    cache = _fill(dataset, teacher_dir, tmp_path / "a", hidden=True, hidden_tokens=4)
    assert resumed.calls == _n_chunks(dataset) - 3 and resumed.loads == 1
    assert (entry / "meta.json").exists()

    fresh = _fill(dataset, teacher_dir, tmp_path / "b", hidden=True, hidden_tokens=4)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(cache.forecasts(part), fresh.forecasts(part))
        np.testing.assert_array_equal(cache.hidden(part), fresh.hidden(part))


def test_extra_parts_extend_a_complete_entry(dataset, teacher_dir, tmp_path, monkeypatch):
    _fill(dataset, teacher_dir, tmp_path, parts=("test",))
    counting = Counting()
    monkeypatch.setattr(teachers, "load_teacher", counting)
    cache = _fill(dataset, teacher_dir, tmp_path, parts=("val", "test"))
    assert counting.calls == _n_chunks(dataset, ("val",)) and set(cache.parts) == {"val", "test"}


def test_forecast_only_request_reuses_an_entry_with_hidden_states(dataset, teacher_dir, tmp_path, monkeypatch):
    full = _fill(dataset, teacher_dir, tmp_path, parts=("val", "test"), hidden=True, hidden_tokens=2)

    def no_teacher(*a, **k):
        raise AssertionError("the forecasts are already cached (with hidden states)")

    monkeypatch.setattr(teachers, "load_teacher", no_teacher)
    plain = _fill(dataset, teacher_dir, tmp_path, parts=("test",))
    assert plain.reused and plain.directory == full.directory
    np.testing.assert_array_equal(plain.forecasts("test"), full.forecasts("test"))
    with pytest.raises(AssertionError, match="already cached"):  # a part it lacks is computed as usual
        _fill(dataset, teacher_dir, tmp_path, parts=("train",))


def test_window_the_teacher_cannot_take(dataset, tmp_path):
    from distilts.teachers.timemoe import save_random_checkpoint

    short = save_random_checkpoint(tmp_path / "short", config_overrides={"max_position_embeddings": 70})
    with pytest.raises(DistiltsError, match=r"at most 70 time steps.*lookback 64 \+ horizon 16 = 80.*--lookback 54"):
        _fill(dataset, str(short), tmp_path, parts=("test",))
    assert not list((tmp_path / "teacher").iterdir())  # no empty entry left behind


def test_pool_tokens():
    h = np.arange(5, dtype=np.float32).reshape(1, 1, 5, 1)
    np.testing.assert_allclose(pool_tokens(h, 2)[0, 0, :, 0], [0.5, 3.0])
    assert pool_tokens(h, 0) is h and pool_tokens(h, 9) is h


def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILTS_CACHE_DIR", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("DISTILTS_CACHE_DIR")
    assert "distilts" in str(cache_root())


def test_bad_settings(dataset, teacher_dir, tmp_path):
    with pytest.raises(DistiltsError, match="Unknown split part"):
        _fill(dataset, teacher_dir, tmp_path, parts=("holdout",))
    with pytest.raises(DistiltsError, match="Unknown teacher"):
        fill_teacher_cache(dataset, "gpt", None, L, H, cache_dir=tmp_path)


def test_teach_command_end_to_end(etth1_path, teacher_dir, tmp_path):
    from distilts.cli import cli

    args = ["teach", "--teacher", TEACHER, "--teacher-path", teacher_dir, "--data", str(etth1_path),
            "--lookback", "96", "--horizon", "24", "--stride", "96", "--hidden", "--hidden-tokens", "4",
            "--cache-dir", str(tmp_path), "--device", "cpu", "--quiet"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "computed" in first.output and str(tmp_path) in first.output
    # TimeMoE: one token per input step (96), pooled to 4; tiny d_model 32
    assert "test: 30 windows, forecasts (30, 24, 7), hidden (30, 7, 4, 32)" in first.output
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0 and "reused" in second.output
    # a rerun on a complete cache does not even import torch
    code = ("import sys\nfrom distilts.cli import cli\ntry:\n    cli(%r, standalone_mode=False)\n"
            "except SystemExit:\n    pass\nprint('HEAVY', [m for m in ('torch', 'transformers') if m in sys.modules])"
            % args)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "reused" in out.stdout and "HEAVY []" in out.stdout, out.stdout + out.stderr
    bad = CliRunner().invoke(cli, args[:-3] + ["--teacher-path", str(tmp_path / "nope"), "--quiet"])
    assert bad.exit_code != 0 and "neither an existing directory nor a hub id" in bad.output


def test_the_checkpoint_is_read_once_for_the_key_and_the_loaded_teacher(dataset, teacher_dir, tmp_path,
                                                                       monkeypatch, checkpoint_sha256):
    """The cache key and the loaded teacher share one hash of the weights; a rerun in another process
    finds it in the cache's memo; a changed file is hashed again."""
    import hashlib
    import os
    from types import SimpleNamespace

    from distilts.teachers import base

    made = []

    def counting_sha256():
        made.append(1)
        return hashlib.sha256()

    monkeypatch.setattr(base, "hashlib", SimpleNamespace(sha256=counting_sha256))
    monkeypatch.setattr(base, "_HASHES", {})
    cache = _fill(dataset, teacher_dir, tmp_path, parts=("test",))
    assert len(made) == 1 and not cache.reused
    assert cache.info["checkpoint_sha256"] == cache.info["teacher_info"]["checkpoint_sha256"] \
        == checkpoint_sha256(teacher_dir)
    monkeypatch.setattr(base, "_HASHES", {})  # a new process: the memo file answers
    assert not _fill(dataset, teacher_dir, tmp_path, parts=("val",)).reused and len(made) == 1
    config = os.path.join(teacher_dir, "config.json")
    os.utime(config, ns=(os.stat(config).st_atime_ns, os.stat(config).st_mtime_ns + 10**9))
    assert _fill(dataset, teacher_dir, tmp_path, parts=("val",)).info["checkpoint_sha256"] \
        == checkpoint_sha256(teacher_dir) and len(made) == 2
